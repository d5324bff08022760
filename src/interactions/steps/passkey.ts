/**
 * Passkeys in the sign-in interaction, spoken as JSON to views/assets/passkey.js:
 *
 *   passwordless  POST …/passkey/options → discoverable-credential options (user verification required)
 *                 POST …/passkey/verify  → the passkey names the account; a user-verified passkey is a
 *                                          complete multi-factor sign-in (amr hwk|swk + user, then mfa)
 *   second factor POST …/second-factor/passkey/options → options for the account's own credentials
 *                 POST …/second-factor/passkey/verify  → adds hwk|swk (+ user) to the password's pwd
 *
 * Every ceremony's challenge is bound to the interaction (and expires with it at the latest). Every
 * success and failure is audited (`signin.passkey`, `signin.second_factor` with method webauthn); a
 * signature counter that went backwards is audited as `counter_regression` against the credential's
 * owner. Pages only ever see the messages below, never which account a passkey belongs to.
 */
import type { AuthenticationFailure, WebAuthnFactor } from '../../factors/webauthn/webauthn.js';
import { SIGN_IN_LOCKED, type Current, type Details, type SignInFlow } from '../flow.js';
import { hasPossessionFactor } from '../requirements.js';
import type { SignInState } from '../state.js';
import type { Context } from 'koa';

export interface JsonOutcome {
  status: number;
  body: Record<string, unknown>;
}

export const PASSKEY_MESSAGES = {
  unavailable: 'Passkeys cannot be used on this site right now. Sign in with your password.',
  unknown_credential: 'This passkey is not recognised. It may have been removed from your account. Sign in with your password, or try another passkey.',
  no_challenge: 'This passkey request has expired. Try again.',
  invalid: 'We could not verify this passkey. Try again, or sign in with your password.',
  no_user_verification: 'Your device did not confirm it was you (fingerprint, face or device PIN). Try again, or sign in with your password.',
  account_unavailable: 'This passkey cannot be used to sign in. Sign in with your password, or contact your administrator.',
  expired: 'This sign-in page has expired. Go back to the application and start the sign-in again.',
  second_factor_failed: 'We could not verify your security key or device. Try again, or choose another way to verify.',
  not_enrolled: 'No passkey or security key is set up for your account. Choose another way to verify.',
  enrol_later: 'You can add a passkey from your account page once you have signed in.',
} as const;

const FAILURE_MESSAGE: Record<AuthenticationFailure, string> = {
  no_challenge: PASSKEY_MESSAGES.no_challenge,
  unknown_credential: PASSKEY_MESSAGES.unknown_credential,
  invalid: PASSKEY_MESSAGES.invalid,
  wrong_account: PASSKEY_MESSAGES.invalid,
  counter_regression: PASSKEY_MESSAGES.invalid,
};

const fail = (status: number, error: string): JsonOutcome => ({ status, body: { ok: false, error } });

export class PasskeyStep {
  constructor(
    private readonly flow: SignInFlow,
    private readonly webauthn: WebAuthnFactor,
  ) {}

  get available(): boolean {
    return this.webauthn.ceremoniesAvailable;
  }

  /** The interaction's own end: a challenge never outlives it. */
  private binding(details: Details) {
    return { interactionId: details.uid, ...(details.exp ? { notAfter: new Date(details.exp * 1000) } : {}) };
  }

  // ── passwordless ───────────────────────────────────────────────────────────

  async options(ctx: Context): Promise<JsonOutcome> {
    if (!this.available) return fail(404, PASSKEY_MESSAGES.unavailable);
    const details = await this.flow.details(ctx);
    if (details.prompt.name !== 'login') return fail(409, PASSKEY_MESSAGES.expired);
    const result = await this.webauthn.authenticationOptions(this.binding(details));
    if (!result.ok) return fail(409, PASSKEY_MESSAGES.unavailable);
    return { status: 200, body: { ok: true, options: result.options } };
  }

  async verify(ctx: Context, response: unknown): Promise<JsonOutcome> {
    if (!this.available) return fail(404, PASSKEY_MESSAGES.unavailable);
    const details = await this.flow.details(ctx);
    if (details.prompt.name !== 'login') return fail(409, PASSKEY_MESSAGES.expired);
    const { deps } = this.flow;
    const outcome = await this.webauthn.verifyAuthentication(response, this.binding(details));
    if (!outcome.ok) {
      await this.flow.audit({ ctx, details, ...(outcome.ownerAccountId ? { accountId: outcome.ownerAccountId } : {}) }, 'signin.passkey', 'failure', {
        reason: outcome.reason,
        ...(outcome.credentialId ? { credentialId: outcome.credentialId } : {}),
      });
      return fail(401, FAILURE_MESSAGE[outcome.reason]);
    }
    const accountId = outcome.accountId;
    const audit = (result: 'success' | 'failure', extra: Record<string, unknown>) =>
      this.flow.audit({ ctx, details, accountId }, 'signin.passkey', result, { credentialId: outcome.credentialId, ...extra });
    // Required by the options; checked again because the passkey replaces the password here.
    if (!outcome.userVerified) {
      await audit('failure', { reason: 'no_user_verification' });
      return fail(401, PASSKEY_MESSAGES.no_user_verification);
    }
    const account = await deps.accounts.findByAccountId(accountId);
    if (!account || account.status !== 'active') {
      await audit('failure', { reason: account ? `account_${account.status}` : 'unknown_account' });
      return fail(403, PASSKEY_MESSAGES.account_unavailable);
    }
    if (await deps.lockout.lockedUntil(accountId)) {
      await audit('failure', { reason: 'locked' });
      return fail(403, SIGN_IN_LOCKED);
    }
    await audit('success', { amr: outcome.amr });
    const now = deps.clock.now();
    // Complete now: not stored first (finishLogin removes any state an earlier step of this interaction left).
    const state: SignInState = {
      _id: details.uid,
      accountId,
      // The passkey is the primary authentication: auth_time is now.
      passwordAt: now,
      authTime: null,
      amr: outcome.amr,
      step: 'second-factor',
      deferralAllowed: false,
      expiresAt: this.flow.stateExpiry(details),
    };
    const finished = await this.flow.finishLogin({ ctx, details, state, account });
    return this.redirect(finished);
  }

