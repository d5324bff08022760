/** TOTP: enrolment (QR, manual key, confirmation), the ±1 step window, replay, and the secret at rest. */
import { generate } from 'otplib';
import { CREDENTIALS_COLLECTION } from '../../src/factors/credentials.js';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { TOTP_PERIOD_SECONDS } from '../../src/factors/totp/totp.js';
import { openFactorTestBed, rawDump, subject, type FactorTestBed } from './helpers.js';

let bed: FactorTestBed;

beforeAll(async () => {
  bed = await openFactorTestBed('totp');
});
afterAll(() => bed.close());

/** The code an authenticator app shows `stepsFromNow` steps away from the test clock's now. */
function codeAt(secret: string, stepsFromNow = 0): Promise<string> {
  return generate({ secret, epoch: Math.floor(bed.clock.now().getTime() / 1000) + stepsFromNow * TOTP_PERIOD_SECONDS });
}

/** RFC 4648 base32 → bytes, to look for the raw secret in the database too. */
function base32Decode(text: string): Buffer {
  let bits = '';
  for (const char of text.replace(/=+$/, '')) bits += 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'.indexOf(char).toString(2).padStart(5, '0');
  return Buffer.from(bits.match(/.{8}/g)!.map((byte) => parseInt(byte, 2)));
}

/** Moves the clock to the start of the next time step, so ±1 step is exact. */
function toNextStepStart(): void {
  const seconds = bed.clock.now().getTime() / 1000;
  bed.clock.advance(TOTP_PERIOD_SECONDS - (seconds % TOTP_PERIOD_SECONDS));
}

async function enrolled(userId = 'jdoe') {
  const who = subject({ userId });
  const enrolment = await bed.factors.totp.enrol(who);
  expect(await bed.factors.totp.confirmEnrolment(who, await codeAt(enrolment.secret))).toEqual({ ok: true });
  toNextStepStart(); // the confirming step is used up
  return { who, secret: enrolment.secret };
}

test('enrolment gives the manual key, an otpauth URL (issuer Gatehouse, label the User ID) and a QR code', async () => {
  const who = subject({ userId: 'jane.doe' });
  const enrolment = await bed.factors.totp.enrol(who);
  expect(enrolment.secret).toMatch(/^[A-Z2-7]{32}$/); // 20 random bytes in base32
  const url = new URL(enrolment.otpauthUrl);
  expect(url.protocol).toBe('otpauth:');
  expect(url.host).toBe('totp');
  expect(decodeURIComponent(url.pathname)).toBe('/Gatehouse:jane.doe');
  expect(url.searchParams.get('secret')).toBe(enrolment.secret);
  expect(url.searchParams.get('issuer')).toBe('Gatehouse');
  expect(enrolment.qrCodeDataUrl).toMatch(/^data:image\/svg\+xml;base64,/);
  const svg = Buffer.from(enrolment.qrCodeDataUrl.split(',')[1]!, 'base64').toString('utf8');
  expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[^>]*viewBox="0 0 \d+ \d+"/);
  expect(svg).toContain('<path');
  expect(svg).not.toMatch(/<script/i);
  expect(enrolment.expiresAt.getTime() - bed.clock.now().getTime()).toBe(30 * 60_000);
});

test('an unconfirmed secret is not an enrolment; a wrong code does not confirm it, a right one does', async () => {
  const who = subject();
  const { secret } = await bed.factors.totp.enrol(who);
  expect(await bed.factors.totp.isEnrolled(who)).toBe(false);
  expect(await bed.factors.totp.verify(who, await codeAt(secret))).toEqual({ ok: false, reason: 'not_enrolled' });
  const right = await codeAt(secret);
  expect(await bed.factors.totp.confirmEnrolment(who, right === '000000' ? '111111' : '000000')).toEqual({ ok: false, reason: 'invalid' });
  expect(await bed.factors.totp.confirmEnrolment(who, 'not a code')).toEqual({ ok: false, reason: 'invalid' });
  expect(await bed.factors.totp.confirmEnrolment(who, right)).toEqual({ ok: true });
  expect(await bed.factors.totp.isEnrolled(who)).toBe(true);
  // The confirming code cannot sign in as well.
  expect(await bed.factors.totp.verify(who, right)).toEqual({ ok: false, reason: 'used' });
});

