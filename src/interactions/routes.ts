/**
 * Interaction routes: parse and check the request (CSRF, field shapes), call the flow, render or
 * redirect. No decisions about the sign-in are made here.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { RateLimits } from '../http/rate-limit.js';
import type { CsrfTokens } from './csrf.js';
import { LIMITS, type Current, type Outcome, type SignInFlow } from './flow.js';
import type { JsonOutcome } from './steps/passkey.js';

/** oidc-provider's interaction ids (nanoid: URL-safe letters, digits, "_" and "-"); nothing else is redirected to. */
const INTERACTION_UID = /^[A-Za-z0-9_-]{1,64}$/;
const PREFIX = '/interaction/:uid';

const passwordForm = z.object({ login: z.string().max(LIMITS.login), password: z.string().max(LIMITS.password) });
const short = (max: number) => z.string().max(max).default('');
// Built once: a zod schema is costly to build, and every POST parses one.
const forms = {
  code: z.object({ code: short(LIMITS.code), remember: short(8) }),
  method: z.object({ method: short(32) }),
  action: z.object({ action: short(16) }),
  securityCode: z.object({ code: short(LIMITS.code), confirm: short(LIMITS.code) }),
  phone: z.object({ action: short(16), phone: short(LIMITS.phone) }),
  actionCode: z.object({ action: short(16), code: short(LIMITS.code) }),
};

async function respond(ctx: Context, outcome: Outcome): Promise<void> {
  if ('redirect' in outcome) {
    ctx.status = 303;
    ctx.redirect(outcome.redirect);
    return;
  }
  ctx.status = outcome.view.status ?? 200;
  for (const [name, value] of Object.entries(outcome.view.headers ?? {})) ctx.set(name, value);
  await ctx.render(outcome.view.template, outcome.view.locals);
}

function formBody(ctx: Context): Record<string, unknown> {
  const body = ctx.request.body as unknown;
  return body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
}

/** Parses the form with `schema`; a malformed form is a 400 page, never a 500. */
function fields<T extends z.ZodRawShape>(ctx: Context, schema: z.ZodObject<T>): z.infer<z.ZodObject<T>> {
  const parsed = schema.safeParse(formBody(ctx));
  if (!parsed.success) ctx.throw(400, 'The form was not filled in correctly. Go back and try again.');
  return parsed.data!;
}

