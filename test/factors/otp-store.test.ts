/** The shared one-time-code store: format, storage, expiry, attempts, single use, send limits, races. */
import { generateNumericCode, normaliseNumericCode, OTP_COLLECTION, type OtpBinding, type OtpStore } from '../../src/factors/otp/otp-store.js';
import { openFactorTestBed, rawDump, type FactorTestBed } from './helpers.js';

let bed: FactorTestBed;
let store: OtpStore;
let n = 0;

beforeAll(async () => {
  bed = await openFactorTestBed('otp_store');
  store = bed.factors.otp;
});
afterAll(() => bed.close());

/** A fresh account per test, so send limits never leak from one test into the next. */
function binding(overrides: Partial<OtpBinding & { destination: string }> = {}): OtpBinding & { destination: string } {
  n += 1;
  return { accountId: `otp-account-${n}`, channel: 'email', purpose: 'signin', interactionId: 'ia-1', destination: 'jane@example.com', ...overrides };
}

async function issued(b: OtpBinding & { destination: string }, settings = {}) {
  const result = await store.issue(b, settings);
  if (!result.ok) throw new Error(`expected a code, got ${result.reason}`);
  return result;
}

/** How many sends the account's send record counts, read from the database. */
async function rawSendCount(accountId: string): Promise<number> {
  const record = await bed.connection.collection(OTP_COLLECTION).findOne({ accountId, kind: 'sends' });
  return (record?.sends as Date[] | undefined)?.length ?? 0;
}

/** Some other code of the same length: wrong on purpose. */
const wrong = (code: string) => code.split('').map((d) => String((Number(d) + 1) % 10)).join('');

