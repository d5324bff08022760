/**
 * Authenticated encryption (AES-256-GCM) for secrets kept at rest: client secrets, private signing
 * keys, cookie keys and, later, TOTP seeds. Every ciphertext names the key that sealed it, so keys
 * can be rotated: new data is sealed with the current key, old data still opens with a previous key.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const VERSION = 'v1';

export class SecretBox {
  private readonly keys = new Map<string, Buffer>();
  private readonly currentKeyId: string;

  constructor(currentKey: Buffer, previousKeys: Buffer[] = []) {
    for (const key of [currentKey, ...previousKeys]) {
      if (key.length !== 32) throw new Error('secret keys must be exactly 32 bytes');
      this.keys.set(SecretBox.keyId(key), key);
    }
    this.currentKeyId = SecretBox.keyId(currentKey);
  }

  /** A short, non-secret fingerprint of a key, stored beside each ciphertext. */
  static keyId(key: Buffer): string {
    return createHash('sha256').update(key).digest('base64url').slice(0, 10);
  }

  /** Parses a key given as base64/base64url (44/43 chars) or hex (64 chars). */
  static parseKey(text: string): Buffer {
    const trimmed = text.trim();
    const key = /^[0-9a-f]{64}$/i.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
    if (key.length !== 32) throw new Error('a secrets key must decode to exactly 32 bytes (base64 or hex)');
    return key;
  }

  /** `context` binds a ciphertext to its purpose, so one sealed value cannot be swapped for another. */
  seal(plaintext: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentKeyId)!, iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [VERSION, this.currentKeyId, iv.toString('base64url'), body.toString('base64url'), tag.toString('base64url')].join('.');
  }

  open(sealed: string, context: string): string {
    const [version, keyId, iv, body, tag] = sealed.split('.');
    if (version !== VERSION || !keyId || !iv || body === undefined || !tag) throw new Error('not a sealed secret');
    const key = this.keys.get(keyId);
    if (!key) throw new Error(`sealed with an unknown key (${keyId}); add it to secrets.previousKeys`);
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
  }

  isCurrent(sealed: string): boolean {
    return sealed.split('.')[1] === this.currentKeyId;
  }
}
