/**
 * Two-step sign-in end to end: openid-client as the RP, Gatehouse's pages submitted as a browser
 * would, codes read from a real SMTP server and from a local SMS webhook, time moved by a test clock.
 */
import * as oidc from 'openid-client';
import { generate } from 'otplib';
import { Browser, findForm, type Page } from './support/browser.js';
import { TestClock } from './support/clock.js';
import { startTestGatehouse, type TestGatehouse } from './support/gatehouse.js';
import { discover, exchange, isCallback, RP_REDIRECT, startAuthorization, type AuthorizationAttempt } from './support/rp.js';
import { TestSmsWebhook } from './support/sms-webhook.js';
import { TestSmtpServer } from './support/smtp.js';

const PASSWORD = 'a long enough secret';
const MFA = 'urn:gatehouse:acr:mfa';

let smtp: TestSmtpServer;
let sms: TestSmsWebhook;
let clock: TestClock;
let gh: TestGatehouse;
let rp: oidc.Configuration;

beforeAll(async () => {
  smtp = await new TestSmtpServer().start();
  sms = await new TestSmsWebhook().start();
  clock = new TestClock();
  gh = await startTestGatehouse('mfa', { env: { SMTP_URL: smtp.url, SMS_WEBHOOK_URL: sms.url, SMS_WEBHOOK_TOKEN: sms.token }, clock });
  const client = await gh.services.clients.create({ name: 'MFA RP', redirectUris: [RP_REDIRECT], firstParty: true });
  rp = await discover(gh.url, client.clientId, client.clientSecret);
});

afterAll(async () => {
  await gh?.close();
  await smtp?.stop();
  await sms?.stop();
});

async function account(userId: string, market: string, extra: Record<string, unknown> = {}) {
  return gh.services.accounts.create({ userId, email: `${userId}@example.com`, name: `${userId} Example`, password: PASSWORD, market, ...extra });
}

/** Marks an account as enrolled with email codes as its default, as if it had done enrolment. */
async function enrolByEmail(userId: string) {
  await gh.services.accounts.model.updateOne({ userId }, { $set: { mfa: { enrolledAt: new Date(), defaultMethod: 'email-otp', deferrals: 0 } } });
}

async function password(login: string, params: Record<string, string> = {}, browser?: Browser): Promise<AuthorizationAttempt & { after: Page }> {
  const attempt = await startAuthorization(rp, params, browser);
  const after = await attempt.browser.submit(attempt.page, '/login', { login, password: PASSWORD }, isCallback);
  return { ...attempt, after };
}

const post = (attempt: AuthorizationAttempt, page: Page, action: string, fields: Record<string, string> = {}) => attempt.browser.submit(page, action, fields, isCallback);

/** The code in the newest mail to `to` that arrived after `since` mails had been received. */
async function mailedCode(to: string, since: number): Promise<string> {
  return smtp.code(to, since);
}

async function textedCode(phone: string, since: number): Promise<string> {
  const message = await sms.latest(phone, since);
  expect(message.authorization).toBe(`Bearer ${sms.token}`);
  return /\b(\d{6,9})\b/.exec(message.text)![1]!;
}

async function claimsOf(attempt: AuthorizationAttempt, page: Page) {
  expect(isCallback(page.url)).toBe(true);
  return (await exchange(rp, attempt, page.url)).claims()!;
}

