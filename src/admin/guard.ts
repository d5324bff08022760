/**
 * Route guards: every admin endpoint but the OpenAPI document needs a valid token, and each one a
 * permission. A refusal for lack of permission is itself audited: repeated attempts are a signal.
 */
import type { Context, Next } from 'koa';
import type { AuditLog } from '../audit/audit.js';
import type { Authenticate, AdminPrincipal } from './bearer.js';
import { auditFacts, httpCall, type AdminCall } from './call.js';
import { insufficientScope } from './errors.js';
import { scopesGranting, type Permission } from './permissions.js';

export function principal(ctx: Context): AdminPrincipal {
  const found = ctx.state.adminPrincipal as AdminPrincipal | undefined;
  if (!found) throw new Error('admin route reached without authentication');
  return found;
}

export function call(ctx: Context): AdminCall {
  return httpCall(ctx, principal(ctx));
}

export function authenticated(authenticate: Authenticate) {
  return async (ctx: Context, next: Next) => {
    ctx.state.adminPrincipal = await authenticate(ctx);
    await next();
  };
}

export type Guard = (permission: Permission) => (ctx: Context, next: Next) => Promise<void>;

export function permissionGuard(audit: AuditLog): Guard {
  return (permission) => async (ctx, next) => {
    const who = principal(ctx);
    if (!who.permissions.has(permission)) {
      await audit.record({
        type: 'admin.forbidden',
        outcome: 'failure',
        ...auditFacts(httpCall(ctx, who)),
        details: { permission, method: ctx.method, path: ctx.path.slice(0, 200) },
      });
      const scopes = scopesGranting(permission);
      throw insufficientScope(`This needs the "${permission}" permission, which comes with the ${scopes.map((s) => `"${s}"`).join(' or ')} scope and its role.`, scopes);
    }
    await next();
  };
}
