/**
 * "Forgot User ID or password?" and account activation: the self-service paths a person takes when
 * they cannot sign in. The steps live here; src/recovery/routes.ts only parses requests and renders.
 *
 *   forgot password:  identifier + channel ─► verify (security code + one-time passcode) ─► new password
 *                     ─► every session, refresh token and trusted device revoked, lockout cleared, mail
 *   forgot User ID:   email ─► (if an account matches) its User ID mailed there
 *   activation:       invitation link ─► confirm User ID + new password ─► (2FA enrolment at sign-in)
 *
 * Never revealing whether an account exists: `start` and `forgotUserId` do the same work and give the
 * same answer whatever was typed. Mail is sent in the background so its delivery time cannot tell
 * either. A flow for an identifier that matched nothing is real (same cookie, same pages) but can
 * never verify; verifying it costs the same argon2 check as a real one.
 */
import { randomBytes } from 'node:crypto';
import type { AccountAdmin } from '../accounts/account-admin.js';
import type { AccountDocument } from '../accounts/account.model.js';
import type { AccountService } from '../accounts/accounts.js';
import type { Invitations } from '../accounts/invitations.js';
import type { Lockout } from '../accounts/lockout.js';
import type { AuditEvent, AuditLog } from '../audit/audit.js';
import { subjectFromAccount, type Factors } from '../factors/index.js';
import type { PasswordHasher } from '../factors/password/password.js';
import type { Clock } from '../factors/types.js';
import type { GuessLimit } from '../interactions/guess-limit.js';
import type { Logger } from '../logger.js';
import type { Mailer } from '../notify/mailer.js';
import type { SecurityAlerts } from '../notify/security-alerts.js';
import { RecoveryFlows, type RecoveryChannel, type RecoveryFlow } from './recovery-flows.js';

export interface RecoveryDeps {
  accounts: AccountService;
  accountAdmin: AccountAdmin;
  invitations: Invitations;
  factors: Factors;
  hasher: PasswordHasher;
  lockout: Lockout;
  guesses: GuessLimit;
  flows: RecoveryFlows;
  audit: AuditLog;
  alerts: SecurityAlerts;
  mailer: Mailer;
  clock: Clock;
  log: Logger;
  issuer: string;
}

/** Who is asking: for the audit log and the mails. */
export type RequestFacts = Pick<AuditEvent, 'ip' | 'userAgent' | 'requestId'>;

/** Schedules work for after the answer to the request has gone out (routes: when the response closes). */
export type AfterAnswer = (run: () => void) => void;
const nextTurn: AfterAnswer = (run) => void setImmediate(run);
/** Looked up for a recovery flow that matched no account: account ids are never empty. */
const NO_ACCOUNT_ID = '';

export const RECOVERY_FLOW_MINUTES = 15;
export const RECOVERY_MAX_ATTEMPTS = 5;

/** On success the flow continues under a new id (for a new cookie). */
export type VerifyResult = { ok: true; flowId: string } | { ok: false; reason: 'wrong' | 'too_many' | 'expired' };
export type PasswordResult = { ok: true; userId: string } | { ok: false; reason: 'expired' } | { ok: false; reason: 'weak'; problems: string[] };
export type ActivationResult =
  | { ok: true; userId: string }
  | { ok: false; reason: 'link' }
  | { ok: false; reason: 'user_id' }
  | { ok: false; reason: 'weak'; problems: string[] };

export class Recovery {
  constructor(private readonly deps: RecoveryDeps) {}

  private async record(type: string, outcome: 'success' | 'failure', facts: RequestFacts, accountId: string | null, details?: Record<string, unknown>): Promise<void> {
    await this.deps.audit.record({
      type,
      outcome,
      actor: accountId ? { kind: 'account', id: accountId } : { kind: 'anonymous' },
      ...facts,
      ...(details ? { details } : {}),
    });
  }

  /** Recovery is for people who can still prove who they are; a disabled account is treated as unknown. */
  private usable(account: AccountDocument | null): account is AccountDocument {
    return account !== null && account.status !== 'disabled';
  }

  /**
   * Runs `work` once the answer has gone out (`after`), without waiting for it; failures are logged,
   * never shown to the requester. Started any earlier, even its synchronous part (rendering a mail)
   * would show in the response time of a request for an existing account.
   */
  private inBackground(what: string, after: AfterAnswer, work: () => Promise<unknown>): void {
    after(() => {
      work().catch((err: unknown) => this.deps.log.warn({ err: { message: (err as Error).message } }, `${what} failed`));
    });
  }

