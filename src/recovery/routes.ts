/**
 * Routes for "Forgot User ID or password?" (/recover…) and account activation (/activate/:token). They
 * parse and check requests (CSRF, field shapes, rate limits) and render; recovery.ts decides.
 *
 * Every answer before the person has proven who they are is the same whether or not an account
 * matched: the same redirect, the same pages, the same status.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { FormCsrf } from '../http/form-csrf.js';
import type { RateLimits } from '../http/rate-limit.js';
import { deviceLabel } from '../http/user-agent.js';
import { afterResponse } from '../http/after-response.js';
import type { AppReturns, RecoveryOrigin } from './app-return.js';
import { RECOVERY_FLOW_MINUTES, type AfterAnswer, type Recovery, type RequestFacts } from './recovery.js';

const FLOW_COOKIE = 'gh_recovery';
/** The app sign-in a recovery started from (interaction id and client id), to lead back there at the end. */
const ORIGIN_COOKIE = 'gh_recovery_from';

export interface RecoveryRouteOptions {
  recovery: Recovery;
  csrf: FormCsrf;
  rateLimits: RateLimits;
  secureCookies: boolean;
  passwordRules: { minLength: number; maxLength: number };
  /** Leads a recovery started from an app's sign-in page back to it; without it the done page links to /account. */
  appReturns?: AppReturns;
}

const text = (max: number) => z.string().max(max).default('');

function form(ctx: Context): Record<string, unknown> {
  const body = ctx.request.body as unknown;
  return body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
}

