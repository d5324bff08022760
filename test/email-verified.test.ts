/**
 * An email code entered at sign-in proves the address, as following the activation link does: the
 * `email_verified` claim turns true, and only while the address is the one the code went to.
 */
import * as oidc from 'openid-client';
import { startTestGatehouse, type TestGatehouse } from './support/gatehouse.js';
import { discover, exchange, isCallback, RP_REDIRECT, startAuthorization } from './support/rp.js';
import { TestSmtpServer } from './support/smtp.js';

const PASSWORD = 'a long enough secret';

let smtp: TestSmtpServer;
let gh: TestGatehouse;
let rp: oidc.Configuration;

beforeAll(async () => {
  smtp = await new TestSmtpServer().start();
  gh = await startTestGatehouse('email_verified', { env: { SMTP_URL: smtp.url } });
  const client = await gh.services.clients.create({ name: 'Verified RP', redirectUris: [RP_REDIRECT], firstParty: true });
  rp = await discover(gh.url, client.clientId, client.clientSecret);
});

afterAll(async () => {
  await gh?.close();
  await smtp?.stop();
});

test('a sign-in by email code marks the address verified: userinfo says email_verified true', async () => {
  const { accountId } = await gh.services.accounts.create({ userId: 'ulrike', email: 'Ulrike@example.com', name: 'Ulrike Example', password: PASSWORD, market: 'US' });
  await gh.services.accounts.model.updateOne({ accountId }, { $set: { mfa: { enrolledAt: new Date(), defaultMethod: 'email-otp', deferrals: 0 } } });

  const since = smtp.received.length;
  const attempt = await startAuthorization(rp, { scope: 'openid email' });
  const codePage = await attempt.browser.submit(attempt.page, '/login', { login: 'ulrike', password: PASSWORD }, isCallback);
  expect(codePage.body).toContain('Enter the code we emailed');
  // Only entering the code proves the address; mailing it does not.
  expect((await gh.services.accounts.findByAccountId(accountId))!.emailVerified).toBe(false);

  const wrong = await attempt.browser.submit(codePage, '/second-factor', { code: '00000000' }, isCallback);
  expect(isCallback(wrong.url)).toBe(false);
  expect((await gh.services.accounts.findByAccountId(accountId))!.emailVerified).toBe(false);

  const code = await smtp.code('Ulrike@example.com', since);
  const done = await attempt.browser.submit(wrong, '/second-factor', { code }, isCallback);
  expect(isCallback(done.url)).toBe(true);
  const tokens = await exchange(rp, attempt, done.url);
  expect(tokens.claims()!.amr).toEqual(['pwd', 'otp', 'mfa']);
  expect(await oidc.fetchUserInfo(rp, tokens.access_token, accountId)).toMatchObject({ email: 'Ulrike@example.com', email_verified: true });
});

test('the mark is conditional on the address: proof for an address the account no longer has marks nothing', async () => {
  const { accountId } = await gh.services.accounts.create({ userId: 'viktor', email: 'viktor.new@example.com', name: 'Viktor Example', password: PASSWORD });
  await gh.services.accounts.markEmailProven(accountId, 'viktor.old@example.com');
  expect((await gh.services.accounts.findByAccountId(accountId))!.emailVerified).toBe(false);
  await gh.services.accounts.markEmailProven(accountId, 'Viktor.New@example.com');
  expect((await gh.services.accounts.findByAccountId(accountId))!.emailVerified).toBe(true);
});
