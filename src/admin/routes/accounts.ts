/** `/admin/api/accounts…`: search, show, create, update, and the helpdesk's account actions. */
import type { Router } from '@koa/router';
import { z } from 'zod';
import { ACCOUNT_STATUS_FILTER, accountPatch, roleName, type AccountAdmin, type StatusAction } from '../../accounts/account-admin.js';
import { InputError } from '../../errors.js';
import type { AdminServices } from '../services.js';
import { call, type Guard } from '../guard.js';
import { ROLES } from '../permissions.js';
import { cursorParam, decodeCursor, DEFAULT_PAGE, encodeCursor, idParam, limitParam, noFields, parseBody, parseQuery } from '../http-input.js';

const ROLE_CHOICES = `must be one of ${ROLES.join(', ')} (or an older role an account still holds)`;

const listQuery = z
  .object({
    q: z.string().trim().min(1, 'must not be empty').max(254).optional(),
    status: z.enum(ACCOUNT_STATUS_FILTER).optional(),
    role: z.string({ error: 'give one role' }).max(64, ROLE_CHOICES).optional(),
    limit: limitParam,
    cursor: cursorParam,
  })
  .strict();

/** The admin API's account fields; the password is optional (without it, an invitation is mailed). */
const createBody = z
  .object({
    userId: z.string().max(64),
    email: z.string().max(254).optional(),
    name: z.string().max(200),
    phone: z.string().max(32).optional(),
    market: z.string().max(16).optional(),
    roles: z.array(z.string().max(32)).max(32).optional(),
    emailVerified: z.boolean().optional(),
    password: z.string().max(1024).optional(),
  })
  .strict();

/**
 * The role filter takes the roles an account can be given, and older ones still held (so they can be
 * found and cleaned up): a typo would otherwise list nobody, as if nobody held the role.
 */
async function checkRoleFilter(accountAdmin: AccountAdmin, role: string | undefined): Promise<void> {
  if (role === undefined || (ROLES as readonly string[]).includes(role)) return;
  const held = roleName.safeParse(role).success && (await accountAdmin.page({ role, limit: 1 })).items.length > 0;
  if (!held) throw new InputError(`invalid query: role: ${ROLE_CHOICES}`, { role: ROLE_CHOICES });
}

export function accountRoutes(router: Router, admin: AdminServices, guard: Guard): void {
  const { accountAdmin, accountOps, invitations } = admin;

  router.get('/accounts', guard('accounts:read'), async (ctx) => {
    const query = parseQuery(ctx, listQuery);
    await checkRoleFilter(accountAdmin, query.role);
    const after = query.cursor ? decodeCursor('accounts', query.cursor, z.tuple([z.string().max(300)]))[0] : undefined;
    const limit = query.limit ?? DEFAULT_PAGE;
    const page = await accountAdmin.page({
      limit,
      ...(query.q ? { q: query.q } : {}),
      ...(query.status ? { status: query.status } : {}),
      ...(query.role ? { role: query.role } : {}),
      ...(after !== undefined ? { after } : {}),
    });
    ctx.body = { items: page.items, nextCursor: page.more && page.last !== undefined ? encodeCursor('accounts', [page.last]) : null };
  });

  router.post('/accounts', guard('accounts:write'), async (ctx) => {
    const body = parseBody(ctx, createBody, 'account', { refuseEmpty: true });
    const created = await accountOps.create(body, call(ctx));
    ctx.status = 201;
    ctx.set('Location', `/admin/api/accounts/${created.account.accountId}`);
    ctx.body = created;
  });

  router.get('/accounts/:accountId', guard('accounts:read'), async (ctx) => {
    const accountId = idParam(ctx.params.accountId, 'account');
    const account = await accountAdmin.get(accountId);
    const pending = account.hasPassword ? null : await invitations.pending(accountId);
    ctx.body = { ...account, pendingInvitation: pending ? { expiresAt: pending.expiresAt.toISOString() } : null };
  });

  router.patch('/accounts/:accountId', guard('accounts:write'), async (ctx) => {
    const accountId = idParam(ctx.params.accountId, 'account');
    const patch = parseBody(ctx, accountPatch, 'account');
    const { account } = await accountOps.update(accountId, patch, call(ctx));
    ctx.body = account;
  });

  for (const action of ['disable', 'enable', 'unlock'] as const satisfies readonly StatusAction[]) {
    router.post(`/accounts/:accountId/${action}`, guard('accounts:support'), noFields, async (ctx) => {
      ctx.body = await accountOps.setStatus(idParam(ctx.params.accountId, 'account'), action, call(ctx));
    });
  }

  router.post('/accounts/:accountId/reset-second-factor', guard('accounts:support'), noFields, async (ctx) => {
    ctx.body = await accountOps.resetSecondFactor(idParam(ctx.params.accountId, 'account'), call(ctx));
  });

  router.post('/accounts/:accountId/password-reset', guard('accounts:support'), noFields, async (ctx) => {
    ctx.body = await accountOps.requestPasswordReset(idParam(ctx.params.accountId, 'account'), call(ctx));
    ctx.status = 202;
  });

  router.get('/accounts/:accountId/trusted-devices', guard('accounts:read'), async (ctx) => {
    ctx.body = { items: await accountOps.listTrustedDevices(idParam(ctx.params.accountId, 'account')) };
  });

  router.delete('/accounts/:accountId/trusted-devices/:deviceId', guard('accounts:support'), noFields, async (ctx) => {
    await accountOps.revokeTrustedDevice(idParam(ctx.params.accountId, 'account'), idParam(ctx.params.deviceId, 'trusted device'), call(ctx));
    ctx.body = { revoked: 1 };
  });

  router.delete('/accounts/:accountId/trusted-devices', guard('accounts:support'), noFields, async (ctx) => {
    ctx.body = await accountOps.revokeAllTrustedDevices(idParam(ctx.params.accountId, 'account'), call(ctx));
  });

  router.post('/accounts/:accountId/revoke-sessions', guard('accounts:write'), noFields, async (ctx) => {
    ctx.body = { revoked: await accountOps.revokeSessions(idParam(ctx.params.accountId, 'account'), call(ctx)) };
  });

  router.post('/accounts/:accountId/invitation', guard('accounts:write'), noFields, async (ctx) => {
    ctx.body = { invitation: await accountOps.resendInvitation(idParam(ctx.params.accountId, 'account'), call(ctx)) };
  });
}
