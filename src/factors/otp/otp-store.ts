/**
 * One store for the numeric one-time codes sent by email and SMS (sign-in, phone verification,
 * account recovery). Collection `otp_challenges` holds two kinds of documents:
 *
 * - a code. Sign-in and phone-verification codes (both sent within an interaction, after the password) are
 *   kept per interaction: `code:<accountId>:<channel>:<purpose>:ia:<interactionId>`, so two sign-ins of one
 *   account each keep their own newest code; a resend within an interaction replaces that interaction's code.
 *   Recovery codes (and codes sent outside an interaction) are kept per `code:<accountId>:<channel>:<purpose>`:
 *   only the newest is valid. Documents of the older per-purpose form for sign-in codes are never looked up
 *   again and simply expire. A code keeps an HMAC of the code, never the code, and is bound to the
 *   interaction it was sent for. Single use, expires after its ttl, burnt after maxAttempts wrong tries.
 *   Per-interaction codes do not add guesses: each sign-in needs its own send (hourly cap per account and
 *   channel), and wrong codes count against the account's guess window in the sign-in flow too.
 * - a send record: `sends:<accountId>:<channel>`, the times of the latest sends, newest first, and the
 *   interaction each was for, for the resend cooldown and the hourly cap. It has its own retention (an hour
 *   past the last send), so the history outlives short-lived codes.
 *
 * The cooldown holds back resends within one interaction. The first code of a new sign-in (or phone
 * verification) interaction goes out without waiting for it: the earlier interaction's code cannot be used
 * in the new one, so waiting would only strand the person. Only the hourly cap limits those. Recovery
 * codes keep the cooldown across flows: anyone knowing a User ID can start a recovery.
 *
 * Every counter moves with one conditional findOneAndUpdate, so parallel requests cannot overshoot a
 * limit, and a code is consumed by an update conditional on it being unconsumed: of two parallel correct
 * submissions exactly one succeeds. A TTL index on `retainUntil` only tidies up; validity is always
 * decided by comparing with the injected clock.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { Collection, Connection } from 'mongoose';
import { CodeMac } from '../code-mac.js';
import type { Clock, VerifyFailure } from '../types.js';

export const OTP_COLLECTION = 'otp_challenges';

export type OtpChannel = 'email' | 'sms';
export type OtpPurpose = 'signin' | 'phone-verify' | 'recovery';

export interface OtpSettings {
  /** Digits per code (6–9). */
  length: number;
  ttlSeconds: number;
  /** Wrong tries a code survives; the last one burns it. */
  maxAttempts: number;
  resendCooldownSeconds: number;
  /** Sends per account and channel in any sliding hour. */
  maxSendsPerHour: number;
}

export const DEFAULT_OTP_SETTINGS: OtpSettings = { length: 6, ttlSeconds: 600, maxAttempts: 5, resendCooldownSeconds: 30, maxSendsPerHour: 5 };

/** What a code is for. A code verifies only against the same account, channel, purpose and interaction. */
export interface OtpBinding {
  accountId: string;
  channel: OtpChannel;
  purpose: OtpPurpose;
  interactionId?: string | null;
}

export type IssueResult =
  | { ok: true; code: string; expiresAt: Date; retryAfterSeconds: number }
  | { ok: false; reason: 'cooldown' | 'hourly_cap'; retryAfterSeconds: number };

export type OtpVerifyResult =
  | { ok: true; destination: string }
  | { ok: false; reason: Exclude<VerifyFailure, 'not_enrolled'>; attemptsLeft?: number };

export interface PendingCode {
  destination: string;
  expiresAt: Date;
  attemptsLeft: number;
}

interface CodeDocument {
  _id: string;
  kind: 'code';
  accountId: string;
  channel: OtpChannel;
  purpose: OtpPurpose;
  interactionId: string | null;
  /** Where the code went: needed by phone verification, which learns the number only from this. */
  destination: string;
  /** Random per issue: part of the MAC input, and the condition of every update (a resend changes it). */
  nonce: string;
  codeMac: string;
  attempts: number;
  maxAttempts: number;
  createdAt: Date;
  expiresAt: Date;
  consumedAt: Date | null;
  retainUntil: Date;
}

