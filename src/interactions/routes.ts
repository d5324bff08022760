/**
 * Interaction routes: parse and check the request (CSRF, field shapes), call the flow, render or
 * redirect. No decisions about the sign-in are made here.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { CsrfTokens } from './csrf.js';
import { LIMITS, type Outcome, type SignInFlow } from './flow.js';

const passwordForm = z.object({
  login: z.string().max(LIMITS.login),
  password: z.string().max(LIMITS.password),
});

async function respond(ctx: Context, outcome: Outcome): Promise<void> {
  if ('redirect' in outcome) {
    ctx.status = 303;
    ctx.redirect(outcome.redirect);
    return;
  }
  ctx.status = outcome.view.status ?? 200;
  await ctx.render(outcome.view.template, outcome.view.locals);
}

function formBody(ctx: Context): Record<string, unknown> {
  const body = ctx.request.body as unknown;
  return body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
}

export function interactionRoutes(flow: SignInFlow, csrf: CsrfTokens): Router {
  const router = new Router({ prefix: '/interaction/:uid' });

  // Every POST must carry the CSRF token for this interaction.
  const checkCsrf = async (ctx: Context, next: () => Promise<unknown>) => {
    if (!csrf.verify(ctx.params.uid!, formBody(ctx).csrf)) {
      ctx.throw(403, 'This form has expired or was not sent from this site. Go back, reload the page and try again.');
    }
    await next();
  };

  router.get('/', async (ctx) => respond(ctx, await flow.show(ctx)));

  router.post('/login', checkCsrf, async (ctx) => {
    const body = formBody(ctx);
    const parsed = passwordForm.safeParse({ login: body.login ?? '', password: body.password ?? '' });
    if (!parsed.success) return ctx.throw(400, 'The sign-in form was not filled in correctly. Go back and try again.');
    await respond(ctx, await flow.submitPassword(ctx, parsed.data));
  });

  router.post('/confirm', checkCsrf, async (ctx) => respond(ctx, await flow.submitConsent(ctx)));
  router.post('/abort', checkCsrf, async (ctx) => respond(ctx, await flow.deny(ctx)));

  return router;
}
