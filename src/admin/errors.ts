/**
 * The admin API's errors: every failure is a JSON body `{ error, error_description, fields? }`, and
 * authentication failures carry RFC 6750's `WWW-Authenticate: Bearer …` challenge.
 */
import type { Context } from 'koa';
import { classifyError } from '../http/middleware.js';
import type { Logger } from '../logger.js';

export const REALM = 'gatehouse-admin';

export class AdminHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'AdminHttpError';
  }
}

/** RFC 6750 §3: quoted-string values must not hold `"` or `\`. */
function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, "'")}"`;
}

export function bearerChallenge(params: { error?: string; description?: string; scope?: string } = {}): string {
  const parts = [`realm=${quoted(REALM)}`];
  if (params.error) parts.push(`error=${quoted(params.error)}`);
  if (params.description) parts.push(`error_description=${quoted(params.description)}`);
  if (params.scope) parts.push(`scope=${quoted(params.scope)}`);
  return `Bearer ${parts.join(', ')}`;
}

/** 401 without any credentials: a challenge but no error code (RFC 6750 §3.1). */
export function missingToken(): AdminHttpError {
  return new AdminHttpError(401, 'unauthorized', 'This API needs a Bearer access token in the Authorization header.', {
    'WWW-Authenticate': bearerChallenge(),
  });
}

export function invalidRequest(message: string): AdminHttpError {
  return new AdminHttpError(400, 'invalid_request', message, { 'WWW-Authenticate': bearerChallenge({ error: 'invalid_request', description: message }) });
}

export function invalidToken(message: string): AdminHttpError {
  return new AdminHttpError(401, 'invalid_token', message, { 'WWW-Authenticate': bearerChallenge({ error: 'invalid_token', description: message }) });
}

export function insufficientScope(message: string, scopes: readonly string[]): AdminHttpError {
  return new AdminHttpError(403, 'insufficient_scope', message, {
    'WWW-Authenticate': bearerChallenge({ error: 'insufficient_scope', description: message, scope: scopes.join(' ') }),
  });
}

/** Allowed by scope, but not on this target (e.g. the helpdesk acting on an administrator). */
export function forbidden(message: string): AdminHttpError {
  return new AdminHttpError(403, 'forbidden', message);
}

export function notImplemented(message: string): AdminHttpError {
  return new AdminHttpError(501, 'not_implemented', message);
}

/** Catches everything below it and answers in JSON; unexpected errors are logged and become a 500. */
export function adminErrors(log: Logger) {
  return async (ctx: Context, next: () => Promise<unknown>) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new AdminHttpError(404, 'not_found', 'There is no such admin API endpoint.');
      // The router answers a known path with the wrong method (405, with Allow) or an unknown method (501) without a body.
      if ((ctx.status === 405 || ctx.status === 501) && !ctx.body) throw new AdminHttpError(405, 'method_not_allowed', 'This endpoint does not accept that HTTP method.');
    } catch (err) {
      let status: number;
      let body: Record<string, unknown>;
      if (err instanceof AdminHttpError) {
        status = err.status;
        body = { error: err.code, error_description: err.message };
        for (const [name, value] of Object.entries(err.headers)) ctx.set(name, value);
      } else {
        const problem = classifyError(err);
        status = problem.status;
        body = { error: problem.code, error_description: problem.message, ...(problem.fields ? { fields: problem.fields } : {}) };
        if (status >= 500) log.error({ err, requestId: ctx.state.requestId, path: ctx.path }, 'admin API request failed');
        if (status === 503) ctx.set('Retry-After', '5');
      }
      ctx.status = status;
      ctx.body = body;
    }
    ctx.set('Cache-Control', 'no-store');
  };
}
