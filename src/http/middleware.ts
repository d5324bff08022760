/**
 * Cross-cutting HTTP behaviour: request ids, security headers, and the error boundary that turns
 * every failure into a clear 4xx/503 page or JSON body. Nothing a client sends should produce a 500.
 */
import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Connection } from 'mongoose';
import { isDatabaseUnavailable } from '../db/connection.js';
import { ConflictError, InputError, NotFoundError } from '../errors.js';
import type { Logger } from '../logger.js';
import { renderView } from './render.js';

export function requestContext(log: Logger) {
  return async (ctx: Context, next: Next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = /^[\w.-]{8,64}$/.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      // Checked first: the log record would otherwise be built on every request only to be dropped.
      if (log.isLevelEnabled('debug')) log.debug({ requestId, method: ctx.method, path: ctx.path, status: ctx.status, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request');
    }
  };
}

const CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

export async function securityHeaders(ctx: Context, next: Next): Promise<void> {
  // Set before the response is made: oidc-provider's self-submitting pages (form_post responses, the
  // sign-out and session-change steps) add their inline script's hash to an existing script-src. Set
  // after, the policy would block that script and leave the page blank.
  ctx.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  await next();
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  if (ctx.secure) ctx.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
  if (ctx.response.is('html')) {
    ctx.set('X-Frame-Options', 'DENY');
    // Kept if the response set its own (with script hashes); restored if an error path cleared the headers.
    if (!ctx.response.get('Content-Security-Policy')) ctx.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    ctx.set('Cache-Control', 'no-store');
  }
}

export function wantsJson(ctx: Context): boolean {
  // Browsers ask for HTML; API clients that name nothing get JSON.
  return ctx.accepts('json', 'html') === 'json' || ctx.path.startsWith('/admin/api');
}

/** Maps an error to a status and a message safe to show. Unknown errors are 500 and logged. */
export function classifyError(err: unknown): { status: number; code: string; message: string; fields?: Record<string, string> } {
  const e = err as { status?: number; statusCode?: number; expose?: boolean; message?: string; name?: string; type?: string };
  if (isDatabaseUnavailable(err) || e?.name === 'DatabaseUnavailableError') {
    return { status: 503, code: 'temporarily_unavailable', message: 'The service is temporarily unavailable. Please try again in a moment.' };
  }
  if (err instanceof InputError) return { status: 400, code: 'invalid_request', message: err.message, fields: err.fields };
  if (err instanceof ConflictError) return { status: 409, code: 'conflict', message: err.message };
  if (err instanceof NotFoundError) return { status: 404, code: 'not_found', message: err.message };
  if (e?.name === 'SessionNotFound' || e?.name === 'InvalidRequest' && /interaction/i.test(e.message ?? '')) {
    return { status: 400, code: 'session_not_found', message: 'This sign-in page has expired or was already used. Go back to the application and start the sign-in again.' };
  }
  const status = e?.status ?? e?.statusCode;
  if (status === 413 || e?.type === 'entity.too.large') return { status: 413, code: 'payload_too_large', message: 'What you sent is too large.' };
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const message = e.expose !== false && e.message ? e.message : 'The request could not be processed.';
    const code = status === 404 ? 'not_found' : status === 403 ? 'forbidden' : status === 429 ? 'too_many_requests' : 'invalid_request';
    return { status, code, message };
  }
  if (status === 503) return { status: 503, code: 'temporarily_unavailable', message: 'The service is temporarily unavailable. Please try again in a moment.' };
  return { status: 500, code: 'server_error', message: 'Something went wrong on our side. Please try again.' };
}

const HEADINGS: Record<string, string> = {
  not_found: 'Page not found',
  forbidden: 'Request refused',
  session_not_found: 'This sign-in has expired',
  temporarily_unavailable: 'Temporarily unavailable',
  payload_too_large: 'Too much data',
};

export function errorBoundary(log: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) ctx.throw(404, 'There is nothing at this address.');
    } catch (err) {
      const problem = classifyError(err);
      if (problem.status >= 500) log.error({ err, requestId: ctx.state.requestId, path: ctx.path }, 'request failed');
      ctx.status = problem.status;
      if (problem.status === 503) ctx.set('Retry-After', '5');
      if (wantsJson(ctx)) {
        ctx.body = { error: problem.code, error_description: problem.message, ...(problem.fields ? { fields: problem.fields } : {}) };
        return;
      }
      ctx.type = 'html';
      ctx.body = await renderView('error', {
        title: HEADINGS[problem.code] ?? 'Something went wrong',
        heading: HEADINGS[problem.code] ?? 'We could not complete that',
        message: problem.message,
        detail: null,
        code: problem.code,
      });
    }
  };
}

/** While the database is unreachable every request but /health gets a 503 straight away. */
export function requireDatabase(connection: Connection) {
  return async (ctx: Context, next: Next) => {
    if (connection.readyState !== 1 && ctx.path !== '/health') {
      ctx.throw(503, 'The service is temporarily unavailable. Please try again in a moment.');
    }
    await next();
  };
}

/**
 * With an https issuer, every request must have arrived over https (at the proxy): secure cookies
 * cannot be set otherwise, and credentials must never travel in clear. GETs are redirected.
 */
export function requireHttps(issuer: string) {
  const httpsOnly = issuer.startsWith('https:');
  return async (ctx: Context, next: Next) => {
    if (httpsOnly && !ctx.secure && ctx.path !== '/health') {
      if (ctx.method === 'GET' || ctx.method === 'HEAD') {
        // Only a path on our own origin: "//evil.example" or "/\\evil.example" must not become an open redirect.
        const path = /^\/(?![/\\])/.test(ctx.originalUrl) ? ctx.originalUrl : '/';
        ctx.status = 301;
        ctx.redirect(new URL(issuer).origin + path);
        return;
      }
      ctx.throw(400, 'Gatehouse only accepts requests over https.');
    }
    await next();
  };
}

/** Where our own browser forms post: sign-in interactions, recovery, activation, the account area. */
const FORM_PATHS = /^\/(interaction|recover|activate|account)(\/|$)/;

/** Rejects cross-site form posts outright when the browser says where they came from. */
export function sameOriginPosts(issuerOrigin: string) {
  return async (ctx: Context, next: Next) => {
    const origin = ctx.get('origin');
    if (ctx.method === 'POST' && origin && origin !== 'null' && origin !== issuerOrigin && FORM_PATHS.test(ctx.path)) {
      ctx.throw(403, 'This form was sent from another site and has been refused.');
    }
    await next();
  };
}
