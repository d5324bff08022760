/**
 * SMS one-time passcodes. A phone number becomes usable only once it is verified: enrol(phone) texts a
 * 'phone-verify' code to the new number, and confirmPhone(code) then stores it on the account as
 * verified, in one atomic update. Sign-in codes go only to the verified number. amr "sms" (RFC 8176).
 */
import type { Connection, Model } from 'mongoose';
import { accountModel, type AccountFields } from '../../accounts/account.model.js';
import type { Logger } from '../../logger.js';
import type { SmsGateway } from '../../notify/sms.js';
import type { PolicySource } from '../../policy/policy-store.js';
import { maskPhone } from '../otp/mask.js';
import type { OtpPurpose, OtpStore } from '../otp/otp-store.js';
import { otpSettingsFor, sendCode, type OtpChallengeResult } from '../otp/send-code.js';
import type { ChallengeContext, Factor, FactorSubject, VerifyFailure, VerifyOutcome } from '../types.js';

/** E.164: "+", a country code that does not start with 0, at most 15 digits in all. */
const E164 = /^\+[1-9]\d{6,14}$/;

/** Accepts the separators people type ("+1 (415) 555-0123"); returns E.164 or null. */
export function normalisePhone(input: string): string | null {
  const compact = input.trim().replace(/[\s().-]/g, '');
  return E164.test(compact) ? compact : null;
}

export type PhoneEnrolResult = OtpChallengeResult | { ok: false; reason: 'invalid_phone'; message: string };

export type PhoneConfirmResult = { ok: true; phone: string } | { ok: false; reason: VerifyFailure; attemptsLeft?: number };

const TEXT: Record<OtpPurpose, (code: string, minutes: number) => string> = {
  signin: (code, minutes) => `Gatehouse: ${code} is your sign-in code. It expires in ${minutes} min. Never share it. Not you? Change your password.`,
  'phone-verify': (code, minutes) => `Gatehouse: ${code} is your code to add this phone number. It expires in ${minutes} min. Never share it.`,
  recovery: (code, minutes) => `Gatehouse: ${code} is your account recovery code. It expires in ${minutes} min. Never share it.`,
};

export interface SmsOtpDeps {
  connection: Connection;
  store: OtpStore;
  sms: SmsGateway;
  policies: PolicySource;
  log: Logger;
}

export class SmsOtpFactor implements Factor<{ phone: string }, PhoneEnrolResult, OtpChallengeResult> {
  readonly name = 'sms-otp' as const;
  private readonly accounts: Model<AccountFields>;

  constructor(private readonly deps: SmsOtpDeps) {
    this.accounts = accountModel(deps.connection);
  }

  async isEnrolled(subject: FactorSubject): Promise<boolean> {
    return Boolean(subject.phone && subject.phoneVerified);
  }

  /** Step 1 of adding (or changing) a phone: texts a verification code to the new number. */
  async enrol(subject: FactorSubject, input: { phone: string }, context: ChallengeContext = {}): Promise<PhoneEnrolResult> {
    const phone = normalisePhone(input.phone);
    if (!phone) return { ok: false, reason: 'invalid_phone', message: 'Enter the mobile number in international form, e.g. +14155550123.' };
    return this.send(subject, phone, 'phone-verify', context);
  }

  /** Step 2: the code from the text proves the number; only now is it stored, as verified. */
  async confirmPhone(subject: FactorSubject, response: string, context: ChallengeContext = {}): Promise<PhoneConfirmResult> {
    const result = await this.deps.store.verify({ accountId: subject.accountId, channel: 'sms', purpose: 'phone-verify', interactionId: context.interactionId ?? null }, response);
    if (!result.ok) return result;
    const phone = result.destination;
    const updated = await this.accounts.updateOne({ accountId: subject.accountId }, { $set: { phone, phoneVerified: true } }).exec();
    if (updated.matchedCount === 0) return { ok: false, reason: 'no_challenge' };
    this.deps.log.info({ accountId: subject.accountId }, 'phone number verified');
    return { ok: true, phone };
  }

  /** Texts a sign-in (or recovery) code to the verified phone, never to an unverified one. */
  async challenge(subject: FactorSubject, context: ChallengeContext, purpose: 'signin' | 'recovery' = 'signin'): Promise<OtpChallengeResult> {
    if (!subject.phone || !subject.phoneVerified) return { ok: false, reason: 'not_enrolled' };
    return this.send(subject, subject.phone, purpose, context);
  }

  async verify(subject: FactorSubject, response: string, context: ChallengeContext, purpose: 'signin' | 'recovery' = 'signin'): Promise<VerifyOutcome> {
    if (!subject.phone || !subject.phoneVerified) return { ok: false, reason: 'not_enrolled' };
    const result = await this.deps.store.verify({ accountId: subject.accountId, channel: 'sms', purpose, interactionId: context.interactionId ?? null }, response);
    if (!result.ok) return result;
    // The code proves the phone it went to; a number changed since then proves nothing.
    if (result.destination !== subject.phone) return { ok: false, reason: 'no_challenge' };
    return { ok: true, amr: ['sms'] };
  }

  private send(subject: FactorSubject, phone: string, purpose: OtpPurpose, context: ChallengeContext): Promise<OtpChallengeResult> {
    const settings = otpSettingsFor(this.deps.policies, subject);
    const binding = { accountId: subject.accountId, channel: 'sms' as const, purpose, interactionId: context.interactionId ?? null, destination: phone };
    return sendCode(this.deps.store, binding, settings, maskPhone(phone), (code, minutes) => this.deps.sms.send(phone, TEXT[purpose](code, minutes)), this.deps.log);
  }
}
