/**
 * "Remember this device" end to end: the trust is written only after a verified second factor, skips the
 * one-time code (never the password) with amr telling the truth, expires with the policy's lifetime (test
 * clock) and is renewed, is overridden by an RP demanding MFA, never helps another account, and is revoked
 * by the admin. New-browser and remembered-device alert mails arrive at a real SMTP server.
 */
import { createHmac } from 'node:crypto';
import { cliCall } from '../src/admin/call.js';
import { DeviceCookies } from '../src/interactions/device-cookies.js';
import { Browser, type Page } from './support/browser.js';
import { signInTestbed } from './support/signin-testbed.js';
import { exchange, isCallback, startAuthorization, type AuthorizationAttempt } from './support/rp.js';

const PASSWORD = 'remember me correctly';
const CHROME_ON_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36';
const FIREFOX_ON_LINUX = 'Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0';
const MFA = 'urn:gatehouse:acr:mfa';

const bed = signInTestbed('trusted_devices');

/** A US account (2FA required; trusted devices for 30 days) that enrolled with email codes. */
async function enrolledAccount(userId: string) {
  const account = await bed.gh.services.accounts.create({ userId, email: `${userId}@example.com`, name: `${userId} Example`, password: PASSWORD, market: 'US' });
  await bed.gh.services.accounts.model.updateOne({ userId }, { $set: { mfa: { enrolledAt: new Date(), defaultMethod: 'email-otp', deferrals: 0 } } });
  return account;
}

async function signIn(userId: string, browser: Browser, params: Record<string, string> = {}): Promise<{ attempt: AuthorizationAttempt; page: Page }> {
  // prompt=login: the browser keeps its Gatehouse session between tests' sign-ins; ask for the password anyway.
  const attempt = await startAuthorization(bed.rp, { prompt: 'login', ...params }, browser);
  const page = await browser.submit(attempt.page, '/login', { login: userId, password: PASSWORD }, isCallback);
  return { attempt, page };
}

/** Password, then the emailed code (ticking "remember" when asked to); returns the callback page. */
async function signInWithCode(userId: string, browser: Browser, options: { remember?: boolean; params?: Record<string, string> } = {}) {
  bed.clock.advance(31); // past the resend cooldown of the previous sign-in's code
  const since = bed.smtp.received.length;
  const { attempt, page } = await signIn(userId, browser, options.params);
  expect(page.body).toContain('Verify it’s you');
  const code = await bed.smtp.code(`${userId}@example.com`, since);
  const done = await browser.submit(page, '/second-factor', { code, ...(options.remember ? { remember: '1' } : {}) }, isCallback);
  return { attempt, page: done, secondFactorPage: page };
}

const claims = async (attempt: AuthorizationAttempt, page: Page) => {
  expect(isCallback(page.url)).toBe(true);
  return (await exchange(bed.rp, attempt, page.url)).claims()!;
};

const devices = (accountId: string) => bed.gh.services.factors.trustedDevice.list(accountId);

test('remembering the device skips the code but never the password; amr says no MFA happened', async () => {
  const account = await enrolledAccount('trusty');
  const browser = new Browser({ userAgent: CHROME_ON_WINDOWS });
  const first = await signInWithCode('trusty', browser, { remember: true });
  expect(first.secondFactorPage.body).toContain('Remember this device for 30 days');
  expect(await claims(first.attempt, first.page)).toMatchObject({ amr: ['pwd', 'otp', 'mfa'], acr: MFA });

  // The cookie is HttpOnly, SameSite=Strict; the server keeps only a hash of its token.
  const cookies = await browser.jar.getCookies(`${bed.gh.url}/interaction/x`);
  const trust = cookies.find((c) => c.key.startsWith('gh_device_'))!;
  expect(trust).toMatchObject({ httpOnly: true, sameSite: 'strict', path: '/interaction/' });
  const [device] = await devices(account.accountId);
  expect(device).toMatchObject({ label: 'Chrome on Windows', lastIp: expect.any(String) });
  const raw = JSON.stringify(await bed.gh.services.connection.collection('trusted_devices').find({ accountId: account.accountId }).toArray());
  expect(raw).not.toContain(trust.value);

  // Next sign-in: password only, and the ID token does not claim MFA.
  const sent = bed.smtp.received.length;
  const second = await signIn('trusty', browser);
  expect(await claims(second.attempt, second.page)).toMatchObject({ amr: ['pwd'], acr: 'urn:gatehouse:acr:pwd' });
  expect(bed.smtp.received.filter((m, i) => i >= sent && /\bcode\b/i.test(m.subject))).toHaveLength(0);

  // The password is still required: a wrong one fails as always.
  const wrong = await startAuthorization(bed.rp, { prompt: 'login' }, browser);
  const refused = await browser.submit(wrong.page, '/login', { login: 'trusty', password: 'not the password' }, isCallback);
  expect(refused.status).toBe(401);
});

test('the trust is written only after the second factor is verified', async () => {
  const account = await enrolledAccount('carefully');
  const browser = new Browser();
  const { page } = await signIn('carefully', browser);
  const wrong = await browser.submit(page, '/second-factor', { code: '000000', remember: '1' }, isCallback);
  expect(wrong.status).toBe(401);
  expect(await devices(account.accountId)).toHaveLength(0);
  expect((await browser.jar.getCookies(`${bed.gh.url}/interaction/x`)).some((c) => c.key.startsWith('gh_device_'))).toBe(false);
});

