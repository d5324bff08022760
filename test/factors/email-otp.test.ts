/** Email one-time passcodes, delivered to a real SMTP server started by the test. */
import { createLogger } from '../../src/logger.js';
import { Mailer } from '../../src/notify/mailer.js';
import { maskEmail } from '../../src/factors/otp/mask.js';
import { TestSmtpServer } from '../support/smtp.js';
import { openFactorTestBed, subject, testPolicies, type FactorTestBed } from './helpers.js';

let smtp: TestSmtpServer;
let mailer: Mailer;
let bed: FactorTestBed;

beforeAll(async () => {
  smtp = await new TestSmtpServer().start();
  mailer = new Mailer({ smtpUrl: smtp.url, from: 'Gatehouse <no-reply@gatehouse.test>' }, createLogger('silent'), undefined);
  bed = await openFactorTestBed('email_otp', { mailer, policies: testPolicies({ CH: { otp: { length: 8, ttlSeconds: 300 } } }) });
});
afterAll(async () => {
  mailer.close();
  await smtp.stop();
  await bed.close();
});

const context = { interactionId: 'interaction-1' };
const codeIn = (text: string) => /^\s+(\d{6,9})\s*$/m.exec(text)?.[1];

test('masks the address: first letter and the domain', () => {
  expect(maskEmail('jane.doe@example.com')).toBe('j•••@example.com');
  expect(maskEmail('j@example.com')).toBe('j•••@example.com');
  expect(maskEmail('not-an-address')).toBe('•••');
});

test('sends a text + HTML mail with the code, what it is for, how long it lasts and what to do if it was not you', async () => {
  const who = subject({ email: 'mail-1@example.com', name: 'Jane <Doe>' });
  const result = await bed.factors.emailOtp.challenge(who, context);
  expect(result).toEqual({ ok: true, destination: 'm•••@example.com', expiresAt: expect.any(Date), retryAfterSeconds: 30 });

  const mail = await smtp.waitFor('mail-1@example.com');
  expect(mail.subject).toBe('Your Gatehouse sign-in code');
  expect(mail.subject).not.toMatch(/\d/);
  const code = codeIn(mail.text)!;
  expect(code).toMatch(/^\d{6}$/);
  expect(mail.text).toContain('Hello Jane <Doe>,');
  expect(mail.text).toContain('finish signing in');
  expect(mail.text).toContain('valid for 10 minutes');
  expect(mail.text).toMatch(/If you did not just try to sign in/);
  expect(mail.html).toContain(code);
  expect(mail.html).toContain('Hello Jane &lt;Doe&gt;,');
  expect(mail.html).toContain('valid for 10 minutes');
  // Nothing else about the account: no User ID, no account ID.
  expect(mail.text + mail.html).not.toContain(who.userId);
  expect(mail.text + mail.html).not.toContain(who.accountId);

  expect(await bed.factors.emailOtp.verify(who, code, context)).toEqual({ ok: true, amr: ['otp'] });
  expect(await bed.factors.emailOtp.verify(who, code, context)).toEqual({ ok: false, reason: 'used' });
  // Logs say a code was sent, never which.
  expect(bed.lines.join('\n')).toContain('one-time code sent');
  expect(bed.lines.join('\n')).not.toContain(code);
});

test('a resend within the cooldown is refused with a typed result, and no mail goes out', async () => {
  const who = subject({ email: 'mail-2@example.com' });
  expect((await bed.factors.emailOtp.challenge(who, context)).ok).toBe(true);
  await smtp.waitFor('mail-2@example.com');
  bed.clock.advance(5);
  expect(await bed.factors.emailOtp.challenge(who, context)).toEqual({ ok: false, reason: 'cooldown', retryAfterSeconds: 25 });
  expect(smtp.received.filter((m) => m.to.includes('mail-2@example.com'))).toHaveLength(1);
});

test("the account's market sets code length and lifetime", async () => {
  const who = subject({ email: 'mail-3@example.com', market: 'ch' });
  const result = await bed.factors.emailOtp.challenge(who, context);
  expect(result.ok && result.expiresAt.getTime() - bed.clock.now().getTime()).toBe(300_000);
  const mail = await smtp.waitFor('mail-3@example.com');
  expect(codeIn(mail.text)).toMatch(/^\d{8}$/);
  expect(mail.text).toContain('valid for 5 minutes');
});

test('the recovery purpose has its own wording and its own code', async () => {
  const who = subject({ email: 'mail-4@example.com' });
  expect((await bed.factors.emailOtp.challenge(who, {}, 'recovery')).ok).toBe(true);
  const mail = await smtp.waitFor('mail-4@example.com');
  expect(mail.subject).toBe('Your Gatehouse account recovery code');
  expect(mail.text).toMatch(/If you did not ask to recover your account/);
  const code = codeIn(mail.text)!;
  expect(await bed.factors.emailOtp.verify(who, code, {})).toEqual({ ok: false, reason: 'no_challenge' });
  expect(await bed.factors.emailOtp.verify(who, code, {}, 'recovery')).toEqual({ ok: true, amr: ['otp'] });
});

test('an account without an email is not enrolled and gets no mail', async () => {
  const who = subject({ email: null });
  expect(await bed.factors.emailOtp.isEnrolled(who)).toBe(false);
  expect(await bed.factors.emailOtp.isEnrolled(subject())).toBe(true);
  expect(await bed.factors.emailOtp.challenge(who, context)).toEqual({ ok: false, reason: 'not_enrolled' });
  expect(await bed.factors.emailOtp.verify(who, '123456', context)).toEqual({ ok: false, reason: 'not_enrolled' });
  await expect(bed.factors.emailOtp.enrol(who)).rejects.toThrow(/without an email/);
});

test('a code sent to an old address does not count once the address changed', async () => {
  const who = subject({ email: 'mail-5@example.com' });
  await bed.factors.emailOtp.challenge(who, context);
  const code = codeIn((await smtp.waitFor('mail-5@example.com')).text)!;
  expect(await bed.factors.emailOtp.verify({ ...who, email: 'new-5@example.com' }, code, context)).toEqual({ ok: false, reason: 'no_challenge' });
});

test('when the mail cannot be delivered: a typed failure, the code withdrawn, the failure logged', async () => {
  const broken = await openFactorTestBed('email_otp_broken', {
    mailer: new Mailer({ smtpUrl: 'smtp://127.0.0.1:9', from: 'x@gatehouse.test' }, createLogger('silent'), undefined),
  });
  try {
    const who = subject({ email: 'nobody@example.com' });
    const result = await broken.factors.emailOtp.challenge(who, context);
    expect(result).toEqual({ ok: false, reason: 'delivery_failed', retryAfterSeconds: 30 });
    expect(await broken.factors.otp.pending({ accountId: who.accountId, channel: 'email', purpose: 'signin', interactionId: context.interactionId })).toBeNull();
    expect(broken.lines.join('\n')).toContain('could not be delivered');
  } finally {
    await broken.close();
  }
});