describe('policy by market', () => {
  test('off: the password alone signs in', async () => {
    await account('lab1', 'LAB');
    const attempt = await password('lab1');
    expect(await claimsOf(attempt, attempt.after)).toMatchObject({ amr: ['pwd'], acr: 'urn:gatehouse:acr:pwd' });
  });

  test('required (US): full enrolment with a verified mobile number, then sign-ins by SMS, email and recovery code', async () => {
    await account('ursula', 'US');
    const attempt = await password('ursula');
    expect(attempt.after.body).toContain('Set up two-step verification');
    expect(attempt.after.body).toContain('ursula@example.com');
    expect(attempt.after.body).not.toContain('Remind me next time');

    let page = await post(attempt, attempt.after, '/enrol/profile');
    expect(page.body).toContain('Create your security code');
    page = await post(attempt, page, '/enrol/security-code', { code: '123456', confirm: '123456' });
    expect(page.status).toBe(400);
    page = await post(attempt, page, '/enrol/security-code', { code: '402781', confirm: '402718' });
    expect(page.body).toContain('do not match');
    page = await post(attempt, page, '/enrol/security-code', { code: '402781', confirm: '402781' });
    expect(page.body).toContain('Add a mobile number');

    const since = sms.received.length;
    page = await post(attempt, page, '/enrol/phone', { action: 'add', phone: '+1 415 555 0111' });
    expect(page.body).toContain('•••• 0111');
    const code = await textedCode('+14155550111', since);
    page = await post(attempt, page, '/enrol/phone-verify', { action: 'verify', code: code === '000000' ? '111111' : '000000' });
    expect(page.status).toBe(401);
    page = await post(attempt, page, '/enrol/phone-verify', { action: 'verify', code });
    expect(page.body).toContain('How should we send your codes?');
    expect(page.body).toContain('value="sms-otp"');
    expect(page.body).toContain('value="email-otp"');

    page = await post(attempt, page, '/enrol/method', { method: 'sms-otp' });
    expect(page.body).toContain('Save your recovery codes');
    const recoveryCodes = [...page.body.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1]!);
    expect(recoveryCodes).toHaveLength(10);
    page = await post(attempt, page, '/enrol/recovery-codes');
    // The phone was proven during enrolment: no further challenge.
    expect(await claimsOf(attempt, page)).toMatchObject({ amr: ['pwd', 'sms', 'mfa'], acr: MFA });
    const stored = await gh.services.accounts.findByLogin('ursula');
    expect(stored?.mfa?.enrolledAt).toBeInstanceOf(Date);
    expect(stored).toMatchObject({ phone: '+14155550111', phoneVerified: true });

    // Next sign-in: challenged by SMS, the default (after the resend cooldown of the enrolment's text).
    clock.advance(31);
    const sinceSms = sms.received.length;
    const second = await password('ursula');
    expect(second.after.body).toContain('Enter the code we texted to •••• 0111');
    const done = await post(second, second.after, '/second-factor', { code: await textedCode('+14155550111', sinceSms) });
    expect(await claimsOf(second, done)).toMatchObject({ amr: ['pwd', 'sms', 'mfa'], acr: MFA });

    // Switching to email.
    const third = await password('ursula');
    const sinceMail = smtp.received.length;
    const emailPage = await post(third, third.after, '/second-factor/method', { method: 'email-otp' });
    expect(emailPage.body).toContain('u•••@example.com');
    const byEmail = await post(third, emailPage, '/second-factor', { code: await mailedCode('ursula@example.com', sinceMail) });
    expect(await claimsOf(third, byEmail)).toMatchObject({ amr: ['pwd', 'otp', 'mfa'] });

    // A recovery code works once.
    const fourth = await password('ursula');
    const recoveryPage = await post(fourth, fourth.after, '/second-factor/method', { method: 'recovery-codes' });
    expect(recoveryPage.body).toContain('Recovery code');
    const byRecovery = await post(fourth, recoveryPage, '/second-factor', { code: recoveryCodes[0]! });
    expect(isCallback(byRecovery.url)).toBe(true);
    const fifth = await password('ursula');
    const again = await post(fifth, await post(fifth, fifth.after, '/second-factor/method', { method: 'recovery-codes' }), '/second-factor', { code: recoveryCodes[0]! });
    expect(again.status).toBe(401);
    expect(isCallback(again.url)).toBe(false);
    const audited = await gh.services.audit.model.find({ type: 'signin.second_factor', 'details.method': 'recovery-codes' }).lean();
    expect(audited.map((e) => e.outcome).sort()).toEqual(['failure', 'success']);
  });

  test('required with deferral (DE): "remind me next time" signs in with the password and asks again', async () => {
    await account('dieter', 'DE');
    const first = await password('dieter');
    expect(first.after.body).toContain('Remind me next time');
    const deferred = await post(first, first.after, '/enrol/profile', { action: 'defer' });
    expect(await claimsOf(first, deferred)).toMatchObject({ amr: ['pwd'] });
    expect(await gh.services.audit.model.countDocuments({ type: 'mfa.enrolment_deferred' })).toBe(1);
    const second = await password('dieter');
    expect(second.after.body).toContain('Set up two-step verification');
  });

  test('without deferral, forging the "defer" action gets nowhere', async () => {
    await account('ulrich', 'US');
    const attempt = await password('ulrich');
    const page = await post(attempt, attempt.after, '/enrol/profile', { action: 'defer' });
    expect(page.status).toBe(400);
    expect(isCallback(page.url)).toBe(false);
  });
});

