/**
 * Rate limits on the test database (rate-limiter-flexible's RateLimiterMongo): exact counts, parallel
 * consumers on one and on two connections (the "several nodes" case), key isolation, hashed identifiers,
 * expiry, auditing once per window, reset, database failures as 503, and the 429 answers.
 */
import { createHash } from 'node:crypto';
import Koa from 'koa';
import views from 'koa-views';
import type { Connection } from 'mongoose';
import request from 'supertest';
import { AuditLog } from '../../src/audit/audit.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { connectMongoose, isDatabaseUnavailable, type Database } from '../../src/db/connection.js';
import { localUri } from '../../src/db/embedded.js';
import { startStandin } from '../../src/db/standin.js';
import { classifyError, errorBoundary } from '../../src/http/middleware.js';
import { VIEWS_DIR } from '../../src/http/render.js';
import {
  ipKey,
  RATE_LIMIT_BUCKETS,
  RATE_LIMIT_COLLECTION,
  RateLimits,
  RateLimitUnavailableError,
  respondTooManyRequests,
  tooManyRequestsMessage,
  type RateLimitConfig,
  type RateLimitRule,
} from '../../src/http/rate-limit.js';
import { createLogger } from '../../src/logger.js';
import { openTestDatabase, testDatabaseUri } from '../support/gatehouse.js';

const log = createLogger('silent');
let uri: string;
let db: Database;
let db2: Database;
let audit: AuditLog;

beforeAll(async () => {
  uri = testDatabaseUri('ratelimit');
  db = await openTestDatabase(uri);
  db2 = await openTestDatabase(uri);
  audit = new AuditLog(db.connection, log);
  await audit.init();
});

afterAll(async () => {
  await db?.close();
  await db2?.close();
});

/** Every bucket gets `ip` and `identifier`; each test uses its own keys, so tests never share counters. */
function limits(ip: RateLimitRule, identifier: RateLimitRule): RateLimitConfig {
  return Object.fromEntries(RATE_LIMIT_BUCKETS.map((b) => [b, { ip, identifier }])) as RateLimitConfig;
}

function service(config: RateLimitConfig, connection: Connection = db.connection): RateLimits {
  return new RateLimits(connection, config, { audit });
}

const counters = () => db.connection.collection(RATE_LIMIT_COLLECTION);
const auditEntries = (filter: Record<string, unknown>) => db.connection.collection('audit_events').find(filter).toArray();
const sha = (text: string) => createHash('sha256').update('gatehouse:rate-limit:').update(text).digest('base64url');

