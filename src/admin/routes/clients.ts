/**
 * `/admin/api/clients…`: relying parties, in OIDC metadata names (RFC 7591). A client secret appears
 * in a response only when it has just been created, and only that once. The built-in account-area
 * client (`gatehouse-account`) is neither listed nor shown, and creating, changing, rotating or deleting
 * it is a 409 (see isBuiltInClient).
 */
import type { Router } from '@koa/router';
import { z } from 'zod';
import { InputError } from '../../errors.js';
import { acrValuesRule, AUTH_METHODS, clientMetadataPatch, GRANT_TYPES, RESPONSE_TYPES, type ClientRecord } from '../../oidc/clients.js';
import { grantShapeProblems } from '../../oidc/client-rules.js';
import type { ClientRegistry } from '../../oidc/clients.js';
import type { AdminServices } from '../services.js';
import { call, type Guard } from '../guard.js';
import { cursorParam, decodeCursor, DEFAULT_PAGE, encodeCursor, idParam, limitParam, noFields, parseBody, parseQuery } from '../http-input.js';

const listQuery = z.object({ limit: limitParam, cursor: cursorParam }).strict();

const createBody = z
  .object({
    client_name: z.string().trim().min(1, 'must not be empty').max(200),
    client_id: z.string().regex(/^[A-Za-z0-9._~-]{3,128}$/, 'must be 3-128 URL-safe characters').optional(),
    redirect_uris: z.array(z.string().max(2000)).max(50).optional(),
    post_logout_redirect_uris: z.array(z.string().max(2000)).max(50).optional(),
    grant_types: z.array(z.enum(GRANT_TYPES)).min(1, 'must name at least one grant type').optional(),
    response_types: z.array(z.enum(RESPONSE_TYPES)).optional(),
    token_endpoint_auth_method: z.enum(AUTH_METHODS).optional(),
    scope: z.string().max(2000).optional(),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1).max(20) }).optional(),
    first_party: z.boolean().optional(),
    default_acr_values: acrValuesRule.optional(),
  })
  .strict();

/** A client as the API shows it: its registration metadata (never the secret) and when it changed. */
export function clientJson(client: ClientRecord): Record<string, unknown> {
  const { client_secret: _never, ...metadata } = client.metadata;
  return {
    ...metadata,
    client_id: client.clientId,
    first_party: client.firstParty,
    ...(client.createdAt ? { created_at: client.createdAt.toISOString() } : {}),
    ...(client.updatedAt ? { updated_at: client.updatedAt.toISOString() } : {}),
  };
}

export function clientRoutes(router: Router, admin: AdminServices, clients: ClientRegistry, guard: Guard): void {
  const { clientOps } = admin;

  router.get('/clients', guard('clients:read'), async (ctx) => {
    const query = parseQuery(ctx, listQuery);
    const after = query.cursor ? decodeCursor('clients', query.cursor, z.tuple([z.iso.datetime(), z.string().max(128)])) : undefined;
    const limit = query.limit ?? DEFAULT_PAGE;
    const page = await clients.page({ limit, ...(after ? { after: { createdAt: new Date(after[0]), clientId: after[1] } } : {}) });
    const last = page.items[page.items.length - 1];
    ctx.body = {
      items: page.items.map(clientJson),
      nextCursor: page.more && last?.createdAt ? encodeCursor('clients', [last.createdAt.toISOString(), last.clientId]) : null,
    };
  });

  router.post('/clients', guard('clients:write'), async (ctx) => {
    const body = parseBody(ctx, createBody, 'client', { refuseEmpty: true });
    if (body.response_types) {
      const problem = grantShapeProblems({
        grant_types: body.grant_types ?? ['authorization_code', 'refresh_token'],
        response_types: body.response_types,
        redirect_uris: body.redirect_uris ?? ['https://placeholder.invalid/'],
      }).response_types;
      if (problem) throw new InputError(`invalid client: response_types: ${problem}`, { response_types: problem });
    }
    const created = await clientOps.create(
      {
        name: body.client_name,
        ...(body.client_id !== undefined ? { clientId: body.client_id } : {}),
        redirectUris: body.redirect_uris ?? [],
        postLogoutRedirectUris: body.post_logout_redirect_uris ?? [],
        ...(body.grant_types ? { grantTypes: body.grant_types } : {}),
        ...(body.token_endpoint_auth_method ? { authMethod: body.token_endpoint_auth_method } : {}),
        ...(body.scope !== undefined ? { scope: body.scope } : {}),
        ...(body.jwks ? { jwks: body.jwks } : {}),
        firstParty: body.first_party === true,
        ...(body.default_acr_values ? { defaultAcrValues: body.default_acr_values } : {}),
      },
      call(ctx),
    );
    const shown = await clients.show(created.clientId);
    ctx.status = 201;
    ctx.set('Location', `/admin/api/clients/${created.clientId}`);
    ctx.body = { ...clientJson(shown), ...(created.clientSecret ? { client_secret: created.clientSecret } : {}) };
  });

  router.get('/clients/:clientId', guard('clients:read'), async (ctx) => {
    ctx.body = clientJson(await clients.show(idParam(ctx.params.clientId, 'client')));
  });

  router.patch('/clients/:clientId', guard('clients:write'), async (ctx) => {
    const clientId = idParam(ctx.params.clientId, 'client');
    const patch = parseBody(ctx, clientMetadataPatch, 'client');
    const updated = await clientOps.update(clientId, patch, call(ctx));
    ctx.body = { ...clientJson(updated.client), ...(updated.clientSecret ? { client_secret: updated.clientSecret } : {}) };
  });

  router.post('/clients/:clientId/secret', guard('clients:write'), noFields, async (ctx) => {
    const rotated = await clientOps.rotateSecret(idParam(ctx.params.clientId, 'client'), call(ctx));
    ctx.body = { client_id: rotated.clientId, client_secret: rotated.clientSecret };
  });

  router.delete('/clients/:clientId', guard('clients:write'), noFields, async (ctx) => {
    const clientId = idParam(ctx.params.clientId, 'client');
    const { revoked } = await clientOps.remove(clientId, call(ctx));
    ctx.body = { client_id: clientId, deleted: true, revoked };
  });
}
