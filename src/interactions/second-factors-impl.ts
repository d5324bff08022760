/**
 * SecondFactors (what the sign-in flow asks) over the factor modules (src/factors) and the per-market
 * policy (src/policy). Which methods an account may use = what it has set up ∩ what its market allows.
 */
import type { AccountDocument } from '../accounts/account.model.js';
import type { AccountService } from '../accounts/accounts.js';
import { subjectFromAccount, type Factors, type OtpChallengeResult } from '../factors/index.js';
import { isWellFormedNumericCode } from '../factors/otp/otp-store.js';
import { otpSettingsFor } from '../factors/otp/send-code.js';
import { isWellFormedRecoveryCode } from '../factors/recovery-codes/recovery-codes.js';
import { isWellFormedTotpCode, TOTP_DIGITS } from '../factors/totp/totp.js';
import type { ChallengeContext, VerifyOutcome } from '../factors/types.js';
import type { PolicySource } from '../policy/policy-store.js';
import type { CodeShape, SecondFactors, SendResult } from './second-factors.js';
import type { SecondFactorMethod } from './state.js';

function toSendResult(result: OtpChallengeResult): SendResult {
  if (result.ok) return { ok: true, destination: result.destination, retryAfterSeconds: result.retryAfterSeconds };
  if (result.reason === 'cooldown' || result.reason === 'hourly_cap') return { ok: false, reason: result.reason, retryAfterSeconds: result.retryAfterSeconds };
  return { ok: false, reason: 'unavailable' };
}

export function createSecondFactors(factors: Factors, policies: PolicySource, accounts: AccountService): SecondFactors {
  const subjectOf = (account: AccountDocument) => subjectFromAccount(account);
  const policyFor = (market: string) => policies.policyFor(market);

  const readMethods: SecondFactors['readMethods'] = async (account, forVerifying) => {
    const allowed = new Set<string>([...policyFor(account.market).factors, 'webauthn']);
    const subject = subjectOf(account);
    // Passkeys are not a policy factor (they resist phishing, unlike codes): usable wherever the issuer can host them.
    const stored = (['totp', 'webauthn', 'recovery-codes'] as const).filter((m) => allowed.has(m) && (m !== 'webauthn' || factors.webauthn.ceremoniesAvailable));
    // Every stored credential the answer depends on, in one round trip (email and SMS are on the account).
    const credentials = await factors.credentialSummaries(account.accountId, stored, forVerifying ? { forVerifying } : {});
    const candidates: Array<[SecondFactorMethod, () => boolean | Promise<boolean>]> = [
      ['email-otp', () => factors.emailOtp.isEnrolled(subject)],
      ['sms-otp', () => factors.smsOtp.isEnrolled(subject)],
      ['totp', () => factors.totp.enrolledIn(subject, credentials)],
      ['webauthn', () => factors.webauthn.ceremoniesAvailable && factors.webauthn.enrolledIn(subject, credentials)],
      ['recovery-codes', () => factors.recoveryCodes.enrolledIn(subject, credentials)],
    ];
    const usable: SecondFactorMethod[] = [];
    for (const [method, enrolled] of candidates) {
      if (allowed.has(method) && (await enrolled())) usable.push(method);
    }
    // The user's chosen default first; recovery codes are a fallback, never the default.
    const preferred = account.mfa?.defaultMethod;
    usable.sort((a, b) => Number(b === preferred) - Number(a === preferred) || Number(a === 'recovery-codes') - Number(b === 'recovery-codes'));
    return { methods: usable, credentials };
  };

  return {
    subjectOf,
    policyFor,
    readMethods,

    async availableMethods(account) {
      return (await readMethods(account)).methods;
    },

    async send(method, account, context) {
      const subject = subjectOf(account);
      const result = method === 'email-otp' ? await factors.emailOtp.challenge(subject, context) : await factors.smsOtp.challenge(subject, context);
      return toSendResult(result);
    },

    async codeSent(method, account, context) {
      const channel = method === 'email-otp' ? 'email' : 'sms';
      return factors.otp.wasSent({ accountId: account.accountId, channel, purpose: 'signin', interactionId: context.interactionId ?? null });
    },

    async verify(method, account, code, context, read): Promise<VerifyOutcome> {
      const subject = subjectOf(account);
      switch (method) {
        case 'email-otp':
          return factors.emailOtp.verify(subject, code, context);
        case 'sms-otp':
          return factors.smsOtp.verify(subject, code, context);
        case 'totp':
          return read ? factors.totp.verifyKnown(subject, code, read.credentials) : factors.totp.verify(subject, code);
        case 'recovery-codes':
          return factors.recoveryCodes.verify(subject, code);
        case 'webauthn': // the browser's JSON; the sign-in flow calls the factor directly to audit its reasons
          return factors.webauthn.verify(subject, code, context);
      }
    },

    misshapenCode(method, account, code): CodeShape | null {
      switch (method) {
        case 'totp':
          return isWellFormedTotpCode(code) ? null : { kind: 'digits', length: TOTP_DIGITS };
        case 'email-otp':
        case 'sms-otp': {
          // The length the account's market gives its codes (what the factor issued them with).
          const { length } = otpSettingsFor(policies, subjectOf(account));
          return isWellFormedNumericCode(code, length) ? null : { kind: 'digits', length };
        }
        case 'recovery-codes':
          return isWellFormedRecoveryCode(code) ? null : { kind: 'recovery-code' };
        case 'webauthn':
          return null;
      }
    },

    async setSecurityCode(account, code) {
      const result = await factors.securityCode.enrol(subjectOf(account), { code });
      return result.ok ? { ok: true } : { ok: false, message: result.message };
    },

    async startPhoneVerification(account, phone, context: ChallengeContext) {
      const result = await factors.smsOtp.enrol(subjectOf(account), { phone }, context);
      if (!result.ok && result.reason === 'invalid_phone') return { ok: false, reason: 'unavailable' };
      return toSendResult(result as OtpChallengeResult);
    },

    async confirmPhone(account, _phone, code, context) {
      const result = await factors.smsOtp.confirmPhone(subjectOf(account), code, context);
      return result.ok ? { ok: true, amr: ['sms'] } : result;
    },

    async startTotp(account) {
      // Reloading the page or mistyping the code must not replace the key the user just scanned.
      const subject = subjectOf(account);
      const { secret, qrCodeDataUrl } = (await factors.totp.pendingEnrolment(subject)) ?? (await factors.totp.enrol(subject));
      return { secret, qrCodeDataUrl };
    },

    async confirmTotp(account, code) {
      const result = await factors.totp.confirmEnrolment(subjectOf(account), code);
      return result.ok ? { ok: true, amr: ['otp'] } : result;
    },

    async regenerateRecoveryCodes(account) {
      return (await factors.recoveryCodes.enrol(subjectOf(account))).codes;
    },

    async discardLeftovers(account, keep) {
      if (!keep.totp) await factors.totp.remove(subjectOf(account));
      if (!keep.phone) await accounts.model.updateOne({ accountId: account.accountId }, { $set: { phoneVerified: false } }).exec();
    },
  };
}