export function interactionRoutes(flow: SignInFlow, csrf: CsrfTokens, rateLimits: RateLimits): Router {
  const router = new Router({ prefix: PREFIX });

  // Every POST must carry the CSRF token for this interaction.
  const checkCsrf = async (ctx: Context, next: () => Promise<unknown>) => {
    if (!csrf.verify(ctx.params.uid!, formBody(ctx).csrf)) {
      ctx.throw(403, 'This form has expired or was not sent from this site. Go back, reload the page and try again.');
    }
    await next();
  };

  /** A step after the password: load the interaction's progress, then run the handler. */
  const step = (handler: (current: Current, ctx: Context) => Promise<Outcome>) => async (ctx: Context) => {
    await respond(ctx, await handler(await flow.current(ctx), ctx));
  };

  router.get('/', async (ctx) => respond(ctx, await flow.show(ctx)));

  // Passkeys (JSON from views/assets/passkey.js; the CSRF token travels in the JSON body).
  const json = (ctx: Context, outcome: JsonOutcome) => {
    ctx.status = outcome.status;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = outcome.body;
  };
  const passkeys = flow.passkeyStep;
  router.post('/passkey/options', checkCsrf, async (ctx) => json(ctx, await passkeys.options(ctx)));
  router.post('/passkey/verify', checkCsrf, async (ctx) => {
    // The sign-in bucket, per IP (the account is known only from the passkey): a 429 JSON with Retry-After otherwise.
    if (!(await rateLimits.guard(ctx, 'signin'))) return;
    json(ctx, await passkeys.verify(ctx, formBody(ctx).response));
  });
  router.post('/second-factor/passkey/options', checkCsrf, async (ctx) => json(ctx, await passkeys.secondFactorOptions(await flow.current(ctx))));
  router.post('/enrol/passkey/options', checkCsrf, async (ctx) => json(ctx, await passkeys.enrolOptions(await flow.current(ctx))));
  router.post('/enrol/passkey/verify', checkCsrf, async (ctx) => {
    const body = formBody(ctx);
    json(ctx, await passkeys.enrolVerify(await flow.current(ctx), body.response, body.name));
  });
  router.post('/second-factor/passkey/verify', checkCsrf, async (ctx) => {
    const body = formBody(ctx);
    json(ctx, await passkeys.secondFactorVerify(await flow.current(ctx), body.response, body.remember === true || body.remember === '1'));
  });

  router.post('/login', checkCsrf, async (ctx) => {
    const body = formBody(ctx);
    const parsed = passwordForm.safeParse({ login: body.login ?? '', password: body.password ?? '' });
    if (!parsed.success) return ctx.throw(400, 'The sign-in form was not filled in correctly. Go back and try again.');
    // Per IP and per identifier, before any password is checked (a 429 page with Retry-After otherwise).
    if (!(await rateLimits.guard(ctx, 'signin', parsed.data.login))) return;
    await respond(ctx, await flow.submitPassword(ctx, parsed.data));
  });

  const sf = flow.secondFactorStep;
  const enrol = flow.enrolmentStep;
  router.post('/second-factor', checkCsrf, step((c, ctx) => {
    const form = fields(ctx, forms.code);
    return sf.verify(c, form.code, form.remember === '1');
  }));
  /** Asking for a code (switching to an email/SMS method, or "send a new code") is limited per IP and account. */
  const codeSend = (handler: (current: Current, ctx: Context) => Promise<Outcome>) => async (ctx: Context) => {
    const current = await flow.current(ctx);
    if (!(await rateLimits.guard(ctx, 'code-send', current.account.accountId, { actor: { kind: 'account', id: current.account.accountId } }))) return;
    await respond(ctx, await handler(current, ctx));
  };
  router.post('/second-factor/method', checkCsrf, codeSend((c, ctx) => sf.switchMethod(c, fields(ctx, forms.method).method)));
  router.post('/second-factor/resend', checkCsrf, codeSend((c) => sf.resend(c)));

  router.post('/enrol/profile', checkCsrf, step((c, ctx) => enrol.profile(c, fields(ctx, forms.action).action)));
  router.post('/enrol/security-code', checkCsrf, step((c, ctx) => {
    const form = fields(ctx, forms.securityCode);
    return enrol.securityCode(c, form.code, form.confirm);
  }));
  router.post('/enrol/phone', checkCsrf, step((c, ctx) => {
    const form = fields(ctx, forms.phone);
    return enrol.phone(c, form.action, form.phone);
  }));
  router.post('/enrol/phone-verify', checkCsrf, step((c, ctx) => {
    const form = fields(ctx, forms.actionCode);
    return enrol.phoneVerify(c, form.action, form.code);
  }));
  router.post('/enrol/totp', checkCsrf, step((c, ctx) => {
    const form = fields(ctx, forms.actionCode);
    return enrol.totp(c, form.action, form.code);
  }));
  router.post('/enrol/method', checkCsrf, step((c, ctx) => enrol.method(c, fields(ctx, forms.method).method)));
  router.post('/enrol/recovery-codes', checkCsrf, step((c) => enrol.recoveryCodesSaved(c)));

  router.post('/confirm', checkCsrf, async (ctx) => respond(ctx, await flow.submitConsent(ctx)));
  router.post('/abort', checkCsrf, async (ctx) => respond(ctx, await flow.deny(ctx)));

  // After a POST the address bar shows the form's URL (a wrong password, an enrolment step); reloading it
  // sends a GET. That goes back to the interaction's page, which shows whatever step the flow is at, instead
  // of a bare 405. Only the validated uid goes into the Location, so this cannot redirect anywhere else.
  const backToStep = async (ctx: Context) => {
    const uid = ctx.params.uid!;
    if (!INTERACTION_UID.test(uid)) return ctx.throw(404, 'There is nothing at this address.');
    ctx.status = 303;
    ctx.redirect(`/interaction/${uid}`);
  };
  const formPaths = new Set(router.stack.flatMap((layer) => (layer.methods.includes('POST') && typeof layer.path === 'string' ? [layer.path.slice(PREFIX.length)] : [])));
  for (const path of formPaths) router.get(path, backToStep);

  return router;
}
