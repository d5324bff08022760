/**
 * The self-service account area, /account: a signed-in person's passkeys (list, add with a name,
 * rename, remove), remembered ("trusted") devices (list, revoke), password, and the apps they allowed
 * to use their account (list, remove access: app-access.ts; first-party apps are not listed).
 *
 * Who is signed in comes from oidc-provider's own session (its signed session cookie, read through
 * provider.Session.get). The area needs a multi-factor session (acr urn:gatehouse:acr:mfa); any
 * change also needs a recent sign-in (FRESH_SECONDS). Otherwise the person is sent through the normal
 * sign-in as the first-party client `gatehouse-account` (account-client.ts), asking for MFA, and comes
 * back here. Forms carry a CSRF token bound to the session, and cross-site posts are refused.
 *
 * Every change is audited (mfa.passkey_added / _renamed / _removed, trusted_device.revoked,
 * account.password_changed with the other sessions it ended, consent.revoked per grant with by: 'owner')
 * and an added or removed passkey sends the security-alert mail. Removing the last second factor is
 * refused where the account's market policy requires two-step verification.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { bodyParser } from '@koa/bodyparser';
import { readBody } from '../http/read-body.js';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import type { AccountDocument } from '../accounts/account.model.js';
import type { Services } from '../app.js';
import { subjectFromAccount } from '../factors/index.js';
import { deviceLabel } from '../http/user-agent.js';
import { CsrfTokens } from '../interactions/csrf.js';
import { formatUtc } from '../notify/security-alerts.js';
import { ACR } from '../oidc/scopes.js';
import { ACCOUNT_CLIENT_ID, accountClientUrls } from './account-client.js';
import { AppAccess } from './app-access.js';
import { endOtherSessions } from './other-sessions.js';

/** A change (adding, renaming or removing a passkey, revoking a device) needs a sign-in this recent. */
export const FRESH_SECONDS = 15 * 60;

const TX_COOKIE = 'gh_account_tx';

/** Fixed notices for ?done=…: the page never echoes what the address says. */
const NOTICES: Record<string, string> = {
  added: 'Your passkey was added. You can now use it to sign in.',
  renamed: 'The passkey was renamed.',
  removed: 'The passkey was removed. It can no longer be used to sign in.',
  revoked: 'That device is no longer remembered. It will be asked for a second step at its next sign-in.',
  password: 'Your password was changed. You were signed out on every other browser and device (this one stays signed in), and apps signed in there, or keeping access after sign-out, will ask you to sign in again (your permission for them stays). Remembered devices were forgotten: each will ask for a second step at its next sign-in.',
  app_removed: 'The app no longer has access to your account: its sign-in and the tokens Gatehouse keeps for it stop working now, and it will ask for your permission again. Signed access tokens it already holds for other services end when they expire.',
};

const ERRORS: Record<string, string> = {
  last_factor: 'You cannot remove your only way to complete two-step verification. Add another passkey or method first.',
  invalid_name: 'Enter a name for the passkey (up to 64 characters).',
  not_found: 'That passkey, device or app is not on your account any more.',
  no_webauthn: 'Passkeys cannot be used on this site right now.',
};

interface SignedIn {
  account: AccountDocument;
  /** The provider session's uid: stable for the browser's session; binds CSRF tokens and challenges. */
  sessionUid: string;
  /** The provider session's id (its cookie's value): the session kept when the others are ended. */
  sessionId: string;
  loginTs: number | null;
  fresh: boolean;
}

const idParam = z.string().min(1).max(1400).regex(/^[A-Za-z0-9_-]+$/);
/** Client ids: the client registry's (3-128 URL-safe characters) and oidc-provider's generated ones. */
const clientIdParam = z.string().regex(/^[A-Za-z0-9._~-]{1,128}$/);

