/**
 * Signing keys (ES256 + RS256) and cookie-signing keys: generated on first start, sealed with the
 * secrets key, and stored in MongoDB so that every restart (and every node) uses the same ones.
 * Two nodes starting at once race on a unique _id; the loser reads the winner's keys.
 */
import { createHash, generateKeyPairSync, randomBytes, type JsonWebKey } from 'node:crypto';
import type { Connection } from 'mongoose';
import type { SecretBox } from '../crypto/secret-box.js';

export const KEYS_COLLECTION = 'gatehouse_keys';

interface KeyDocument {
  _id: 'signing' | 'cookies';
  sealed: string;
  createdAt: Date;
}

export interface SigningJwk extends JsonWebKey {
  kid: string;
  alg: string;
  use: 'sig';
}

function thumbprintKid(jwk: JsonWebKey): string {
  // RFC 7638 thumbprint: required members in lexicographic order.
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { e: jwk.e, kty: jwk.kty, n: jwk.n };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

export function generateSigningKeys(): SigningJwk[] {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  return [
    { ...ec, kid: thumbprintKid(ec), alg: 'ES256', use: 'sig' },
    { ...rsa, kid: thumbprintKid(rsa), alg: 'RS256', use: 'sig' },
  ];
}

async function loadOrCreate<T>(connection: Connection, box: SecretBox, id: KeyDocument['_id'], create: () => T): Promise<T> {
  const collection = connection.collection<KeyDocument>(KEYS_COLLECTION);
  const context = `keys:${id}`;
  const existing = await collection.findOne({ _id: id });
  if (existing) return JSON.parse(box.open(existing.sealed, context)) as T;

  const value = create();
  try {
    await collection.insertOne({ _id: id, sealed: box.seal(JSON.stringify(value), context), createdAt: new Date() });
    return value;
  } catch (err) {
    if ((err as { code?: number }).code !== 11000) throw err;
    const winner = await collection.findOne({ _id: id });
    if (!winner) throw err;
    return JSON.parse(box.open(winner.sealed, context)) as T;
  }
}

export interface ProviderKeys {
  jwks: { keys: SigningJwk[] };
  cookieKeys: string[];
}

export async function loadProviderKeys(connection: Connection, box: SecretBox): Promise<ProviderKeys> {
  const [signing, cookieKeys] = await Promise.all([
    loadOrCreate(connection, box, 'signing', generateSigningKeys),
    loadOrCreate(connection, box, 'cookies', () => [randomBytes(32).toString('base64url')]),
  ]);
  return { jwks: { keys: signing }, cookieKeys };
}