describe('codes', () => {
  test('have the configured number of digits, leading zeros included', async () => {
    for (const length of [6, 7, 8, 9]) {
      const { code } = await issued(binding(), { length });
      expect(code).toMatch(new RegExp(`^\\d{${length}}$`));
    }
    const samples = Array.from({ length: 2000 }, () => generateNumericCode(6));
    expect(samples.every((c) => /^\d{6}$/.test(c))).toBe(true);
    expect(samples.some((c) => c.startsWith('0'))).toBe(true); // ~1 in 10 start with 0: padding works
    expect(new Set(samples).size).toBeGreaterThan(1990);
    expect(() => generateNumericCode(3)).toThrow(/4–12/);
  });

  test('are stored only as an HMAC: neither the code nor a plain hash of it is in the database', async () => {
    const b = binding();
    const { code } = await issued(b);
    const dump = await rawDump(bed.connection, OTP_COLLECTION);
    expect(dump).not.toContain(code);
    const doc = await bed.connection.collection(OTP_COLLECTION).findOne({ accountId: b.accountId, kind: 'code' });
    expect(doc).toMatchObject({ channel: 'email', purpose: 'signin', interactionId: 'ia-1', attempts: 0, maxAttempts: 5, consumedAt: null });
    expect(doc!.codeMac).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 bytes, base64url
  });

  test('a right code is accepted once; spaces and dashes typed around it do not matter', async () => {
    const b = binding();
    const { code } = await issued(b);
    expect(normaliseNumericCode(' 123 456 ')).toBe('123456');
    expect(await store.verify(b, `${code.slice(0, 3)} ${code.slice(3)}`)).toEqual({ ok: true, destination: 'jane@example.com' });
    expect(await store.verify(b, code)).toEqual({ ok: false, reason: 'used' });
  });

  test('expire after the ttl (by the clock)', async () => {
    const b = binding();
    const { code, expiresAt } = await issued(b, { ttlSeconds: 600 });
    expect(expiresAt.getTime() - bed.clock.now().getTime()).toBe(600_000);
    bed.clock.advance(599);
    expect(await store.pending(b)).not.toBeNull();
    bed.clock.advance(1);
    expect(await store.verify(b, code)).toEqual({ ok: false, reason: 'expired' });
    expect(await store.pending(b)).toBeNull();
  });

  test('five wrong tries burn the code: after that even the right one is refused', async () => {
    const b = binding();
    const { code } = await issued(b);
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await store.verify(b, wrong(code)));
    expect(results).toEqual([
      { ok: false, reason: 'invalid', attemptsLeft: 4 },
      { ok: false, reason: 'invalid', attemptsLeft: 3 },
      { ok: false, reason: 'invalid', attemptsLeft: 2 },
      { ok: false, reason: 'invalid', attemptsLeft: 1 },
      { ok: false, reason: 'too_many_attempts', attemptsLeft: 0 },
    ]);
    expect(await store.verify(b, code)).toEqual({ ok: false, reason: 'too_many_attempts', attemptsLeft: 0 });
    // A new code (after the cooldown) starts afresh.
    bed.clock.advance(30);
    const next = await issued(b);
    expect(await store.verify(b, next.code)).toEqual({ ok: true, destination: 'jane@example.com' });
  });

  test('are bound to their interaction, purpose, channel and account', async () => {
    const b = binding();
    const { code } = await issued(b);
    expect(await store.verify({ ...b, interactionId: 'another-interaction' }, code)).toEqual({ ok: false, reason: 'no_challenge' });
    expect(await store.verify({ ...b, interactionId: null }, code)).toEqual({ ok: false, reason: 'no_challenge' });
    expect(await store.verify({ ...b, purpose: 'recovery' }, code)).toEqual({ ok: false, reason: 'no_challenge' });
    expect(await store.verify({ ...b, channel: 'sms' }, code)).toEqual({ ok: false, reason: 'no_challenge' });
    expect(await store.verify({ ...b, accountId: 'someone-else' }, code)).toEqual({ ok: false, reason: 'no_challenge' });
    // None of those counted against the code.
    expect(await store.pending(b)).toMatchObject({ attemptsLeft: 5 });
    expect(await store.verify(b, code)).toMatchObject({ ok: true });
  });

  test('a resend replaces the earlier code', async () => {
    const b = binding();
    const first = await issued(b);
    bed.clock.advance(30);
    const second = await issued(b);
    if (first.code !== second.code) expect(await store.verify(b, first.code)).toMatchObject({ ok: false, reason: 'invalid' });
    expect(await store.verify(b, second.code)).toMatchObject({ ok: true });
  });

  test('cancel withdraws the open code', async () => {
    const b = binding();
    const { code } = await issued(b);
    await store.cancel(b);
    expect(await store.verify(b, code)).toEqual({ ok: false, reason: 'no_challenge' });
  });
});

