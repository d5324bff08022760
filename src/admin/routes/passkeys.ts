/** `/admin/api/accounts/{id}/passkeys…`: an account's passkeys and security keys (list, revoke). */
import type { Router } from '@koa/router';
import { NotFoundError } from '../../errors.js';
import { call, type Guard } from '../guard.js';
import { idParam, noFields } from '../http-input.js';
import type { AdminServices } from '../services.js';

/** Credential IDs are base64url and up to 1023 bytes (1364 characters); anything else names none. */
function credentialParam(value: string | undefined): string {
  if (!value || value.length > 1364 || !/^[A-Za-z0-9_-]+$/.test(value)) throw new NotFoundError('no passkey with this id');
  return value;
}

export function passkeyRoutes(router: Router, admin: AdminServices, guard: Guard): void {
  const { passkeyOps } = admin;

  router.get('/accounts/:accountId/passkeys', guard('accounts:read'), async (ctx) => {
    ctx.body = { items: await passkeyOps.list(idParam(ctx.params.accountId, 'account')) };
  });

  router.delete('/accounts/:accountId/passkeys/:credentialId', guard('accounts:support'), noFields, async (ctx) => {
    ctx.body = await passkeyOps.revoke(idParam(ctx.params.accountId, 'account'), credentialParam(ctx.params.credentialId), call(ctx));
  });

  router.delete('/accounts/:accountId/passkeys', guard('accounts:support'), noFields, async (ctx) => {
    ctx.body = await passkeyOps.revokeAll(idParam(ctx.params.accountId, 'account'), call(ctx));
  });
}
