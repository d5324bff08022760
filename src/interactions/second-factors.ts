/**
 * The second-factor operations the sign-in flow needs, over the factor modules in src/factors/.
 * The flow speaks in "methods" (what the user picks); this maps each to its factor.
 */
import type { AccountDocument } from '../accounts/account.model.js';
import type { CredentialForVerifying } from '../factors/credentials.js';
import type { ChallengeContext, FactorSubject, VerifyOutcome } from '../factors/types.js';
import type { Policy } from '../policy/policy.js';
import type { SecondFactorMethod } from './state.js';

export type SendResult =
  | { ok: true; destination: string; retryAfterSeconds: number }
  | { ok: false; reason: 'cooldown' | 'hourly_cap' | 'unavailable'; retryAfterSeconds?: number };

/** What a typed code must look like: so many digits (an app's or a sent code), or a recovery code. */
export type CodeShape = { kind: 'digits'; length: number } | { kind: 'recovery-code' };

/** The account's market policy (config/policies.json): 2FA mode, factors, trusted devices, lockout. */
export type MarketPolicy = Pick<Policy, 'mfa' | 'allowDeferral' | 'factors' | 'trustedDevice' | 'lockout'>;

/** What the flow asks of the factors. Implemented in second-factors-impl.ts over src/factors. */
export interface SecondFactors {
  subjectOf(account: AccountDocument): FactorSubject;
  policyFor(market: string): MarketPolicy;
  /** Methods this account has set up and its policy allows, default first. */
  availableMethods(account: AccountDocument): Promise<SecondFactorMethod[]>;
  /**
   * The same, with what was read to find them. `forVerifying`: the method the request is about to verify;
   * the read then also brings what verifying it needs, and `verify` given this read does not read it again.
   */
  readMethods(account: AccountDocument, forVerifying?: SecondFactorMethod): Promise<MethodsRead>;
  /** Sends a sign-in code (email or SMS); other methods need nothing sent. */
  send(method: 'email-otp' | 'sms-otp', account: AccountDocument, context: ChallengeContext): Promise<SendResult>;
  /** Whether a sign-in code was sent by `method` in this interaction (it may since be used, expired or burnt). */
  codeSent(method: 'email-otp' | 'sms-otp', account: AccountDocument, context: ChallengeContext): Promise<boolean>;
  verify(method: SecondFactorMethod, account: AccountDocument, code: string, context: ChallengeContext, read?: MethodsRead): Promise<VerifyOutcome>;
  /**
   * The shape `method`'s codes have, when `code` does not have it (so it can never be right: not a guess);
   * null when it does, or when nothing is typed for `method` (passkeys). Reads nothing.
   */
  misshapenCode(method: SecondFactorMethod, account: AccountDocument, code: string): CodeShape | null;

  setSecurityCode(account: AccountDocument, code: string): Promise<{ ok: true } | { ok: false; message: string }>;
  startPhoneVerification(account: AccountDocument, phone: string, context: ChallengeContext): Promise<SendResult>;
  confirmPhone(account: AccountDocument, phone: string, code: string, context: ChallengeContext): Promise<VerifyOutcome>;
  startTotp(account: AccountDocument): Promise<{ secret: string; qrCodeDataUrl: string }>;
  confirmTotp(account: AccountDocument, code: string): Promise<VerifyOutcome>;
  regenerateRecoveryCodes(account: AccountDocument): Promise<string[]>;
  /** Removes an authenticator app / un-verifies a phone that the finishing enrolment did not set up itself. */
  discardLeftovers(account: AccountDocument, keep: { totp: boolean; phone: boolean }): Promise<void>;
}

/** The account's usable methods and the credentials read to find them (`readMethods`). */
export interface MethodsRead {
  methods: SecondFactorMethod[];
  credentials: readonly CredentialForVerifying[];
}

export const METHOD_LABELS: Record<SecondFactorMethod, { switchTo: string; option: string }> = {
  'email-otp': { switchTo: 'Email me a code instead', option: 'Email a code to me' },
  'sms-otp': { switchTo: 'Text me a code instead', option: 'Text a code to my mobile' },
  totp: { switchTo: 'Use my authenticator app', option: 'Use my authenticator app' },
  webauthn: { switchTo: 'Use your security key or device', option: 'Use my passkey or security key' },
  'recovery-codes': { switchTo: 'Use a recovery code', option: 'Recovery code' },
};

/** What to tell the user when a code was not sent; `alternative` says what they can do instead. */
export function sendFailureMessage(result: SendResult, alternative: string): string | null {
  if (result.ok) return null;
  if (result.reason === 'cooldown') return `A code was sent moments ago. You can ask for another in ${result.retryAfterSeconds ?? 30} seconds.`;
  if (result.reason === 'hourly_cap') {
    const wait = result.retryAfterSeconds === undefined ? 'later' : `in ${waitText(result.retryAfterSeconds)}`;
    return `Too many codes were sent in the last hour. You can ask for a new code ${wait}. ${alternative}, or try again then.`;
  }
  return `We could not send a code just now. ${alternative}, or try again shortly.`;
}

/** "45 seconds", "1 minute", "55 minutes": rounded up, so the person never asks too early. */
function waitText(seconds: number): string {
  if (seconds < 60) return `${seconds} ${seconds === 1 ? 'second' : 'seconds'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} ${minutes === 1 ? 'minute' : 'minutes'}`;
}
