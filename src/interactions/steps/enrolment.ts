/**
 * The one-time two-step verification enrolment, entered right after the password when the account's
 * policy requires 2FA (or the client demands MFA) and the account has not enrolled:
 *
 *   profile → security code → [mobile number → its code] → default method [→ authenticator app]
 *   → recovery codes → (a second factor, unless the user already proved one here) → login
 *
 * Where the policy allows deferral, the profile page offers "remind me next time"; each deferral is
 * audited and the user is asked again at the next sign-in.
 */
import { deviceLabel } from '../../http/user-agent.js';
import type { Current, EnrolmentStepApi, Outcome, SignInFlow } from '../flow.js';
import { hasPossessionFactor } from '../requirements.js';
import { METHOD_LABELS, sendFailureMessage, type SendResult } from '../second-factors.js';
import type { SecondFactorMethod, SignInStep } from '../state.js';

const E164 = /^\+[1-9]\d{6,14}$/;

const sendProblem = (result: SendResult) => sendFailureMessage(result, 'Check the number or skip this step');

export class EnrolmentStep implements EnrolmentStepApi {
  constructor(private readonly flow: SignInFlow) {}

  private policy(current: Current) {
    return this.flow.deps.factors.policyFor(current.account.market);
  }

  private allows(current: Current, factor: string): boolean {
    return (this.policy(current).factors as readonly string[]).includes(factor);
  }

  private async go(current: Current, step: SignInStep, extra: Record<string, unknown> = {}, change: Record<string, unknown> = {}, addAmr: string[] = []): Promise<Outcome> {
    const state = await this.flow.deps.states.update(current.details.uid, { step, ...change }, addAmr);
    return this.page({ ...current, state: state ?? current.state }, extra);
  }

  private methodOptions(current: Current): SecondFactorMethod[] {
    const options: SecondFactorMethod[] = [];
    if (current.account.email && this.allows(current, 'email-otp')) options.push('email-otp');
    if (current.account.phone && current.account.phoneVerified && this.allows(current, 'sms-otp')) options.push('sms-otp');
    if (current.state.totpConfirmed && this.allows(current, 'totp')) options.push('totp');
    if (current.state.passkeyAddedHere) options.push('webauthn');
    return options;
  }

  async page(current: Current, extra: Record<string, unknown> = {}, status = 200): Promise<Outcome> {
    const { details, state, account } = current;
    const view = (template: string, title: string, locals: Record<string, unknown> = {}) => this.flow.view(details, template, { title, ...locals, ...extra }, status);
    switch (state.step) {
      case 'enrol-profile':
        return view('enrol-profile', 'Set up two-step verification', { name: account.name, email: account.email ?? null, deferrable: state.deferralAllowed });
      case 'enrol-security-code':
        return view('enrol-security-code', 'Create your security code');
      case 'enrol-phone':
        return view('enrol-phone', 'Add a mobile number', { phone: '' });
      case 'enrol-phone-verify':
        return view('enrol-phone-verify', 'Check your phone', { destination: state.destination ?? state.pendingPhone ?? '' });
      case 'enrol-totp': {
        const totp = await this.flow.deps.factors.startTotp(account);
        return view('enrol-totp', 'Set up an authenticator app', totp);
      }
      case 'enrol-method': {
        const options = this.methodOptions(current);
        // What the person has just set up here (a passkey, an authenticator app) is what they most likely want.
        const selected = (['webauthn', 'totp'] as const).find((m) => options.includes(m)) ?? options[0];
        return view('enrol-method', 'Choose how to verify', {
          options: options.map((m) => ({ value: m, label: METHOD_LABELS[m].option })),
          selected,
          canAddTotp: this.allows(current, 'totp') && !state.totpConfirmed,
          passkey: this.flow.passkeyStep.enrolmentOffer(current),
        });
      }
      case 'enrol-recovery-codes': {
        // Codes are stored hashed and shown once; reloading this page issues a fresh set.
        const codes = await this.flow.deps.factors.regenerateRecoveryCodes(account);
        return view('enrol-recovery-codes', 'Save your recovery codes', { codes });
      }
      default:
        return this.flow.stepView(current);
    }
  }

  async profile(current: Current, action: string): Promise<Outcome> {
    if (current.state.step !== 'enrol-profile') return this.flow.stepView(current);
    if (action === 'defer') {
      if (!current.state.deferralAllowed) return this.page(current, { error: 'Two-step verification must be set up now.' }, 400);
      await this.flow.deps.accounts.updateMfa(current.account.accountId, { incDeferrals: true });
      await this.flow.audit({ ...current, accountId: current.account.accountId }, 'mfa.enrolment_deferred', 'success');
      return this.flow.finishLogin(current);
    }
    return this.go(current, 'enrol-security-code');
  }

  async securityCode(current: Current, code: string, confirm: string): Promise<Outcome> {
    if (current.state.step !== 'enrol-security-code') return this.flow.stepView(current);
    if (code !== confirm) return this.page(current, { error: 'The two codes do not match. Enter the same code twice.' }, 400);
    const result = await this.flow.deps.factors.setSecurityCode(current.account, code);
    if (!result.ok) return this.page(current, { error: result.message }, 400);
    await this.flow.audit({ ...current, accountId: current.account.accountId }, 'mfa.security_code_set', 'success');
    return this.go(current, this.allows(current, 'sms-otp') ? 'enrol-phone' : 'enrol-method');
  }

