/**
 * The sign-in flow: which page an interaction shows and what each submission does. Routes
 * (routes.ts) only parse requests and call these; every step and transition is decided here.
 *
 *   prompt "login":
 *     password ─┬─ policy needs nothing more ─────────────────────────────► login result (amr pwd)
 *               ├─ enrolled account ─► second factor ─────────────────────► login result (pwd + otp/sms, mfa)
 *               └─ 2FA required, not enrolled ─► enrolment (steps/enrolment.ts)
 *                      profile → security code → [phone → verify] → default method [→ app] → recovery codes
 *                      ─► second factor unless one was already proven ──► login result
 *                      (or "remind me next time" where policy allows deferral ─► login result, amr pwd)
 *     existing password-only session + acr_values asking for MFA (step-up) ─► second factor
 *   prompt "consent": consent page → approve: Grant saved; deny: access_denied to the RP
 *
 * The login result goes to oidc-provider only once every required step is done; until then the
 * SignInState document (state.ts) records progress.
 */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { AccountDocument } from '../accounts/account.model.js';
import type { AccountService } from '../accounts/accounts.js';
import type { KnownBrowsers } from '../accounts/known-browsers.js';
import type { Lockout } from '../accounts/lockout.js';
import { partitionScopesForAccount } from '../admin/permissions.js';
import type { AuditEvent, AuditLog } from '../audit/audit.js';
import type { PasswordHasher } from '../factors/password/password.js';
import type { TrustedDeviceFactor } from '../factors/trusted-device/trusted-device.js';
import type { WebAuthnFactor } from '../factors/webauthn/webauthn.js';
import type { Clock } from '../factors/types.js';
import { deviceLabel } from '../http/user-agent.js';
import { ACR, CLAIM_DESCRIPTIONS, SCOPE_DESCRIPTIONS } from '../oidc/scopes.js';
import { accountClientUrls } from '../selfservice/account-client.js';
import type { CsrfTokens } from './csrf.js';
import type { DeviceCookies } from './device-cookies.js';
import type { GuessLimit } from './guess-limit.js';
import { authenticationResult, decideRequirement, demandsMfa } from './requirements.js';
import type { SecondFactors } from './second-factors.js';
import type { SignInState, SignInStates } from './state.js';
import { EnrolmentStep } from './steps/enrolment.js';
import { PasskeyStep } from './steps/passkey.js';
import { SecondFactorStep } from './steps/second-factor.js';

export type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

export interface View {
  template: string;
  status?: number;
  headers?: Record<string, string>;
  locals: Record<string, unknown>;
}

export type Outcome = { view: View } | { redirect: string };

export interface FlowDeps {
  provider: Provider;
  accounts: AccountService;
  hasher: PasswordHasher;
  audit: AuditLog;
  csrf: CsrfTokens;
  states: SignInStates;
  factors: SecondFactors;
  guesses: GuessLimit;
  lockout: Lockout;
  trustedDevices: TrustedDeviceFactor;
  /** Passkeys: passwordless sign-in and a second factor (steps/passkey.ts). */
  webauthn: WebAuthnFactor;
  knownBrowsers: KnownBrowsers;
  deviceCookies: DeviceCookies;
  alerts: AlertSender;
  clock: Clock;
}

/** The security-alert mails the flow sends (src/notify/security-alerts.ts). Never awaited on a sign-in path. */
export interface AlertSender {
  sendInBackground(
    account: { email?: string | null; name: string; userId: string },
    alert: { kind: 'new-device-sign-in' } | { kind: 'trusted-device-added' } | { kind: 'account-locked'; until: Date } | { kind: 'factor-added'; factor: string },
    facts: { at: Date; ip?: string; device?: string },
  ): void;
}

/** The one message for every failed password sign-in: it never tells which part was wrong. */
export const SIGN_IN_FAILED = 'The User ID, email or password you entered is incorrect.';

