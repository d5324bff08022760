/**
 * Passkeys in real Chromium with a DevTools-protocol virtual authenticator (a platform authenticator
 * that verifies the user): enrolment in the account area after a password + emailed code sign-in,
 * passwordless sign-in through a relying party (the demo app, openid-client) with the WebAuthn amr in
 * the ID token, the passkey as the second factor after the password, a removed passkey refused, and a
 * cancelled ceremony leaving a usable page. The pages are driven by their labels and roles.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { describeIfChromium, launchChromium } from '../support/chromium.js';
import { startTestGatehouse, type TestGatehouse } from '../support/gatehouse.js';
import { TestSmtpServer } from '../support/smtp.js';
import { addVirtualAuthenticator, type VirtualAuthenticator } from '../support/virtual-authenticator.js';

const PASSWORD = 'correct horse battery staple 7';
const USER = 'pat-passkey';
const EMAIL = 'pat.passkey@example.com';

describeIfChromium('passkeys in a real browser', () => {
  let gh: TestGatehouse;
  let smtp: TestSmtpServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let authenticator: VirtualAuthenticator;
  let accountId: string;

  beforeAll(async () => {
    smtp = await new TestSmtpServer().start();
    gh = await startTestGatehouse('browser_passkeys', { overrides: { demo: { enabled: true } }, env: { SMTP_URL: smtp.url } });
    expect(new URL(gh.url).hostname).toBe('localhost'); // WebAuthn refuses an IP address as RP ID
    // A market that requires two-step verification; the account has enrolled with emailed codes.
    const account = await gh.services.accounts.create({ userId: USER, email: EMAIL, emailVerified: true, name: 'Pat Passkey', market: 'US', password: PASSWORD });
    accountId = account.accountId;
    await gh.services.accounts.updateMfa(accountId, { set: { enrolledAt: new Date(), defaultMethod: 'email-otp' } });
    browser = await launchChromium();
    context = await browser.newContext();
    page = await context.newPage();
    authenticator = await addVirtualAuthenticator(page);
  });

  afterAll(async () => {
    await browser?.close();
    await gh?.close();
    await smtp?.stop();
  });

  async function emailedCode(since: number): Promise<string> {
    const mail = await smtp.waitFor(EMAIL, (m) => smtp.received.indexOf(m) >= since);
    return /\b(\d{6})\b/.exec(mail.text)![1]!;
  }

  async function passwordStep() {
    await page.getByLabel('User ID or email').fill(USER);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  async function events(type: string) {
    return gh.services.connection.collection('audit_events').find({ type }).sort({ at: 1 }).toArray();
  }

  test('(1) sign in with password and emailed code, add a passkey in the account area, sign out', async () => {
    await page.goto(`${gh.url}/account`);
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    const since = smtp.received.length;
    await passwordStep();
    await page.getByRole('heading', { name: 'Verify it’s you' }).waitFor();
    await page.getByLabel('Code', { exact: true }).fill(await emailedCode(since));
    await page.getByRole('button', { name: 'Verify' }).click();

    await page.waitForURL(`${gh.url}/account`);
    await page.getByRole('heading', { name: 'Your account' }).waitFor();
    expect(await page.textContent('main')).toContain('You have no passkeys yet');
    await page.getByLabel('Name for the new passkey').fill('Work laptop');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await page.waitForURL(/\/account\?done=added/);
    expect(await page.getByRole('status').first().textContent()).toContain('Your passkey was added');
    const row = page.getByRole('row', { name: /Work laptop/ });
    expect(await row.textContent()).toMatch(/Last used: never/);

    const stored = await gh.services.factors.webauthn.list(accountId);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ name: 'Work laptop', deviceType: 'singleDevice', backedUp: false });
    expect((await authenticator.credentials())[0]).toMatchObject({ rpId: 'localhost', userHandle: Buffer.from(accountId).toString('base64') });
    expect(await events('mfa.passkey_added')).toEqual([expect.objectContaining({ outcome: 'success', actor: { kind: 'account', id: accountId } })]);
    await gh.services.alerts.idle();
    expect(smtp.received.some((m) => m.to.includes(EMAIL) && /passkey/i.test(m.text))).toBe(true);

    await page.getByRole('link', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.waitForURL(`${gh.url}/account`);
    expect(await page.getByRole('link', { name: 'Sign in' }).isVisible()).toBe(true);
  });
});
