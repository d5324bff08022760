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
import { markEmptyBody } from './http-input.js';
import { accountRoutes } from './routes/accounts.js';
import { passkeyRoutes } from './routes/passkeys.js';
import { auditRoutes } from './routes/audit.js';
import { clientRoutes } from './routes/clients.js';
import { registrationTokenRoutes } from './routes/registration-tokens.js';

export const ADMIN_PREFIX = '/admin/api';
export const OPENAPI_FILE = path.join(projectRoot, 'src', 'admin', 'openapi.json');
const JSON_LIMIT = '64kb';

const BODY_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'];

/** What a parsed JSON body is, for the message that refuses it. */
function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** The raw text co-body attaches to a parse error, when it is nonetheless well-formed JSON. */
function wellFormedJson(err: unknown): boolean {
  const raw = (err as { body?: unknown }).body;
  if (typeof raw !== 'string' || raw.trim() === '') return false;
  try {
    JSON.parse(raw);
    return true;
  } catch {
    return false;
  }
}

/**
 * A body must be a JSON object in UTF-8, labelled application/json, and parse; nothing else reaches
 * the routes (even those that ignore their body, so a garbled request never acts). Well-formed JSON of
 * the wrong shape (null, an array, a "__proto__" key) is told apart from text that is not JSON.
 */
function jsonBodies(): Middleware {
  const parse = bodyParser({
    enableTypes: ['json'],
    parsedMethods: BODY_METHODS,
    jsonLimit: JSON_LIMIT,
    // Not strict: null, numbers and strings parse, so the shape check below can name what was sent.
    jsonStrict: false,
    encoding: 'utf-8',
    onError(err) {
      const status = (err as { status?: number }).status;
      if (status === 413) throw new AdminHttpError(413, 'payload_too_large', `The request body is larger than ${JSON_LIMIT}.`);
      if (status === 415) throw new AdminHttpError(415, 'unsupported_media_type', 'The request body must be JSON in UTF-8, without content encoding.');
      // The parser (@hapi/bourne) refuses well-formed JSON only for a "__proto__" key, at any depth.
      if (wellFormedJson(err)) throw new AdminHttpError(400, 'invalid_request', 'The request body must not contain a "__proto__" key.');
      throw new AdminHttpError(400, 'invalid_request', 'The request body is not valid JSON (a JSON object is expected).');
    },
  });
  return async (ctx: Context, next: Next) => {
    if (!BODY_METHODS.includes(ctx.method)) return next();
    const hasBody = ctx.request.length > 0 || (ctx.request.length === undefined && ctx.get('transfer-encoding') !== '');
    if (!hasBody) {
      // No body at all; routes that need one say it is missing (parseBody).
      ctx.request.body = {};
      markEmptyBody(ctx);
      return next();
    }
    const charset = ctx.request.charset.toLowerCase();
    if (!ctx.request.is('application/json', '+json') || (charset && charset !== 'utf-8' && charset !== 'utf8')) {
      throw new AdminHttpError(415, 'unsupported_media_type', 'Send the request body as application/json in UTF-8.');
    }
    return parse(ctx, async () => {
      // A chunked request with no bytes is no body, as above.
      if ((ctx.request as { rawBody?: string }).rawBody === '') {
        ctx.request.body = {};
        markEmptyBody(ctx);
      }
      const body: unknown = ctx.request.body;
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new AdminHttpError(400, 'invalid_request', `The request body must be a JSON object, not ${jsonKind(body)}.`);
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
