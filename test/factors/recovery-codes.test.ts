/** Recovery codes: format, stored as keyed hashes, single use (also in parallel), regeneration. */
import { CREDENTIALS_COLLECTION } from '../../src/factors/credentials.js';
import { generateRecoveryCode, normaliseRecoveryCode, RECOVERY_CODE_COUNT } from '../../src/factors/recovery-codes/recovery-codes.js';
import { openFactorTestBed, rawDump, subject, type FactorTestBed } from './helpers.js';

let bed: FactorTestBed;

beforeAll(async () => {
  bed = await openFactorTestBed('recovery_codes');
});
afterAll(() => bed.close());

const FORMAT = /^[23456789abcdefghjkmnpqrstvwxyz]{5}-[23456789abcdefghjkmnpqrstvwxyz]{5}$/;

test('ten distinct codes like k7m2p-9xq4t, without look-alike characters', async () => {
  const { codes } = await bed.factors.recoveryCodes.enrol(subject());
  expect(codes).toHaveLength(RECOVERY_CODE_COUNT);
  expect(new Set(codes).size).toBe(10);
  for (const code of codes) expect(code).toMatch(FORMAT);
  const many = Array.from({ length: 3000 }, generateRecoveryCode).join('');
  expect(many).not.toMatch(/[01ilou]/);
  expect(new Set(many.replace(/-/g, '')).size).toBe(30); // every symbol of the alphabet shows up: ≈ 49 bits per code
});

test('only keyed hashes are stored, never the codes', async () => {
  const who = subject();
  const { codes } = await bed.factors.recoveryCodes.enrol(who);
  const dump = await rawDump(bed.connection, CREDENTIALS_COLLECTION);
  for (const code of codes) {
    expect(dump).not.toContain(code);
    expect(dump).not.toContain(normaliseRecoveryCode(code));
  }
  const doc = await bed.connection.collection(CREDENTIALS_COLLECTION).findOne({ accountId: who.accountId, type: 'recovery-codes' });
  expect(doc!.codes).toHaveLength(10);
  expect(doc!.codes.every((c: { mac: string; usedAt: Date | null }) => /^[A-Za-z0-9_-]{43}$/.test(c.mac) && c.usedAt === null)).toBe(true);
});

test('each code works once; case, spaces and dashes do not matter', async () => {
  const who = subject();
  const { codes } = await bed.factors.recoveryCodes.enrol(who);
  const [first, second] = codes as [string, string];
  expect(await bed.factors.recoveryCodes.remaining(who)).toBe(10);
  expect(await bed.factors.recoveryCodes.verify(who, first.toUpperCase())).toEqual({ ok: true, amr: ['otp'] });
  expect(await bed.factors.recoveryCodes.verify(who, first)).toEqual({ ok: false, reason: 'used' });
  expect(await bed.factors.recoveryCodes.verify(who, ` ${second.replace('-', ' ')} `)).toEqual({ ok: true, amr: ['otp'] });
  expect(await bed.factors.recoveryCodes.verify(who, second.replace('-', ''))).toEqual({ ok: false, reason: 'used' });
  expect(await bed.factors.recoveryCodes.remaining(who)).toBe(8);
  expect(await bed.factors.recoveryCodes.verify(who, 'zzzzz-zzzzz')).toEqual({ ok: false, reason: 'invalid' });
  expect(await bed.factors.recoveryCodes.verify(who, '')).toEqual({ ok: false, reason: 'invalid' });
  // Another account's code is just wrong here.
  const other = await bed.factors.recoveryCodes.enrol(subject());
  expect(await bed.factors.recoveryCodes.verify(who, other.codes[0]!)).toEqual({ ok: false, reason: 'invalid' });
});

test('parallel use of one code: exactly one succeeds', async () => {
  const who = subject();
  const { codes } = await bed.factors.recoveryCodes.enrol(who);
  const results = await Promise.all(Array.from({ length: 6 }, () => bed.factors.recoveryCodes.verify(who, codes[3]!)));
  expect(results.filter((r) => r.ok)).toHaveLength(1);
  expect(results.filter((r) => !r.ok && r.reason === 'used')).toHaveLength(5);
});

test('regenerating invalidates every old code, used or not', async () => {
  const who = subject();
  const old = await bed.factors.recoveryCodes.enrol(who);
  expect((await bed.factors.recoveryCodes.verify(who, old.codes[0]!)).ok).toBe(true);
  const fresh = await bed.factors.recoveryCodes.enrol(who);
  expect(fresh.codes.some((c) => old.codes.includes(c))).toBe(false);
  for (const code of old.codes) expect(await bed.factors.recoveryCodes.verify(who, code)).toEqual({ ok: false, reason: 'invalid' });
  expect(await bed.factors.recoveryCodes.remaining(who)).toBe(10);
  expect(await bed.factors.recoveryCodes.verify(who, fresh.codes[9]!)).toEqual({ ok: true, amr: ['otp'] });
  expect(await bed.connection.collection(CREDENTIALS_COLLECTION).countDocuments({ accountId: who.accountId })).toBe(1);
});

test('without codes, or with all of them used, the factor is not available', async () => {
  const who = subject();
  expect(await bed.factors.recoveryCodes.isEnrolled(who)).toBe(false);
  expect(await bed.factors.recoveryCodes.verify(who, 'abcde-fghjk')).toEqual({ ok: false, reason: 'not_enrolled' });
  const { codes } = await bed.factors.recoveryCodes.enrol(who);
  expect(await bed.factors.recoveryCodes.isEnrolled(who)).toBe(true);
  for (const code of codes) expect((await bed.factors.recoveryCodes.verify(who, code)).ok).toBe(true);
  expect(await bed.factors.recoveryCodes.isEnrolled(who)).toBe(false);
  expect(bed.lines.join('\n')).not.toContain(codes[0]!);
});
