/**
 * The second-factor step: challenge with the default method, let the user switch to another enrolled
 * one or ask for a new code, and verify. Wrong codes count against the code's own cap (in the OTP
 * store) and the account's guess limit, and are audited; input that cannot be a code (its shape) counts
 * against neither. The page never says more than a masked destination.
 */
import { maskEmail, maskPhone } from '../../factors/index.js';
import type { VerifyFailure } from '../../factors/types.js';
import type { Current, Outcome, SecondFactorStepApi, SignInFlow } from '../flow.js';
import { METHOD_LABELS, sendFailureMessage, type CodeShape, type MethodsRead, type SendResult } from '../second-factors.js';
import type { SecondFactorMethod } from '../state.js';

const FAILURE_MESSAGES: Record<VerifyFailure, string> = {
  invalid: 'That code is not right. Check it and try again.',
  expired: 'That code has expired. Ask for a new one.',
  used: 'That code was already used. Ask for a new one.',
  too_many_attempts: 'Too many wrong codes. Ask for a new code.',
  no_challenge: 'There is no code waiting for this sign-in. Ask for a new one.',
  not_enrolled: 'That method is not set up for your account. Choose another way to verify.',
};

const PROMPTS: Record<SecondFactorMethod, (destination: string) => string> = {
  'email-otp': (d) => `Enter the code we emailed to ${d}.`,
  'sms-otp': (d) => `Enter the code we texted to ${d}.`,
  totp: () => 'Enter the 6-digit code from your authenticator app.',
  webauthn: () => 'Use your passkey or security key to confirm it’s you.',
  'recovery-codes': () => 'Enter one of the recovery codes you saved when you set up two-step verification.',
};

/** The prompt while no code was sent for this sign-in (the hourly cap, a failed delivery): claims no code. */
const NO_CODE_PROMPTS: Record<'email-otp' | 'sms-otp', (destination: string) => string> = {
  'email-otp': (d) => `No code could be emailed to ${d} for this sign-in.`,
  'sms-otp': (d) => `No code could be texted to ${d} for this sign-in.`,
};

/** What to type instead of input that cannot be a code; said on the same form. */
function shapeMessage(method: SecondFactorMethod, shape: CodeShape): string {
  if (shape.kind === 'recovery-code') return 'Enter one of your recovery codes as you saved it: 10 letters and digits, such as abcde-23456.';
  if (method === 'totp') return `Enter the ${shape.length}-digit code from your authenticator app.`;
  return `Enter the ${shape.length}-digit code we ${method === 'sms-otp' ? 'texted' : 'emailed'} to you.`;
}

function pauseMessage(minutes: number): string {
  return `For your security, verification by code is paused for this account after too many wrong codes. Try again in ${minutes} ${minutes === 1 ? 'minute' : 'minutes'}.`;
}

const sendMessage = (result: SendResult) => sendFailureMessage(result, 'Use another way to verify');

export class SecondFactorStep implements SecondFactorStepApi {
  /**
   * The account's available methods, read once per request (entering the step and showing its page both
   * need them). Within one request of this step nothing enrols or removes a method before they are read
   * again: a verified recovery code (which can use up the last one) finishes the sign-in.
   */
  private readonly available = new WeakMap<Current['ctx'], { accountId: string; read: Promise<MethodsRead> }>();
  /** Whether the account's wrong answers are used up, read at most once per request (sending and the page ask). */
  private readonly pauses = new WeakMap<Current['ctx'], { accountId: string; until: Promise<Date | null> }>();

  constructor(private readonly flow: SignInFlow) {}

  /**
   * What the account has set up, read once per request. `forVerifying`: the method this request verifies
   * (the first thing a verifying request reads); the read then also brings what verifying it needs.
   */
  private read(current: Current, forVerifying?: SecondFactorMethod): Promise<MethodsRead> {
    let known = this.available.get(current.ctx);
    if (!known || known.accountId !== current.account.accountId) {
      known = { accountId: current.account.accountId, read: this.flow.deps.factors.readMethods(current.account, forVerifying) };
      this.available.set(current.ctx, known);
    }
    return known.read;
  }