describe('authenticator app (TOTP)', () => {
  test('enrolment by QR code, sign-in with a code, and a replayed code is refused', async () => {
    await account('tina', 'US');
    const attempt = await password('tina');
    let page = await post(attempt, attempt.after, '/enrol/profile');
    page = await post(attempt, page, '/enrol/security-code', { code: '739150', confirm: '739150' });
    page = await post(attempt, page, '/enrol/phone', { action: 'skip' });
    page = await post(attempt, page, '/enrol/method', { method: 'setup-totp' });
    expect(page.body).toMatch(/<img src="data:image\/svg\+xml;base64,/);
    const secret = /<code class="manual-key">([A-Z2-7]+)<\/code>/.exec(page.body)![1]!;
    page = await post(attempt, page, '/enrol/totp', { action: 'confirm', code: '000000' });
    expect(page.status).toBe(401);
    // The same key is still shown after a wrong code, so the user can retry with the app they set up.
    expect(page.body).toContain(secret);
    const enrolCode = await generate({ secret, epoch: Math.floor(clock.now().getTime() / 1000) });
    page = await post(attempt, page, '/enrol/totp', { action: 'confirm', code: enrolCode });
    // The app just set up is offered, and pre-selected, as the default method.
    expect(page.body).toMatch(/value="totp" checked/);
    expect(page.body).not.toMatch(/value="email-otp" checked/);
    page = await post(attempt, page, '/enrol/method', { method: 'totp' });
    page = await post(attempt, page, '/enrol/recovery-codes');
    expect(await claimsOf(attempt, page)).toMatchObject({ amr: ['pwd', 'otp', 'mfa'], acr: MFA });

    clock.advance(30);
    const code = await generate({ secret, epoch: Math.floor(clock.now().getTime() / 1000) });
    const second = await password('tina');
    expect(second.after.body).toContain('authenticator app');
    const done = await post(second, second.after, '/second-factor', { code });
    expect(await claimsOf(second, done)).toMatchObject({ amr: ['pwd', 'otp', 'mfa'] });

    const third = await password('tina');
    const replayed = await post(third, third.after, '/second-factor', { code });
    expect(replayed.status).toBe(401);
    expect(replayed.body).toContain('already used');

    // Secrets at rest: the TOTP key and the security codes are nowhere in the database in clear.
    const everything = JSON.stringify(await Promise.all(
      (await gh.services.connection.db!.listCollections().toArray()).map((c) => gh.services.connection.collection(c.name).find().toArray()),
    ));
    for (const secretValue of [secret, '739150', '402781']) expect(everything).not.toContain(secretValue);
  });
});

describe('email codes', () => {
  test('five wrong codes burn the code; a new one can be sent after the cooldown', async () => {
    await account('emma', 'US');
    await enrolByEmail('emma');
    const since = smtp.received.length;
    const attempt = await password('emma');
    expect(attempt.after.body).toContain('Enter the code we emailed to e•••@example.com');
    const code = await mailedCode('emma@example.com', since);
    const wrong = code === '999999' ? '999998' : '999999';
    let page = attempt.after;
    for (let i = 0; i < 5; i++) page = await post(attempt, page, '/second-factor', { code: wrong });
    page = await post(attempt, page, '/second-factor', { code });
    expect(page.status).toBe(401);
    expect(page.body).toContain('Too many wrong codes');

    page = await post(attempt, page, '/second-factor/resend');
    expect(page.body).toMatch(/You can ask for another in \d+ seconds/);
    clock.advance(31);
    const sinceResend = smtp.received.length;
    page = await post(attempt, page, '/second-factor/resend');
    expect(page.body).toContain('We sent a new code.');
    const fresh = await mailedCode('emma@example.com', sinceResend);
    page = await post(attempt, page, '/second-factor', { code: fresh });
    expect(await claimsOf(attempt, page)).toMatchObject({ amr: ['pwd', 'otp', 'mfa'] });

    // The used code cannot sign in again, here or in another interaction.
    clock.advance(31);
    const other = await password('emma');
    const reused = await post(other, other.after, '/second-factor', { code: fresh });
    expect(reused.status).toBe(401);
    expect(await gh.services.audit.model.countDocuments({ type: 'signin.second_factor', outcome: 'failure', 'actor.id': (await gh.services.accounts.findByLogin('emma'))!.accountId })).toBeGreaterThanOrEqual(7);
  });

  test('a second sign-in a second after the first gets its own code at once, and it signs in; a resend there still waits', async () => {
    await account('tabitha', 'US');
    await enrolByEmail('tabitha');
    const mailsTo = () => smtp.received.filter((m) => m.to.includes('tabitha@example.com')).length;
    const since = smtp.received.length;
    const first = await password('tabitha');
    expect(first.after.body).toContain('Enter the code we emailed to t•••@example.com');
    await mailedCode('tabitha@example.com', since);

    // Another tab of the same browser (or a sign-out and sign-in again), within the first code's cooldown.
    clock.advance(1);
    const sinceSecond = smtp.received.length;
    const second = await password('tabitha', {}, first.browser);
    expect(second.after.body).toContain('Enter the code we emailed to t•••@example.com');
    expect(second.after.body).not.toContain('moments ago');
    const code = await mailedCode('tabitha@example.com', sinceSecond);
    expect(mailsTo()).toBe(2);

    // Within this sign-in the cooldown still holds back a resend: nothing is mailed.
    clock.advance(1);
    const resend = await post(second, second.after, '/second-factor/resend');
    expect(resend.body).toContain('A code was sent moments ago. You can ask for another in 29 seconds.');
    expect(mailsTo()).toBe(2);

    const done = await post(second, resend, '/second-factor', { code });
    expect(await claimsOf(second, done)).toMatchObject({ amr: ['pwd', 'otp', 'mfa'], acr: MFA });
    const accountId = (await gh.services.accounts.findByLogin('tabitha'))!.accountId;
    const sent = await gh.services.audit.model.find({ type: 'signin.code_sent', 'actor.id': accountId }).sort({ _id: 1 }).lean();
    expect(sent.map((e) => [e.outcome, (e.details as { reason?: string } | undefined)?.reason])).toEqual([
      ['success', undefined],
      ['success', undefined],
      ['failure', 'cooldown'],
    ]);
  });

  test('two sign-ins in two browsers a second apart: each code signs in its own browser, and not the other', async () => {
    await account('carla', 'US');
    await enrolByEmail('carla');
    const since = smtp.received.length;
    const c = await password('carla');
    const codeC = await mailedCode('carla@example.com', since);
    clock.advance(1);
    const sinceD = smtp.received.length;
    const d = await password('carla'); // another browser
    expect(d.browser).not.toBe(c.browser);
    const codeD = await mailedCode('carla@example.com', sinceD);

    // C's code is a wrong code in D (unless the two random codes happen to be equal).
    if (codeC !== codeD) {
      const refused = await post(d, d.after, '/second-factor', { code: codeC });
      expect(refused.status).toBe(401);
      expect(refused.body).toContain('That code is not right.');
    }
    const doneC = await post(c, c.after, '/second-factor', { code: codeC });
    expect(doneC.body).not.toContain('There is no code waiting for this sign-in');
    expect(await claimsOf(c, doneC)).toMatchObject({ amr: ['pwd', 'otp', 'mfa'], acr: MFA });
    const doneD = await post(d, d.after, '/second-factor', { code: codeD });
    expect(await claimsOf(d, doneD)).toMatchObject({ amr: ['pwd', 'otp', 'mfa'], acr: MFA });
  });

  test('a resend in one of two sign-ins replaces only that sign-in\'s code', async () => {
    await account('rosa', 'US');
    await enrolByEmail('rosa');
    const since = smtp.received.length;
    const c = await password('rosa');
    const firstC = await mailedCode('rosa@example.com', since);
    clock.advance(1);
    const sinceD = smtp.received.length;
    const d = await password('rosa');
    const codeD = await mailedCode('rosa@example.com', sinceD);

    clock.advance(30);
    const sinceResend = smtp.received.length;
    const resent = await post(c, c.after, '/second-factor/resend');
    expect(resent.body).toContain('We sent a new code.');
    const secondC = await mailedCode('rosa@example.com', sinceResend);
    if (secondC !== firstC) {
      const stale = await post(c, resent, '/second-factor', { code: firstC });
      expect(stale.status).toBe(401);
      expect(stale.body).toContain('That code is not right.');
    }
    const doneC = await post(c, resent, '/second-factor', { code: secondC });
    expect(await claimsOf(c, doneC)).toMatchObject({ amr: ['pwd', 'otp', 'mfa'] });
    const doneD = await post(d, d.after, '/second-factor', { code: codeD });
    expect(await claimsOf(d, doneD)).toMatchObject({ amr: ['pwd', 'otp', 'mfa'] });
  });

  test('the hourly cap on codes holds across sign-ins; a new sign-in it stops is not told a code was sent', async () => {
    await account('cappy', 'US');
    await enrolByEmail('cappy');
    // A verified phone too: the page offers it instead.
    await gh.services.accounts.model.updateOne({ userId: 'cappy' }, { $set: { phone: '+14155550177', phoneVerified: true } });
    let fifth: (AuthorizationAttempt & { after: Page }) | undefined;
    for (let i = 0; i < 5; i++) {
      const since = smtp.received.length;
      fifth = await password('cappy');
      expect(fifth.after.body).toContain('Enter the code we emailed to c•••@example.com');
      await mailedCode('cappy@example.com', since);
      clock.advance(1);
    }
    // now = first send + 5 s: the first send leaves the hour in 3595 s, i.e. in 60 minutes (rounded up).
    const sixth = await password('cappy');
    expect(sixth.after.body).toContain('No code could be emailed to c•••@example.com for this sign-in.');
    expect(sixth.after.body).not.toContain('Enter the code we emailed');
    expect(sixth.after.body).toContain('Too many codes were sent in the last hour. You can ask for a new code in 60 minutes. Use another way to verify, or try again then.');
    expect(sixth.after.body).not.toContain('name="code"'); // nothing to type
    expect(sixth.after.body).toContain('Text me a code instead');
    expect(smtp.received.filter((m) => m.to.includes('cappy@example.com'))).toHaveLength(5);

    // A reload still claims no code.
    const uid = /\/interaction\/([^/?#]+)/.exec(sixth.page.url)![1]!;
    const reloaded = await sixth.browser.follow(`${gh.url}/interaction/${uid}`, isCallback);
    expect(reloaded.body).toContain('No code could be emailed to c•••@example.com for this sign-in.');
    expect(reloaded.body).not.toContain('Enter the code we emailed');

    // The sign-in whose code was sent still says so when its resend meets the cap: that code still works.
    clock.advance(30);
    const capped = await post(fifth!, fifth!.after, '/second-factor/resend');
    expect(capped.body).toContain('Too many codes were sent in the last hour.');
    expect(capped.body).toContain('Enter the code we emailed to c•••@example.com');
    expect(capped.body).toContain('name="code"');

    // The other method works in the capped sign-in.
    const sinceSms = sms.received.length;
    const switched = await post(sixth, sixth.after, '/second-factor/method', { method: 'sms-otp' });
    expect(switched.body).toContain('Enter the code we texted to');
    const done = await post(sixth, switched, '/second-factor', { code: await textedCode('+14155550177', sinceSms) });
    expect(await claimsOf(sixth, done)).toMatchObject({ amr: ['pwd', 'sms', 'mfa'] });
  });

  test('an expired code is refused', async () => {
    clock.advance(60);
    await account('eddie', 'US');
    await enrolByEmail('eddie');
    const since = smtp.received.length;
    const attempt = await password('eddie');
    const code = await mailedCode('eddie@example.com', since);
    clock.advance(601);
    const page = await post(attempt, attempt.after, '/second-factor', { code });
    expect(page.status).toBe(401);
    expect(page.body).toContain('expired');
  });
});

describe('a client that requires MFA', () => {
  test('its default_acr_values make an optional-market account enrol and use a second factor', async () => {
    const strict = await gh.services.clients.create({ name: 'Payroll', redirectUris: [RP_REDIRECT], firstParty: true, requireMfa: true });
    const payroll = await discover(gh.url, strict.clientId, strict.clientSecret);
    await account('paula', 'default');
    await enrolByEmail('paula');
    const since = smtp.received.length;
    const attempt = await startAuthorization(payroll);
    const after = await attempt.browser.submit(attempt.page, '/login', { login: 'paula', password: PASSWORD }, isCallback);
    const page = await attempt.browser.submit(after, '/second-factor', { code: await mailedCode('paula@example.com', since) }, isCallback);
    expect(isCallback(page.url)).toBe(true);
    const tokens = await oidc.authorizationCodeGrant(payroll, new URL(page.url), { pkceCodeVerifier: attempt.verifier, expectedState: attempt.state, expectedNonce: attempt.nonce });
    expect(tokens.claims()).toMatchObject({ acr: MFA, amr: ['pwd', 'otp', 'mfa'] });

    await account('pete', 'default');
    const newcomer = await startAuthorization(payroll);
    const enrol = await newcomer.browser.submit(newcomer.page, '/login', { login: 'pete', password: PASSWORD }, isCallback);
    expect(enrol.body).toContain('Set up two-step verification');
    expect(enrol.body).not.toContain('Remind me next time');
  });
});

describe('step-up and max_age', () => {
  test('a password-only session asked for MFA goes to the second factor, not the password', async () => {
    await account('olga', 'default');
    const browser = new Browser();
    const first = await password('olga', {}, browser);
    expect(await claimsOf(first, first.after)).toMatchObject({ amr: ['pwd'] });
    await enrolByEmail('olga');

    const since = smtp.received.length;
    const stepUp = await startAuthorization(rp, { acr_values: MFA }, browser);
    expect(stepUp.page.body).not.toContain('name="password"');
    expect(stepUp.page.body).toContain('Enter the code we emailed to o•••@example.com');
    const page = await post(stepUp, stepUp.page, '/second-factor', { code: await mailedCode('olga@example.com', since) });
    const claims = await claimsOf(stepUp, page);
    expect(claims).toMatchObject({ amr: ['pwd', 'otp', 'mfa'], acr: MFA });
  });

  test('step-up never enrols new factors on the strength of a session alone: it asks for the password', async () => {
    await account('sally', 'default');
    const browser = new Browser();
    const first = await password('sally', {}, browser);
    await claimsOf(first, first.after);
    const stepUp = await startAuthorization(rp, { acr_values: MFA }, browser);
    expect(stepUp.page.body).toContain('name="password"');
    const after = await stepUp.browser.submit(stepUp.page, '/login', { login: 'sally', password: PASSWORD }, isCallback);
    expect(after.body).toContain('Set up two-step verification');
    expect(after.body).not.toContain('Remind me next time');
  });

  test('acr_values demanding MFA from an account that never enrolled leads to enrolment without deferral', async () => {
    await account('otto', 'DE');
    const attempt = await password('otto', { acr_values: MFA });
    expect(attempt.after.body).toContain('Set up two-step verification');
    expect(attempt.after.body).not.toContain('Remind me next time');
  });

  test('max_age=0 asks for the password again even with a session', async () => {
    await account('max', 'default');
    const browser = new Browser();
    const first = await password('max', {}, browser);
    await claimsOf(first, first.after);
    const again = await startAuthorization(rp, { max_age: '0' }, browser);
    expect(again.page.body).toContain('name="password"');
  });
});

test('guessing is bounded per account: parallel guesses and new sign-ins do not get more tries', async () => {
  await account('guesser', 'US');
  await enrolByEmail('guesser');
  const attempt = await password('guesser');
  const pages = await Promise.all(Array.from({ length: 14 }, (_, i) => post(attempt, attempt.after, '/second-factor', { code: String(100000 + i) })));
  expect(pages.find((p) => p.status === 429)!.body).toContain('Too many wrong codes');
  for (const page of pages) expect([400, 401, 429]).toContain(page.status);
  // However the 14 parallel posts interleaved, at most 10 answers were actually checked.
  const accountId = (await gh.services.accounts.findByLogin('guesser'))!.accountId;
  const checked = await gh.services.audit.model.countDocuments({ type: 'signin.second_factor', 'actor.id': accountId, 'details.reason': { $ne: 'guess_limit' } });
  expect(checked).toBeLessThanOrEqual(10);
  // A fresh sign-in (password again) gets no fresh guesses.
  const again = await password('guesser');
  const page = await post(again, again.after, '/second-factor', { code: '123456' });
  expect(page.status).toBe(429);
  expect(await gh.services.audit.model.countDocuments({ type: 'signin.second_factor', 'actor.id': accountId, 'details.reason': 'guess_limit' })).toBeGreaterThanOrEqual(1);
});

test('an authenticator app left by an abandoned enrolment does not survive the real one', async () => {
  await account('victor', 'US');
  const intruder = await password('victor');
  let page = await post(intruder, intruder.after, '/enrol/profile');
  page = await post(intruder, page, '/enrol/security-code', { code: '739153', confirm: '739153' });
  page = await post(intruder, page, '/enrol/phone', { action: 'skip' });
  page = await post(intruder, page, '/enrol/method', { method: 'setup-totp' });
  const secret = /<code class="manual-key">([A-Z2-7]+)<\/code>/.exec(page.body)![1]!;
  await post(intruder, page, '/enrol/totp', { action: 'confirm', code: await generate({ secret, epoch: Math.floor(clock.now().getTime() / 1000) }) });
  // ...abandoned. The owner enrols with email, and is never shown the intruder's app.
  const owner = await password('victor');
  page = await post(owner, owner.after, '/enrol/profile');
  page = await post(owner, page, '/enrol/security-code', { code: '739153', confirm: '739153' });
  page = await post(owner, page, '/enrol/phone', { action: 'skip' });
  expect(page.body).not.toContain('value="totp"');
  page = await post(owner, page, '/enrol/method', { method: 'email-otp' });
  const since = smtp.received.length;
  page = await post(owner, page, '/enrol/recovery-codes');
  // The recovery codes just shown prove nothing: the final challenge does not offer them.
  expect(page.body).toContain('Enter the code we emailed');
  expect(page.body).not.toContain('Use a recovery code');
  page = await post(owner, page, '/second-factor', { code: await mailedCode('victor@example.com', since) });
  expect(await claimsOf(owner, page)).toMatchObject({ amr: ['pwd', 'otp', 'mfa'] });
  const subject = gh.services.secondFactors.subjectOf((await gh.services.accounts.findByLogin('victor'))!);
  expect(await gh.services.factors.totp.isEnrolled(subject)).toBe(false);
});

test('after the password the sign-in state is stored once, with its method: a reload shows the same code page and sends nothing', async () => {
  await account('rita', 'US');
  await enrolByEmail('rita');
  const since = smtp.received.length;
  const attempt = await password('rita');
  expect(attempt.after.body).toContain('Enter the code we emailed to r•••@example.com');
  const uid = /\/interaction\/([^/?#]+)/.exec(attempt.page.url)![1]!;
  const accountId = (await gh.services.accounts.findByLogin('rita'))!.accountId;
  expect(await gh.services.signInStates.model.findById(uid).lean()).toMatchObject({ accountId, step: 'second-factor', method: 'email-otp', amr: ['pwd'], deferralAllowed: false });
  const code = await mailedCode('rita@example.com', since);

  const reloaded = await attempt.browser.follow(`${gh.url}/interaction/${uid}`, isCallback);
  expect(reloaded.status).toBe(200);
  expect(reloaded.body).toContain('Enter the code we emailed to r•••@example.com');
  expect(reloaded.body).not.toContain('name="password"');
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(smtp.received.filter((m) => m.to.includes('rita@example.com')).length).toBe(1);

  const page = await post(attempt, reloaded, '/second-factor', { code });
  expect(await claimsOf(attempt, page)).toMatchObject({ amr: ['pwd', 'otp', 'mfa'] });
  expect(await gh.services.signInStates.model.findById(uid).lean()).toBeNull();
});

test('a verified code adds its amr to what the stored state holds, once, and consumes the state: the same post again is refused', async () => {
  await account('sam', 'US');
  await enrolByEmail('sam');
  const since = smtp.received.length;
  const attempt = await password('sam');
  const uid = /\/interaction\/([^/?#]+)/.exec(attempt.page.url)![1]!;
  // As if a mobile number had been verified earlier in this interaction, and an app code too.
  await gh.services.signInStates.model.updateOne({ _id: uid }, { $set: { amr: ['pwd', 'sms', 'otp'] } });
  const code = await mailedCode('sam@example.com', since);
  const done = await post(attempt, attempt.after, '/second-factor', { code });
  expect(await claimsOf(attempt, done)).toMatchObject({ amr: ['pwd', 'sms', 'otp', 'mfa'], acr: MFA });
  expect(await gh.services.signInStates.model.findById(uid).lean()).toBeNull();

  const again = await attempt.browser.submit(attempt.after, '/second-factor', { code }, isCallback);
  expect(again.status).toBe(400);
  expect(isCallback(again.url)).toBe(false);
});

test('a sign-in complete after the password stores no state, and removes one an earlier step of the interaction left', async () => {
  await account('leftover', 'US');
  await enrolByEmail('leftover');
  const attempt = await password('leftover');
  const uid = /\/interaction\/([^/?#]+)/.exec(attempt.page.url)![1]!;
  expect(await gh.services.signInStates.model.findById(uid).lean()).toMatchObject({ step: 'second-factor', method: 'email-otp' });
  // The account moves to a market where the password alone signs in; the sign-in page of the same interaction is sent again.
  await gh.services.accounts.model.updateOne({ userId: 'leftover' }, { $set: { market: 'LAB' }, $unset: { mfa: '' } });
  const done = await attempt.browser.submit(attempt.page, '/login', { login: 'leftover', password: PASSWORD }, isCallback);
  expect(await claimsOf(attempt, done)).toMatchObject({ amr: ['pwd'], acr: 'urn:gatehouse:acr:pwd' });
  expect(await gh.services.signInStates.model.findById(uid).lean()).toBeNull();

  const again = await password('leftover');
  expect(isCallback(again.after.url)).toBe(true);
  expect(await gh.services.signInStates.model.countDocuments({ accountId: (await gh.services.accounts.findByLogin('leftover'))!.accountId })).toBe(0);
});

test('each step reads the account as it is then: a changed address shows, a disabled or deleted account is refused', async () => {
  for (const userId of ['cora', 'dora', 'flora']) {
    await account(userId, 'US');
    await enrolByEmail(userId);
  }
  const cora = await password('cora');
  expect(cora.after.body).toContain('Enter the code we emailed to c•••@example.com');
  await gh.services.accounts.model.updateOne({ userId: 'cora' }, { $set: { email: 'zed@example.org', emailLower: 'zed@example.org' } });
  const wrong = await post(cora, cora.after, '/second-factor', { code: '000000' });
  expect(wrong.status).toBe(401);
  expect(wrong.body).toContain('Enter the code we emailed to z•••@example.org');

  const dora = await password('dora');
  await gh.services.accounts.model.updateOne({ userId: 'dora' }, { $set: { status: 'disabled' } });
  const disabled = await post(dora, dora.after, '/second-factor', { code: '000000' });
  expect(disabled.status).toBe(400);
  expect(disabled.body).toContain('This sign-in step has expired');

  const flora = await password('flora');
  await gh.services.accounts.model.deleteOne({ userId: 'flora' });
  const deleted = await post(flora, flora.after, '/second-factor', { code: '000000' });
  expect(deleted.status).toBe(400);
  expect(deleted.body).toContain('This sign-in step has expired');
});

test('enrolled, but no method is usable: the page says so, and so does a reload (the state was stored)', async () => {
  await account('nora', 'US');
  await gh.services.accounts.model.updateOne({ userId: 'nora' }, { $set: { email: null, mfa: { enrolledAt: new Date(), defaultMethod: 'email-otp', deferrals: 0 } } });
  const attempt = await password('nora');
  expect(attempt.after.status).toBe(403);
  expect(attempt.after.body).toContain('None of your verification methods is available');
  const uid = /\/interaction\/([^/?#]+)/.exec(attempt.page.url)![1]!;
  expect(await gh.services.signInStates.model.findById(uid).lean()).toMatchObject({ step: 'second-factor', method: null });
  const reloaded = await attempt.browser.follow(`${gh.url}/interaction/${uid}`, isCallback);
  expect(reloaded.status).toBe(403);
  expect(reloaded.body).toContain('None of your verification methods is available');
});

test('a step page without a password first is refused', async () => {
  const attempt = await startAuthorization(rp);
  const { hidden } = findForm(attempt.page.body, '/login');
  const uid = /\/interaction\/([^/?#]+)/.exec(attempt.page.url)![1]!;
  const page = await attempt.browser.request(`${gh.url}/interaction/${uid}/second-factor`, { form: { csrf: hidden.csrf!, code: '123456' } });
  expect(page.status).toBe(400);
  expect(page.body).toContain('expired');
});

test('secrets at rest: no code that was mailed or texted is stored in clear anywhere', async () => {
  const codes = new Set<string>();
  for (const text of [...smtp.received.map((m) => m.text), ...sms.received.map((m) => m.text)]) {
    for (const match of text.matchAll(/(?<!\d)(\d{6,9})(?!\d)/g)) codes.add(match[1]!);
  }
  expect(codes.size).toBeGreaterThanOrEqual(8);
  const collections = await gh.services.connection.db!.listCollections().toArray();
  const everything = JSON.stringify(await Promise.all(collections.map((c) => gh.services.connection.collection(c.name).find().toArray())));
  for (const code of codes) expect(everything).not.toMatch(new RegExp(`(?<!\\d)${code}(?!\\d)`));
});
