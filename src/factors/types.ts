/**
 * What every authentication factor has in common. Each factor lives in src/factors/<name>/ and offers
 * the same three verbs: enrol (set it up for an account), challenge (prepare a sign-in check, e.g. send
 * a code) and verify (check the user's response). Challenging never enrols, and enrolling never signs in.
 */

export type FactorName =
  | 'password'
  | 'totp'
  | 'email-otp'
  | 'sms-otp'
  | 'recovery-codes'
  | 'security-code'
  | 'webauthn'
  | 'trusted-device';

/** The account facts a factor may use. Factors never see or change anything else about the account. */
export interface FactorSubject {
  accountId: string;
  userId: string;
  name: string;
  email?: string | null;
  /** Already proven: an entered email code then has nothing to record. */
  emailVerified?: boolean;
  phone?: string | null;
  phoneVerified: boolean;
}

/** Where a challenge happens: tying codes to the sign-in interaction keeps them from being used elsewhere. */
export interface ChallengeContext {
  interactionId?: string;
  ip?: string;
  userAgent?: string;
  requestId?: string;
}

export type VerifyFailure =
  | 'invalid' // wrong code
  | 'expired' // the code's time is up
  | 'used' // already accepted once (replay)
  | 'too_many_attempts' // this code is burnt: request a new one
  | 'no_challenge' // nothing was sent, or it belongs to another interaction
  | 'not_enrolled';

export type VerifyOutcome =
  | { ok: true; amr: string[] }
  | { ok: false; reason: VerifyFailure; attemptsLeft?: number };

/** Injected wherever time matters, so tests move time instead of sleeping. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** The shared shape; each factor narrows the enrolment input/output and challenge result types. */
export interface Factor<EnrolInput = void, EnrolResult = void, ChallengeResult = void> {
  readonly name: FactorName;
  isEnrolled(subject: FactorSubject): Promise<boolean>;
  enrol(subject: FactorSubject, input: EnrolInput): Promise<EnrolResult>;
  challenge(subject: FactorSubject, context: ChallengeContext): Promise<ChallengeResult>;
  verify(subject: FactorSubject, response: string, context: ChallengeContext): Promise<VerifyOutcome>;
}
