/** SMS one-time passcodes and phone verification, with a local HTTP server as the webhook gateway. */
import { accountModel } from '../../src/accounts/account.model.js';
import { createLogger } from '../../src/logger.js';
import { WebhookSmsGateway } from '../../src/notify/sms.js';
import { maskPhone } from '../../src/factors/otp/mask.js';
import { normalisePhone } from '../../src/factors/sms-otp/sms-otp.js';
import { subjectFromAccount } from '../../src/factors/subject.js';
import { openFactorTestBed, SmsWebhookReceiver, type FactorTestBed } from './helpers.js';

let receiver: SmsWebhookReceiver;
let bed: FactorTestBed;
let n = 0;

beforeAll(async () => {
  receiver = await new SmsWebhookReceiver().start();
  bed = await openFactorTestBed('sms_otp', { sms: new WebhookSmsGateway({ url: receiver.url, token: 'sms-secret' }, createLogger('silent')) });
  await accountModel(bed.connection).init();
});
afterAll(async () => {
  await receiver.stop();
  await bed.close();
});

async function newAccount(fields: { phone?: string; phoneVerified?: boolean; market?: string } = {}) {
  n += 1;
  return accountModel(bed.connection).create({ userId: `sms-user-${n}`, userIdLower: `sms-user-${n}`, name: 'Sam', email: `sam${n}@example.com`, ...fields });
}
const reload = async (accountId: string) => subjectFromAccount((await accountModel(bed.connection).findOne({ accountId }))!);
const context = { interactionId: 'interaction-sms' };

test('phone numbers: E.164 after removing the separators people type; masked to the last four digits', () => {
  expect(normalisePhone('+1 (415) 555-0123')).toBe('+14155550123');
  expect(normalisePhone('+49 30 1234567')).toBe('+49301234567');
  expect(normalisePhone('0301234567')).toBeNull(); // no country code
  expect(normalisePhone('+0123456789')).toBeNull();
  expect(normalisePhone('+1234')).toBeNull();
  expect(maskPhone('+14155550123')).toBe('•••• 0123');
});

test('adding a phone: a code goes to the new number, and only the right code stores it as verified', async () => {
  const account = await newAccount();
  const who = subjectFromAccount(account);
  expect(await bed.factors.smsOtp.isEnrolled(who)).toBe(false);

  const sent = await bed.factors.smsOtp.enrol(who, { phone: '+1 415 555 0100' }, context);
  expect(sent).toEqual({ ok: true, destination: '•••• 0100', expiresAt: expect.any(Date), retryAfterSeconds: 30 });
  const message = receiver.received.at(-1)!;
  expect(message.authorization).toBe('Bearer sms-secret');
  expect(message.body.to).toBe('+14155550100');
  expect(message.body.text).toMatch(/^Gatehouse: \d{6} is your code to add this phone number\. It expires in 10 min\./);
  const code = receiver.lastCodeTo('+14155550100');

  // Not stored yet: the number is unproven.
  expect(await reload(who.accountId)).toMatchObject({ phone: null, phoneVerified: false });
  // A phone-verify code is no sign-in code.
  expect(await bed.factors.smsOtp.verify({ ...who, phone: '+14155550100', phoneVerified: true }, code, context)).toEqual({ ok: false, reason: 'no_challenge' });

  expect(await bed.factors.smsOtp.confirmPhone(who, '000000' === code ? '111111' : '000000', context)).toEqual({ ok: false, reason: 'invalid', attemptsLeft: 4 });
  expect(await bed.factors.smsOtp.confirmPhone(who, code, context)).toEqual({ ok: true, phone: '+14155550100' });
  const after = await reload(who.accountId);
  expect(after).toMatchObject({ phone: '+14155550100', phoneVerified: true });
  expect(await bed.factors.smsOtp.isEnrolled(after)).toBe(true);
  expect(await bed.factors.smsOtp.confirmPhone(who, code, context)).toEqual({ ok: false, reason: 'used' });
});

test('an invalid number is refused before anything is sent', async () => {
  const who = subjectFromAccount(await newAccount());
  const before = receiver.received.length;
  expect(await bed.factors.smsOtp.enrol(who, { phone: '555-0100' })).toEqual({ ok: false, reason: 'invalid_phone', message: expect.stringMatching(/international form/) });
  expect(receiver.received.length).toBe(before);
});

test('sign-in codes go only to a verified phone, and verify with amr "sms"', async () => {
  const unverified = subjectFromAccount(await newAccount({ phone: '+14155550111', phoneVerified: false }));
  expect(await bed.factors.smsOtp.challenge(unverified, context)).toEqual({ ok: false, reason: 'not_enrolled' });
  expect(await bed.factors.smsOtp.verify(unverified, '123456', context)).toEqual({ ok: false, reason: 'not_enrolled' });

  const who = subjectFromAccount(await newAccount({ phone: '+14155550112', phoneVerified: true }));
  expect(await bed.factors.smsOtp.challenge(who, context)).toMatchObject({ ok: true, destination: '•••• 0112' });
  expect(receiver.received.at(-1)!.body.text).toMatch(/is your sign-in code\. It expires in 10 min\. Never share it\./);
  const code = receiver.lastCodeTo('+14155550112');
  expect(await bed.factors.smsOtp.verify(who, code, { interactionId: 'some-other-interaction' })).toEqual({ ok: false, reason: 'no_challenge' });
  expect(await bed.factors.smsOtp.verify(who, code, context)).toEqual({ ok: true, amr: ['sms'] });
  expect(await bed.factors.smsOtp.verify(who, code, context)).toEqual({ ok: false, reason: 'used' });
  expect(bed.lines.join('\n')).not.toContain(code);
});

test('the SMS cooldown and hourly cap apply per account', async () => {
  const who = subjectFromAccount(await newAccount({ phone: '+14155550113', phoneVerified: true }));
  expect((await bed.factors.smsOtp.challenge(who, context)).ok).toBe(true);
  expect(await bed.factors.smsOtp.challenge(who, context)).toEqual({ ok: false, reason: 'cooldown', retryAfterSeconds: 30 });
  for (let i = 0; i < 4; i++) {
    bed.clock.advance(30);
    expect((await bed.factors.smsOtp.challenge(who, context)).ok).toBe(true);
  }
  bed.clock.advance(30);
  expect(await bed.factors.smsOtp.challenge(who, context)).toEqual({ ok: false, reason: 'hourly_cap', retryAfterSeconds: 3600 - 5 * 30 });
});

test('a gateway failure is a typed result, not an exception', async () => {
  const who = subjectFromAccount(await newAccount({ phone: '+14155550114', phoneVerified: true }));
  receiver.status = 500;
  try {
    expect(await bed.factors.smsOtp.challenge(who, context)).toEqual({ ok: false, reason: 'delivery_failed', retryAfterSeconds: 30 });
  } finally {
    receiver.status = 202;
  }
});
