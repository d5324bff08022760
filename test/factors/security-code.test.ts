/** The security code: trivial codes refused with a reason, argon2id at rest, one per account. */
import { CREDENTIALS_COLLECTION } from '../../src/factors/credentials.js';
import { checkSecurityCode } from '../../src/factors/security-code/security-code.js';
import { openFactorTestBed, rawDump, subject, type FactorTestBed } from './helpers.js';

let bed: FactorTestBed;

beforeAll(async () => {
  bed = await openFactorTestBed('security_code');
});
afterAll(() => bed.close());

const reasonOf = (code: string, userId = 'jdoe') => {
  const result = checkSecurityCode(code, userId);
  return result.ok ? 'ok' : result.reason;
};

describe('choosing a code', () => {
  test('6 to 9 digits, nothing else', () => {
    expect(reasonOf('48213')).toBe('format');
    expect(reasonOf('4821370591')).toBe('format');
    expect(reasonOf('48a137')).toBe('format');
    expect(reasonOf('')).toBe('format');
    expect(reasonOf('482137')).toBe('ok');
    expect(reasonOf('482 1379')).toBe('ok'); // spaces people type are dropped
    expect(reasonOf('482137905')).toBe('ok');
    expect(checkSecurityCode('1', 'jdoe')).toEqual({ ok: false, reason: 'format', message: 'The security code must be 6 to 9 digits.' });
  });

  test('not one digit repeated', () => {
    for (const code of ['000000', '1111111', '99999999', '555555555']) expect(reasonOf(code)).toBe('same_digit');
  });

  test('not an ascending or descending run (wrapping past 9 and 0 counts)', () => {
    for (const code of ['123456', '234567', '456789012', '987654', '3210987', '012345', '890123']) expect(reasonOf(code)).toBe('sequence');
    expect(checkSecurityCode('987654', 'jdoe')).toMatchObject({ message: expect.stringMatching(/123456 or 987654/) });
    expect(reasonOf('123465')).toBe('ok');
  });

  test('not a short pattern repeated', () => {
    for (const code of ['121212', '1212121', '123123', '12341234', '907907907']) expect(reasonOf(code)).toBe('repeating_pattern');
    expect(reasonOf('583958')).toBe('ok');
  });

  test("not made of, nor containing, the User ID's digits (when it has at least four)", () => {
    expect(reasonOf('19874215', 'jane1987')).toBe('user_id'); // contains 1987
    expect(reasonOf('520740', 'emp00520740x')).toBe('user_id'); // part of 00520740
    expect(reasonOf('00520740', 'emp00520740x')).toBe('user_id');
    expect(reasonOf('31415926', 'a31b4c15d92e6')).toBe('user_id'); // the digits scattered through the User ID
    expect(reasonOf('837402', 'jane1987')).toBe('ok');
    expect(reasonOf('837402', 'agent007')).toBe('ok'); // fewer than four digits: no rule
    expect(checkSecurityCode('19874215', 'jane1987')).toMatchObject({ message: 'The security code must not contain or be made of the digits of your User ID.' });
  });
});

describe('enrolment and verification', () => {
  test('a trivial code is refused and nothing is stored', async () => {
    const who = subject();
    expect(await bed.factors.securityCode.enrol(who, { code: '111111' })).toEqual({ ok: false, reason: 'same_digit', message: expect.any(String) });
    expect(await bed.factors.securityCode.isEnrolled(who)).toBe(false);
  });

  test('stored as an argon2id hash; verifies the right code only', async () => {
    const who = subject();
    expect(await bed.factors.securityCode.enrol(who, { code: '482137' })).toEqual({ ok: true });
    expect(await bed.factors.securityCode.isEnrolled(who)).toBe(true);
    const doc = await bed.connection.collection(CREDENTIALS_COLLECTION).findOne({ accountId: who.accountId, type: 'security-code' });
    expect(doc!.hash).toMatch(/^\$argon2id\$/);
    expect(await rawDump(bed.connection, CREDENTIALS_COLLECTION)).not.toContain('482137');

    expect(await bed.factors.securityCode.verify(who, '482137')).toEqual({ ok: true, amr: ['pin'] });
    expect(await bed.factors.securityCode.verify(who, '482 137')).toEqual({ ok: true, amr: ['pin'] });
    expect(await bed.factors.securityCode.verify(who, '482138')).toEqual({ ok: false, reason: 'invalid' });
    expect(await bed.factors.securityCode.verify(who, '')).toEqual({ ok: false, reason: 'invalid' });
  });

  test('setting a new code replaces the old one: still one credential, the old code no longer works', async () => {
    const who = subject();
    await bed.factors.securityCode.enrol(who, { code: '482137' });
    await bed.factors.securityCode.enrol(who, { code: '7305918' });
    expect(await bed.connection.collection(CREDENTIALS_COLLECTION).countDocuments({ accountId: who.accountId, type: 'security-code' })).toBe(1);
    expect(await bed.factors.securityCode.verify(who, '482137')).toEqual({ ok: false, reason: 'invalid' });
    expect(await bed.factors.securityCode.verify(who, '7305918')).toEqual({ ok: true, amr: ['pin'] });
  });

  test('parallel enrolments still leave exactly one credential', async () => {
    const who = subject();
    const results = await Promise.all(['482137', '7305918', '69102784'].map((code) => bed.factors.securityCode.enrol(who, { code })));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(await bed.connection.collection(CREDENTIALS_COLLECTION).countDocuments({ accountId: who.accountId, type: 'security-code' })).toBe(1);
  });

  test('an account without a code is "not enrolled" (after the same argon2 work)', async () => {
    expect(await bed.factors.securityCode.verify(subject(), '482137')).toEqual({ ok: false, reason: 'not_enrolled' });
  });
});