describe('codes per interaction', () => {
  test('two sign-ins a second apart each keep their own code, usable only in its own interaction', async () => {
    const c = binding({ interactionId: 'ia-C' });
    const d = { ...c, interactionId: 'ia-D' };
    const codeC = await issued(c);
    bed.clock.advance(1);
    const codeD = await issued(d);
    expect(await store.pending(c)).toMatchObject({ attemptsLeft: 5, destination: 'jane@example.com' });
    expect(await store.pending(d)).toMatchObject({ attemptsLeft: 5, destination: 'jane@example.com' });
    const docs = await bed.connection.collection(OTP_COLLECTION).find({ accountId: c.accountId, kind: 'code' }).toArray();
    expect(docs.map((doc) => doc.interactionId).sort()).toEqual(['ia-C', 'ia-D']);

    // C's code is just a wrong code in D (it counts against D's code), and does not touch C's.
    if (codeC.code !== codeD.code) expect(await store.verify(d, codeC.code)).toEqual({ ok: false, reason: 'invalid', attemptsLeft: 4 });
    expect(await store.pending(c)).toMatchObject({ attemptsLeft: 5 });
    expect(await store.verify(c, codeC.code)).toEqual({ ok: true, destination: 'jane@example.com' });
    expect(await store.verify(d, codeD.code)).toEqual({ ok: true, destination: 'jane@example.com' });
    expect(await store.verify(d, codeD.code)).toEqual({ ok: false, reason: 'used' });
  });

  test('a resend in one interaction replaces only that interaction\'s code', async () => {
    const c = binding({ interactionId: 'ia-C' });
    const d = { ...c, interactionId: 'ia-D' };
    const firstC = await issued(c);
    bed.clock.advance(1);
    const codeD = await issued(d);
    bed.clock.advance(30);
    const secondC = await issued(c);
    if (firstC.code !== secondC.code) expect(await store.verify(c, firstC.code)).toEqual({ ok: false, reason: 'invalid', attemptsLeft: 4 });
    expect(await store.verify(c, secondC.code)).toEqual({ ok: true, destination: 'jane@example.com' });
    expect(await store.verify(d, codeD.code)).toEqual({ ok: true, destination: 'jane@example.com' });
    expect(await bed.connection.collection(OTP_COLLECTION).countDocuments({ accountId: c.accountId, kind: 'code' })).toBe(2);
  });

  test('phone verification codes are kept per interaction too', async () => {
    const one = binding({ channel: 'sms', purpose: 'phone-verify', interactionId: 'ia-enrol-1', destination: '+14155550123' });
    const two = { ...one, interactionId: 'ia-enrol-2', destination: '+14155550199' };
    const first = await issued(one);
    bed.clock.advance(1);
    const second = await issued(two);
    expect(await store.verify(one, first.code)).toEqual({ ok: true, destination: '+14155550123' });
    expect(await store.verify(two, second.code)).toEqual({ ok: true, destination: '+14155550199' });
  });

  test('recovery codes stay one per account and channel: a recovery in another flow replaces the earlier code', async () => {
    const first = binding({ purpose: 'recovery', interactionId: 'recovery-flow-1' });
    const second = { ...first, interactionId: 'recovery-flow-2' };
    const old = await issued(first);
    bed.clock.advance(30);
    const fresh = await issued(second);
    expect(await store.verify(first, old.code)).toEqual({ ok: false, reason: 'no_challenge' });
    const docs = await bed.connection.collection(OTP_COLLECTION).find({ accountId: first.accountId, kind: 'code' }).toArray();
    expect(docs.map((doc) => doc._id)).toEqual([`code:${first.accountId}:email:recovery`]);
    expect(await store.verify(second, fresh.code)).toEqual({ ok: true, destination: 'jane@example.com' });
  });

  test('a sign-in code stored under the older per-purpose id is not found: it just expires', async () => {
    const b = binding({ interactionId: 'ia-old' });
    const { code } = await issued(b);
    const codes = bed.connection.collection(OTP_COLLECTION);
    const doc = (await codes.findOne({ accountId: b.accountId, kind: 'code' }))!;
    expect(doc._id).toBe(`code:${b.accountId}:email:signin:ia:ia-old`);
    // As a document written before codes were kept per interaction would be.
    await codes.deleteOne({ _id: doc._id });
    await codes.insertOne({ ...doc, _id: `code:${b.accountId}:email:signin` as never });
    expect(await store.pending(b)).toBeNull();
    expect(await store.wasSent(b)).toBe(false);
    expect(await store.verify(b, code)).toEqual({ ok: false, reason: 'no_challenge' });
    expect((await codes.findOne({ _id: `code:${b.accountId}:email:signin` as never }))!.retainUntil).toBeInstanceOf(Date);
  });

  test('wasSent: only for a code sent in this interaction, and still after it was used', async () => {
    const b = binding({ interactionId: 'ia-sent' });
    expect(await store.wasSent(b)).toBe(false);
    const { code } = await issued(b);
    expect(await store.wasSent(b)).toBe(true);
    expect(await store.wasSent({ ...b, interactionId: 'ia-other' })).toBe(false);
    expect(await store.verify(b, code)).toMatchObject({ ok: true });
    expect(await store.wasSent(b)).toBe(true);
    await store.cancel(b);
    expect(await store.wasSent(b)).toBe(false);
  });
});

