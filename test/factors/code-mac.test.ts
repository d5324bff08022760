/** The key behind the code hashes: created once, stored sealed, shared, re-sealed after key rotation. */
import { randomBytes } from 'node:crypto';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { CodeMac } from '../../src/factors/code-mac.js';
import { KEYS_COLLECTION } from '../../src/oidc/keys.js';
import { openTestDatabase, testDatabaseUri } from '../support/gatehouse.js';

test('created once, sealed at rest, the same for every loader, and re-sealed under a rotated secrets key', async () => {
  const database = await openTestDatabase(testDatabaseUri('code_mac'));
  try {
    const oldKey = randomBytes(32);
    const box = new SecretBox(oldKey);
    // Two nodes starting at once agree on one key.
    const [a, b] = await Promise.all([CodeMac.load(database.connection, box), CodeMac.load(database.connection, box)]);
    expect(a.digest('otp', ['x', '123456'])).toBe(b.digest('otp', ['x', '123456']));
    const docs = await database.connection.collection(KEYS_COLLECTION).find({ _id: 'factor-codes' as never }).toArray();
    expect(docs).toHaveLength(1);
    expect(docs[0]!.sealed).toMatch(new RegExp(`^v1\\.${SecretBox.keyId(oldKey)}\\.`));

    // Rotation: new current key, old one kept as previous. Same MAC key, now sealed under the new key.
    const newKey = randomBytes(32);
    const rotated = await CodeMac.load(database.connection, new SecretBox(newKey, [oldKey]));
    expect(rotated.digest('otp', ['x', '123456'])).toBe(a.digest('otp', ['x', '123456']));
    const after = await database.connection.collection(KEYS_COLLECTION).findOne({ _id: 'factor-codes' as never });
    expect(after!.sealed).toMatch(new RegExp(`^v1\\.${SecretBox.keyId(newKey)}\\.`));
    // The old secrets key alone can no longer open it.
    await expect(CodeMac.load(database.connection, new SecretBox(oldKey))).rejects.toThrow(/unknown key/);
  } finally {
    await database.close();
  }
});

test('digests are separated by purpose and by framing, and compared in constant time', () => {
  const mac = new CodeMac(Buffer.alloc(32, 3));
  expect(mac.digest('otp', ['a', '123456'])).not.toBe(mac.digest('recovery-code', ['a', '123456']));
  expect(mac.digest('otp', ['ab', 'c'])).not.toBe(mac.digest('otp', ['a', 'bc']));
  const d = mac.digest('otp', ['a', 'b']);
  expect(CodeMac.equal(d, mac.digest('otp', ['a', 'b']))).toBe(true);
  expect(CodeMac.equal(d, mac.digest('otp', ['a', 'c']))).toBe(false);
  expect(CodeMac.equal(d, 'short')).toBe(false);
  expect(() => new CodeMac(Buffer.alloc(16))).toThrow(/32 bytes/);
});
