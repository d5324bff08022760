/**
 * Temporary lockout after repeated wrong passwords, with escalating lock periods.
 *
 * Counting is per account, never per identifier (User ID and email would otherwise each get their own
 * allowance). A slot is reserved *before* the password is checked, by one conditional `$inc`, so any
 * number of parallel guesses get exactly `threshold` checks per lock period. The request that took the
 * last slot locks the account if its password was wrong; a right password clears the count.
 *
 * The sign-in flow also counts every identifier as typed (under a keyed hash, with the default policy),
 * known or not. That counter alone decides whether the page says "temporarily unavailable", so an
 * outsider sees the same pages after the same number of tries for an unknown User ID as for a real one,
 * and locking an account through its email never shows up when its User ID is tried (README: "Lockout").
 *
 * Records expire a week after the last attempt (or a day after the lock ends), so the escalation decays.
 */
import { createHmac } from 'node:crypto';
import { Schema, type Connection, type Model } from 'mongoose';
import type { Clock } from '../factors/types.js';

export interface LockoutPolicy {
  threshold: number;
  durationsMinutes: number[];
}

interface LockoutRecord {
  _id: string; // "account:<accountId>" or "identifier:<keyed hash>"
  failures: number;
  lockedUntil: Date | null;
  /** Locks since the last successful sign-in: picks the next lock's duration. */
  locks: number;
  lastAttemptAt: Date;
  expiresAt: Date;
}

const schema = new Schema<LockoutRecord>(
  {
    _id: String,
    failures: { type: Number, default: 0 },
    lockedUntil: { type: Date, default: null },
    locks: { type: Number, default: 0 },
    lastAttemptAt: Date,
    expiresAt: Date,
  },
  { collection: 'signin_lockouts', versionKey: false },
);
schema.index({ expiresAt: 1 }, { expireAfterSeconds: 0, name: 'expiresAt_ttl' });

export type Reservation = { ok: true; key: string; failures: number; locks: number } | { ok: false; lockedUntil: Date | null };

const DAY_MS = 24 * 60 * 60 * 1000;
const KEEP_MS = 7 * DAY_MS;
/** A slot held this long without an outcome belongs to a request that died: the lock is applied then. */
const ABANDONED_MS = 60 * 1000;

export class Lockout {
  readonly model: Model<LockoutRecord>;

  constructor(
    connection: Connection,
    private readonly clock: Clock,
    private readonly identifierKey: Buffer | string,
  ) {
    this.model = (connection.models.LockoutRecord as Model<LockoutRecord> | undefined) ?? connection.model<LockoutRecord>('LockoutRecord', schema);
  }

  keyForAccount(accountId: string): string {
    return `account:${accountId}`;
  }

  /** Unknown identifiers are stored only as a keyed hash: the collection never holds what people typed. */
  keyForIdentifier(identifier: string): string {
    return `identifier:${createHmac('sha256', this.identifierKey).update(identifier.trim().toLowerCase()).digest('base64url')}`;
  }