describe('send limits', () => {
  test('resend cooldown: refused with the seconds left, then allowed', async () => {
    const b = binding();
    const first = await issued(b, { resendCooldownSeconds: 30 });
    expect(first.retryAfterSeconds).toBe(30);
    bed.clock.advance(10);
    expect(await store.issue(b, { resendCooldownSeconds: 30 })).toEqual({ ok: false, reason: 'cooldown', retryAfterSeconds: 20 });
    bed.clock.advance(19.5);
    expect(await store.issue(b, { resendCooldownSeconds: 30 })).toEqual({ ok: false, reason: 'cooldown', retryAfterSeconds: 1 });
    bed.clock.advance(0.5);
    expect((await store.issue(b, { resendCooldownSeconds: 30 })).ok).toBe(true);
  });

  test('the cooldown is per account and channel: another purpose on the same channel waits too, another channel does not', async () => {
    const b = binding({ channel: 'sms', destination: '+14155550123' });
    await issued(b);
    expect(await store.issue({ ...b, purpose: 'phone-verify' })).toMatchObject({ ok: false, reason: 'cooldown' });
    expect((await store.issue({ ...b, channel: 'email', destination: 'jane@example.com' })).ok).toBe(true);
  });

  test('hourly cap: the sixth send within an hour is refused until the first is an hour old', async () => {
    const b = binding();
    const settings = { resendCooldownSeconds: 30, maxSendsPerHour: 5 };
    const retries: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await issued(b, settings);
      retries.push(r.retryAfterSeconds);
      bed.clock.advance(60);
    }
    // After the fifth send the next is possible only when the first leaves the window: 3600 - 4 × 60.
    expect(retries).toEqual([30, 30, 30, 30, 3360]);
    // now = first + 300 s
    expect(await store.issue(b, settings)).toEqual({ ok: false, reason: 'hourly_cap', retryAfterSeconds: 3300 });
    bed.clock.advance(3299);
    expect(await store.issue(b, settings)).toEqual({ ok: false, reason: 'hourly_cap', retryAfterSeconds: 1 });
    bed.clock.advance(1);
    expect((await store.issue(b, settings)).ok).toBe(true); // the first send left the window
    // Sliding: the second send (at +60 s) is still inside, so the very next one is capped again.
    bed.clock.advance(30);
    expect(await store.issue(b, settings)).toMatchObject({ ok: false, reason: 'hourly_cap', retryAfterSeconds: 30 });
  });

  test('recovery codes have their own hourly budget: strangers starting recoveries cannot use up sign-in codes', async () => {
    const recovery = binding({ purpose: 'recovery' });
    const signin = { ...recovery, purpose: 'signin' as const };
    const settings = { resendCooldownSeconds: 30, maxSendsPerHour: 5 };
    for (let i = 0; i < 5; i++) {
      expect((await store.issue(recovery, settings)).ok).toBe(true);
      bed.clock.advance(31);
    }
    expect(await store.issue(recovery, settings)).toMatchObject({ ok: false, reason: 'hourly_cap' });
    expect((await store.issue(signin, settings)).ok).toBe(true);
  });

  test('the first code of a new interaction is not held back by the cooldown another interaction left; resends within one are', async () => {
    const first = binding({ interactionId: 'ia-first' });
    const second = { ...first, interactionId: 'ia-second' };
    await issued(first);
    bed.clock.advance(1);
    const fresh = await issued(second);
    expect(fresh.retryAfterSeconds).toBe(30); // its own resend waits the full cooldown
    bed.clock.advance(1);
    expect(await store.issue(second)).toEqual({ ok: false, reason: 'cooldown', retryAfterSeconds: 29 });
    expect(await store.issue(first)).toEqual({ ok: false, reason: 'cooldown', retryAfterSeconds: 29 });
    // Each interaction keeps its own code (see 'codes per interaction').
    expect(await store.verify(second, fresh.code)).toEqual({ ok: true, destination: 'jane@example.com' });
  });

  test('phone verification (after the password) gets its first code in a new interaction too; recovery keeps the cooldown across flows', async () => {
    const phone = binding({ channel: 'sms', purpose: 'phone-verify', interactionId: 'ia-enrol-1', destination: '+14155550123' });
    await issued(phone);
    bed.clock.advance(1);
    expect((await store.issue({ ...phone, interactionId: 'ia-enrol-2' })).ok).toBe(true);

    const recovery = binding({ purpose: 'recovery', interactionId: 'recovery-flow-1' });
    await issued(recovery);
    bed.clock.advance(1);
    expect(await store.issue({ ...recovery, interactionId: 'recovery-flow-2' })).toEqual({ ok: false, reason: 'cooldown', retryAfterSeconds: 29 });
  });

  test('the hourly cap holds across interactions', async () => {
    const b = binding();
    const settings = { resendCooldownSeconds: 30, maxSendsPerHour: 5 };
    for (let i = 1; i <= 5; i++) {
      expect((await store.issue({ ...b, interactionId: `ia-cap-${i}` }, settings)).ok).toBe(true);
      bed.clock.advance(1);
    }
    // now = first + 5 s: the first send leaves the window in 3595 s.
    expect(await store.issue({ ...b, interactionId: 'ia-cap-6' }, settings)).toEqual({ ok: false, reason: 'hourly_cap', retryAfterSeconds: 3595 });
    expect(await rawSendCount(b.accountId)).toBe(5);
  });

  test('the send history is kept at least an hour, independently of the short-lived codes', async () => {
    const b = binding();
    await issued(b, { ttlSeconds: 60 });
    const now = bed.clock.now().getTime();
    const docs = await bed.connection.collection(OTP_COLLECTION).find({ accountId: b.accountId }).toArray();
    const sends = docs.find((d) => d.kind === 'sends')!;
    const code = docs.find((d) => d.kind === 'code')!;
    expect(sends.retainUntil.getTime() - now).toBeGreaterThanOrEqual(3600_000);
    expect(code.expiresAt.getTime() - now).toBe(60_000);
    const indexes = await bed.connection.collection(OTP_COLLECTION).indexes();
    expect(indexes).toEqual(expect.arrayContaining([expect.objectContaining({ key: { retainUntil: 1 }, expireAfterSeconds: 0 })]));
  });
});