export function recoveryRoutes(options: RecoveryRouteOptions): Router {
  const { recovery, csrf, rateLimits } = options;
  const router = new Router();

  // Mail for an existing account is prepared and sent only after the answer is out, so its time never differs.
  const afterAnswer = (ctx: Context): AfterAnswer => afterResponse(ctx.res);

  const facts = (ctx: Context): RequestFacts => ({
    ip: ctx.ip,
    userAgent: ctx.get('user-agent').slice(0, 256),
    ...(typeof ctx.state.requestId === 'string' ? { requestId: ctx.state.requestId } : {}),
  });

  /** Parses the posted form (after its CSRF token): a malformed one is a 400 page, never a 500. */
  const fields = <T extends z.ZodRawShape>(ctx: Context, shape: T): z.infer<z.ZodObject<T>> => {
    if (!csrf.verify(ctx, form(ctx).csrf)) ctx.throw(403, 'This form has expired or was not sent from this site. Go back, reload the page and try again.');
    const parsed = z.object(shape).safeParse(form(ctx));
    if (!parsed.success) ctx.throw(400, 'The form was not filled in correctly. Go back and try again.');
    return parsed.data!;
  };

  const render = async (ctx: Context, template: string, locals: Record<string, unknown>, status = 200) => {
    ctx.status = status;
    await ctx.render(template, { error: null, notice: null, csrf: csrf.issue(ctx), ...locals });
    ctx.status = status;
  };

  const passwordPage = (locals: Record<string, unknown>) => ({
    title: 'Choose a new password',
    heading: 'Choose a new password',
    lead: 'This replaces your old password everywhere.',
    action: '/recover/password',
    submit: 'Change my password',
    askUserId: false,
    userId: '',
    problems: [],
    minLength: options.passwordRules.minLength,
    maxLength: options.passwordRules.maxLength,
    ...locals,
  });

  const setFlowCookie = (ctx: Context, flowId: string) =>
    ctx.cookies.set(FLOW_COOKIE, flowId, { httpOnly: true, secure: options.secureCookies, sameSite: 'strict', path: '/recover', signed: true, overwrite: true, maxAge: RECOVERY_FLOW_MINUTES * 60 * 1000 });
  const startPage = (ctx: Context, error: string | null = null, status = 200) => render(ctx, 'recover', { title: 'Forgot your password?', login: '', error }, status);
  const expired = (ctx: Context) => startPage(ctx, `This recovery has expired (it lasts ${RECOVERY_FLOW_MINUTES} minutes). Start again.`, 400);
  const currentFlow = (ctx: Context) => recovery.flow(ctx.cookies.get(FLOW_COOKIE, { signed: true }));
  const verifyPage = (ctx: Context, channel: string, extra: Record<string, unknown> = {}, status = 200) => render(ctx, 'recover-verify', { title: 'Confirm it’s you', channel, ...extra }, status);

  // ── forgot password ──────────────────────────────────────────────────────

  // ── where the recovery came from ─────────────────────────────────────────

  const originCookie = { httpOnly: true, secure: options.secureCookies, sameSite: 'lax' as const, path: '/recover', signed: true, overwrite: true };
  const readOrigin = (ctx: Context): RecoveryOrigin | null => {
    const raw = ctx.cookies.get(ORIGIN_COOKIE, { signed: true });
    if (!raw) return null;
    const [uid, clientId] = raw.split(' ');
    return uid && clientId ? { uid, clientId } : null;
  };

  /** The done page's way back: to the app's sign-in when the recovery came from one, else the account area. */
  const wayBack = async (ctx: Context) => {
    const origin = readOrigin(ctx);
    ctx.cookies.set(ORIGIN_COOKIE, '', { ...originCookie, signed: false, expires: new Date(0) });
    const back = origin && options.appReturns ? await options.appReturns.link(origin) : null;
    if (!back) return { paragraph: 'Go back to the application you were using and sign in again, or open your account here.', link: { href: '/account', text: 'Sign in to your account' } };
    return back.continues
      ? { paragraph: `Continue signing in to ${back.clientName} with your new password.`, link: { href: back.href, text: `Continue to ${back.clientName}` } }
      : { paragraph: `Go back to ${back.clientName} and sign in again with your new password.`, link: { href: back.href, text: `Go back to ${back.clientName}` } };
  };

  router.get('/recover', async (ctx) => {
    // Linked from an app's sign-in page with its interaction id: remembered only if that sign-in is live.
    const origin = ctx.query.from !== undefined && options.appReturns ? await options.appReturns.origin(ctx.query.from) : null;
    if (origin) ctx.cookies.set(ORIGIN_COOKIE, `${origin.uid} ${origin.clientId}`, { ...originCookie, maxAge: 60 * 60 * 1000 });
    return startPage(ctx);
  });

  router.post('/recover', async (ctx) => {
    const { login, channel } = fields(ctx, { login: text(254), channel: text(8) });
    const identifier = login.trim();
    if (!identifier || (channel !== 'email' && channel !== 'sms')) return startPage(ctx, 'Enter your User ID or email and choose where to send the passcode.', 400);
    if (!(await rateLimits.guard(ctx, 'recovery', identifier))) return;
    setFlowCookie(ctx, await recovery.start(identifier, channel, facts(ctx), afterAnswer(ctx)));
    ctx.status = 303;
    ctx.redirect('/recover/verify');
  });

  router.get('/recover/verify', async (ctx) => {
    const flow = await currentFlow(ctx);
    if (!flow) return expired(ctx);
    if (flow.step === 'new-password') return ctx.redirect('/recover/password');
    return verifyPage(ctx, flow.channel);
  });

  router.post('/recover/verify', async (ctx) => {
    const { securityCode, passcode } = fields(ctx, { securityCode: text(32), passcode: text(32) });
    const flow = await currentFlow(ctx);
    if (!flow) return expired(ctx);
    // Counted per identifier as typed, known or not: a count per account would tell which identifiers exist.
    if (!(await rateLimits.guard(ctx, 'recovery', flow.identifierKey))) return;
    const result = await recovery.verify(flow._id, securityCode, passcode.replace(/\s/g, ''), facts(ctx));
    if (result.ok) {
      setFlowCookie(ctx, result.flowId);
      ctx.status = 303;
      return ctx.redirect('/recover/password');
    }
    if (result.reason === 'expired') return expired(ctx);
    if (result.reason === 'too_many') return startPage(ctx, 'Too many wrong answers. For your security, start again later.', 429);
    return verifyPage(ctx, flow.channel, { error: 'The security code or the passcode is not right. Check both and try again.' }, 400);
  });

  router.post('/recover/resend', async (ctx) => {
    fields(ctx, {});
    const flow = await currentFlow(ctx);
    if (!flow) return expired(ctx);
    if (!(await rateLimits.guard(ctx, 'code-send', flow.identifierKey))) return;
    await recovery.resend(flow, afterAnswer(ctx));
    return verifyPage(ctx, flow.channel, { notice: 'If an account matches, we sent a new passcode. Codes sent moments apart may take a little while.' });
  });

  router.get('/recover/password', async (ctx) => {
    const flow = await currentFlow(ctx);
    if (!flow || flow.step !== 'new-password') return expired(ctx);
    return render(ctx, 'recover-password', passwordPage({}));
  });

  router.post('/recover/password', async (ctx) => {
    const { password, confirm } = fields(ctx, { password: text(options.passwordRules.maxLength + 1), confirm: text(options.passwordRules.maxLength + 1) });
    const flow = await currentFlow(ctx);
    if (!flow || flow.step !== 'new-password') return expired(ctx);
    if (password !== confirm) return render(ctx, 'recover-password', passwordPage({ error: 'The two passwords are not the same. Type them again.' }), 400);
    const result = await recovery.setPassword(flow._id, password, { ...facts(ctx), device: deviceLabel(ctx.get('user-agent')) });
    if (!result.ok) {
      if (result.reason === 'expired') return expired(ctx);
      return render(ctx, 'recover-password', passwordPage({ problems: result.problems }), 400);
    }
    ctx.cookies.set(FLOW_COOKIE, '', { path: '/recover', expires: new Date(0), secure: options.secureCookies, httpOnly: true, overwrite: true });
    const back = await wayBack(ctx);
    return render(ctx, 'recover-done', {
      title: 'Password changed',
      heading: 'Your password was changed',
      paragraphs: [
        `You can now sign in as ${result.userId} with your new password.`,
        'For your security we signed you out everywhere, ended the access of the applications you had signed in to, and forgot your remembered devices. We also emailed you about this change.',
        back.paragraph,
      ],
      link: back.link,
    });
  });

  // ── forgot User ID ───────────────────────────────────────────────────────

  const userIdPage = (ctx: Context, locals: Record<string, unknown> = {}, status = 200) => render(ctx, 'recover-user-id', { title: 'Forgot your User ID?', email: '', ...locals }, status);

  router.get('/recover/user-id', async (ctx) => userIdPage(ctx));

  router.post('/recover/user-id', async (ctx) => {
    const { email } = fields(ctx, { email: text(254) });
    const address = email.trim();
    if (!/^[^\s@]+@[^\s@]+$/.test(address)) return userIdPage(ctx, { email: address, error: 'Enter the email address on your account, like name@example.com.' }, 400);
    if (!(await rateLimits.guard(ctx, 'recovery', address))) return;
    await recovery.forgotUserId(address, facts(ctx), afterAnswer(ctx));
    return render(ctx, 'recover-done', {
      title: 'Check your email',
      heading: 'Check your email',
      paragraphs: [
        'If an account uses that email address, we sent its User ID there. It should arrive within a few minutes.',
        'Nothing arrived? Check your spam folder, and that you typed the address on your account. Your administrator can help too.',
      ],
      link: { href: '/recover', text: 'Reset your password' },
    });
  });

  // ── activation of accounts created by an administrator ───────────────────

  const LINK_PROBLEM = 'This activation link has expired or was already used. Ask your administrator to send a new invitation.';
  const activationPage = (ctx: Context, token: string, name: string, locals: Record<string, unknown> = {}, status = 200) =>
    render(
      ctx,
      'recover-password',
      passwordPage({
        title: 'Activate your account',
        heading: `Welcome, ${name}`,
        lead: 'Confirm your User ID and choose a password to activate your account.',
        action: `/activate/${token}`,
        submit: 'Activate my account',
        askUserId: true,
        ...locals,
      }),
      status,
    );

  router.get('/activate/:token', async (ctx) => {
    const token = ctx.params.token!;
    const account = await recovery.invitationAccount(token);
    if (!account) return ctx.throw(400, LINK_PROBLEM);
    return activationPage(ctx, token, account.name);
  });

  router.post('/activate/:token', async (ctx) => {
    const token = ctx.params.token!;
    const { userId, password, confirm } = fields(ctx, { userId: text(254), password: text(options.passwordRules.maxLength + 1), confirm: text(options.passwordRules.maxLength + 1) });
    if (!(await rateLimits.guard(ctx, 'recovery', token))) return;
    const account = await recovery.invitationAccount(token);
    if (!account) return ctx.throw(400, LINK_PROBLEM);
    if (password !== confirm) return activationPage(ctx, token, account.name, { userId, error: 'The two passwords are not the same. Type them again.' }, 400);
    const result = await recovery.activate(token, userId, password, facts(ctx));
    if (!result.ok) {
      if (result.reason === 'link') return ctx.throw(400, LINK_PROBLEM);
      if (result.reason === 'user_id') return activationPage(ctx, token, account.name, { userId, error: 'That is not the User ID of this invitation. Check the invitation mail and try again.' }, 400);
      return activationPage(ctx, token, account.name, { userId, problems: result.problems }, 400);
    }
    return render(ctx, 'recover-done', {
      title: 'Account activated',
      heading: 'Your account is ready',
      paragraphs: [
        `Sign in as ${result.userId} with your new password.`,
        'If your organisation requires two-step verification, you will set it up when you first sign in: have your phone ready.',
      ],
      link: { href: '/account', text: 'Sign in now' },
    });
  });

  return router;
}