  /** Takes one password check for `key`; refused while locked or while every slot is taken. */
  async reserve(key: string, policy: LockoutPolicy): Promise<Reservation> {
    const now = this.clock.now();
    // Two tries: when parallel requests both create the first record, the loser's upsert collides although
    // nothing is locked; its second try finds the record and counts normally.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const record = await this.model
          .findOneAndUpdate(
            { _id: key, failures: { $lt: policy.threshold }, $or: [{ lockedUntil: null }, { lockedUntil: { $lte: now } }] },
            { $inc: { failures: 1 }, $set: { lockedUntil: null, lastAttemptAt: now, expiresAt: new Date(now.getTime() + KEEP_MS) }, $setOnInsert: { locks: 0 } },
            { upsert: true, returnDocument: 'after' },
          )
          .lean<LockoutRecord>()
          .exec();
        return { ok: true, key, failures: record!.failures, locks: record!.locks };
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
      }
    }
    // The record exists and is locked or full.
    const record = await this.model.findById(key).lean<LockoutRecord>().exec();
    if (record && !record.lockedUntil && record.failures >= policy.threshold && now.getTime() - record.lastAttemptAt.getTime() > ABANDONED_MS) {
      const until = await this.lock(key, record.locks, policy, now);
      return { ok: false, lockedUntil: until };
    }
    return { ok: false, lockedUntil: record?.lockedUntil ?? null };
  }

  /**
   * Records that the reserved check failed. The request holding the last slot locks; returns the lock's
   * end when this failure started a lock.
   */
  async failed(reservation: Extract<Reservation, { ok: true }>, policy: LockoutPolicy): Promise<Date | null> {
    if (reservation.failures < policy.threshold) return null;
    return this.lock(reservation.key, reservation.locks, policy, this.clock.now());
  }

  private async lock(key: string, locks: number, policy: LockoutPolicy, now: Date): Promise<Date | null> {
    const minutes = policy.durationsMinutes[Math.min(locks, policy.durationsMinutes.length - 1)]!;
    const until = new Date(now.getTime() + minutes * 60 * 1000);
    const applied = await this.model
      .findOneAndUpdate(
        { _id: key, failures: { $gte: policy.threshold }, lockedUntil: null },
        { $set: { failures: 0, lockedUntil: until, expiresAt: new Date(until.getTime() + DAY_MS) }, $inc: { locks: 1 } },
      )
      .exec();
    return applied ? until : null;
  }

  /**
   * A right password: the count and the escalation start again, for every key given (the sign-in clears the
   * identifier typed and the account together, in one command; each record is deleted on its own, as before).
   */
  async succeeded(...keys: string[]): Promise<void> {
    if (keys.length === 1) await this.model.deleteOne({ _id: keys[0] }).exec();
    else if (keys.length > 1) await this.model.deleteMany({ _id: { $in: keys } }).exec();
  }

  /** Until when the account is locked, or null. */
  async lockedUntil(accountId: string): Promise<Date | null> {
    const record = await this.model.findById(this.keyForAccount(accountId)).lean<LockoutRecord>().exec();
    return record?.lockedUntil && record.lockedUntil > this.clock.now() ? record.lockedUntil : null;
  }

  /** The accounts among `accountIds` that are locked now, with the lock's end. */
  async locksFor(accountIds: string[]): Promise<Map<string, Date>> {
    const records = await this.model
      .find({ _id: { $in: accountIds.map((id) => this.keyForAccount(id)) }, lockedUntil: { $gt: this.clock.now() } })
      .lean<LockoutRecord[]>()
      .exec();
    return new Map(records.map((r) => [r._id.slice('account:'.length), r.lockedUntil!]));
  }

  /** Every account locked now (for the admin's "locked" filter; locks are few and short-lived). */
  async lockedAccountIds(): Promise<string[]> {
    const records = await this.model.find({ _id: { $regex: /^account:/ }, lockedUntil: { $gt: this.clock.now() } }, { _id: 1 }).limit(10_000).lean<LockoutRecord[]>().exec();
    return records.map((r) => r._id.slice('account:'.length));
  }

  /**
   * Admin unlock or self-service recovery: clears the account's lock and count, and those of the
   * identifiers it signs in with (User ID, email). True if the account was locked.
   */
  async unlock(accountId: string, identifiers: Array<string | null | undefined> = []): Promise<boolean> {
    const record = await this.model.findOneAndDelete({ _id: this.keyForAccount(accountId) }).lean<LockoutRecord>().exec();
    const typed = identifiers.filter((i): i is string => Boolean(i)).map((i) => this.keyForIdentifier(i));
    if (typed.length) await this.model.deleteMany({ _id: { $in: typed } }).exec();
    return Boolean(record?.lockedUntil && record.lockedUntil > this.clock.now());
  }
}