  /** The methods this sign-in may use: what the account has and its policy allows, minus exclusions. */
  private async methods(current: Current, forVerifying?: SecondFactorMethod): Promise<SecondFactorMethod[]> {
    const excluded = new Set(current.state.excludeMethods ?? []);
    return (await this.read(current, forVerifying)).methods.filter((m) => !excluded.has(m));
  }

  /** Until when codes are not checked for the account (its guesses are used up), or null. */
  private pausedUntil(current: Current): Promise<Date | null> {
    let known = this.pauses.get(current.ctx);
    if (!known || known.accountId !== current.account.accountId) {
      known = { accountId: current.account.accountId, until: this.flow.deps.guesses.pausedUntil(current.account.accountId) };
      this.pauses.set(current.ctx, known);
    }
    return known.until;
  }

  /** Enrolled, but nothing usable is left (e.g. the policy no longer allows its factors): say so, never skip. */
  private noMethod(current: Current): Outcome {
    return this.flow.view(current.details, 'error', { title: 'Cannot verify', heading: 'We cannot verify you right now', message: 'None of your verification methods is available. Contact your administrator.', detail: null, code: 'no_second_factor' }, 403);
  }

  /**
   * Enters the step with the account's default method (sending a code when that method needs one). A new
   * state (`stored: false`, straight after the password) is stored here with that method already set, before
   * any code is sent, instead of being stored and then updated with the method.
   */
  async begin(current: Current, options: { stored?: boolean } = {}): Promise<Outcome> {
    const method = (await this.methods(current))[0];
    if (options.stored === false) {
      const state = await this.flow.deps.states.start(method ? { ...current.state, step: 'second-factor', method } : current.state);
      return method ? this.use({ ...current, state }, method, undefined, { recorded: true }) : this.noMethod(current);
    }
    return method ? this.use(current, method) : this.noMethod(current);
  }

  /** `recorded`: the state already says this step and method (just stored by `begin`). */
  private async use(current: Current, method: SecondFactorMethod, notice?: string, { recorded = false } = {}): Promise<Outcome> {
    const { deps } = this.flow;
    let error: string | null = null;
    // While the account's guesses are used up no code would be checked: none is sent (the page says why).
    if ((method === 'email-otp' || method === 'sms-otp') && !(await this.pausedUntil(current))) {
      const sent = await deps.factors.send(method, current.account, this.flow.challengeContext(current.ctx, current.details));
      if (!sent.ok) error = sendMessage(sent);
      await this.flow.audit({ ...current, accountId: current.account.accountId }, 'signin.code_sent', sent.ok ? 'success' : 'failure', { method, ...(sent.ok ? {} : { reason: sent.reason }) });
    }
    const state = recorded ? current.state : await deps.states.update(current.details.uid, { step: 'second-factor', method });
    return this.page({ ...current, state: state ?? current.state }, { error, notice: error ? null : (notice ?? null) });
  }

  async page(current: Current, extra: Record<string, unknown> = {}, status = 200): Promise<Outcome> {
    const methods = await this.methods(current);
    const method = current.state.method && methods.includes(current.state.method) ? current.state.method : methods[0];
    if (!method) return this.noMethod(current);
    const { email, phone } = current.account;
    const destination = method === 'sms-otp' ? maskPhone(phone ?? '') : maskEmail(email ?? '');
    // Said before a code is typed, not after: passkeys are not guesses, so only code methods are paused.
    const until = method === 'webauthn' ? null : await this.pausedUntil(current);
    const minutesLeft = until ? Math.max(1, Math.ceil((until.getTime() - this.flow.deps.clock.now().getTime()) / 60_000)) : 0;
    const paused = until ? { error: pauseMessage(minutesLeft), notice: null } : {};
    // Another sign-in's code does not work here, so only a code sent in this interaction makes "enter the code" true.
    const codeMethod = method === 'email-otp' || method === 'sms-otp';
    const noCode = codeMethod && !(await this.flow.deps.factors.codeSent(method, current.account, this.flow.challengeContext(current.ctx, current.details)));
    return this.flow.view(
      current.details,
      'second-factor',
      {
        title: 'Verify it’s you',
        method,
        prompt: noCode ? NO_CODE_PROMPTS[method](destination) : PROMPTS[method](destination),
        // Nothing to type without a code; while paused the (disabled) form stays, the pause message says why.
        codeForm: !noCode || Boolean(until),
        codeLabel: method === 'recovery-codes' ? 'Recovery code' : 'Code',
        canResend: !until && (method === 'email-otp' || method === 'sms-otp'),
        paused: Boolean(until),
        alternatives: methods.filter((m) => m !== method).map((m) => ({ method: m, label: METHOD_LABELS[m].switchTo })),
        rememberDays: this.rememberDays(current),
        ...extra,
        ...paused,
      },
      status,
    );
  }