  private sendPasscode(flowId: string, account: AccountDocument, channel: RecoveryChannel, after: AfterAnswer): void {
    const subject = subjectFromAccount(account);
    const context = { interactionId: flowId };
    this.inBackground('recovery passcode', after, async () => {
      if (channel === 'email') await this.deps.factors.emailOtp.challenge(subject, context, 'recovery');
      else if (account.phoneVerified) await this.deps.factors.smsOtp.challenge(subject, context, 'recovery');
    });
  }

  /** Starts a password recovery for whatever was typed; returns the new flow's id (for the cookie). */
  async start(identifier: string, channel: RecoveryChannel, facts: RequestFacts, after: AfterAnswer = nextTurn): Promise<string> {
    const id = randomBytes(24).toString('base64url');
    const found = await this.deps.accounts.findByLogin(identifier);
    const account = this.usable(found) ? found : null;
    const expiresAt = new Date(this.deps.clock.now().getTime() + RECOVERY_FLOW_MINUTES * 60 * 1000);
    const identifierKey = this.deps.lockout.keyForIdentifier(identifier);
    await this.deps.flows.create({ _id: id, accountId: account?.accountId ?? null, identifierKey, channel, step: 'verify', attempts: 0, expiresAt });
    await this.record('recovery.started', 'success', facts, account?.accountId ?? null, { channel, matched: account !== null });
    if (account) this.sendPasscode(id, account, channel, after);
    return id;
  }

  async flow(id: string | undefined): Promise<RecoveryFlow | null> {
    return id ? this.deps.flows.get(id, this.deps.clock.now()) : null;
  }

  /** Sends a new passcode for the flow (the code store's cooldown and hourly cap apply); silent either way. */
  async resend(flow: RecoveryFlow, after: AfterAnswer = nextTurn): Promise<void> {
    if (flow.step !== 'verify') return;
    // The same read whether or not the flow matched an account (an id no account has, when it did not),
    // so the time the answer takes does not tell.
    const account = await this.deps.accounts.findByAccountId(flow.accountId ?? NO_ACCOUNT_ID);
    if (flow.accountId && this.usable(account)) this.sendPasscode(flow._id, account, flow.channel, after);
  }

  /**
   * Checks the security code and the passcode together and says only "right" or "not right", never
   * which one failed. Both are always checked, so the time taken does not tell either.
   */
  async verify(flowId: string, securityCode: string, passcode: string, facts: RequestFacts): Promise<VerifyResult> {
    const now = this.deps.clock.now();
    const flow = await this.deps.flows.takeAttempt(flowId, RECOVERY_MAX_ATTEMPTS, now);
    if (!flow) {
      const existing = await this.deps.flows.get(flowId, now);
      return { ok: false, reason: existing ? 'too_many' : 'expired' };
    }
    const account = flow.accountId ? await this.deps.accounts.findByAccountId(flow.accountId) : null;
    // One-time-code guesses are counted per account across flows and sign-ins (separate from password
    // failures); a flow for an unknown identifier gets the same window under the identifier, so the
    // point where answers stop being checked never tells whether an account exists.
    if (!(await this.deps.guesses.take(this.usable(account) ? account.accountId : flow.identifierKey))) {
      await this.record('recovery.verify', 'failure', facts, this.usable(account) ? account.accountId : null, { reason: 'guess_limit' });
      return { ok: false, reason: 'too_many' };
    }
    if (!this.usable(account)) {
      await this.deps.hasher.verify(null, securityCode); // the same cost as checking a real security code
      await this.record('recovery.verify', 'failure', facts, null, { reason: 'no_account' });
      return { ok: false, reason: flow.attempts >= RECOVERY_MAX_ATTEMPTS ? 'too_many' : 'wrong' };
    }
    const subject = subjectFromAccount(account);
    const context = { interactionId: flow._id };
    const code = await this.deps.factors.securityCode.verify(subject, securityCode);
    const otp =
      flow.channel === 'email'
        ? await this.deps.factors.emailOtp.verify(subject, passcode, context, 'recovery')
        : await this.deps.factors.smsOtp.verify(subject, passcode, context, 'recovery');
    // An account that never set a security code proves itself with the passcode alone.
    const codeOk = code.ok || code.reason === 'not_enrolled';
    if (!codeOk || !otp.ok) {
      await this.record('recovery.verify', 'failure', facts, account.accountId, { securityCode: code.ok ? 'ok' : code.reason, passcode: otp.ok ? 'ok' : otp.reason });
      return { ok: false, reason: flow.attempts >= RECOVERY_MAX_ATTEMPTS ? 'too_many' : 'wrong' };
    }
    await this.deps.guesses.clear(account.accountId);
    const next = await this.deps.flows.verified(flow._id);
    if (!next) return { ok: false, reason: 'expired' };
    await this.record('recovery.verify', 'success', facts, account.accountId, { channel: flow.channel, securityCode: code.ok });
    return { ok: true, flowId: next };
  }

