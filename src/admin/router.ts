/**
 * The admin REST API under /admin/api: JSON in and out, its own size-limited JSON body parser (only
 * here: oidc-provider parses its own bodies), Bearer authentication through the provider, and a
 * permission on every endpoint. Mounted before oidc-provider in src/app.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { bodyParser } from '@koa/bodyparser';
import { Router } from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import compose from 'koa-compose';
import type { Services } from '../app.js';
import { projectRoot } from '../config.js';
import { createAuthenticator } from './bearer.js';
import { AdminHttpError, adminErrors } from './errors.js';
import { authenticated, permissionGuard, principal } from './guard.js';
import { accountRoutes } from './routes/accounts.js';
import { passkeyRoutes } from './routes/passkeys.js';
import { auditRoutes } from './routes/audit.js';
import { clientRoutes } from './routes/clients.js';
import { registrationTokenRoutes } from './routes/registration-tokens.js';

export const ADMIN_PREFIX = '/admin/api';
export const OPENAPI_FILE = path.join(projectRoot, 'src', 'admin', 'openapi.json');
const JSON_LIMIT = '64kb';

const BODY_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * A body must be a JSON object in UTF-8, labelled application/json, and parse; nothing else reaches
 * the routes (even those that ignore their body, so a garbled request never acts).
 */
function jsonBodies(): Middleware {
  const parse = bodyParser({
    enableTypes: ['json'],
    parsedMethods: BODY_METHODS,
    jsonLimit: JSON_LIMIT,
    jsonStrict: true,
    encoding: 'utf-8',
    onError(err) {
      const status = (err as { status?: number }).status;
      if (status === 413) throw new AdminHttpError(413, 'payload_too_large', `The request body is larger than ${JSON_LIMIT}.`);
      if (status === 415) throw new AdminHttpError(415, 'unsupported_media_type', 'The request body must be JSON in UTF-8, without content encoding.');
      throw new AdminHttpError(400, 'invalid_request', 'The request body is not valid JSON (a JSON object is expected).');
    },
  });
  return async (ctx: Context, next: Next) => {
    if (!BODY_METHODS.includes(ctx.method)) return next();
    const hasBody = ctx.request.length > 0 || (ctx.request.length === undefined && ctx.get('transfer-encoding') !== '');
    if (!hasBody) {
      // No body at all; routes that need one say what is missing.
      ctx.request.body = {};
      return next();
    }
    const charset = ctx.request.charset.toLowerCase();
    if (!ctx.request.is('application/json', '+json') || (charset && charset !== 'utf-8' && charset !== 'utf8')) {
      throw new AdminHttpError(415, 'unsupported_media_type', 'Send the request body as application/json in UTF-8.');
    }
    return parse(ctx, async () => {
      const body: unknown = ctx.request.body;
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new AdminHttpError(400, 'invalid_request', 'The request body must be a JSON object.');
      }
      await next();
    });
  };
}

/** The API's routers: the public OpenAPI document, and everything behind authentication. */
export function adminRouters(services: Services): { open: Router; api: Router } {
  const { admin, audit, provider, accounts, clients } = services;
  const openapi = readFileSync(OPENAPI_FILE, 'utf8');
  const guard = permissionGuard(audit);

  const open = new Router({ prefix: ADMIN_PREFIX });
  open.get('/openapi.json', (ctx) => {
    ctx.type = 'application/json';
    ctx.body = openapi;
  });

  const api = new Router({ prefix: ADMIN_PREFIX });
  api.use(authenticated(createAuthenticator(provider, accounts)));
  api.get('/me', (ctx) => {
    const who = principal(ctx);
    ctx.body = { actor: who.actor, clientId: who.clientId, scopes: who.scopes, permissions: [...who.permissions], ...(who.roles ? { roles: who.roles } : {}) };
  });
  accountRoutes(api, admin, guard);
  passkeyRoutes(api, admin, guard);
  clientRoutes(api, admin, clients, guard);
  registrationTokenRoutes(api, admin, guard);
  auditRoutes(api, audit, guard);
  return { open, api };
}

export function adminApi(services: Services): Middleware {
  const { open, api } = adminRouters(services);
  const handle = compose([
    adminErrors(services.log),
    jsonBodies(),
    open.routes(),
    open.allowedMethods(),
    api.routes(),
    api.allowedMethods(),
  ] as Middleware[]);

  return async (ctx, next) => {
    if (ctx.path !== ADMIN_PREFIX && !ctx.path.startsWith(`${ADMIN_PREFIX}/`)) return next();
    // The API never falls through to oidc-provider: an unknown path is this API's 404.
    await handle(ctx, async () => undefined);
  };
}
