/**
 * Recovery codes: ten single-use codes shown once, for when the usual second factor is out of reach.
 *
 * Format: `xxxxx-xxxxx` from a 30-symbol alphabet without look-alikes (no 0/o, 1/i/l, u), about 49
 * bits each, typed case-, space- and dash-insensitively.
 *
 * Stored as HMAC-SHA256 under the code MAC key (see code-mac.ts), not argon2id: the codes are random
 * with ~49 bits, so a slow hash adds little once the key is out of the database's reach, and a keyed
 * hash lets verification compare in constant time against the ten entries and mark the match used with
 * one conditional update, instead of up to ten argon2 runs (~0.5 s of CPU) per guess, which would turn
 * this form into a cheap way to load the server.
 *
 * amr "otp" (RFC 8176: "one-time password"): a recovery code is exactly that, a password valid once.
 * The other values do not fit (no hardware or software key is involved, and "kba" means answering
 * knowledge questions). The audit log records that it was a recovery code.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { Connection } from 'mongoose';
import type { Logger } from '../../logger.js';
import { CodeMac } from '../code-mac.js';
import { credentialsCollection, type CredentialDocument, type CredentialSummary } from '../credentials.js';
import type { Clock, Factor, FactorSubject, VerifyOutcome } from '../types.js';

export const RECOVERY_CODE_COUNT = 10;
const ALPHABET = '23456789abcdefghjkmnpqrstvwxyz';
const GROUP = 5;

interface RecoveryCodeEntry {
  mac: string;
  usedAt: Date | null;
}

export interface RecoveryCodesCredential extends CredentialDocument {
  type: 'recovery-codes';
  /** Random per generation and part of each MAC: a regenerated set shares nothing with the old one. */
  setId: string;
  codes: RecoveryCodeEntry[];
}

export interface RecoveryCodeSet {
  /** Plaintext, shown once and never stored. */
  codes: string[];
  createdAt: Date;
}

export function generateRecoveryCode(): string {
  let raw = '';
  for (let i = 0; i < GROUP * 2; i++) raw += ALPHABET[randomInt(ALPHABET.length)];
  return `${raw.slice(0, GROUP)}-${raw.slice(GROUP)}`;
}

/** "K7M2P 9XQ4T", "k7m2p-9xq4t" and "k7m2p9xq4t" are the same code. */
export function normaliseRecoveryCode(input: string): string {
  return input.toLowerCase().replace(/[\s-]/g, '');
}

/** Whether `input` has the shape of a recovery code (10 characters of the alphabet, after normalising). */
export function isWellFormedRecoveryCode(input: string): boolean {
  const code = normaliseRecoveryCode(input);
  return code.length === GROUP * 2 && [...code].every((c) => ALPHABET.includes(c));
}

export interface RecoveryCodesDeps {
  connection: Connection;
  mac: CodeMac;
  clock: Clock;
  log: Logger;
}

export class RecoveryCodesFactor implements Factor<void, RecoveryCodeSet, void> {
  readonly name = 'recovery-codes' as const;
  private readonly credentials;

  constructor(private readonly deps: RecoveryCodesDeps) {
    this.credentials = credentialsCollection<RecoveryCodesCredential>(deps.connection);
  }

  /** True while at least one code is unused. */
  async isEnrolled(subject: FactorSubject): Promise<boolean> {
    return (await this.remaining(subject)) > 0;
  }

  /** isEnrolled over credentials already read (credentialSummaries). */
  enrolledIn(subject: FactorSubject, credentials: readonly CredentialSummary[]): boolean {
    const doc = credentials.find((c) => c._id === credentialId(subject.accountId));
    return (doc?.codes ?? []).some((c) => c.usedAt === null);
  }

  async remaining(subject: FactorSubject): Promise<number> {
    const doc = await this.credentials.findOne({ _id: credentialId(subject.accountId) });
    return doc ? doc.codes.filter((c) => c.usedAt === null).length : 0;
  }

  /** Creates the codes, or regenerates them: the new set replaces the old one in one write, so old codes stop working at once. */
  async enrol(subject: FactorSubject): Promise<RecoveryCodeSet> {
    const now = this.deps.clock.now();
    const setId = randomBytes(12).toString('base64url');
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, generateRecoveryCode);
    const doc: RecoveryCodesCredential = {
      _id: credentialId(subject.accountId),
      accountId: subject.accountId,
      type: 'recovery-codes',
      setId,
      codes: codes.map((code) => ({ mac: this.macOf(subject.accountId, setId, normaliseRecoveryCode(code)), usedAt: null })),
      createdAt: now,
      updatedAt: now,
    };
    await this.credentials.replaceOne({ _id: doc._id }, doc, { upsert: true });
    this.deps.log.info({ accountId: subject.accountId }, 'recovery codes generated');
    return { codes, createdAt: now };
  }

  /** Nothing to send: the user has the codes. */
  async challenge(): Promise<void> {}

  async verify(subject: FactorSubject, response: string): Promise<VerifyOutcome> {
    const doc = await this.credentials.findOne({ _id: credentialId(subject.accountId) });
    if (!doc) return { ok: false, reason: 'not_enrolled' };
    const mac = this.macOf(subject.accountId, doc.setId, normaliseRecoveryCode(response));
    // Compare with every entry, without stopping early, so timing does not say which one matched.
    let index = -1;
    doc.codes.forEach((entry, i) => {
      if (CodeMac.equal(entry.mac, mac) && index === -1) index = i;
    });
    if (index === -1) return { ok: false, reason: 'invalid' };
    if (doc.codes[index]!.usedAt) return { ok: false, reason: 'used' };

    const now = this.deps.clock.now();
    // Conditional on this set, this entry and it being unused: a code is accepted once, even in parallel.
    const marked = await this.credentials.findOneAndUpdate(
      { _id: doc._id, setId: doc.setId, [`codes.${index}.mac`]: mac, [`codes.${index}.usedAt`]: null },
      { $set: { [`codes.${index}.usedAt`]: now, updatedAt: now } },
    );
    if (!marked) return { ok: false, reason: 'used' };
    this.deps.log.info({ accountId: subject.accountId }, 'recovery code used');
    return { ok: true, amr: ['otp'] };
  }

  private macOf(accountId: string, setId: string, normalised: string): string {
    return this.deps.mac.digest('recovery-code', [accountId, setId, normalised]);
  }
}

function credentialId(accountId: string): string {
  return `recovery-codes:${accountId}`;
}