describe('counting', () => {
  test('N requests per IP are allowed, N+1 is refused with a sane Retry-After', async () => {
    const rl = service(limits({ points: 5, durationSeconds: 60 }, { points: 100, durationSeconds: 60 }));
    for (let i = 0; i < 5; i++) expect(await rl.consume('signin', { ip: '192.0.2.1' })).toEqual({ ok: true });
    const refused = await rl.consume('signin', { ip: '192.0.2.1' });
    expect(refused).toMatchObject({ ok: false, limitedBy: 'ip' });
    if (refused.ok) throw new Error('unreachable');
    expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(55);
    expect(refused.retryAfterSeconds).toBeLessThanOrEqual(60);
    expect(Number.isInteger(refused.retryAfterSeconds)).toBe(true);
  });

  test('N requests per identifier, whatever the case and spacing of what was typed', async () => {
    const rl = service(limits({ points: 100, durationSeconds: 60 }, { points: 3, durationSeconds: 60 }));
    const typed = ['alice@example.com', ' Alice@Example.com', 'ALICE@EXAMPLE.COM '];
    for (const identifier of typed) expect((await rl.consume('signin', { ip: '192.0.2.2', identifier })).ok).toBe(true);
    expect(await rl.consume('signin', { ip: '192.0.2.3', identifier: 'alice@example.COM' })).toMatchObject({ ok: false, limitedBy: 'identifier' });
    // Another identifier from the same IP is unaffected.
    expect((await rl.consume('signin', { ip: '192.0.2.2', identifier: 'bob@example.com' })).ok).toBe(true);
  });

  test('a request refused by its IP does not use the identifier; one refused by the identifier still uses the IP', async () => {
    const rl = service(limits({ points: 2, durationSeconds: 60 }, { points: 5, durationSeconds: 60 }));
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await rl.consume('recovery', { ip: '198.51.100.1', identifier: 'carol' }));
    expect(results.map((r) => r.ok)).toEqual([true, true, false, false]);
    expect(results[3]).toMatchObject({ limitedBy: 'ip' });
    // Only the two allowed requests counted for "carol": from an address with room, three more pass.
    const roomy = service(limits({ points: 100, durationSeconds: 60 }, { points: 5, durationSeconds: 60 }));
    const later = [];
    for (let i = 0; i < 4; i++) later.push(await roomy.consume('recovery', { ip: '198.51.100.3', identifier: 'carol' }));
    expect(later.map((r) => r.ok)).toEqual([true, true, true, false]);
    expect(later[3]).toMatchObject({ limitedBy: 'identifier' });
    // The refusal by identifier took an IP point all the same.
    const ipDoc = await counters().findOne({ key: 'recovery:ip:198.51.100.3' });
    expect(ipDoc?.points).toBe(4);
  });

  test('50 parallel requests against a limit of 10 let exactly 10 through', async () => {
    const rl = service(limits({ points: 10, durationSeconds: 60 }, { points: 10, durationSeconds: 60 }));
    const results = await Promise.all(Array.from({ length: 50 }, () => rl.consume('code-send', { ip: '203.0.113.50' })));
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    expect(results.filter((r) => !r.ok && r.limitedBy === 'ip')).toHaveLength(40);
  });

  test('two services on two connections (two nodes) share the count: still exactly 10', async () => {
    const config = limits({ points: 1000, durationSeconds: 60 }, { points: 10, durationSeconds: 60 });
    const nodeA = service(config, db.connection);
    const nodeB = service(config, db2.connection);
    const keys = { ip: '203.0.113.60', identifier: 'account-123' };
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? nodeA : nodeB).consume('code-send', keys)));
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    expect(results.filter((r) => !r.ok && r.limitedBy === 'identifier')).toHaveLength(40);
    // One counter document per key, whatever the number of nodes.
    expect(await counters().countDocuments({ key: `code-send:identifier:${sha('account-123')}` })).toBe(1);
    // The crossing is audited exactly once, though 40 requests were refused across both nodes.
    const events = await auditEntries({ type: 'ratelimit.exceeded', 'details.bucket': 'code-send', 'details.limitedBy': 'identifier', ip: '203.0.113.60' });
    expect(events).toHaveLength(1);
  });
});