export function accountRoutes(services: Services): Router {
  const { config, provider, audit, clock } = services;
  const webauthn = services.factors.webauthn;
  const trusted = services.factors.trustedDevice;
  const apps = new AppAccess(provider, services.connection);
  const router = new Router({ prefix: '/account' });
  const origin = new URL(config.issuer).origin;
  const csrf = new CsrfTokens(createHmac('sha256', services.keys.cookieKeys[0]!).update('gatehouse:account-csrf').digest('base64url'));
  const urls = accountClientUrls(config.issuer);
  const txCookie = { httpOnly: true, sameSite: 'lax' as const, signed: true, secure: config.issuer.startsWith('https:'), path: '/account' };
  const parse = bodyParser({ enableTypes: ['form', 'json'], formLimit: '16kb', jsonLimit: '64kb', encoding: 'utf-8' });

  async function signedIn(ctx: Context): Promise<SignedIn | null> {
    const session = await provider.Session.get(ctx as never);
    if (!session.accountId || session.acr !== ACR.multiFactor) return null;
    const account = await services.accounts.findByAccountId(session.accountId);
    if (!account || account.status !== 'active') return null;
    const loginTs = typeof session.loginTs === 'number' ? session.loginTs : null;
    const now = Math.floor(clock.now().getTime() / 1000);
    return { account, sessionUid: session.uid, sessionId: session.jti, loginTs, fresh: loginTs !== null && now - loginTs <= FRESH_SECONDS };
  }

  function body(ctx: Context): Record<string, unknown> {
    const value = ctx.request.body as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  }

  const isJson = (ctx: Context) => ctx.is('application/json') === 'application/json';

  /** POSTs: same origin, a session that may change things, and its CSRF token. */
  const guardChange = async (ctx: Context, next: Next) => {
    const sentFrom = ctx.get('origin');
    if (sentFrom && sentFrom !== 'null' && sentFrom !== origin) ctx.throw(403, 'This form was sent from another site and has been refused.');
    await readBody(ctx, parse);
    const who = await signedIn(ctx);
    if (!who || !csrf.verify(`account:${who.sessionUid}`, body(ctx).csrf)) {
      if (isJson(ctx)) {
        ctx.status = 403;
        ctx.body = { ok: false, error: 'Your session has ended or this page has expired. Reload the page and try again.' };
        return;
      }
      ctx.throw(403, 'This form has expired or was not sent from this site. Go back, reload the page and try again.');
    }
    if (!who.fresh) {
      // Changes need a recent sign-in: sign in again, then come back.
      if (isJson(ctx)) {
        ctx.status = 401;
        ctx.body = { ok: false, error: 'For your security, sign in again before changing your passkeys.', redirect: '/account/login?fresh=1' };
        return;
      }
      ctx.status = 303;
      ctx.redirect('/account/login?fresh=1');
      return;
    }
    ctx.state.signedIn = who;
    await next();
  };

  const who = (ctx: Context) => ctx.state.signedIn as SignedIn;

  const facts = (ctx: Context) => ({ ip: ctx.ip, userAgent: ctx.get('user-agent').slice(0, 256), requestId: ctx.state.requestId as string | undefined, clientId: ACCOUNT_CLIENT_ID });

  async function record(ctx: Context, account: AccountDocument, type: string, outcome: 'success' | 'failure', details: Record<string, unknown>) {
    await audit.record({
      type,
      outcome,
      actor: { kind: 'account', id: account.accountId },
      target: { kind: 'account', id: account.accountId },
      ...facts(ctx),
      details,
    });
  }

  function alert(ctx: Context, account: AccountDocument, kind: 'factor-added' | 'factor-removed') {
    services.alerts.sendInBackground(account, { kind, factor: 'webauthn' }, { at: clock.now(), ip: ctx.ip, device: deviceLabel(ctx.get('user-agent')) });
  }

  const back = (ctx: Context, query: string) => {
    ctx.status = 303;
    ctx.redirect(`/account?${query}`);
  };

  // ── pages ─────────────────────────────────────────────────────────────────

  /** The account page; `extra` carries a form's problems when a change was refused. */
  async function showAccount(ctx: Context, current: SignedIn, extra: { error?: string | null; passwordProblems?: string[] } = {}, status = 200) {
    const { account } = current;
    const [passkeys, devices, appList] = await Promise.all([webauthn.list(account.accountId), trusted.list(account.accountId), apps.list(account.accountId)]);
    const done = typeof ctx.query.done === 'string' && Object.hasOwn(NOTICES, ctx.query.done) ? NOTICES[ctx.query.done] : undefined;
    const problem = typeof ctx.query.error === 'string' && Object.hasOwn(ERRORS, ctx.query.error) ? ERRORS[ctx.query.error] : undefined;
    ctx.status = status;
    await ctx.render('account', {
      title: 'Your account',
      account: { name: account.name, userId: account.userId },
      csrf: csrf.issue(`account:${current.sessionUid}`),
      notice: done ?? null,
      error: extra.error ?? problem ?? null,
      passwordProblems: extra.passwordProblems ?? [],
      passwordRules: { minLength: config.password.minLength, maxLength: config.password.maxLength },
      fresh: current.fresh,
      passkeysAvailable: webauthn.ceremoniesAvailable,
      formatDate: formatUtc,
      passkeys: passkeys.map((p) => ({
        id: p.credentialId,
        name: p.name,
        createdAt: p.createdAt,
        lastUsedAt: p.lastUsedAt,
        kind: p.deviceType === 'multiDevice' ? 'Synced passkey' : 'On one device or security key',
        backedUp: p.backedUp,
      })),
      devices: devices.map((d) => ({ id: d.id, label: d.label, firstSeenAt: d.firstSeenAt, lastSeenAt: d.lastSeenAt, expiresAt: d.expiresAt })),
      apps: appList,
    });
    ctx.status = status;
  }

  router.get('/', async (ctx) => {
    const current = await signedIn(ctx);
    if (!current) {
      await ctx.render('account-signed-out', { title: 'Your account' });
      return;
    }
    await showAccount(ctx, current);
  });

  /** Starts the normal sign-in (MFA) as the account client; ?fresh=1 asks for a new sign-in. */
  router.get('/login', async (ctx) => {
    const state = randomBytes(24).toString('base64url');
    // PKCE is required of every client; the area reads the provider session, so the code is never redeemed.
    const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
    ctx.cookies.set(TX_COOKIE, state, { ...txCookie, maxAge: 15 * 60 * 1000 });
    const url = new URL('/auth', config.issuer);
    url.search = new URLSearchParams({
      client_id: ACCOUNT_CLIENT_ID,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: urls.redirectUri,
      acr_values: ACR.multiFactor,
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...(ctx.query.fresh === '1' ? { prompt: 'login' } : {}),
    }).toString();
    ctx.redirect(url.href);
  });

  router.get('/callback', async (ctx) => {
    const expected = ctx.cookies.get(TX_COOKIE, { signed: true });
    ctx.cookies.set(TX_COOKIE, null, txCookie);
    if (typeof ctx.query.error === 'string') {
      ctx.status = 400;
      await ctx.render('account-signed-out', { title: 'Your account', error: ctx.query.error === 'access_denied' ? 'Sign-in was cancelled.' : 'Sign-in did not complete. Try again.' });
      return;
    }
    if (!expected || ctx.query.state !== expected) {
      ctx.status = 400;
      await ctx.render('account-signed-out', { title: 'Your account', error: 'This sign-in was not started here, or took too long. Try again.' });
      return;
    }
    ctx.redirect('/account');
  });

  router.get('/logout', async (ctx) => {
    const url = new URL('/session/end', config.issuer);
    url.search = new URLSearchParams({ client_id: ACCOUNT_CLIENT_ID, post_logout_redirect_uri: urls.postLogoutRedirectUri }).toString();
    ctx.redirect(url.href);
  });

  // ── passkeys ──────────────────────────────────────────────────────────────

  router.post('/passkeys/options', guardChange, async (ctx) => {
    const { account, sessionUid } = who(ctx);
    if (!webauthn.ceremoniesAvailable) {
      ctx.status = 404;
      ctx.body = { ok: false, error: ERRORS.no_webauthn };
      return;
    }
    const options = await webauthn.registrationOptions(subjectFromAccount(account), { sessionKey: sessionUid });
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ok: true, options };
  });

  router.post('/passkeys/verify', guardChange, async (ctx) => {
    const { account, sessionUid } = who(ctx);
    if (!webauthn.ceremoniesAvailable) {
      ctx.status = 404;
      ctx.body = { ok: false, error: ERRORS.no_webauthn };
      return;
    }
    const input = body(ctx);
    const outcome = await webauthn.verifyRegistration(subjectFromAccount(account), input.response, { sessionKey: sessionUid, name: typeof input.name === 'string' ? input.name : '' });
    if (!outcome.ok) {
      await record(ctx, account, 'mfa.passkey_added', 'failure', { reason: outcome.reason });
      ctx.status = outcome.reason === 'duplicate' ? 409 : 400;
      ctx.body = {
        ok: false,
        error:
          outcome.reason === 'duplicate'
            ? 'This passkey or security key is already registered.'
            : outcome.reason === 'no_challenge'
              ? 'This request has expired. Try again.'
              : 'We could not add this passkey. Try again.',
      };
      return;
    }
    await record(ctx, account, 'mfa.passkey_added', 'success', { credentialId: outcome.credential.credentialId, name: outcome.credential.name, deviceType: outcome.credential.deviceType });
    alert(ctx, account, 'factor-added');
    ctx.body = { ok: true, redirect: '/account?done=added' };
  });

  router.post('/passkeys/:id/rename', guardChange, async (ctx) => {
    const { account } = who(ctx);
    const id = idParam.safeParse(ctx.params.id);
    if (!id.success) return back(ctx, 'error=not_found');
    const outcome = await webauthn.rename(account.accountId, id.data, body(ctx).name);
    if (!outcome.ok) return back(ctx, `error=${outcome.reason}`);
    await record(ctx, account, 'mfa.passkey_renamed', 'success', { credentialId: id.data });
    return back(ctx, 'done=renamed');
  });

  router.post('/passkeys/:id/remove', guardChange, async (ctx) => {
    const { account } = who(ctx);
    const id = idParam.safeParse(ctx.params.id);
    if (!id.success) return back(ctx, 'error=not_found');
    const passkeys = await webauthn.list(account.accountId);
    if (!passkeys.some((p) => p.credentialId === id.data)) return back(ctx, 'error=not_found');
    if (passkeys.length === 1 && !(await mayLoseLastPasskey(account))) {
      await record(ctx, account, 'mfa.passkey_removed', 'failure', { credentialId: id.data, reason: 'last_factor' });
      return back(ctx, 'error=last_factor');
    }
    if (!(await webauthn.remove(account.accountId, id.data))) return back(ctx, 'error=not_found');
    // The default method must not name a kind of factor the account no longer has.
    if (passkeys.length === 1 && account.mfa?.defaultMethod === 'webauthn') await services.accounts.updateMfa(account.accountId, { set: { defaultMethod: null } });
    await record(ctx, account, 'mfa.passkey_removed', 'success', { credentialId: id.data });
    alert(ctx, account, 'factor-removed');
    return back(ctx, 'done=removed');
  });

  /**
   * Where policy requires two-step verification, or the account has enrolled (it is then always challenged),
   * another real method (not recovery codes) must remain.
   */
  async function mayLoseLastPasskey(account: AccountDocument): Promise<boolean> {
    if (services.policies.policyFor(account.market).mfa !== 'required' && !account.mfa?.enrolledAt) return true;
    const others = (await services.secondFactors.availableMethods(account)).filter((m) => m !== 'webauthn' && m !== 'recovery-codes');
    return others.length > 0;
  }

  // ── password ──────────────────────────────────────────────────────────────

  /**
   * Changing the password needs the current one (a session left open must not be enough), counted against
   * the account's lockout like any password check. Afterwards the account's other sessions are ended (with
   * their apps' grants and tokens, not the consent: other-sessions.ts), remembered devices are forgotten and
   * the owner gets a mail; this session stays signed in.
   */
  router.post('/password', guardChange, async (ctx) => {
    const current = who(ctx);
    const { account } = current;
    const form = body(ctx);
    const text = (value: unknown) => (typeof value === 'string' ? value.slice(0, config.password.maxLength + 1) : '');
    const [currentPassword, password, confirm] = [text(form.currentPassword), text(form.password), text(form.confirm)];
    if (!currentPassword || !password) return showAccount(ctx, current, { error: 'Enter your current password and a new one.' }, 400);
    const policy = services.policies.policyFor(account.market).lockout;
    const slot = await services.lockout.reserve(services.lockout.keyForAccount(account.accountId), policy);
    const ok = slot.ok ? await services.hasher.verify(account.passwordHash, currentPassword) : (await services.hasher.verify(null, currentPassword), false);
    if (!ok) {
      if (slot.ok) await services.lockout.failed(slot, policy);
      await record(ctx, account, 'account.password_changed', 'failure', { reason: slot.ok ? 'wrong_password' : 'locked' });
      return showAccount(ctx, current, { error: slot.ok ? 'Your current password is not right.' : 'Too many wrong passwords: password changes are paused for a while.' }, slot.ok ? 400 : 429);
    }
    await services.lockout.succeeded(services.lockout.keyForAccount(account.accountId));
    if (password !== confirm) return showAccount(ctx, current, { error: 'The two new passwords are not the same. Type them again.' }, 400);
    if (password === currentPassword) return showAccount(ctx, current, { error: 'Choose a password different from your current one.' }, 400);
    const result = await services.accounts.setPassword(account.accountId, password);
    if (!result.ok) return showAccount(ctx, current, { passwordProblems: result.problems }, 400);
    // The password has changed: the audit entry and the owner's mail follow even if ending the other
    // sessions fails half-way (a 503 then), and the entry says how far it got.
    let ended: { sessions: number; grants: number } | undefined;
    let trustedDevicesRevoked: number | undefined;
    try {
      ended = await endOtherSessions(provider, services.connection, account.accountId, current.sessionId);
      trustedDevicesRevoked = await trusted.revokeAll(account.accountId);
    } finally {
      services.alerts.sendInBackground(account, { kind: 'password-changed' }, { at: clock.now(), ip: ctx.ip, device: deviceLabel(ctx.get('user-agent')) });
      const cleanUp = ended && trustedDevicesRevoked !== undefined
        ? { trustedDevicesRevoked, otherSessionsEnded: ended.sessions, grantsRevoked: ended.grants }
        : { cleanUp: 'incomplete', ...(ended ? { otherSessionsEnded: ended.sessions, grantsRevoked: ended.grants } : {}) };
      await record(ctx, account, 'account.password_changed', 'success', cleanUp);
    }
    return back(ctx, 'done=password');
  });

  // ── trusted devices ───────────────────────────────────────────────────────

  router.post('/devices/:id/revoke', guardChange, async (ctx) => {
    const { account } = who(ctx);
    const id = idParam.safeParse(ctx.params.id);
    if (!id.success || !(await trusted.revoke(account.accountId, id.data))) return back(ctx, 'error=not_found');
    await record(ctx, account, 'trusted_device.revoked', 'success', { deviceId: id.data, by: 'owner' });
    return back(ctx, 'done=revoked');
  });

  // ── apps with access ──────────────────────────────────────────────────────

  /**
   * Withdraws consent: the app's consent record, its grants and every token and code issued under them go, so
   * its refresh token stops working and its next sign-in asks for consent again. Audited like oidc-provider's
   * own grant revocations (provider-events.ts): one consent.revoked per grant, with the app as clientId (one
   * naming the app when only the consent record was left, after a sign-out).
   */
  router.post('/apps/:clientId/remove', guardChange, async (ctx) => {
    const { account } = who(ctx);
    const clientId = clientIdParam.safeParse(ctx.params.clientId);
    if (!clientId.success) return back(ctx, 'error=not_found');
    const removed = await apps.remove(account.accountId, clientId.data);
    if (!removed) return back(ctx, 'error=not_found');
    const revoked = (target: { kind: string; id: string }) =>
      audit.record({
        type: 'consent.revoked',
        outcome: 'success',
        actor: { kind: 'account', id: account.accountId },
        target,
        ...facts(ctx),
        clientId: clientId.data,
        details: { via: 'account', by: 'owner', accountId: account.accountId, consentRecord: removed.consentRecord },
      });
    for (const grantId of removed.grantIds) await revoked({ kind: 'grant', id: grantId });
    // Consent kept after a sign-out has no grant left to name: the entry names the app.
    if (removed.grantIds.length === 0) await revoked({ kind: 'client', id: clientId.data });
    return back(ctx, 'done=app_removed');
  });

  return router;
}