  /** Offered only where the account's policy allows trusted devices. */
  private rememberDays(current: Current): number | null {
    const { trustedDevice } = this.flow.deps.factors.policyFor(current.account.market);
    return trustedDevice.enabled ? trustedDevice.lifetimeDays : null;
  }

  async verify(current: Current, code: string, remember = false): Promise<Outcome> {
    const { deps } = this.flow;
    const method = current.state.method;
    if (current.state.step !== 'second-factor' || !method) return this.flow.stepView(current);
    if (!(await this.methods(current, method)).includes(method)) return this.page(current, { error: FAILURE_MESSAGES.not_enrolled }, 400);
    // Input that cannot be a code by its shape is no guess: it takes none and does not count against the code.
    // Not audited either: nothing was checked, and such posts are not limited, so they must not fill the log.
    const shape = deps.factors.misshapenCode(method, current.account, code);
    if (shape) return this.page(current, { error: shapeMessage(method, shape) }, 400);
    const accountId = current.account.accountId;
    // Each code has its own cap; this bounds guessing per account across sign-ins and methods (TOTP, recovery codes).
    if (!(await deps.guesses.take(accountId))) {
      await this.flow.audit({ ...current, accountId }, 'signin.second_factor', 'failure', { method, reason: 'guess_limit' });
      await deps.states.finish(current.details.uid);
      return this.flow.view(current.details, 'error', { title: 'Too many attempts', heading: 'Too many wrong codes', message: 'For your security, verification is paused for this account. Try again in 15 minutes.', detail: null, code: 'too_many_attempts' }, 429);
    }
    // The authenticator app's credential comes from the read above, not read again.
    const outcome = await deps.factors.verify(method, current.account, code, this.flow.challengeContext(current.ctx, current.details), await this.read(current));
    if (!outcome.ok) {
      await this.flow.audit({ ...current, accountId }, 'signin.second_factor', 'failure', { method, reason: outcome.reason });
      const left = outcome.reason === 'invalid' && outcome.attemptsLeft !== undefined ? ` ${outcome.attemptsLeft} ${outcome.attemptsLeft === 1 ? 'try' : 'tries'} left.` : '';
      return this.page(current, { error: FAILURE_MESSAGES[outcome.reason] + left }, 401);
    }
    await deps.guesses.clear(accountId);
    await this.flow.audit({ ...current, accountId }, 'signin.second_factor', 'success', { method });
    // Trust is written only now, after the second factor was verified.
    if (remember) await this.flow.trustDevice(current);
    return this.flow.finishLogin(current, outcome.amr);
  }

  async switchMethod(current: Current, method: string): Promise<Outcome> {
    const chosen = (await this.methods(current)).find((m) => m === method);
    if (current.state.step !== 'second-factor' || !chosen) return this.page(current, { error: 'Choose one of the ways offered below.' }, 400);
    return this.use(current, chosen);
  }

  async resend(current: Current): Promise<Outcome> {
    const method = current.state.method;
    if (current.state.step !== 'second-factor' || (method !== 'email-otp' && method !== 'sms-otp')) return this.flow.stepView(current);
    return this.use(current, method, 'We sent a new code.');
  }
}