describe('keys', () => {
  test('a blocked IP does not block another IP, nor the same IP in another bucket', async () => {
    const rl = service(limits({ points: 1, durationSeconds: 60 }, { points: 100, durationSeconds: 60 }));
    expect((await rl.consume('signin', { ip: '192.0.2.10' })).ok).toBe(true);
    expect((await rl.consume('signin', { ip: '192.0.2.10' })).ok).toBe(false);
    expect((await rl.consume('signin', { ip: '192.0.2.11' })).ok).toBe(true);
    expect((await rl.consume('recovery', { ip: '192.0.2.10' })).ok).toBe(true);
    expect((await rl.consume('code-send', { ip: '192.0.2.10' })).ok).toBe(true);
  });

  test('IPv6 addresses count by /64; IPv4-mapped addresses as IPv4', async () => {
    expect(ipKey('2001:db8:0:0:1:2:3:4')).toBe('2001:db8:0:0::/64');
    expect(ipKey('2001:DB8::1')).toBe('2001:db8:0:0::/64');
    expect(ipKey('2001:db8:0:1::1')).toBe('2001:db8:0:1::/64');
    expect(ipKey('::1')).toBe('0:0:0:0::/64');
    expect(ipKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(ipKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(ipKey('64:ff9b::192.0.2.7')).toBe('64:ff9b:0:0::/64');
    expect(ipKey('192.0.2.7')).toBe('192.0.2.7');
    expect(ipKey('')).toBe('unknown');

    const rl = service(limits({ points: 2, durationSeconds: 60 }, { points: 100, durationSeconds: 60 }));
    expect((await rl.consume('signin', { ip: '2001:db8:aa::1' })).ok).toBe(true);
    expect((await rl.consume('signin', { ip: '2001:db8:aa::ffff' })).ok).toBe(true);
    expect(await rl.consume('signin', { ip: '2001:db8:aa:0:1234::9' })).toMatchObject({ ok: false, limitedBy: 'ip' });
    expect((await rl.consume('signin', { ip: '2001:db8:ab::1' })).ok).toBe(true);
    expect((await rl.consume('signin', { ip: '::ffff:192.0.2.20' })).ok).toBe(true);
    expect((await rl.consume('signin', { ip: '192.0.2.20' })).ok).toBe(true);
    expect((await rl.consume('signin', { ip: '192.0.2.20' })).ok).toBe(false);
  });

  test('identifiers are stored only as hashes', async () => {
    const rl = service(limits({ points: 100, durationSeconds: 60 }, { points: 100, durationSeconds: 60 }));
    await rl.consume('signin', { ip: '192.0.2.30', identifier: 'Dave.Secret@Example.com' });
    await rl.consume('recovery', { ip: '192.0.2.30', identifier: 'dave-userid' });
    const docs = await counters().find({}).toArray();
    const stored = JSON.stringify(docs).toLowerCase();
    expect(stored).not.toContain('dave');
    expect(stored).not.toContain('example.com');
    expect(docs.map((d) => d.key)).toEqual(expect.arrayContaining([`signin:identifier:${sha('dave.secret@example.com')}`, `recovery:identifier:${sha('dave-userid')}`]));
    expect(rl.identifierKeyFor('  DAVE-USERID ')).toBe(sha('dave-userid'));
    expect(rl.identifierKeyFor('   ')).toBeNull();
    // With a key, the hash is an HMAC: not computable from the identifier alone.
    const keyed = new RateLimits(db.connection, limits({ points: 1, durationSeconds: 60 }, { points: 1, durationSeconds: 60 }), { identifierKey: 'k' });
    expect(keyed.identifierKeyFor('dave-userid')).not.toBe(sha('dave-userid'));
  });

  test('an empty identifier counts against the IP only', async () => {
    const rl = service(limits({ points: 100, durationSeconds: 60 }, { points: 1, durationSeconds: 60 }));
    for (let i = 0; i < 3; i++) expect((await rl.consume('signin', { ip: '192.0.2.40', identifier: '  ' })).ok).toBe(true);
    expect((await rl.consume('signin', { ip: '192.0.2.40', identifier: null })).ok).toBe(true);
  });
});

describe('time', () => {
  test('a window ends after durationSeconds and counting starts again', async () => {
    const rl = service(limits({ points: 2, durationSeconds: 1 }, { points: 100, durationSeconds: 60 }));
    const keys = { ip: '192.0.2.50' };
    expect((await rl.consume('signin', keys)).ok).toBe(true);
    expect((await rl.consume('signin', keys)).ok).toBe(true);
    expect(await rl.consume('signin', keys)).toEqual({ ok: false, limitedBy: 'ip', retryAfterSeconds: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    expect((await rl.consume('signin', keys)).ok).toBe(true);
    expect((await rl.consume('signin', keys)).ok).toBe(true);
    expect((await rl.consume('signin', keys)).ok).toBe(false);
  });

  test('counter documents carry an expiry date for the TTL index', async () => {
    const rl = service(limits({ points: 5, durationSeconds: 120 }, { points: 5, durationSeconds: 120 }));
    await rl.init();
    const before = Date.now();
    await rl.consume('signin', { ip: '192.0.2.55' });
    const doc = await counters().findOne({ key: 'signin:ip:192.0.2.55' });
    expect(doc?.expire).toBeInstanceOf(Date);
    expect((doc!.expire as Date).getTime() - before).toBeGreaterThan(115_000);
    expect((doc!.expire as Date).getTime() - before).toBeLessThanOrEqual(121_000);
    const indexes = await counters().indexes();
    expect(indexes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: { key: 1 }, unique: true }),
        expect.objectContaining({ key: { expire: -1 }, expireAfterSeconds: 0 }),
      ]),
    );
  });
});