  // ── second factor ──────────────────────────────────────────────────────────

  private async usable(current: Current): Promise<boolean> {
    if (!this.available || current.state.step !== 'second-factor') return false;
    const excluded = new Set(current.state.excludeMethods ?? []);
    return !excluded.has('webauthn') && (await this.flow.deps.factors.availableMethods(current.account)).includes('webauthn');
  }

  async secondFactorOptions(current: Current): Promise<JsonOutcome> {
    if (!(await this.usable(current))) return fail(409, PASSKEY_MESSAGES.not_enrolled);
    const result = await this.webauthn.authenticationOptions({ ...this.binding(current.details), accountId: current.account.accountId });
    if (!result.ok) return fail(409, PASSKEY_MESSAGES.not_enrolled);
    // The page now shows the passkey method (a reload keeps it).
    await this.flow.deps.states.update(current.details.uid, { method: 'webauthn' });
    return { status: 200, body: { ok: true, options: result.options } };
  }

  async secondFactorVerify(current: Current, response: unknown, remember: boolean): Promise<JsonOutcome> {
    if (!(await this.usable(current))) return fail(409, PASSKEY_MESSAGES.not_enrolled);
    const { deps } = this.flow;
    const accountId = current.account.accountId;
    const outcome = await this.webauthn.verifyAuthentication(response, { ...this.binding(current.details), accountId });
    if (!outcome.ok) {
      await this.flow.audit({ ...current, accountId }, 'signin.second_factor', 'failure', {
        method: 'webauthn',
        reason: outcome.reason,
        ...(outcome.credentialId ? { credentialId: outcome.credentialId } : {}),
      });
      return fail(401, outcome.reason === 'no_challenge' ? PASSKEY_MESSAGES.no_challenge : outcome.reason === 'unknown_credential' ? PASSKEY_MESSAGES.unknown_credential : PASSKEY_MESSAGES.second_factor_failed);
    }
    await deps.guesses.clear(accountId);
    await this.flow.audit({ ...current, accountId }, 'signin.second_factor', 'success', { method: 'webauthn', credentialId: outcome.credentialId });
    if (remember) await this.flow.trustDevice(current);
    return this.redirect(await this.flow.finishLogin(current, outcome.amr));
  }

  // ── enrolment (the default-method step) ─────────────────────────────────────

  /**
   * A passkey replaces the password, so one is registered during enrolment only after this sign-in
   * proved a possession factor (a verified phone or authenticator app): the password alone must never
   * be enough to leave a passwordless credential behind, e.g. by an abandoned enrolment.
   */
  enrolmentOffer(current: Current): { canAdd: boolean; added: boolean } | null {
    if (!this.available) return null;
    return { canAdd: hasPossessionFactor(current.state.amr), added: Boolean(current.state.passkeyAddedHere) };
  }

  async enrolOptions(current: Current): Promise<JsonOutcome> {
    const offer = this.enrolmentOffer(current);
    if (current.state.step !== 'enrol-method' || !offer?.canAdd) return fail(409, PASSKEY_MESSAGES.enrol_later);
    const subject = this.flow.deps.factors.subjectOf(current.account);
    return { status: 200, body: { ok: true, options: await this.webauthn.registrationOptions(subject, this.binding(current.details)) } };
  }

  async enrolVerify(current: Current, response: unknown, name: unknown): Promise<JsonOutcome> {
    const offer = this.enrolmentOffer(current);
    if (current.state.step !== 'enrol-method' || !offer?.canAdd) return fail(409, PASSKEY_MESSAGES.enrol_later);
    const { deps } = this.flow;
    const accountId = current.account.accountId;
    const outcome = await this.webauthn.verifyRegistration(deps.factors.subjectOf(current.account), response, { ...this.binding(current.details), name: typeof name === 'string' ? name : '' });
    if (!outcome.ok) {
      await this.flow.audit({ ...current, accountId }, 'mfa.passkey_added', 'failure', { reason: outcome.reason });
      return fail(outcome.reason === 'duplicate' ? 409 : 400, outcome.reason === 'duplicate' ? 'This passkey or security key is already registered.' : 'We could not add this passkey. Try again.');
    }
    await deps.states.update(current.details.uid, { passkeyAddedHere: true });
    await this.flow.audit({ ...current, accountId }, 'mfa.passkey_added', 'success', { credentialId: outcome.credential.credentialId, deviceType: outcome.credential.deviceType });
    deps.alerts.sendInBackground(current.account, { kind: 'factor-added', factor: 'webauthn' }, { at: deps.clock.now(), ip: current.ctx.ip });
    return { status: 200, body: { ok: true, redirect: `/interaction/${current.details.uid}` } };
  }

  private redirect(outcome: Awaited<ReturnType<SignInFlow['finishLogin']>>): JsonOutcome {
    if ('redirect' in outcome) return { status: 200, body: { ok: true, redirect: outcome.redirect } };
    // finishLogin always redirects; a page here would be a programming error.
    return fail(500, 'Something went wrong on our side. Please try again.');
  }
}
