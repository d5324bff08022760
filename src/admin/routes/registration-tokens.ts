/**
 * `/admin/api/registration-tokens…`: initial access tokens for dynamic client registration, with an
 * optional lifetime and use count. The token value is in the creation response only.
 */
import type { Router } from '@koa/router';
import { z } from 'zod';
import { MAX_REGISTRATION_TOKEN_SECONDS } from '../../oidc/registration.js';
import type { AdminServices } from '../services.js';
import { call, type Guard } from '../guard.js';
import { idParam, noFields, parseBody } from '../http-input.js';

const createBody = z
  .object({
    expiresInSeconds: z.number().int('must be a whole number of seconds').min(60, 'must be at least 60 seconds').max(MAX_REGISTRATION_TOKEN_SECONDS, 'must be at most a year').optional(),
    maxUses: z.number().int('must be a whole number').min(1, 'must be at least 1').max(100_000).optional(),
    description: z.string().trim().min(1).max(200).optional(),
  })
  .strict();

export function registrationTokenRoutes(router: Router, admin: AdminServices, guard: Guard): void {
  router.get('/registration-tokens', guard('registration-tokens:read'), async (ctx) => {
    ctx.body = { items: await admin.registrationTokens.list() };
  });

  router.post('/registration-tokens', guard('registration-tokens:write'), async (ctx) => {
    const body = parseBody(ctx, createBody, 'registration token', { refuseEmpty: true });
    const minted = await admin.clientOps.mintRegistrationToken(body, call(ctx));
    ctx.status = 201;
    ctx.body = minted;
  });

  router.delete('/registration-tokens/:tokenId', guard('registration-tokens:write'), noFields, async (ctx) => {
    ctx.body = await admin.clientOps.revokeRegistrationToken(idParam(ctx.params.tokenId, 'registration token'), call(ctx));
  });
}