  async phone(current: Current, action: string, phone: string): Promise<Outcome> {
    if (current.state.step !== 'enrol-phone') return this.flow.stepView(current);
    if (action === 'skip') return this.go(current, 'enrol-method');
    const number = phone.replace(/[\s().-]/g, '');
    if (!E164.test(number)) {
      return this.flow.view(current.details, 'enrol-phone', { title: 'Add a mobile number', phone, error: 'Enter the number in international format, e.g. +14155550123.' }, 400);
    }
    const sent = await this.flow.deps.factors.startPhoneVerification(current.account, number, this.flow.challengeContext(current.ctx, current.details));
    if (!sent.ok) return this.flow.view(current.details, 'enrol-phone', { title: 'Add a mobile number', phone, error: sendProblem(sent) }, sent.reason === 'unavailable' ? 400 : 429);
    return this.go(current, 'enrol-phone-verify', {}, { pendingPhone: number, destination: sent.destination });
  }

  async phoneVerify(current: Current, action: string, code: string): Promise<Outcome> {
    const { state, account } = current;
    if (state.step !== 'enrol-phone-verify' || !state.pendingPhone) return this.flow.stepView(current);
    if (action === 'change') return this.go(current, 'enrol-phone', {}, { pendingPhone: null });
    const context = this.flow.challengeContext(current.ctx, current.details);
    if (action === 'resend') {
      const sent = await this.flow.deps.factors.startPhoneVerification(account, state.pendingPhone, context);
      return this.page(current, sent.ok ? { notice: 'We sent a new code.' } : { error: sendProblem(sent) });
    }
    const outcome = await this.flow.deps.factors.confirmPhone(account, state.pendingPhone, code, context);
    if (!outcome.ok) {
      await this.flow.audit({ ...current, accountId: account.accountId }, 'mfa.phone_verification', 'failure', { reason: outcome.reason });
      return this.page(current, { error: outcome.reason === 'invalid' ? 'That code is not right. Check it and try again.' : 'That code can no longer be used. Ask for a new one.' }, 401);
    }
    await this.flow.audit({ ...current, accountId: account.accountId }, 'mfa.phone_verified', 'success');
    const refreshed = (await this.flow.deps.accounts.findByAccountId(account.accountId)) ?? account;
    return this.go({ ...current, account: refreshed }, 'enrol-method', {}, { pendingPhone: null, phoneVerifiedHere: true }, outcome.amr);
  }

  async totp(current: Current, action: string, code: string): Promise<Outcome> {
    if (current.state.step !== 'enrol-totp') return this.flow.stepView(current);
    if (action === 'cancel') return this.go(current, 'enrol-method');
    const outcome = await this.flow.deps.factors.confirmTotp(current.account, code);
    if (!outcome.ok) return this.page(current, { error: 'That code is not right. Make sure the app shows Gatehouse and try the current code.' }, 401);
    await this.flow.audit({ ...current, accountId: current.account.accountId }, 'mfa.totp_added', 'success');
    return this.go(current, 'enrol-method', {}, { totpConfirmed: true }, outcome.amr);
  }

  async method(current: Current, method: string): Promise<Outcome> {
    if (current.state.step !== 'enrol-method') return this.flow.stepView(current);
    if (method === 'setup-totp' && this.allows(current, 'totp')) return this.go(current, 'enrol-totp');
    const chosen = this.methodOptions(current).find((m) => m === method);
    if (!chosen) return this.page(current, { error: 'Choose one of the options.' }, 400);
    await this.flow.deps.accounts.updateMfa(current.account.accountId, { set: { defaultMethod: chosen } });
    if (this.allows(current, 'recovery-codes')) return this.go(current, 'enrol-recovery-codes');
    return this.complete(current);
  }

  async recoveryCodesSaved(current: Current): Promise<Outcome> {
    if (current.state.step !== 'enrol-recovery-codes') return this.flow.stepView(current);
    return this.complete(current);
  }

  /** Enrolment is done: record it, then finish with a second factor unless one was already proven. */
  private async complete(current: Current): Promise<Outcome> {
    const now = this.flow.deps.clock.now();
    // Only what this enrolment set up counts: an authenticator or phone left by an abandoned earlier
    // attempt (perhaps by someone else who had the password) must not survive into the enrolled account.
    await this.flow.deps.factors.discardLeftovers(current.account, { totp: Boolean(current.state.totpConfirmed), phone: Boolean(current.state.phoneVerifiedHere) });
    await this.flow.deps.accounts.updateMfa(current.account.accountId, { set: { enrolledAt: now } });
    await this.flow.audit({ ...current, accountId: current.account.accountId }, 'mfa.enrolled', 'success');
    const account = (await this.flow.deps.accounts.findByAccountId(current.account.accountId)) ?? current.account;
    // Tell the owner, in case it was not them: a second factor now guards the account.
    const { ctx } = current;
    this.flow.deps.alerts.sendInBackground(account, { kind: 'factor-added', factor: account.mfa?.defaultMethod ?? 'email-otp' }, { at: now, ip: ctx.ip, device: deviceLabel(ctx.get('user-agent')) });
    if (hasPossessionFactor(current.state.amr)) return this.flow.finishLogin({ ...current, account });
    // The recovery codes were just shown on screen: they prove nothing the password did not.
    const state = await this.flow.deps.states.update(current.details.uid, { step: 'second-factor', excludeMethods: ['recovery-codes'] });
    return this.flow.secondFactorStep.begin({ ...current, account, state: state ?? current.state });
  }
}