describe('audit', () => {
  test('ratelimit.exceeded is recorded once per window, with the bucket and key kind but never the identifier', async () => {
    const rl = service(limits({ points: 100, durationSeconds: 60 }, { points: 2, durationSeconds: 60 }));
    const facts = { userAgent: 'jest', requestId: 'req-ratelimit-audit-1' };
    for (let i = 0; i < 6; i++) await rl.consume('signin', { ip: '192.0.2.60', identifier: 'erin@example.com' }, facts);
    const events = await auditEntries({ type: 'ratelimit.exceeded', ip: '192.0.2.60' });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      outcome: 'failure',
      actor: { kind: 'anonymous' },
      userAgent: 'jest',
      requestId: 'req-ratelimit-audit-1',
      details: { bucket: 'signin', limitedBy: 'identifier', points: 2, durationSeconds: 60 },
    });
    expect(JSON.stringify(events[0]).toLowerCase()).not.toContain('erin');
  });

  test('reset clears a throttle and audits it when the key was over its limit', async () => {
    const rl = service(limits({ points: 100, durationSeconds: 60 }, { points: 1, durationSeconds: 60 }));
    const keys = { ip: '192.0.2.70', identifier: 'frank' };
    await rl.consume('recovery', keys);
    expect((await rl.consume('recovery', keys)).ok).toBe(false);
    const cleared = await rl.reset('recovery', { identifier: 'frank' }, { actor: { kind: 'account', id: 'admin-1' }, requestId: 'req-ratelimit-reset-1' });
    expect(cleared).toEqual(['identifier']);
    expect((await rl.consume('recovery', keys)).ok).toBe(true);
    const events = await auditEntries({ type: 'ratelimit.reset', requestId: 'req-ratelimit-reset-1' });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ outcome: 'success', actor: { kind: 'account', id: 'admin-1' }, details: { bucket: 'recovery', limitedBy: 'identifier' } });
    // Resetting a key under its limit is not an unlock: nothing audited.
    await rl.reset('recovery', { ip: '192.0.2.70' }, { requestId: 'req-ratelimit-reset-2' });
    expect(await auditEntries({ type: 'ratelimit.reset', requestId: 'req-ratelimit-reset-2' })).toHaveLength(0);
  });
});

