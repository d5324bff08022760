/** Configuration loading: files, environment overrides, and a clear message per bad field. */
import { ConfigError, loadConfig } from '../src/config.js';
import { SecretBox } from '../src/crypto/secret-box.js';

const KEY = Buffer.alloc(32, 1).toString('base64');

test('defaults: port 3000, issuer on localhost, demo on in development', () => {
  const config = loadConfig({ env: { NODE_ENV: 'development' } });
  expect(config.port).toBe(3000);
  expect(config.issuer).toBe('http://localhost:3000');
  expect(config.demo.enabled).toBe(true);
  expect(config.password.argon2).toEqual({ memoryCost: 19456, timeCost: 2, parallelism: 1 });
});

test('environment variables override the files', () => {
  const config = loadConfig({ env: { NODE_ENV: 'development', PORT: '4100', MONGODB_URI: 'mongodb://db.internal:27017/gh', GATEHOUSE_SECRETS_KEY: KEY } });
  expect(config.port).toBe(4100);
  expect(config.issuer).toBe('http://localhost:4100');
  expect(config.mongodb.uri).toBe('mongodb://db.internal:27017/gh');
  expect(config.secrets.key).toBe(KEY);
  expect(loadConfig({ env: { ISSUER: 'https://login.example.com/' } }).issuer).toBe('https://login.example.com');
  // How long a stalled database may keep a request waiting: 20 s unless set, and never absurd.
  expect(loadConfig({ env: {} }).mongodb.operationTimeoutMs).toBe(20_000);
  expect(loadConfig({ env: { MONGODB_OPERATION_TIMEOUT_MS: '5000' } }).mongodb.operationTimeoutMs).toBe(5000);
  expect(() => loadConfig({ env: { MONGODB_OPERATION_TIMEOUT_MS: '50' } })).toThrow(/mongodb\.operationTimeoutMs: must be at least 1000/);
});

test('production requires the secrets key and turns the demo off', () => {
  expect(() => loadConfig({ env: { NODE_ENV: 'production' } })).toThrow(/GATEHOUSE_SECRETS_KEY is required in production/);
  const config = loadConfig({ env: { NODE_ENV: 'production', GATEHOUSE_SECRETS_KEY: KEY } });
  expect(config.demo.enabled).toBe(false);
  expect(() => loadConfig({ env: { NODE_ENV: 'production', GATEHOUSE_SECRETS_KEY: KEY, GATEHOUSE_DEMO: 'true' } })).toThrow(/never enabled in production/);
});

test('every bad field is named', () => {
  try {
    loadConfig({ env: { PORT: 'eighty', ISSUER: 'ftp://x', MONGODB_URI: 'postgres://nope' }, overrides: { password: { minLength: 2 } } });
    throw new Error('expected a ConfigError');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as ConfigError).message;
    expect(message).toMatch(/PORT: must be a whole number/);
    expect((err as ConfigError).problems.length).toBeGreaterThanOrEqual(1);
  }
  try {
    loadConfig({ env: { ISSUER: 'ftp://x', MONGODB_URI: 'postgres://nope' }, overrides: { password: { minLength: 2 }, surprise: true } });
    throw new Error('expected a ConfigError');
  } catch (err) {
    const problems = (err as ConfigError).problems.join('\n');
    expect(problems).toMatch(/^issuer:/m);
    expect(problems).toMatch(/^mongodb\.uri: must be a mongodb/m);
    expect(problems).toMatch(/^password\.minLength:/m);
    expect(problems).toMatch(/surprise/);
  }
});

describe('SecretBox', () => {
  const current = Buffer.alloc(32, 9);
  const old = Buffer.alloc(32, 8);

  test('seals with AES-256-GCM and opens only in the same context', () => {
    const box = new SecretBox(current);
    const sealed = box.seal('hunter2-but-longer', 'ctx-a');
    expect(sealed).not.toContain('hunter2');
    expect(box.open(sealed, 'ctx-a')).toBe('hunter2-but-longer');
    expect(() => box.open(sealed, 'ctx-b')).toThrow();
  });

  test('detects tampering', () => {
    const box = new SecretBox(current);
    const parts = box.seal('value', 'ctx').split('.');
    parts[3] = Buffer.from('xxxxx').toString('base64url');
    expect(() => box.open(parts.join('.'), 'ctx')).toThrow();
  });

  test('key rotation: old ciphertexts open with a previous key; new ones use the current key', () => {
    const sealedWithOld = new SecretBox(old).seal('value', 'ctx');
    const rotated = new SecretBox(current, [old]);
    expect(rotated.open(sealedWithOld, 'ctx')).toBe('value');
    expect(rotated.isCurrent(sealedWithOld)).toBe(false);
    expect(rotated.isCurrent(rotated.seal('value', 'ctx'))).toBe(true);
    expect(() => new SecretBox(current).open(sealedWithOld, 'ctx')).toThrow(/unknown key/);
  });

  test('parses base64 and hex keys and rejects the wrong length', () => {
    expect(SecretBox.parseKey(current.toString('base64'))).toEqual(current);
    expect(SecretBox.parseKey(current.toString('hex'))).toEqual(current);
    expect(() => SecretBox.parseKey('c2hvcnQ=')).toThrow(/32 bytes/);
  });
});

test('passkey settings: explicit ones must be right; an IP-address issuer only leaves passkeys unavailable', () => {
  expect(loadConfig({ env: { ISSUER: 'http://127.0.0.1:3000' } }).issuer).toBe('http://127.0.0.1:3000');
  expect(() => loadConfig({ env: { ISSUER: 'https://login.example.com' }, overrides: { webauthn: { rpId: 'other.example' } } })).toThrow(/webauthn/);
  expect(loadConfig({ env: { ISSUER: 'https://login.example.com' }, overrides: { webauthn: { rpId: 'example.com' } } }).webauthn.rpId).toBe('example.com');
});