/**
 * Shown once an identifier has had too many wrong passwords — for real accounts and unknown identifiers
 * alike (see accounts/lockout.ts), so it never confirms that an account exists.
 */
export const SIGN_IN_LOCKED = 'Sign-in is temporarily unavailable because of too many failed attempts. Try again later, or choose “Forgot User ID or password?” to reset your password and unlock your account.';

export const LIMITS = { login: 254, password: 1024, code: 32, phone: 20 } as const;

/** A failure a person can fix: shown on the page of the step they are on. */
export class StepError extends Error {}

/** Everything a step needs about the interaction it is in. */
export interface Current {
  ctx: Context;
  details: Details;
  state: SignInState;
  account: AccountDocument;
}

export class SignInFlow {
  readonly secondFactorStep: SecondFactorStep;
  readonly enrolmentStep: EnrolmentStep;
  readonly passkeyStep: PasskeyStep;

  constructor(readonly deps: FlowDeps) {
    this.secondFactorStep = new SecondFactorStep(this);
    this.enrolmentStep = new EnrolmentStep(this);
    this.passkeyStep = new PasskeyStep(this, deps.webauthn);
  }

  // ── shared helpers for the steps ───────────────────────────────────────────

  /** The interaction behind the browser's cookie; it must be the one the URL (and its CSRF token) names. */
  async details(ctx: Context): Promise<Details> {
    const details = await this.deps.provider.interactionDetails(ctx.req, ctx.res);
    if (ctx.params.uid !== undefined && details.uid !== ctx.params.uid) {
      throw Object.assign(new Error('This sign-in page has expired or was already used. Go back to the application and start the sign-in again.'), { status: 400, expose: true });
    }
    return details;
  }

  view(details: Details, template: string, locals: Record<string, unknown>, status = 200): Outcome {
    return { view: { template, status, locals: { uid: details.uid, csrf: this.deps.csrf.issue(details.uid), error: null, notice: null, ...locals } } };
  }

  requestFacts(ctx: Context, details: Details): Pick<AuditEvent, 'ip' | 'userAgent' | 'clientId' | 'requestId'> {
    return { ip: ctx.ip, userAgent: ctx.get('user-agent').slice(0, 256), clientId: String(details.params.client_id), requestId: ctx.state.requestId as string | undefined };
  }

  challengeContext(ctx: Context, details: Details) {
    return { interactionId: details.uid, ip: ctx.ip, userAgent: ctx.get('user-agent').slice(0, 256), requestId: ctx.state.requestId as string | undefined };
  }

  async audit(current: { ctx: Context; details: Details; accountId?: string }, type: string, outcome: 'success' | 'failure', details?: Record<string, unknown>): Promise<void> {
    await this.deps.audit.record({
      type,
      outcome,
      actor: current.accountId ? { kind: 'account', id: current.accountId } : { kind: 'anonymous' },
      ...this.requestFacts(current.ctx, current.details),
      ...(details ? { details } : {}),
    });
  }

  private async clientName(details: Details): Promise<string> {
    const client = await this.deps.provider.Client.find(String(details.params.client_id));
    return client?.clientName ?? String(details.params.client_id);
  }

  /**
   * The sign-in state lives as long as its interaction. oidc-provider's expiry is wall-clock time; it is
   * carried over as "that many seconds from now" on our clock, which tests move.
   */
  stateExpiry(details: Details): Date {
    const remainingMs = Math.max(0, (details.exp ?? Math.floor(Date.now() / 1000) + 3600) * 1000 - Date.now());
    return new Date(this.deps.clock.now().getTime() + remainingMs);
  }

  /**
   * Loads the interaction's progress and its account (one round trip: the state brings the account along);
   * a step page without progress is an expired or forged post.
   */
  async current(ctx: Context): Promise<Current> {
    const details = await this.details(ctx);
    const { accounts } = this.deps;
    const found = details.prompt.name === 'login' ? await this.deps.states.getWithAccount(details.uid, this.deps.clock.now(), accounts.model.collection.collectionName) : null;
    const state = found?.state ?? null;
    const account = found?.account ? (accounts.model.hydrate(found.account) as AccountDocument) : null;
    if (!state || !account || account.status !== 'active') {
      throw Object.assign(new Error('This sign-in step has expired. Go back to the application and sign in again.'), { status: 400, expose: true });
    }
    return { ctx, details, state, account };
  }

