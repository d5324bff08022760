/**
 * Passkeys in real Chromium with a DevTools-protocol virtual authenticator (a platform authenticator
 * that verifies the user): enrolment in the account area after a password + emailed code sign-in,
 * passwordless sign-in through a relying party (the demo app, openid-client) with the WebAuthn amr in
 * the ID token, the passkey as the second factor after the password, a removed passkey refused, and a
 * cancelled ceremony leaving a usable page. The pages are driven by their labels and roles.
 */
import { generate } from 'otplib';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { describeIfChromium, launchChromium } from '../support/chromium.js';
import { startTestGatehouse, type TestGatehouse } from '../support/gatehouse.js';
import { TestClock } from '../support/clock.js';
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
  const clock = new TestClock();
  /** The mediation of every navigator.credentials.get() the pages made. */
  const mediations: string[] = [];

  beforeAll(async () => {
    smtp = await new TestSmtpServer().start();
    gh = await startTestGatehouse('browser_passkeys', { overrides: { demo: { enabled: true } }, env: { SMTP_URL: smtp.url }, clock });
    expect(new URL(gh.url).hostname).toBe('localhost'); // WebAuthn refuses an IP address as RP ID
    // A market that requires two-step verification; the account has enrolled with emailed codes.
    const account = await gh.services.accounts.create({ userId: USER, email: EMAIL, emailVerified: true, name: 'Pat Passkey', market: 'US', password: PASSWORD });
    accountId = account.accountId;
    await gh.services.accounts.updateMfa(accountId, { set: { enrolledAt: new Date(), defaultMethod: 'email-otp' } });
    browser = await launchChromium();
    context = await browser.newContext();
    // The virtual authenticator answers conditional requests (autofill) at once, without a person
    // choosing: a page would sign itself in as it loads. So the tests turn autofill support off, as in a
    // browser without it, except where they test it (test 2b).
    await context.addInitScript(() => {
      if (localStorage.getItem('test:autofill') !== 'on') PublicKeyCredential.isConditionalMediationAvailable = async () => false;
      const record = (window as unknown as { recordMediation: (mediation: string) => void }).recordMediation;
      const get = navigator.credentials.get.bind(navigator.credentials);
      navigator.credentials.get = (options?: CredentialRequestOptions) => {
        record(options?.mediation ?? 'optional');
        return get(options);
      };
    });
    await context.exposeFunction('recordMediation', (mediation: string) => void mediations.push(mediation));
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
    return gh.services.connection.collection('audit_events').find({ type }).sort({ _id: 1 }).toArray();
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

  async function demoSignInPage() {
    await page.goto(`${gh.url}/demo`);
    await page.getByRole('link', { name: 'Sign in with Gatehouse' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  }

  async function demoClaims(): Promise<Record<string, unknown>> {
    // Signing out of the demo app also revokes its grant, so consent may be asked again.
    const allow = page.getByRole('button', { name: 'Allow' });
    await Promise.race([page.waitForURL(/\/demo\/callback/, { timeout: 15_000 }).catch(() => undefined), allow.waitFor({ timeout: 15_000 }).catch(() => undefined)]);
    if (await allow.isVisible()) await allow.click();
    await page.waitForURL(/\/demo\/callback/, { timeout: 15_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\nThe page shows: ${(await page.textContent('main'))?.replace(/\s+/g, ' ')}`);
    });
    return JSON.parse((await page.textContent('#id-token-claims'))!) as Record<string, unknown>;
  }

  async function demoSignOut() {
    await page.getByRole('link', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.waitForURL(`${gh.url}/demo`);
  }

  test('(2) passwordless sign-in with the passkey through a relying party: the ID token carries the WebAuthn amr', async () => {
    await demoSignInPage();
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    const claims = await demoClaims();
    // A platform authenticator bound to one device, with user verification: possession + "user" = MFA.
    expect(claims).toMatchObject({ sub: accountId, amr: ['hwk', 'user', 'mfa'], acr: 'urn:gatehouse:acr:mfa' });
    expect(await events('signin.passkey')).toEqual([expect.objectContaining({ outcome: 'success', actor: { kind: 'account', id: accountId } })]);
    const [stored] = await gh.services.factors.webauthn.list(accountId);
    expect(stored!.lastUsedAt).not.toBeNull();
    await demoSignOut();
  });

  test('(2b) conditional mediation: the sign-in page offers passkeys in the User ID field\'s autofill', async () => {
    await page.goto(`${gh.url}/demo`);
    await page.evaluate(() => localStorage.setItem('test:autofill', 'on'));
    mediations.length = 0;
    try {
      await page.getByRole('link', { name: 'Sign in with Gatehouse' }).click();
      expect(await page.getByLabel('User ID or email').getAttribute('autocomplete')).toBe('username webauthn');
      // The page asks for a passkey with mediation "conditional" as it loads.
      for (let waited = 0; !mediations.includes('conditional') && waited < 10_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(mediations).toContain('conditional');
      // The virtual authenticator may answer that request by itself (a person would pick the passkey
      // from the field's suggestions); otherwise the button takes over from it. Either way: signed in.
      await page
        .locator('[data-passkey-button]')
        .evaluate((button) => (button as HTMLButtonElement).click(), undefined, { timeout: 2000 })
        .catch(() => undefined); // the page may already have left
      expect(await demoClaims()).toMatchObject({ sub: accountId, amr: ['hwk', 'user', 'mfa'] });
    } finally {
      await page.evaluate(() => localStorage.removeItem('test:autofill'));
    }
    await demoSignOut();
  });

  test('(3) the passkey as the second factor after the password', async () => {
    await demoSignInPage();
    await passwordStep();
    await page.getByRole('heading', { name: 'Verify it’s you' }).waitFor();
    // Email is this account's default; the passkey is offered as another way.
    await page.getByRole('button', { name: 'Use your security key or device' }).click();
    await page.getByRole('button', { name: 'Use your security key or device' }).click();
    const claims = await demoClaims();
    expect(claims).toMatchObject({ sub: accountId, amr: ['pwd', 'hwk', 'user', 'mfa'], acr: 'urn:gatehouse:acr:mfa' });
    const secondFactor = await events('signin.second_factor');
    expect(secondFactor.at(-1)).toMatchObject({ outcome: 'success', details: { method: 'webauthn' } });
  });

  test('(4) a removed passkey can no longer sign in', async () => {
    // Still signed in (with MFA, moments ago) from the previous test: the account area opens directly.
    await page.goto(`${gh.url}/account`);
    await page.getByRole('button', { name: 'Remove Work laptop' }).click();
    await page.waitForURL(/\/account\?done=removed/);
    expect(await page.textContent('main')).toContain('You have no passkeys yet');
    expect(await gh.services.factors.webauthn.list(accountId)).toHaveLength(0);
    expect(await events('mfa.passkey_removed')).toEqual([expect.objectContaining({ outcome: 'success' })]);

    await page.getByRole('link', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.waitForURL(`${gh.url}/account`);
    await demoSignInPage();
    expect(await authenticator.credentials()).toHaveLength(1); // the device still holds it
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toContain('This passkey is not recognised');
    expect((await events('signin.passkey')).at(-1)).toMatchObject({ outcome: 'failure', details: { reason: 'unknown_credential' } });
    expect(page.url()).toContain('/interaction/');
  });

  test('(5) a cancelled passkey sign-in leaves a usable page: the message, then the password still works', async () => {
    clock.advance(60); // past the emailed code's resend cooldown (a code was sent in test 3)
    await demoSignInPage();
    await authenticator.setUserVerified(false); // the person does not confirm (fingerprint refused or dialog dismissed)
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toBe('Sign-in with a passkey was cancelled. You can try again or use your password.');
    // The button is usable again and focused, for keyboard users.
    expect(await page.getByRole('button', { name: 'Sign in with a passkey' }).isEnabled()).toBe(true);
    await authenticator.setUserVerified(true);

    const since = smtp.received.length;
    await passwordStep();
    await page.getByRole('heading', { name: 'Verify it’s you' }).waitFor();
    await page.getByLabel('Code', { exact: true }).fill(await emailedCode(since));
    await page.getByRole('button', { name: 'Verify' }).click();
    const claims = await demoClaims();
    expect(claims).toMatchObject({ amr: ['pwd', 'otp', 'mfa'] });
    await demoSignOut();
  });

  test('(6) enrolment offers a passkey once a possession factor is proven; it can become the default method', async () => {
    const enrollee = await gh.services.accounts.create({ userId: 'eve-enrols', email: 'eve@example.com', name: 'Eve Enrols', market: 'US', password: PASSWORD });
    await demoSignInPage();
    await page.getByLabel('User ID or email').fill('eve-enrols');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('button', { name: 'These are correct, continue' }).click();
    await page.getByLabel('Security code').fill('580317');
    await page.getByLabel('Enter it again').fill('580317');
    await page.getByRole('button', { name: 'Save security code' }).click();
    await page.getByRole('button', { name: 'Skip this step' }).click();

    // Before any possession factor, the method page only points to the account area.
    await page.getByRole('group', { name: 'Default verification method' }).waitFor();
    expect(await page.textContent('main')).toContain('You can add a passkey from your account page');
    expect(await page.getByRole('button', { name: 'Add a passkey' }).count()).toBe(0);

    await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
    const secret = (await page.textContent('code.manual-key'))!.trim();
    await page.getByLabel('Code from the app').fill(await generate({ secret, epoch: Math.floor(clock.now().getTime() / 1000) })); // the server's (test) clock
    await page.getByRole('button', { name: 'Confirm' }).click();

    await page.getByLabel('Name for the new passkey').fill('Phone');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await page.getByLabel('Use my passkey or security key').check();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('button', { name: 'I have saved my recovery codes' }).click();
    const claims = await demoClaims();
    expect(claims).toMatchObject({ sub: enrollee.accountId, amr: ['pwd', 'otp', 'mfa'] });
    expect(await gh.services.factors.webauthn.list(enrollee.accountId)).toEqual([expect.objectContaining({ name: 'Phone' })]);
    expect((await gh.services.accounts.findByAccountId(enrollee.accountId))!.mfa).toMatchObject({ defaultMethod: 'webauthn' });
    await demoSignOut();

    // Next time the passkey is the second factor offered first.
    await demoSignInPage();
    await page.getByLabel('User ID or email').fill('eve-enrols');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'Verify it’s you' }).waitFor();
    expect(await page.textContent('main')).toContain('Use your passkey or security key to confirm it’s you.');
    await page.getByRole('button', { name: 'Use your security key or device' }).click();
    expect(await demoClaims()).toMatchObject({ sub: enrollee.accountId, amr: ['pwd', 'hwk', 'user', 'mfa'] });
  });
});