test('an enrolment not confirmed in time lapses', async () => {
  const who = subject();
  const { secret } = await bed.factors.totp.enrol(who);
  bed.clock.advance(30 * 60);
  expect(await bed.factors.totp.confirmEnrolment(who, await codeAt(secret))).toEqual({ ok: false, reason: 'no_challenge' });
});

test('verification accepts the previous, current and next step, nothing further', async () => {
  const { who, secret } = await enrolled();
  bed.clock.advance(2 * TOTP_PERIOD_SECONDS + 10); // past the confirming step's window, well inside a step
  // Older steps first: each accepted step must be later than the last.
  expect(await bed.factors.totp.verify(who, await codeAt(secret, -2))).toEqual({ ok: false, reason: 'invalid' });
  expect(await bed.factors.totp.verify(who, await codeAt(secret, 2))).toEqual({ ok: false, reason: 'invalid' });
  expect(await bed.factors.totp.verify(who, await codeAt(secret, -1))).toEqual({ ok: true, amr: ['otp'] });
  expect(await bed.factors.totp.verify(who, await codeAt(secret, 0))).toEqual({ ok: true, amr: ['otp'] });
  expect(await bed.factors.totp.verify(who, await codeAt(secret, 1))).toEqual({ ok: true, amr: ['otp'] });
  expect(await bed.factors.totp.verify(who, 'abcdef')).toEqual({ ok: false, reason: 'invalid' });
  expect(await bed.factors.totp.verify(who, '12345')).toEqual({ ok: false, reason: 'invalid' });
});

test('replay: an accepted code is refused, and so is any code of an earlier step', async () => {
  const { who, secret } = await enrolled();
  const now = await codeAt(secret);
  const previous = await codeAt(secret, -1);
  expect(await bed.factors.totp.verify(who, now)).toEqual({ ok: true, amr: ['otp'] });
  expect(await bed.factors.totp.verify(who, now)).toEqual({ ok: false, reason: 'used' });
  expect(await bed.factors.totp.verify(who, previous)).toEqual({ ok: false, reason: 'used' });
  bed.clock.advance(TOTP_PERIOD_SECONDS); // the same code is still inside the window (now one step back)
  expect(await bed.factors.totp.verify(who, now)).toEqual({ ok: false, reason: 'used' });
  expect(await bed.factors.totp.verify(who, await codeAt(secret))).toEqual({ ok: true, amr: ['otp'] });
});

test('parallel submissions of one code: exactly one is accepted', async () => {
  const { who, secret } = await enrolled();
  const code = await codeAt(secret);
  const results = await Promise.all(Array.from({ length: 6 }, () => bed.factors.totp.verify(who, code)));
  expect(results.filter((r) => r.ok)).toHaveLength(1);
  expect(results.filter((r) => !r.ok && r.reason === 'used')).toHaveLength(5);
});

test('re-enrolling keeps the current app working until the new one is confirmed, then retires it', async () => {
  const { who, secret: oldSecret } = await enrolled();
  const { secret: newSecret } = await bed.factors.totp.enrol(who);
  expect(await bed.factors.totp.verify(who, await codeAt(oldSecret))).toEqual({ ok: true, amr: ['otp'] });
  toNextStepStart();
  expect(await bed.factors.totp.confirmEnrolment(who, await codeAt(newSecret))).toEqual({ ok: true });
  toNextStepStart();
  const oldCode = await codeAt(oldSecret);
  const newCode = await codeAt(newSecret);
  if (oldCode !== newCode) expect(await bed.factors.totp.verify(who, oldCode)).toEqual({ ok: false, reason: 'invalid' });
  expect(await bed.factors.totp.verify(who, newCode)).toEqual({ ok: true, amr: ['otp'] });
  const docs = await bed.connection.collection(CREDENTIALS_COLLECTION).find({ accountId: who.accountId, type: 'totp' }).toArray();
  expect(docs).toHaveLength(1);
});

test('the secret is never in the database in clear: sealed with the key id, bound to the account', async () => {
  const who = subject();
  const { secret } = await bed.factors.totp.enrol(who);
  const dump = await rawDump(bed.connection, CREDENTIALS_COLLECTION);
  const raw = base32Decode(secret);
  expect(raw).toHaveLength(20);
  for (const form of [secret, secret.toLowerCase(), raw.toString('base64'), raw.toString('base64url'), raw.toString('hex')]) expect(dump).not.toContain(form);

  const doc = await bed.connection.collection(CREDENTIALS_COLLECTION).findOne({ accountId: who.accountId, type: 'totp' });
  expect(doc).toMatchObject({ confirmedAt: null, lastUsedStep: null });
  const [version, keyId] = (doc!.secretSealed as string).split('.');
  expect(version).toBe('v1');
  const box = new SecretBox(Buffer.alloc(32, 7));
  expect(keyId).toBe(SecretBox.keyId(Buffer.alloc(32, 7)));
  expect(box.open(doc!.secretSealed, `totp:${who.accountId}`)).toBe(secret);
  expect(() => box.open(doc!.secretSealed, 'totp:someone-else')).toThrow();
});

