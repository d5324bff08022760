/**
 * Trusted devices ("remember this device"): after a verified second factor, the browser receives a random
 * 256-bit token; the server keeps only its SHA-256, bound to one account, with a label, first/last seen,
 * the last IP and an expiry. While the trust lasts, a sign-in with the right password skips the one-time
 * code — never the password.
 *
 *   enrol     after the second factor was verified: a new token (shown once, for the cookie)
 *   challenge nothing to send: the browser presents its cookie
 *   verify    the token is known, belongs to *this* account and has not expired
 *
 * Lookups always include the account, so a token issued to account A never helps account B. The token
 * is high-entropy, so a fast hash suffices (no argon2 needed to resist guessing).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Connection } from 'mongoose';
import { randomId } from '../../crypto/ids.js';
import type { Clock, Factor, FactorSubject, VerifyOutcome } from '../types.js';

export const TRUSTED_DEVICES_COLLECTION = 'trusted_devices';

interface TrustedDeviceDocument {
  _id: string;
  accountId: string;
  tokenHash: string;
  label: string;
  firstSeenAt: Date;
  lastSeenAt: Date;
  lastIp: string | null;
  expiresAt: Date;
}

export interface TrustedDeviceSummary {
  id: string;
  label: string;
  firstSeenAt: Date;
  lastSeenAt: Date;
  lastIp: string | null;
  expiresAt: Date;
}

export interface TrustInput {
  label: string;
  ip?: string;
  lifetimeDays: number;
}

export interface TrustedDeviceEnrolment {
  id: string;
  /** Goes into the cookie; never stored. */
  token: string;
  expiresAt: Date;
}

const hashToken = (token: string) => createHash('sha256').update(token).digest('base64url');
const summary = (doc: TrustedDeviceDocument): TrustedDeviceSummary => ({
  id: doc._id,
  label: doc.label,
  firstSeenAt: doc.firstSeenAt,
  lastSeenAt: doc.lastSeenAt,
  lastIp: doc.lastIp,
  expiresAt: doc.expiresAt,
});
/** What a browser may send: 43 base64url characters; anything else is not looked up at all. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export class TrustedDeviceFactor implements Factor<TrustInput, TrustedDeviceEnrolment> {
  readonly name = 'trusted-device' as const;

  constructor(
    private readonly connection: Connection,
    private readonly clock: Clock,
  ) {}

  private get collection() {
    return this.connection.collection<TrustedDeviceDocument>(TRUSTED_DEVICES_COLLECTION);
  }

  async ensureIndexes(): Promise<void> {
    await this.collection.createIndexes([
      { key: { tokenHash: 1 }, name: 'tokenHash_unique', unique: true },
      { key: { accountId: 1 }, name: 'accountId' },
      { key: { expiresAt: 1 }, name: 'expiresAt_ttl', expireAfterSeconds: 0 },
    ]);
  }

  async isEnrolled(subject: FactorSubject): Promise<boolean> {
    return (await this.collection.countDocuments({ accountId: subject.accountId, expiresAt: { $gt: this.clock.now() } })) > 0;
  }

  /** Trusts the device. Call only after a second factor was verified in this same sign-in. */
  async enrol(subject: FactorSubject, input: TrustInput): Promise<TrustedDeviceEnrolment> {
    const now = this.clock.now();
    const token = randomBytes(32).toString('base64url');
    const doc: TrustedDeviceDocument = {
      _id: randomId(12),
      accountId: subject.accountId,
      tokenHash: hashToken(token),
      label: input.label.slice(0, 100),
      firstSeenAt: now,
      lastSeenAt: now,
      lastIp: input.ip ?? null,
      expiresAt: new Date(now.getTime() + input.lifetimeDays * 24 * 60 * 60 * 1000),
    };
    await this.collection.insertOne(doc);
    return { id: doc._id, token, expiresAt: doc.expiresAt };
  }

  /** Nothing is sent: the browser presents the token it was given. */
  async challenge(): Promise<void> {}

  /** Is `token` a live trust for this account? Records when and from where it was last used. */
  async verify(subject: FactorSubject, token: string, context: { ip?: string } = {}): Promise<VerifyOutcome> {
    if (!TOKEN_SHAPE.test(token)) return { ok: false, reason: 'invalid' };
    const now = this.clock.now();
    const doc = await this.collection.findOneAndUpdate(
      { tokenHash: hashToken(token), accountId: subject.accountId, expiresAt: { $gt: now } },
      { $set: { lastSeenAt: now, lastIp: context.ip ?? null } },
    );
    // No amr value: a remembered device is not an authentication method (RFC 8176 has none for it).
    return doc ? { ok: true, amr: [] } : { ok: false, reason: 'invalid' };
  }

  /** Forgets an expired or replaced token so a renewed trust does not leave a stale record behind. */
  async forget(subject: FactorSubject, token: string): Promise<void> {
    if (TOKEN_SHAPE.test(token)) await this.collection.deleteOne({ tokenHash: hashToken(token), accountId: subject.accountId });
  }

  async list(accountId: string): Promise<TrustedDeviceSummary[]> {
    const docs = await this.collection.find({ accountId, expiresAt: { $gt: this.clock.now() } }).sort({ lastSeenAt: -1 }).limit(100).toArray();
    return docs.map(summary);
  }

  /** Removes one of the account's trusted devices; false if it had no such device. */
  async revoke(accountId: string, id: string): Promise<boolean> {
    return (await this.collection.deleteOne({ _id: id, accountId })).deletedCount === 1;
  }

  /** Every device of the account stops being trusted (password change, factor reset, disable, admin). */
  async revokeAll(accountId: string): Promise<number> {
    return (await this.collection.deleteMany({ accountId })).deletedCount;
  }
}