interface SendsDocument {
  _id: string;
  kind: 'sends';
  accountId: string;
  channel: OtpChannel;
  /** Newest first, at most maxSendsPerHour long: element [cap - 1] is the oldest send that still counts. */
  sends: Date[];
  /** The interaction each of those sends was for, in the same order (absent in records older than this field). */
  sendInteractions?: Array<string | null>;
  lastSentAt: Date | null;
  retainUntil: Date;
}

type OtpDocument = CodeDocument | SendsDocument;

/**
 * Purposes whose codes are kept per interaction, and whose first send in an interaction is not held back by
 * a cooldown left by another interaction. Both come after the password; recovery comes before any
 * authentication, so its cooldown spans flows and only its newest code per account is valid.
 */
const PER_INTERACTION: Record<OtpPurpose, boolean> = { signin: true, 'phone-verify': true, recovery: false };

/** The interaction a binding's code and cooldown are kept per, or null when they are kept per account. */
function interactionScope(binding: OtpBinding): string | null {
  return binding.interactionId && PER_INTERACTION[binding.purpose] ? binding.interactionId : null;
}

const HOUR_MS = 3600_000;
/** An expired code stays a while so a late submission hears "expired" rather than "no code was sent". */
const EXPIRED_CODE_RETENTION_MS = HOUR_MS;

/** A uniformly random code of `length` digits (leading zeros kept). */
export function generateNumericCode(length: number): string {
  if (!Number.isInteger(length) || length < 4 || length > 12) throw new Error('code length must be 4–12 digits');
  return String(randomInt(0, 10 ** length)).padStart(length, '0');
}

/** People paste codes with spaces or dashes ("123 456"); those are not part of the code. */
export function normaliseNumericCode(input: string): string {
  return input.replace(/[\s-]/g, '');
}

/** Whether `input` has the shape of a `length`-digit code (after the normalisation `verify` applies). */
export function isWellFormedNumericCode(input: string, length: number): boolean {
  const code = normaliseNumericCode(input);
  return code.length === length && /^\d+$/.test(code);
}

const secondsUntil = (when: number, now: number) => Math.max(1, Math.ceil((when - now) / 1000));

export class OtpStore {
  private readonly collection: Collection<OtpDocument>;

  constructor(
    connection: Connection,
    private readonly mac: CodeMac,
    private readonly clock: Clock,
    private readonly defaults: OtpSettings = DEFAULT_OTP_SETTINGS,
  ) {
    this.collection = connection.collection<OtpDocument>(OTP_COLLECTION);
  }

  async ensureIndexes(): Promise<void> {
    await this.collection.createIndexes([
      { key: { retainUntil: 1 }, name: 'retainUntil_ttl', expireAfterSeconds: 0 },
      { key: { accountId: 1 }, name: 'accountId' },
    ]);
  }

  /**
   * Records a send (if the cooldown and the hourly cap allow it) and stores a new code, which replaces
   * any earlier one for the same account, channel and purpose (and interaction, for sign-in and phone
   * verification: see the top of this file). Returns the code for the caller to
   * deliver; it is never stored or logged.
   */
  async issue(binding: OtpBinding & { destination: string }, overrides: Partial<OtpSettings> = {}): Promise<IssueResult> {
    const settings = { ...this.defaults, ...overrides };
    const now = this.clock.now();
    const reserved = await this.reserveSend(binding, settings, now);
    if (!reserved.ok) return reserved;

    const code = generateNumericCode(settings.length);
    const nonce = randomBytes(16).toString('base64url');
    const expiresAt = new Date(now.getTime() + settings.ttlSeconds * 1000);
    const doc: CodeDocument = {
      _id: codeId(binding),
      kind: 'code',
      accountId: binding.accountId,
      channel: binding.channel,
      purpose: binding.purpose,
      interactionId: binding.interactionId ?? null,
      destination: binding.destination,
      nonce,
      codeMac: this.macOf(binding, nonce, code),
      attempts: 0,
      maxAttempts: settings.maxAttempts,
      createdAt: now,
      expiresAt,
      consumedAt: null,
      retainUntil: new Date(expiresAt.getTime() + EXPIRED_CODE_RETENTION_MS),
    };
    await this.collection.replaceOne({ _id: doc._id }, doc, { upsert: true });
    return { ok: true, code, expiresAt, retryAfterSeconds: reserved.retryAfterSeconds };
  }