describe('verifying over credentials the request already read (verifyKnown)', () => {
  const readForVerifying = (accountId: string) => bed.factors.credentialSummaries(accountId, ['totp', 'webauthn', 'recovery-codes'], { forVerifying: 'totp' });

  test('only a read for verifying TOTP carries the sealed secret; other summaries stay without it', async () => {
    const { who } = await enrolled();
    const [plain] = await bed.factors.credentialSummaries(who.accountId, ['totp']);
    expect(plain).not.toHaveProperty('secretSealed');
    expect(plain).not.toHaveProperty('lastUsedStep');
    const [full] = await readForVerifying(who.accountId);
    expect(full).toMatchObject({ type: 'totp', secretSealed: expect.stringMatching(/^v1\./), lastUsedStep: expect.any(Number) });
  });

  test('the same answers as verify: the window, replay, and an earlier step', async () => {
    const { who, secret } = await enrolled();
    const now = await codeAt(secret);
    expect(await bed.factors.totp.verifyKnown(who, await codeAt(secret, 2), await readForVerifying(who.accountId))).toEqual({ ok: false, reason: 'invalid' });
    expect(await bed.factors.totp.verifyKnown(who, now, await readForVerifying(who.accountId))).toEqual({ ok: true, amr: ['otp'] });
    expect(await bed.factors.totp.verifyKnown(who, now, await readForVerifying(who.accountId))).toEqual({ ok: false, reason: 'used' });
    expect(await bed.factors.totp.verifyKnown(who, await codeAt(secret, -1), await readForVerifying(who.accountId))).toEqual({ ok: false, reason: 'used' });
    // An account without an authenticator app is not enrolled, whatever else it has.
    expect(await bed.factors.totp.verifyKnown(subject(), now, [])).toEqual({ ok: false, reason: 'not_enrolled' });
  });

  test('a read that is stale by the time of the check cannot replay: the update on the stored step decides', async () => {
    const { who, secret } = await enrolled();
    const code = await codeAt(secret);
    const stale = await readForVerifying(who.accountId); // read before the code is used
    expect(await bed.factors.totp.verify(who, code)).toEqual({ ok: true, amr: ['otp'] });
    expect(await bed.factors.totp.verifyKnown(who, code, stale)).toEqual({ ok: false, reason: 'used' });
  });

  test('parallel submissions of one code over the same read: exactly one is accepted', async () => {
    const { who, secret } = await enrolled();
    const code = await codeAt(secret);
    const known = await readForVerifying(who.accountId);
    const results = await Promise.all(Array.from({ length: 6 }, () => bed.factors.totp.verifyKnown(who, code, known)));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.reason === 'used')).toHaveLength(5);
  });

  test('an authenticator replaced after the read: a code of the retired one is refused', async () => {
    const { who, secret: oldSecret } = await enrolled();
    const stale = await readForVerifying(who.accountId);
    const { secret: newSecret } = await bed.factors.totp.enrol(who);
    expect(await bed.factors.totp.confirmEnrolment(who, await codeAt(newSecret))).toEqual({ ok: true });
    toNextStepStart();
    const oldCode = await codeAt(oldSecret);
    const result = await bed.factors.totp.verifyKnown(who, oldCode, stale);
    expect(result.ok).toBe(false);
    const [doc] = await bed.connection.collection(CREDENTIALS_COLLECTION).find({ accountId: who.accountId, type: 'totp' }).toArray();
    expect(doc!.lastUsedStep).toBeLessThan(Math.floor(bed.clock.now().getTime() / 1000 / TOTP_PERIOD_SECONDS));
  });

  test('credentials read without the TOTP fields: the credential is read as verify reads it', async () => {
    const { who, secret } = await enrolled();
    const plain = await bed.factors.credentialSummaries(who.accountId, ['totp']);
    expect(await bed.factors.totp.verifyKnown(who, await codeAt(secret), plain)).toEqual({ ok: true, amr: ['otp'] });
  });
});