  /**
   * Hands the login to oidc-provider: the only place a sign-in is completed. `verified`: the amr a factor
   * verified by this very request earned. The state is removed and read in one command, and they are added to
   * the amr it held — what storing them in the state ($addToSet) and then removing it did in two. If the state
   * was gone already, the amr this request loaded is used as it stands (as before).
   */
  async finishLogin(current: Current, verified: string[] = []): Promise<Outcome> {
    const { ctx, details, account } = current;
    let { state } = current;
    if (verified.length) {
      const stored = await this.deps.states.take(details.uid);
      if (stored) state = { ...stored, amr: [...stored.amr, ...verified.filter((v, i) => !stored.amr.includes(v) && verified.indexOf(v) === i)] };
    } else {
      await this.deps.states.finish(details.uid);
    }
    const { amr, acr } = authenticationResult(state.amr);
    await this.audit({ ctx, details, accountId: account.accountId }, 'signin.completed', 'success', { amr, acr });
    await this.noticeNewBrowser(current);
    // auth_time is when the password was entered; a step-up keeps the session's original sign-in time,
    // so a later max_age still asks for the password.
    const authTime = state.passwordAt ?? state.authTime ?? this.deps.clock.now();
    return this.finish(ctx, details, {
      login: { accountId: account.accountId, amr, acr, remember: true, ts: Math.floor(new Date(authTime).getTime() / 1000) },
    });
  }

  /** A completed sign-in from a browser this account has not used before gets a security alert. */
  private async noticeNewBrowser({ ctx, account }: Current): Promise<void> {
    const device = deviceLabel(ctx.get('user-agent'));
    const isNew = await this.deps.knownBrowsers.signedIn(account.accountId, this.deps.deviceCookies.browserId(ctx), { label: device, ip: ctx.ip });
    if (isNew) this.deps.alerts.sendInBackground(account, { kind: 'new-device-sign-in' }, { at: this.deps.clock.now(), ip: ctx.ip, device });
  }

  /** "Remember this device", after a verified second factor and only where the account's policy allows it. */
  async trustDevice(current: Current): Promise<void> {
    const { ctx, account } = current;
    const policy = this.deps.factors.policyFor(account.market);
    if (!policy.trustedDevice.enabled) return;
    const subject = this.deps.factors.subjectOf(account);
    const previous = this.deps.deviceCookies.readTrust(ctx, account.accountId);
    if (previous) await this.deps.trustedDevices.forget(subject, previous); // a renewal replaces the old trust
    const device = deviceLabel(ctx.get('user-agent'));
    const trust = await this.deps.trustedDevices.enrol(subject, { label: device, ip: ctx.ip, lifetimeDays: policy.trustedDevice.lifetimeDays });
    this.deps.deviceCookies.writeTrust(ctx, account.accountId, trust.token, trust.expiresAt);
    await this.audit({ ctx, details: current.details, accountId: account.accountId }, 'trusted_device.added', 'success', { deviceId: trust.id, label: device, expiresAt: trust.expiresAt.toISOString() });
    this.deps.alerts.sendInBackground(account, { kind: 'trusted-device-added' }, { at: this.deps.clock.now(), ip: ctx.ip, device });
  }