test('an RP demanding MFA overrides the trust', async () => {
  await enrolledAccount('demanding');
  const browser = new Browser();
  await signInWithCode('demanding', browser, { remember: true });
  const { page } = await signIn('demanding', browser, { acr_values: MFA });
  expect(page.body).toContain('Verify it’s you');
});

test('the trust expires with the policy lifetime; the next sign-in asks for the code and renews it', async () => {
  const account = await enrolledAccount('expiring');
  const browser = new Browser();
  await signInWithCode('expiring', browser, { remember: true });
  bed.clock.advance(29 * 24 * 3600);
  expect(isCallback((await signIn('expiring', browser)).page.url)).toBe(true);
  bed.clock.advance(2 * 24 * 3600);
  const renewed = await signInWithCode('expiring', browser, { remember: true });
  expect(renewed.secondFactorPage.body).toContain('Remember this device');
  expect(isCallback(renewed.page.url)).toBe(true);
  // The renewal replaced the old trust: one live device, trusted 30 days from now.
  const list = await devices(account.accountId);
  expect(list).toHaveLength(1);
  expect(list[0]!.expiresAt.getTime()).toBe(bed.clock.now().getTime() + 30 * 24 * 3600 * 1000);
  expect(isCallback((await signIn('expiring', browser)).page.url)).toBe(true);
});

test("a token issued to account A never helps account B, even under B's cookie name", async () => {
  const a = await enrolledAccount('alice-trust');
  const b = await enrolledAccount('bob-trust');
  const browserA = new Browser();
  await signInWithCode('alice-trust', browserA, { remember: true });
  const token = (await browserA.jar.getCookies(`${bed.gh.url}/interaction/x`)).find((c) => c.key.startsWith('gh_device_'))!.value;

  // B's browser presents A's token, under the name B's own trust cookie would have.
  const names = new DeviceCookies(createHmac('sha256', bed.gh.services.keys.cookieKeys[0]!).update('gatehouse:device-cookie').digest(), false);
  const browserB = new Browser();
  await browserB.jar.setCookie(`${names.trustCookieName(b.accountId)}=${token}; Path=/interaction/`, bed.gh.url);
  const { page } = await signIn('bob-trust', browserB);
  expect(page.body).toContain('Verify it’s you');
  expect(await devices(a.accountId)).toHaveLength(1);
});

test('an administrator revokes one device or all of them; disabling the account revokes them too', async () => {
  const account = await enrolledAccount('revoked');
  const browser = new Browser();
  await signInWithCode('revoked', browser, { remember: true });
  const [device] = await bed.gh.services.admin.accountOps.listTrustedDevices(account.accountId);
  await bed.gh.services.admin.accountOps.revokeTrustedDevice(account.accountId, device!.id, cliCall());
  expect((await signIn('revoked', browser)).page.body).toContain('Verify it’s you');
  await expect(bed.gh.services.admin.accountOps.revokeTrustedDevice(account.accountId, device!.id, cliCall())).rejects.toThrow(/no trusted device/);

  await signInWithCode('revoked', browser, { remember: true });
  await signInWithCode('revoked', new Browser(), { remember: true });
  expect(await bed.gh.services.admin.accountOps.revokeAllTrustedDevices(account.accountId, cliCall())).toEqual({ revoked: 2 });
  expect((await signIn('revoked', browser)).page.body).toContain('Verify it’s you');

  bed.clock.advance(3600); // five codes have gone out this hour: past the hourly cap's window
  await signInWithCode('revoked', browser, { remember: true });
  await bed.gh.services.admin.accountOps.setStatus(account.accountId, 'disable', cliCall());
  expect(await devices(account.accountId)).toHaveLength(0);
  const audit = await bed.gh.services.audit.model.find({ 'target.id': account.accountId, type: /trusted_device/ }).lean();
  expect(audit.map((e) => e.type).sort()).toEqual(['admin.account.trusted_device_revoked', 'admin.account.trusted_devices_revoked']);
});

test('a sign-in from a new browser sends an alert; the same browser again does not', async () => {
  await enrolledAccount('watchful');
  const home = new Browser({ userAgent: CHROME_ON_WINDOWS });
  await signInWithCode('watchful', home);
  await signInWithCode('watchful', home);
  await bed.gh.services.alerts.idle();
  expect(bed.smtp.received.filter((m) => m.to.includes('watchful@example.com') && m.subject === 'New sign-in to your account')).toHaveLength(0);

  await signInWithCode('watchful', new Browser({ userAgent: FIREFOX_ON_LINUX }));
  const alert = await bed.smtp.waitFor('watchful@example.com', (m) => m.subject === 'New sign-in to your account');
  expect(alert.text).toContain('Firefox on Linux');
  expect(alert.text).toContain(`${bed.gh.url}/recover`);

  // Ticking "remember" sends its own alert.
  await signInWithCode('watchful', home, { remember: true });
  const remembered = await bed.smtp.waitFor('watchful@example.com', (m) => m.subject === 'A device was remembered for your account');
  expect(remembered.text).toContain('Chrome on Windows');
});