  /**
   * Atomically takes a send slot, or says how long to wait. The cooldown is waived for the first send of an
   * interaction (see the top of this file); "first" is decided in the same conditional update that records
   * the send, so of parallel first sends for one interaction only one goes out.
   */
  private async reserveSend(binding: OtpBinding, settings: OtpSettings, now: Date): Promise<{ ok: true; retryAfterSeconds: number } | Extract<IssueResult, { ok: false }>> {
    const _id = sendsId(binding);
    const cap = settings.maxSendsPerHour;
    const cooldownMs = settings.resendCooldownSeconds * 1000;
    const t = now.getTime();
    const interactionId = binding.interactionId ?? null;
    const perInteraction = interactionScope(binding) !== null;
    try {
      await this.collection.updateOne(
        { _id },
        { $setOnInsert: { kind: 'sends', accountId: binding.accountId, channel: binding.channel, sends: [], lastSentAt: null, retainUntil: new Date(t + HOUR_MS) } },
        { upsert: true },
      );
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err; // a parallel first send created it
    }
    const capSlot = `sends.${cap - 1}`;
    const reserved = (await this.collection.findOneAndUpdate(
      {
        _id,
        $and: [
          {
            $or: [
              { lastSentAt: null },
              { lastSentAt: { $lte: new Date(t - cooldownMs) } },
              // No send among the counted ones was for this interaction: its first code. (One whose sends all
              // dropped off the list has had `cap` sends after them, so the cap decides, not the cooldown.)
              ...(perInteraction ? [{ sendInteractions: { $ne: interactionId } }] : []),
            ],
          },
          { $or: [{ [capSlot]: { $exists: false } }, { [capSlot]: { $lte: new Date(t - HOUR_MS) } }] },
        ],
      },
      {
        $set: { lastSentAt: now, retainUntil: new Date(t + HOUR_MS) },
        $push: {
          sends: { $each: [now], $position: 0, $slice: cap },
          sendInteractions: { $each: [interactionId], $position: 0, $slice: cap },
        },
      },
      { returnDocument: 'after' },
    )) as SendsDocument | null;

    if (reserved) return { ok: true, retryAfterSeconds: this.waitAfter(reserved, settings, t) ?? settings.resendCooldownSeconds };

    const current = (await this.collection.findOne({ _id })) as SendsDocument | null;
    const lastSent = current?.lastSentAt?.getTime();
    const capOldest = current?.sends[cap - 1]?.getTime();
    const firstOfInteraction = perInteraction && !(current?.sendInteractions ?? []).includes(interactionId);
    const cooldownEnds = !firstOfInteraction && lastSent !== undefined && lastSent + cooldownMs > t ? lastSent + cooldownMs : undefined;
    const capEnds = capOldest !== undefined && capOldest + HOUR_MS > t ? capOldest + HOUR_MS : undefined;
    if (capEnds !== undefined && (cooldownEnds === undefined || capEnds >= cooldownEnds)) {
      return { ok: false, reason: 'hourly_cap', retryAfterSeconds: secondsUntil(capEnds, t) };
    }
    // The record changed between the update and this read (a parallel send): that is a cooldown too.
    return { ok: false, reason: 'cooldown', retryAfterSeconds: secondsUntil(cooldownEnds ?? t + cooldownMs, t) };
  }

  /** After a send: how long until the next one is allowed (the cooldown, or longer if the cap is reached). */
  private waitAfter(record: SendsDocument, settings: OtpSettings, t: number): number | undefined {
    const capOldest = record.sends[settings.maxSendsPerHour - 1]?.getTime();
    const capEnds = capOldest === undefined ? 0 : capOldest + HOUR_MS;
    const ends = Math.max(t + settings.resendCooldownSeconds * 1000, capEnds);
    return ends > t ? secondsUntil(ends, t) : 0;
  }

