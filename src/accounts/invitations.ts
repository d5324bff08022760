/**
 * Account invitations: a single-use, expiring token that lets a person set the password of an
 * account created without one (the activation page is src/recovery/routes.ts).
 * Only a SHA-256 hash of the token is stored; a TTL index removes expired invitations, and issuing
 * a new one atomically replaces any earlier one, so at most one link per account works at a time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Connection } from 'mongoose';

export const INVITATIONS_COLLECTION = 'account_invitations';

interface InvitationDocument {
  _id: string;
  accountId: string;
  tokenHash: string;
  expiresAt: Date;
  createdAt: Date;
  createdBy?: { kind: string; id?: string };
}

/** 256 random bits, URL-safe: the part of the link that must stay secret. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

export class Invitations {
  constructor(private readonly connection: Connection) {}

  private get collection() {
    return this.connection.collection<InvitationDocument>(INVITATIONS_COLLECTION);
  }

  async ensureIndexes(): Promise<void> {
    await this.collection.createIndexes([
      { key: { tokenHash: 1 }, name: 'tokenHash_unique', unique: true },
      { key: { accountId: 1 }, name: 'accountId' },
      { key: { expiresAt: 1 }, name: 'expiresAt_ttl', expireAfterSeconds: 0 },
    ]);
  }

  /** Issues a new invitation for the account, replacing earlier ones. The token is returned once. */
  async issue(accountId: string, lifetimeSeconds: number, createdBy?: InvitationDocument['createdBy']): Promise<{ token: string; expiresAt: Date }> {
    const token = randomBytes(32).toString('base64url');
    const now = new Date();
    const expiresAt = new Date(now.getTime() + lifetimeSeconds * 1000);
    // One document per account (its id is the account's), replaced in one atomic upsert: two invitations
    // issued at once cannot both work. Documents from the older random-id scheme are removed too.
    await this.collection.replaceOne(
      { _id: accountId },
      { accountId, tokenHash: hashToken(token).toString('hex'), expiresAt, createdAt: now, ...(createdBy ? { createdBy } : {}) },
      { upsert: true },
    );
    await this.collection.deleteMany({ accountId, _id: { $ne: accountId } });
    return { token, expiresAt };
  }

  /** Makes every outstanding link of the account stop working (address changed, account disabled). */
  async cancel(accountId: string): Promise<number> {
    return (await this.collection.deleteMany({ accountId })).deletedCount;
  }

  /** Whether the account has an invitation that has not expired. */
  async pending(accountId: string): Promise<{ expiresAt: Date } | null> {
    const doc = await this.collection.findOne({ accountId, expiresAt: { $gt: new Date() } }, { projection: { expiresAt: 1 } });
    return doc ? { expiresAt: doc.expiresAt } : null;
  }

  /** The account a live token is for, without using it up (the activation page shows its form first). */
  async peek(token: string): Promise<string | null> {
    if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) return null;
    const doc = await this.collection.findOne({ tokenHash: hashToken(token).toString('hex'), expiresAt: { $gt: new Date() } });
    return doc ? doc.accountId : null;
  }

  /**
   * Redeems a token: the invitation is deleted in the same atomic step, so it works once. Returns
   * the account it was for, or null when it is unknown, used or expired. (For the activation page.)
   */
  async redeem(token: string): Promise<string | null> {
    if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) return null;
    const tokenHash = hashToken(token);
    const doc = await this.collection.findOneAndDelete({ tokenHash: tokenHash.toString('hex'), expiresAt: { $gt: new Date() } });
    if (!doc) return null;
    // Found by hash; confirm in constant time before trusting the match.
    return timingSafeEqual(Buffer.from(doc.tokenHash, 'hex'), tokenHash) ? doc.accountId : null;
  }
}