describe('races', () => {
  test('parallel submissions of the right code: exactly one succeeds', async () => {
    const b = binding();
    const { code } = await issued(b);
    const results = await Promise.all(Array.from({ length: 8 }, () => store.verify(b, code)));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok).every((r) => !r.ok && r.reason === 'used')).toBe(true);
  });

  test('parallel wrong submissions never get more than maxAttempts tries', async () => {
    const b = binding();
    const { code } = await issued(b);
    const results = await Promise.all(Array.from({ length: 12 }, () => store.verify(b, wrong(code))));
    expect(results.filter((r) => !r.ok && r.reason === 'invalid')).toHaveLength(4);
    expect(results.filter((r) => !r.ok && r.reason === 'too_many_attempts')).toHaveLength(8);
    const doc = await bed.connection.collection(OTP_COLLECTION).findOne({ accountId: b.accountId, kind: 'code' });
    expect(doc!.attempts).toBe(5);
  });

  test('parallel first sends of a new interaction, within another interaction\'s cooldown: exactly one goes out', async () => {
    const b = binding({ interactionId: 'ia-earlier' });
    await issued(b);
    bed.clock.advance(1);
    const results = await Promise.all(Array.from({ length: 6 }, () => store.issue({ ...b, interactionId: 'ia-new' })));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.reason === 'cooldown')).toHaveLength(5);
    expect(await rawSendCount(b.accountId)).toBe(2);
  });

  test('parallel sends: the cooldown lets exactly one through', async () => {
    const b = binding();
    const results = await Promise.all(Array.from({ length: 6 }, () => store.issue(b)));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.reason === 'cooldown')).toHaveLength(5);
  });
});
