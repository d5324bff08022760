/**
 * Browsers an account has signed in from, for the "sign-in from a new device or browser" alert. Each
 * browser carries a random id in a long-lived cookie; the server keeps its hash per account with a label
 * and first/last seen. This grants nothing (trust lives in trusted devices); it only tells what is new.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Connection } from 'mongoose';
import type { Clock } from '../factors/types.js';

interface KnownBrowser {
  _id: string; // accountId + ":" + hash of the browser id
  accountId: string;
  label: string;
  firstSeenAt: Date;
  lastSeenAt: Date;
  lastIp: string | null;
  expiresAt: Date;
}

/** A browser unseen for this long counts as new again. */
const REMEMBER_MS = 400 * 24 * 60 * 60 * 1000;
const BROWSER_ID = /^[A-Za-z0-9_-]{22,64}$/;

export class KnownBrowsers {
  constructor(
    private readonly connection: Connection,
    private readonly clock: Clock,
  ) {}

  private get collection() {
    return this.connection.collection<KnownBrowser>('known_browsers');
  }

  async ensureIndexes(): Promise<void> {
    await this.collection.createIndexes([
      { key: { accountId: 1 }, name: 'accountId' },
      { key: { expiresAt: 1 }, name: 'expiresAt_ttl', expireAfterSeconds: 0 },
    ]);
  }

  /** The id to keep using, or a new one when the cookie is missing or malformed. */
  static browserId(cookie: string | undefined): string {
    return cookie && BROWSER_ID.test(cookie) ? cookie : randomBytes(16).toString('base64url');
  }

  /**
   * Records a completed sign-in. Returns true when this browser is new for an account that has signed
   * in elsewhere before (the very first sign-in of an account is not news).
   */
  async signedIn(accountId: string, browserId: string, facts: { label: string; ip?: string }): Promise<boolean> {
    const now = this.clock.now();
    const id = `${accountId}:${createHash('sha256').update(browserId).digest('base64url')}`;
    const before = await this.collection.findOneAndUpdate(
      { _id: id },
      {
        $set: { lastSeenAt: now, lastIp: facts.ip ?? null, label: facts.label.slice(0, 100), expiresAt: new Date(now.getTime() + REMEMBER_MS) },
        $setOnInsert: { accountId, firstSeenAt: now },
      },
      { upsert: true, returnDocument: 'before' },
    );
    if (before && before.expiresAt > now) return false;
    return (await this.collection.countDocuments({ accountId, _id: { $ne: id }, expiresAt: { $gt: now } }, { limit: 1 })) > 0;
  }

  async forgetAccount(accountId: string): Promise<void> {
    await this.collection.deleteMany({ accountId });
  }
}