  /**
   * Hands the result to oidc-provider and goes back to it. The interaction this request read (and checked
   * against the URL) is given the result and stored with its own expiry, as `interactionResult` does after
   * reading the interaction again — one round trip instead of two. An interaction tied to a session, or one
   * that has expired meanwhile, still goes through `interactionResult`: it re-reads the interaction and the
   * session, and refuses if either is gone or another account has signed in in this browser since.
   */
  private async finish(ctx: Context, details: Details, result: InteractionResults, merge = false): Promise<Outcome> {
    if (details.session?.uid || details.exp <= Math.floor(Date.now() / 1000)) {
      return { redirect: await this.deps.provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge }) };
    }
    details.result = merge && !('error' in result) ? { ...details.lastSubmission, ...result } : result;
    await details.persist();
    return { redirect: details.returnTo };
  }

  // ── what a GET shows ───────────────────────────────────────────────────────

  async show(ctx: Context): Promise<Outcome> {
    const details = await this.details(ctx);
    if (details.prompt.name === 'consent') return await this.consentView(details, await this.clientName(details));
    if (details.prompt.name !== 'login') {
      throw Object.assign(new Error(`unsupported prompt ${details.prompt.name}`), { status: 400, expose: true });
    }
    const state = await this.deps.states.get(details.uid, this.deps.clock.now());
    if (state) {
      const account = await this.deps.accounts.findByAccountId(state.accountId);
      if (account?.status === 'active') return this.stepView({ ctx, details, state, account });
    }
    const stepUp = await this.stepUp(ctx, details);
    if (stepUp) return stepUp;
    return this.loginView(details, await this.clientName(details));
  }

  /** The page of the step the interaction is on (used after a reload, or to show an error). */
  stepView(current: Current, extra: Record<string, unknown> = {}, status = 200): Promise<Outcome> {
    const { step } = current.state;
    if (step === 'second-factor') return this.secondFactorStep.page(current, extra, status);
    return this.enrolmentStep.page(current, extra, status);
  }

  loginView(details: Details, clientName: string, error?: string, status = 200): Outcome {
    const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint.slice(0, LIMITS.login) : '';
    return this.view(details, 'login', { title: 'Sign in', clientName, login: hint, error: error ?? null, limits: LIMITS, passkeys: this.passkeyStep.available }, status);
  }

  // ── the password step ──────────────────────────────────────────────────────

  /** Unknown user, wrong password and a disabled account look exactly alike. */
  async submitPassword(ctx: Context, form: { login: string; password: string }): Promise<Outcome> {
    const details = await this.details(ctx);
    if (details.prompt.name !== 'login') return this.show(ctx);

    const login = form.login.trim();
    if (!login || !form.password) return this.loginView(details, await this.clientName(details), 'Enter your User ID or email and your password.', 400);

    const account = await this.deps.accounts.findByLogin(login);
    const actor = account ? { accountId: account.accountId } : {};
    const { lockout } = this.deps;
    const refuse = async (message: string) => this.loginView(details, await this.clientName(details), message, 401);

    // Two counters (see accounts/lockout.ts). The identifier as typed is counted for every sign-in, known or
    // not, under the default policy: it alone decides whether the page says "temporarily unavailable", so
    // that message reads the same for an unknown User ID, and never links a locked email to its User ID.
    // The account's own counter (its market's policy) is what actually refuses password checks.
    const identifierPolicy = this.deps.factors.policyFor('').lockout;
    const identifierKey = lockout.keyForIdentifier(login);
    const identifierSlot = await lockout.reserve(identifierKey, identifierPolicy);
    if (!identifierSlot.ok) {
      // The password is not checked while locked (that would keep guessing open), but it costs the same time.
      await this.deps.hasher.verify(null, form.password);
      await this.audit({ ctx, details, ...actor }, 'signin.password', 'failure', { reason: 'locked' });
      return refuse(SIGN_IN_LOCKED);
    }
    const accountPolicy = account ? this.deps.factors.policyFor(account.market).lockout : null;
    const accountKey = account ? lockout.keyForAccount(account.accountId) : null;
    const accountSlot = account ? await lockout.reserve(accountKey!, accountPolicy!) : null;

    // A locked account is never checked; to the page that is just another wrong password on this identifier.
    const passwordOk = accountSlot && !accountSlot.ok ? (await this.deps.hasher.verify(null, form.password), false) : await this.deps.hasher.verify(account?.passwordHash, form.password);
    const usable = account !== null && account.status === 'active';
    if (!passwordOk || !usable) {
      const reason = accountSlot && !accountSlot.ok ? 'locked' : !account ? 'unknown_account' : !passwordOk ? 'wrong_password' : `account_${account.status}`;
      // What was typed is not recorded for unknown accounts: people sometimes type their password there.
      await this.audit({ ctx, details, ...actor }, 'signin.password', 'failure', { reason });
      const identifierLocked = await lockout.failed(identifierSlot, identifierPolicy);
      const accountLocked = accountSlot?.ok ? await lockout.failed(accountSlot, accountPolicy!) : null;
      const lockedUntil = account ? accountLocked : identifierLocked;
      if (lockedUntil) {
        await this.deps.audit.record({
          type: 'account.locked',
          outcome: 'success',
          actor: { kind: 'system' },
          ...(account ? { target: { kind: 'account', id: account.accountId } } : {}),
          ...this.requestFacts(ctx, details),
          details: { until: lockedUntil.toISOString(), subject: account ? 'account' : 'unknown_identifier', threshold: (accountPolicy ?? identifierPolicy).threshold },
        });
        if (account) this.deps.alerts.sendInBackground(account, { kind: 'account-locked', until: lockedUntil }, { at: this.deps.clock.now(), ip: ctx.ip, device: deviceLabel(ctx.get('user-agent')) });
      }
      // The identifier is not echoed back: the page must read the same for every kind of failure.
      return refuse(identifierLocked ? SIGN_IN_LOCKED : SIGN_IN_FAILED);
    }

    await lockout.succeeded(identifierKey, accountKey!);
    await this.audit({ ctx, details, accountId: account.accountId }, 'signin.password', 'success');
    if (this.deps.hasher.needsRehash(account.passwordHash!)) {
      // Parameters were raised since this hash was made: upgrade it now that we know the password.
      await this.deps.accounts.model.updateOne({ _id: account._id }, { $set: { passwordHash: await this.deps.hasher.hash(form.password) } });
    }
    return this.afterPrimary(ctx, details, account, ['pwd'], this.deps.clock.now());
  }

  /** After the password (or, for step-up, the existing session): what else the policy requires. */
  async afterPrimary(ctx: Context, details: Details, account: AccountDocument, amr: string[], passwordAt: Date | null, authTime: Date | null = null): Promise<Outcome> {
    const policy = this.deps.factors.policyFor(account.market);
    // Enrolled means enrolled, even if its methods are not allowed any more: never fall back to the password alone.
    const enrolled = Boolean(account.mfa?.enrolledAt);
    const requirement = decideRequirement({
      mfa: policy.mfa,
      allowDeferral: policy.allowDeferral,
      enrolled,
      mfaDemanded: demandsMfa(details.params),
    });
    const base = {
      _id: details.uid,
      accountId: account.accountId,
      passwordAt,
      authTime,
      amr,
      expiresAt: this.stateExpiry(details),
    };
    // A sign-in that is complete now is not stored first: finishLogin only removes a state left by an earlier
    // step of this interaction (storing it here and removing it there came to the same).
    if (requirement.kind === 'none') {
      return this.finishLogin({ ctx, details, state: { ...base, step: 'second-factor', deferralAllowed: false }, account });
    }
    if (requirement.kind === 'second-factor') {
      const state: SignInState = { ...base, step: 'second-factor', deferralAllowed: false };
      // A remembered device skips the code after a fresh password — unless the request demands MFA.
      if (passwordAt && policy.trustedDevice.enabled && !demandsMfa(details.params) && (await this.deviceIsTrusted(ctx, account))) {
        await this.audit({ ctx, details, accountId: account.accountId }, 'signin.trusted_device', 'success');
        return this.finishLogin({ ctx, details, state, account });
      }
      // The step stores the new state itself, together with the method it starts with (one write).
      return this.secondFactorStep.begin({ ctx, details, state, account }, { stored: false });
    }
    if (!passwordAt) {
      // Enrolment binds new factors to the account: never on the strength of a session alone.
      return this.loginView(details, await this.clientName(details));
    }
    const state = await this.deps.states.start({ ...base, step: 'enrol-profile', deferralAllowed: requirement.deferrable });
    return this.enrolmentStep.page({ ctx, details, state, account });
  }

  private async deviceIsTrusted(ctx: Context, account: AccountDocument): Promise<boolean> {
    const token = this.deps.deviceCookies.readTrust(ctx, account.accountId);
    if (!token) return false;
    return (await this.deps.trustedDevices.verify(this.deps.factors.subjectOf(account), token, { ip: ctx.ip })).ok;
  }

  /** A signed-in session asked for MFA by the request (acr_values): straight to the second factor. */
  private async stepUp(ctx: Context, details: Details): Promise<Outcome | undefined> {
    const reasons = details.prompt.reasons;
    const accountId = details.session?.accountId;
    if (!accountId || reasons.length !== 1 || reasons[0] !== 'mfa_required') return undefined;
    const account = await this.deps.accounts.findByAccountId(accountId);
    if (!account || account.status !== 'active') return undefined;
    const session = await this.deps.provider.Session.findByUid(details.session!.uid);
    const earned = session?.amr?.length ? [...session.amr] : ['pwd'];
    await this.audit({ ctx, details, accountId }, 'signin.step_up', 'success', { from: session?.acr ?? ACR.password });
    const loginTs = (session as { loginTs?: number } | undefined)?.loginTs;
    return this.afterPrimary(ctx, details, account, earned.filter((v) => v !== 'mfa'), null, loginTs ? new Date(loginTs * 1000) : null);
  }

  // ── consent ────────────────────────────────────────────────────────────────

  /**
   * What is missing from the grant; when the request asked for the page again (prompt=consent), or nothing is
   * missing (which would list nothing), also what the grant already holds, marked as such. Scopes the grant
   * declined (admin scopes without the role) are left out, as they will not be given.
   */
  private async consentView(details: Details, clientName: string): Promise<Outcome> {
    const promptDetails = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    const grant = details.grantId ? await this.deps.provider.Grant.find(details.grantId) : undefined;
    const requested = [...new Set(String(details.params.scope ?? '').split(' ').filter(Boolean))];
    const missingScopes = new Set(promptDetails.missingOIDCScope ?? []);
    const grantedScopes = new Set((grant?.getOIDCScope() ?? '').split(' ').filter(Boolean));
    const missingResources = promptDetails.missingResourceScopes ?? {};
    const nothingMissing = !missingScopes.size && !promptDetails.missingOIDCClaims?.length && !Object.keys(missingResources).length;
    const showHeld = details.prompt.reasons.includes('consent_prompt') || nothingMissing;
    const describe = (scope: string) => SCOPE_DESCRIPTIONS[scope] ?? `Use the "${scope}" permission`;
    const scopes = [
      ...requested.filter((scope) => missingScopes.has(scope)),
      ...[...missingScopes].filter((scope) => !requested.includes(scope)),
    ].map((scope) => ({ scope, text: describe(scope), already: false }));
    for (const scope of requested) {
      if (showHeld && !missingScopes.has(scope) && grantedScopes.has(scope)) scopes.push({ scope, text: describe(scope), already: true });
    }

    const missingClaims = promptDetails.missingOIDCClaims ?? [];
    const grantedClaims = new Set(grant?.getOIDCClaims() ?? []);
    const alreadyClaims = showHeld ? requestedClaims(details.params.claims).filter((claim) => !missingClaims.includes(claim) && grantedClaims.has(claim)) : [];
    const claims = missingClaims.map((claim) => CLAIM_DESCRIPTIONS[claim] ?? claim);
    const claimsAlready = alreadyClaims.map((claim) => CLAIM_DESCRIPTIONS[claim] ?? claim);

    const resources = Object.entries(missingResources).map(([resource, list]) => ({ resource, scopes: list, already: false }));
    for (const resource of showHeld ? Object.keys(grant?.resources ?? {}) : []) {
      const held = grant!.getResourceScopeFiltered(resource, requested).split(' ').filter((scope) => scope && !missingResources[resource]?.includes(scope));
      if (held.length) resources.push({ resource, scopes: held, already: true });
    }
    // Where consent is withdrawn: the account area's "Apps with access".
    const accountUrl = accountClientUrls(this.deps.provider.issuer).page;
    return this.view(details, 'consent', { title: 'Allow access?', clientName, scopes, claims, claimsAlready, resources, accountUrl });
  }

  async submitConsent(ctx: Context): Promise<Outcome> {
    const details = await this.details(ctx);
    if (details.prompt.name !== 'consent') return this.show(ctx);
    const { provider } = this.deps;
    const accountId = details.session!.accountId;
    const clientId = String(details.params.client_id);
    const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId });
    if (!grant) throw Object.assign(new Error('grant not found'), { status: 400, expose: true });

    const promptDetails = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (promptDetails.missingOIDCScope) {
      // Admin scopes are granted only to accounts holding the matching role; others are declined.
      const roles = (await this.deps.accounts.findByAccountId(accountId!))?.roles ?? [];
      const { granted, rejected } = partitionScopesForAccount(promptDetails.missingOIDCScope, roles);
      if (granted.length) grant.addOIDCScope(granted.join(' '));
      if (rejected.length) grant.rejectOIDCScope(rejected.join(' '));
    }
    if (promptDetails.missingOIDCClaims) grant.addOIDCClaims(promptDetails.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(promptDetails.missingResourceScopes ?? {})) {
      grant.addResourceScope(resource, scopes.join(' '));
    }
    const grantId = await grant.save();
    await this.audit({ ctx, details, accountId }, 'consent.granted', 'success', { scopes: promptDetails.missingOIDCScope ?? [] });
    return this.finish(ctx, details, { consent: { grantId } }, true);
  }

  /** "Deny" on the consent page, or "cancel" on the sign-in page: the RP receives access_denied. */
  async deny(ctx: Context): Promise<Outcome> {
    const details = await this.details(ctx);
    await this.deps.states.finish(details.uid);
    await this.audit({ ctx, details, ...(details.session?.accountId ? { accountId: details.session.accountId } : {}) }, details.prompt.name === 'consent' ? 'consent.denied' : 'signin.cancelled', 'failure');
    return this.finish(ctx, details, { error: 'access_denied', error_description: 'The user denied the request' });
  }
}

/** The claim names a request's `claims` parameter asks for (id_token and userinfo); nothing for a malformed one. */
function requestedClaims(param: unknown): string[] {
  if (typeof param !== 'string' || !param) return [];
  try {
    const parsed = JSON.parse(param) as unknown;
    if (!parsed || typeof parsed !== 'object') return [];
    const names = new Set<string>();
    for (const part of [(parsed as Record<string, unknown>).id_token, (parsed as Record<string, unknown>).userinfo]) {
      if (part && typeof part === 'object') for (const name of Object.keys(part)) names.add(name);
    }
    for (const name of ['sub', 'sid', 'auth_time', 'acr', 'amr', 'iss']) names.delete(name);
    return [...names];
  } catch {
    return [];
  }
}

export interface SecondFactorStepApi {
  /** `stored: false`: `current.state` is new and not stored yet; the step stores it (with its method). */
  begin(current: Current, options?: { stored?: boolean }): Promise<Outcome>;
  page(current: Current, extra?: Record<string, unknown>, status?: number): Promise<Outcome>;
}

export interface EnrolmentStepApi {
  page(current: Current, extra?: Record<string, unknown>, status?: number): Promise<Outcome>;
}