  /**
   * Checks a submitted code. A wrong code counts against the code's attempts (the last allowed wrong
   * try burns it); a right one is consumed. Never throws for a wrong, expired or unknown code.
   */
  async verify(binding: OtpBinding, input: string): Promise<OtpVerifyResult> {
    const _id = codeId(binding);
    const now = this.clock.now();
    const doc = (await this.collection.findOne({ _id })) as CodeDocument | null;
    if (!doc || doc.interactionId !== (binding.interactionId ?? null)) return { ok: false, reason: 'no_challenge' };
    if (doc.consumedAt) return { ok: false, reason: 'used' };
    if (doc.attempts >= doc.maxAttempts) return { ok: false, reason: 'too_many_attempts', attemptsLeft: 0 };
    if (doc.expiresAt.getTime() <= now.getTime()) return { ok: false, reason: 'expired' };

    // Every update is conditional on this very code (nonce) still being open, so a resend, a parallel
    // consumption or a parallel burn in between makes it match nothing.
    const open = { _id, nonce: doc.nonce, consumedAt: null, attempts: { $lt: doc.maxAttempts }, expiresAt: { $gt: now } };
    if (CodeMac.equal(this.macOf(binding, doc.nonce, normaliseNumericCode(input)), doc.codeMac)) {
      const consumed = await this.collection.findOneAndUpdate(open, { $set: { consumedAt: now } });
      if (consumed) return { ok: true, destination: doc.destination };
      return this.settledState(_id, doc.nonce, now);
    }
    const counted = (await this.collection.findOneAndUpdate(open, { $inc: { attempts: 1 } }, { returnDocument: 'after' })) as CodeDocument | null;
    if (!counted) return this.settledState(_id, doc.nonce, now);
    const attemptsLeft = Math.max(0, counted.maxAttempts - counted.attempts);
    return attemptsLeft === 0 ? { ok: false, reason: 'too_many_attempts', attemptsLeft } : { ok: false, reason: 'invalid', attemptsLeft };
  }

  /** Why a conditional update found nothing: the code was consumed, burnt, expired or replaced meanwhile. */
  private async settledState(_id: string, nonce: string, now: Date): Promise<Extract<OtpVerifyResult, { ok: false }>> {
    const doc = (await this.collection.findOne({ _id })) as CodeDocument | null;
    if (!doc || doc.nonce !== nonce) return { ok: false, reason: 'invalid' }; // a newer code was sent meanwhile
    if (doc.consumedAt) return { ok: false, reason: 'used' };
    if (doc.attempts >= doc.maxAttempts) return { ok: false, reason: 'too_many_attempts', attemptsLeft: 0 };
    if (doc.expiresAt.getTime() <= now.getTime()) return { ok: false, reason: 'expired' };
    return { ok: false, reason: 'invalid' };
  }

  /** The open code for this binding, if any: lets a page show "a code was sent to …" without resending. */
  async pending(binding: OtpBinding): Promise<PendingCode | null> {
    const doc = (await this.collection.findOne({ _id: codeId(binding) })) as CodeDocument | null;
    if (!doc || doc.interactionId !== (binding.interactionId ?? null) || doc.consumedAt) return null;
    if (doc.attempts >= doc.maxAttempts || doc.expiresAt.getTime() <= this.clock.now().getTime()) return null;
    return { destination: doc.destination, expiresAt: doc.expiresAt, attemptsLeft: doc.maxAttempts - doc.attempts };
  }

  /**
   * Whether a code was sent for this binding (in its interaction) that is still on record, open or not
   * (used, expired or burnt codes stay an hour past expiry): lets a page not claim a code was sent when none was.
   */
  async wasSent(binding: OtpBinding): Promise<boolean> {
    const doc = (await this.collection.findOne({ _id: codeId(binding) }, { projection: { interactionId: 1 } })) as Pick<CodeDocument, 'interactionId'> | null;
    return doc !== null && doc.interactionId === (binding.interactionId ?? null);
  }

  /** Withdraws the open code (e.g. it could not be delivered). The send still counts toward the limits. */
  async cancel(binding: OtpBinding): Promise<void> {
    await this.collection.deleteOne({ _id: codeId(binding), kind: 'code' });
  }

  private macOf(binding: OtpBinding, nonce: string, code: string): string {
    return this.mac.digest('otp', [binding.accountId, binding.channel, binding.purpose, nonce, code]);
  }
}

function codeId(binding: OtpBinding): string {
  const base = `code:${binding.accountId}:${binding.channel}:${binding.purpose}`;
  const interactionId = interactionScope(binding);
  // Encoded, so no interaction id can make one key look like another.
  return interactionId === null ? base : `${base}:ia:${encodeURIComponent(interactionId)}`;
}

function sendsId(binding: OtpBinding): string {
  // Recovery codes have their own budget: anyone can start a recovery knowing only a User ID, and that
  // must not use up the owner's sign-in codes for the hour.
  return `sends:${binding.accountId}:${binding.channel}${binding.purpose === 'recovery' ? ':recovery' : ''}`;
}
