/**
 * Keyed hashes (HMAC-SHA256) of short codes that must be recognised but never stored: one-time codes
 * and recovery codes. Six digits hashed without a key fall to brute force in microseconds; under a key
 * that lives outside the database, a copy of the database alone reveals nothing.
 *
 * The MAC key is 32 random bytes generated on first start, sealed with the SecretBox (so only the
 * secrets key opens it) and stored beside the provider's keys, like them shared by every node. It is
 * not derived from the secrets key itself: rotating that key must not invalidate every stored recovery
 * code, so on start a key sealed under a previous secrets key is simply re-sealed under the current one.
 * Each use gets its own sub-key (HKDF), so a digest made for one purpose never matches in another.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Connection } from 'mongoose';
import type { SecretBox } from '../crypto/secret-box.js';
import { KEYS_COLLECTION } from '../oidc/keys.js';

const KEY_ID = 'factor-codes';
const CONTEXT = `keys:${KEY_ID}`;

interface MacKeyDocument {
  _id: string;
  sealed: string;
  createdAt: Date;
}

export type CodePurpose = 'otp' | 'recovery-code';

export class CodeMac {
  private readonly subKeys = new Map<CodePurpose, Buffer>();

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('the code MAC key must be 32 bytes');
  }

  /** Loads the MAC key, creating it on first start (two nodes racing: the loser reads the winner's). */
  static async load(connection: Connection, box: SecretBox): Promise<CodeMac> {
    const keys = connection.collection<MacKeyDocument>(KEYS_COLLECTION);
    let doc = await keys.findOne({ _id: KEY_ID });
    if (!doc) {
      const fresh = { _id: KEY_ID, sealed: box.seal(randomBytes(32).toString('base64'), CONTEXT), createdAt: new Date() };
      try {
        await keys.insertOne(fresh);
        doc = fresh;
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
        doc = await keys.findOne({ _id: KEY_ID });
        if (!doc) throw err;
      }
    }
    const key = Buffer.from(box.open(doc.sealed, CONTEXT), 'base64');
    if (!box.isCurrent(doc.sealed)) {
      // Conditional on the old value: if another node re-sealed first, its version stays.
      await keys.updateOne({ _id: KEY_ID, sealed: doc.sealed }, { $set: { sealed: box.seal(key.toString('base64'), CONTEXT) } });
    }
    return new CodeMac(key);
  }

  private subKey(purpose: CodePurpose): Buffer {
    let sub = this.subKeys.get(purpose);
    if (!sub) {
      sub = Buffer.from(hkdfSync('sha256', this.key, Buffer.alloc(0), `gatehouse:${purpose}`, 32));
      this.subKeys.set(purpose, sub);
    }
    return sub;
  }

  /** base64url HMAC over the parts; JSON framing keeps ("ab","c") and ("a","bc") apart. */
  digest(purpose: CodePurpose, parts: string[]): string {
    return createHmac('sha256', this.subKey(purpose)).update(JSON.stringify(parts)).digest('base64url');
  }

  /** Constant-time comparison of two digests. */
  static equal(a: string, b: string): boolean {
    const left = Buffer.from(a, 'base64url');
    const right = Buffer.from(b, 'base64url');
    return left.length === right.length && timingSafeEqual(left, right);
  }
}