describe('database failures', () => {
  test('a closed connection is a 503 error, never a pass', async () => {
    const lost = await openTestDatabase(uri);
    const rl = new RateLimits(lost.connection, limits({ points: 5, durationSeconds: 60 }, { points: 5, durationSeconds: 60 }));
    await rl.init();
    await lost.close();
    const err = await rl.consume('signin', { ip: '192.0.2.80' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RateLimitUnavailableError);
    expect(classifyError(err)).toMatchObject({ status: 503, code: 'temporarily_unavailable' });
  });

  test('a database server that went away is a 503 error too', async () => {
    const standin = await startStandin({ port: 0 });
    const connection = await connectMongoose(localUri(standin.port, 'ratelimit_gone'), { serverSelectionTimeoutMs: 800, operationTimeoutMs: 5000 });
    try {
      const rl = new RateLimits(connection, limits({ points: 5, durationSeconds: 60 }, { points: 5, durationSeconds: 60 }));
      expect((await rl.consume('signin', { ip: '192.0.2.82' })).ok).toBe(true);
      await standin.stop();
      const err = await rl.consume('signin', { ip: '192.0.2.82' }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RateLimitUnavailableError);
      expect(isDatabaseUnavailable((err as Error).cause)).toBe(true);
      expect(classifyError(err).status).toBe(503);
    } finally {
      await connection.close();
      await standin.stop();
    }
  });

  test('an unreachable database at start: init fails with 503 and is retried on the next call', async () => {
    const lost = await openTestDatabase(uri);
    await lost.close();
    const rl = new RateLimits(lost.connection, limits({ points: 5, durationSeconds: 60 }, { points: 5, durationSeconds: 60 }));
    await expect(rl.init()).rejects.toBeInstanceOf(RateLimitUnavailableError);
    await expect(rl.consume('signin', { ip: '192.0.2.81' })).rejects.toBeInstanceOf(RateLimitUnavailableError);
  });
});

describe('HTTP', () => {
  function app(rl: RateLimits, options: { views?: boolean } = {}): Koa {
    const koa = new Koa();
    koa.use(errorBoundary(log));
    if (options.views !== false) koa.use(views(VIEWS_DIR, { extension: 'ejs' }));
    koa.use(async (ctx) => {
      if (!(await rl.guard(ctx, 'signin', ctx.get('x-login') || null))) return;
      ctx.body = { ok: true };
    });
    return koa;
  }

  test('JSON clients get 429, Retry-After and too_many_requests', async () => {
    const server = app(service(limits({ points: 1, durationSeconds: 120 }, { points: 100, durationSeconds: 60 }))).callback();
    // Each app sees 127.0.0.1 (or ::ffff:127.0.0.1); a fresh bucket config per test keeps counts apart.
    await counters().deleteMany({ key: /^signin:ip:/ });
    expect((await request(server).post('/api').set('accept', 'application/json')).status).toBe(200);
    const res = await request(server).post('/api').set('accept', 'application/json');
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    const retryAfter = Number(res.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(115);
    expect(retryAfter).toBeLessThanOrEqual(120);
    expect(res.body).toEqual({ error: 'too_many_requests', error_description: 'Too many attempts. For your security, please wait 2 minutes and try again.' });
  });

  test('browsers get the friendly page (with and without koa-views)', async () => {
    for (const withViews of [true, false]) {
      await counters().deleteMany({ key: /^signin:ip:/ });
      const server = app(service(limits({ points: 1, durationSeconds: 30 }, { points: 100, durationSeconds: 60 })), { views: withViews }).callback();
      await request(server).get('/interaction/x').set('accept', 'text/html');
      const res = await request(server).get('/interaction/x').set('accept', 'text/html,application/xhtml+xml');
      expect(res.status).toBe(429);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(30);
      expect(res.text).toContain('Too many attempts. For your security, please wait 1 minute and try again.');
      expect(res.text).toContain('too_many_requests');
    }
  });

  test('a refusal by identifier answers the same way', async () => {
    await counters().deleteMany({ key: /^signin:ip:/ });
    const server = app(service(limits({ points: 100, durationSeconds: 60 }, { points: 1, durationSeconds: 60 }))).callback();
    expect((await request(server).post('/api').set('x-login', 'grace').set('accept', 'application/json')).status).toBe(200);
    const res = await request(server).post('/api').set('x-login', 'GRACE').set('accept', 'application/json');
    expect(res.status).toBe(429);
    expect(res.body.error).toBe('too_many_requests');
    expect((await request(server).post('/api').set('x-login', 'heidi').set('accept', 'application/json')).status).toBe(200);
  });

  test('a database failure becomes the boundary 503, not a 429, 200 or 500', async () => {
    const lost = await openTestDatabase(uri);
    const rl = new RateLimits(lost.connection, limits({ points: 5, durationSeconds: 60 }, { points: 5, durationSeconds: 60 }));
    await rl.init();
    await lost.close();
    const res = await request(app(rl).callback()).post('/api').set('accept', 'application/json');
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.body.error).toBe('temporarily_unavailable');
  });

  test('respondTooManyRequests rounds Retry-After up to whole seconds, at least 1', async () => {
    const koa = new Koa();
    koa.use(async (ctx) => respondTooManyRequests(ctx, Number(ctx.query.s)));
    const cases: Array<[string, string]> = [['0', '1'], ['0.2', '1'], ['1.01', '2'], ['59', '59'], ['NaN', '1']];
    for (const [s, expected] of cases) {
      const res = await request(koa.callback()).get(`/?s=${s}`).set('accept', 'application/json');
      expect(res.status).toBe(429);
      expect(res.headers['retry-after']).toBe(expected);
    }
    expect(tooManyRequestsMessage(1)).toBe('Too many attempts. For your security, please wait 1 minute and try again.');
    expect(tooManyRequestsMessage(61)).toBe('Too many attempts. For your security, please wait 2 minutes and try again.');
    expect(tooManyRequestsMessage(900)).toBe('Too many attempts. For your security, please wait 15 minutes and try again.');
  });
});

describe('configuration', () => {
  test('defaults, and every bad number is named', () => {
    const config = loadConfig({ env: { NODE_ENV: 'development' } });
    expect(config.rateLimits.signin).toEqual({ ip: { points: 120, durationSeconds: 300 }, identifier: { points: 10, durationSeconds: 300 } });
    expect(config.rateLimits['code-send'].identifier).toEqual({ points: 10, durationSeconds: 600 });
    expect(config.rateLimits.recovery.identifier).toEqual({ points: 5, durationSeconds: 900 });
    try {
      loadConfig({
        env: { NODE_ENV: 'development' },
        overrides: { rateLimits: { signin: { ip: { points: 0 }, identifier: { durationSeconds: 2.5 } }, recovery: { ip: { durationSeconds: 'soon' } } } },
      });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems.join('\n');
      expect(problems).toMatch(/^rateLimits\.signin\.ip\.points: must be at least 1$/m);
      expect(problems).toMatch(/^rateLimits\.signin\.identifier\.durationSeconds: must be a whole number of seconds$/m);
      expect(problems).toMatch(/^rateLimits\.recovery\.ip\.durationSeconds: must be a number of seconds$/m);
    }
  });
});
