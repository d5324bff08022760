/**
 * Email one-time passcodes: a numeric code mailed to the account's address (text + HTML from
 * views/mail/otp-code.*.ejs), checked through the shared OtpStore. Every account with an email can use
 * it; there is nothing to set up. amr "otp" (RFC 8176 has no email-specific value).
 */
import type { Logger } from '../../logger.js';
import type { Mailer } from '../../notify/mailer.js';
import type { PolicySource } from '../../policy/policy-store.js';
import { maskEmail } from '../otp/mask.js';
import type { OtpStore } from '../otp/otp-store.js';
import { otpSettingsFor, sendCode, type OtpChallengeResult } from '../otp/send-code.js';
import type { ChallengeContext, Factor, FactorSubject, VerifyOutcome } from '../types.js';

export type EmailOtpPurpose = 'signin' | 'recovery';

/** The words of each kind of mail; the templates only lay them out. */
const COPY: Record<EmailOtpPurpose, { subject: string; intro: string; notYou: string }> = {
  signin: {
    subject: 'Your Gatehouse sign-in code',
    intro: 'Use this code to finish signing in to Gatehouse:',
    notYou:
      'If you did not just try to sign in, someone else may know your password. Do not give this code to anyone, change your password, and tell your administrator.',
  },
  recovery: {
    subject: 'Your Gatehouse account recovery code',
    intro: 'Use this code to recover access to your Gatehouse account:',
    notYou:
      'If you did not ask to recover your account, do not give this code to anyone and ignore this mail: nothing changes without the code. If it happens again, tell your administrator.',
  },
};

export interface EmailOtpDeps {
  store: OtpStore;
  mailer: Pick<Mailer, 'send'>;
  policies: PolicySource;
  log: Logger;
  /** Told when a code was entered for the address it went to (the account layer marks the email verified). */
  onEmailProven?: (accountId: string, email: string) => Promise<void>;
}

export class EmailOtpFactor implements Factor<void, void, OtpChallengeResult> {
  readonly name = 'email-otp' as const;

  constructor(private readonly deps: EmailOtpDeps) {}

  async isEnrolled(subject: FactorSubject): Promise<boolean> {
    return Boolean(subject.email);
  }

  /** The account's email address is the enrolment: nothing to set up. */
  async enrol(subject: FactorSubject): Promise<void> {
    if (!subject.email) throw new Error('an account without an email address cannot receive email codes');
  }

  /** Mails a new code (replacing this sign-in's earlier one; other sign-ins keep theirs), within the cooldown and hourly cap. */
  async challenge(subject: FactorSubject, context: ChallengeContext, purpose: EmailOtpPurpose = 'signin'): Promise<OtpChallengeResult> {
    const email = subject.email;
    if (!email) return { ok: false, reason: 'not_enrolled' };
    const settings = otpSettingsFor(this.deps.policies, subject);
    const binding = { accountId: subject.accountId, channel: 'email' as const, purpose, interactionId: context.interactionId ?? null, destination: email };
    const copy = COPY[purpose];
    return sendCode(this.deps.store, binding, settings, maskEmail(email), (code, minutes) =>
      this.deps.mailer.send(email, copy.subject, 'otp-code', { name: subject.name, code, minutes, intro: copy.intro, notYou: copy.notYou }),
      this.deps.log,
    );
  }

  async verify(subject: FactorSubject, response: string, context: ChallengeContext, purpose: EmailOtpPurpose = 'signin'): Promise<VerifyOutcome> {
    if (!subject.email) return { ok: false, reason: 'not_enrolled' };
    const result = await this.deps.store.verify({ accountId: subject.accountId, channel: 'email', purpose, interactionId: context.interactionId ?? null }, response);
    if (!result.ok) return result;
    // A code proves control of the address it went to; if the account's address changed since, it proves nothing.
    if (result.destination.toLowerCase() !== subject.email.toLowerCase()) return { ok: false, reason: 'no_challenge' };
    // Proving the address is a side effect (a write only while unverified): failing to record it must not fail the sign-in.
    if (!subject.emailVerified) await this.deps.onEmailProven?.(subject.accountId, result.destination).catch((err: unknown) => this.deps.log.warn({ err, accountId: subject.accountId }, 'could not mark the email address verified'));
    return { ok: true, amr: ['otp'] };
  }
}