  /** The last step: a new password for a verified flow, then everything the old password opened is closed. */
  async setPassword(flowId: string, password: string, facts: RequestFacts & { device?: string }): Promise<PasswordResult> {
    // Claimed first: of two tabs posting at once, exactly one sets the password.
    const flow = await this.deps.flows.claim(flowId, this.deps.clock.now());
    if (!flow || !flow.accountId) return { ok: false, reason: 'expired' };
    const result = await this.deps.accounts.setPassword(flow.accountId, password);
    if (!result.ok) {
      await this.deps.flows.release(flow._id);
      return { ok: false, reason: 'weak', problems: result.problems };
    }
    await this.deps.flows.finish(flow._id);
    const account = (await this.deps.accounts.findByAccountId(flow.accountId))!;
    const revoked = await this.afterPasswordChange(account);
    const { device, ...requestFacts } = facts;
    await this.record('recovery.password_reset', 'success', requestFacts, account.accountId, { ...revoked, ...(device ? { device } : {}) });
    this.deps.alerts.sendInBackground(account, { kind: 'password-reset' }, { at: this.deps.clock.now(), ...(facts.ip ? { ip: facts.ip } : {}), ...(facts.device ? { device: facts.device } : {}) });
    return { ok: true, userId: account.userId };
  }

  /** A password reset ends every session, grant, refresh token and device trust, and lifts a lockout. */
  private async afterPasswordChange(account: AccountDocument): Promise<Record<string, unknown>> {
    const { accountId } = account;
    const sessions = await this.deps.accountAdmin.revokeSessionsAndGrants(accountId);
    const trustedDevices = await this.deps.factors.trustedDevice.revokeAll(accountId);
    const unlocked = await this.deps.lockout.unlock(accountId, [account.userId, account.email]);
    if (unlocked) await this.deps.audit.record({ type: 'account.unlocked', outcome: 'success', actor: { kind: 'account', id: accountId }, target: { kind: 'account', id: accountId }, details: { by: 'recovery' } });
    return { revoked: sessions, trustedDevicesRevoked: trustedDevices, unlocked };
  }

  /** Mails the User ID to the address, if an account has it; nothing in the answer or its timing says whether. */
  async forgotUserId(email: string, facts: RequestFacts, after: AfterAnswer = nextTurn): Promise<void> {
    const normalized = email.trim().toLowerCase();
    const found = normalized.includes('@') ? await this.deps.accounts.findByLogin(normalized) : null;
    const account = this.usable(found) && found.email ? found : null;
    await this.record('recovery.user_id_requested', 'success', facts, account?.accountId ?? null, { matched: account !== null });
    if (account) {
      this.inBackground('User ID reminder mail', after, () =>
        this.deps.mailer.send(account.email!, 'Your Gatehouse User ID', 'user-id-reminder', { name: account.name, userId: account.userId, signInHint: `${this.deps.issuer}/recover` }),
      );
    }
  }

  // ── activation of pre-provisioned accounts ──────────────────────────────────

  /** The account an activation link is for, without using it up (the page shows a form first). */
  async invitationAccount(token: string): Promise<AccountDocument | null> {
    const accountId = await this.deps.invitations.peek(token);
    const account = accountId ? await this.deps.accounts.findByAccountId(accountId) : null;
    return account && account.status === 'active' && !account.passwordHash ? account : null;
  }

  /** Confirms the User ID, sets the first password and uses the link up, in that order (a weak password keeps the link). */
  async activate(token: string, userId: string, password: string, facts: RequestFacts): Promise<ActivationResult> {
    const account = await this.invitationAccount(token);
    if (!account) return { ok: false, reason: 'link' };
    if (userId.trim().toLowerCase() !== account.userIdLower) return { ok: false, reason: 'user_id' };
    const check = await this.deps.accounts.checkNewPassword(account.accountId, password);
    if (!check.ok) return { ok: false, reason: 'weak', problems: check.problems };
    // Single use: only the request that redeems the link sets the password.
    if ((await this.deps.invitations.redeem(token)) !== account.accountId) return { ok: false, reason: 'link' };
    const set = await this.deps.accounts.setPassword(account.accountId, password);
    if (!set.ok) return { ok: false, reason: 'weak', problems: set.problems };
    // The link came by email, so following it proves the address.
    await this.deps.accounts.model.updateOne({ accountId: account.accountId }, { $set: { emailVerified: true } }).exec();
    await this.record('account.activated', 'success', facts, account.accountId);
    return { ok: true, userId: account.userId };
  }
}
