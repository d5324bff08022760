/**
 * The security code: 6–9 digits the user picks at enrolment, later asked for as proof of identity by the
 * recovery flows (forgot password / User ID). Hashed with argon2id through the PasswordHasher (same
 * parameters as passwords; verification costs the same whether or not a code is set). One per account,
 * under a deterministic id, so setting a new one replaces the old in a single upsert.
 *
 * amr "pin" (RFC 8176): a short numeric secret the user chose. It is not a sign-in factor here; the
 * value matters only if a flow ever reports it.
 */
import type { Connection } from 'mongoose';
import type { PasswordHasher } from '../password/password.js';
import type { Logger } from '../../logger.js';
import { credentialsCollection, type CredentialDocument } from '../credentials.js';
import type { Clock, Factor, FactorSubject, VerifyOutcome } from '../types.js';

export const SECURITY_CODE_MIN = 6;
export const SECURITY_CODE_MAX = 9;

export type SecurityCodeProblem = 'format' | 'same_digit' | 'sequence' | 'repeating_pattern' | 'user_id';

export type SecurityCodeCheck = { ok: true; code: string } | { ok: false; reason: SecurityCodeProblem; message: string };

export type SecurityCodeEnrolResult = { ok: true } | { ok: false; reason: SecurityCodeProblem; message: string };

export interface SecurityCodeCredential extends CredentialDocument {
  type: 'security-code';
  hash: string;
}

/** Each step +1 or each step -1, wrapping 9↔0 ("7890123" and "3210987" are runs too). */
function isRun(digits: number[], direction: 1 | -1): boolean {
  return digits.every((d, i) => i === 0 || d === (digits[i - 1]! + direction + 10) % 10);
}

/** The User ID's digits, all together and each group on its own, where there are at least 4. */
function userIdDigitSequences(userId: string): string[] {
  const all = userId.replace(/\D/g, '');
  if (all.length < 4) return [];
  const groups = userId.match(/\d{4,}/g) ?? [];
  return [...new Set([all, ...groups])];
}

/** Says whether a chosen code is acceptable, and if not, why, in words for the person choosing it. */
export function checkSecurityCode(input: string, userId: string): SecurityCodeCheck {
  const code = input.replace(/\s/g, '');
  if (!/^\d+$/.test(code) || code.length < SECURITY_CODE_MIN || code.length > SECURITY_CODE_MAX) {
    return { ok: false, reason: 'format', message: `The security code must be ${SECURITY_CODE_MIN} to ${SECURITY_CODE_MAX} digits.` };
  }
  if (/^(\d)\1+$/.test(code)) return { ok: false, reason: 'same_digit', message: 'The security code must not be one digit repeated.' };
  const digits = [...code].map(Number);
  if (isRun(digits, 1) || isRun(digits, -1)) {
    return { ok: false, reason: 'sequence', message: 'The security code must not be a run of consecutive digits such as 123456 or 987654.' };
  }
  if (repeatsPrefix(code)) {
    return { ok: false, reason: 'repeating_pattern', message: 'The security code must not repeat a short pattern such as 121212 or 123123.' };
  }
  for (const sequence of userIdDigitSequences(userId)) {
    if (code.includes(sequence) || sequence.includes(code)) {
      return { ok: false, reason: 'user_id', message: 'The security code must not contain or be made of the digits of your User ID.' };
    }
  }
  return { ok: true, code };
}

/** True when the code is a block of 2–4 digits repeated, possibly cut short (12121, 1231231). */
function repeatsPrefix(code: string): boolean {
  for (let size = 2; size <= 4 && size * 2 <= code.length; size++) {
    const block = code.slice(0, size);
    if (block.repeat(Math.ceil(code.length / size)).startsWith(code)) return true;
  }
  return false;
}

export interface SecurityCodeDeps {
  connection: Connection;
  hasher: PasswordHasher;
  clock: Clock;
  log: Logger;
}

export class SecurityCodeFactor implements Factor<{ code: string }, SecurityCodeEnrolResult, void> {
  readonly name = 'security-code' as const;
  private readonly credentials;

  constructor(private readonly deps: SecurityCodeDeps) {
    this.credentials = credentialsCollection<SecurityCodeCredential>(deps.connection);
  }

  async isEnrolled(subject: FactorSubject): Promise<boolean> {
    return (await this.credentials.countDocuments({ _id: credentialId(subject.accountId) }, { limit: 1 })) > 0;
  }

  /** Sets (or replaces) the security code, after refusing trivial ones. */
  async enrol(subject: FactorSubject, input: { code: string }): Promise<SecurityCodeEnrolResult> {
    const checked = checkSecurityCode(input.code, subject.userId);
    if (!checked.ok) return checked;
    const now = this.deps.clock.now();
    const hash = await this.deps.hasher.hash(checked.code);
    await this.credentials.updateOne(
      { _id: credentialId(subject.accountId) },
      { $set: { hash, updatedAt: now }, $setOnInsert: { accountId: subject.accountId, type: 'security-code', createdAt: now } },
      { upsert: true },
    );
    this.deps.log.info({ accountId: subject.accountId }, 'security code set');
    return { ok: true };
  }

  /** Nothing to send: the user knows the code. */
  async challenge(): Promise<void> {}

  /** argon2 verification; without a stored code a dummy hash is verified, so both take the same time. */
  async verify(subject: FactorSubject, response: string): Promise<VerifyOutcome> {
    const doc = await this.credentials.findOne({ _id: credentialId(subject.accountId) });
    const matches = await this.deps.hasher.verify(doc?.hash, response.replace(/\s/g, ''));
    if (!doc) return { ok: false, reason: 'not_enrolled' };
    return matches ? { ok: true, amr: ['pin'] } : { ok: false, reason: 'invalid' };
  }
}

function credentialId(accountId: string): string {
  return `security-code:${accountId}`;
}
