/**
 * "Forgot User ID or password?" and activation end to end, as a browser submits the pages: the full
 * password reset (security code + emailed passcode, password rules, what it revokes, the mail), the
 * attempt cap, the no-enumeration comparisons (existing vs unknown, byte for byte apart from CSRF
 * tokens), the User ID reminder, and activating a pre-provisioned account.
 */
import * as oidc from 'openid-client';
import { cliCall } from '../src/admin/call.js';
import { subjectFromAccount } from '../src/factors/index.js';
import { Browser, type Page } from './support/browser.js';
import { startTestGatehouse, type TestGatehouse } from './support/gatehouse.js';
import { signInTestbed } from './support/signin-testbed.js';
import { pageText, withoutPerRequestValues } from './support/pages.js';
import { discover, exchange, isCallback, RP_REDIRECT, startAuthorization } from './support/rp.js';

const OLD_PASSWORD = 'the old forgotten one';
const NEW_PASSWORD = 'brand new river stones';
const SECURITY_CODE = '402781';

const bed = signInTestbed('recovery');

async function createAccount(userId: string, options: { securityCode?: boolean; market?: string } = {}) {
  const account = await bed.gh.services.accounts.create({ userId, email: `${userId}@example.com`, name: `${userId} Example`, password: OLD_PASSWORD, ...(options.market ? { market: options.market } : {}) });
  if (options.securityCode !== false) expect(await bed.gh.services.factors.securityCode.enrol(subjectFromAccount(account), { code: SECURITY_CODE })).toEqual({ ok: true });
  return account;
}

/** The first page of "forgot password", submitted with `login`; returns the page after the redirect. */
async function startRecovery(browser: Browser, login: string, channel = 'email'): Promise<Page> {
  const start = await browser.request(`${bed.gh.url}/recover`);
  expect(start.status).toBe(200);
  return browser.submit(start, '/recover', { login, channel });
}

async function passcode(to: string, since: number): Promise<string> {
  const mail = await bed.smtp.waitFor(to, (m) => bed.smtp.received.indexOf(m) >= since && m.subject === 'Your Gatehouse account recovery code');
  return /\b(\d{6,9})\b/.exec(mail.text)![1]!;
}

async function signInWithPassword(login: string, password: string, browser = new Browser()) {
  const attempt = await startAuthorization(bed.rp, { prompt: 'login' }, browser);
  const page = await browser.submit(attempt.page, '/login', { login, password }, isCallback);
  return { attempt, page };
}

describe('forgot password', () => {
  test('security code + emailed passcode, a new password that meets the rules, then everything old is revoked', async () => {
    const account = await createAccount('forgetful');
    // Before: a signed-in session with tokens, a remembered device, and a lockout.
    const before = await signInWithPassword('forgetful', OLD_PASSWORD);
    const tokens = await exchange(bed.rp, before.attempt, before.page.url);
    await bed.gh.services.factors.trustedDevice.enrol(subjectFromAccount(account), { label: 'Chrome on Windows', lifetimeDays: 30 });
    const policy = { threshold: 1, durationsMinutes: [60] };
    const slot = await bed.gh.services.lockout.reserve(bed.gh.services.lockout.keyForAccount(account.accountId), policy);
    if (slot.ok) await bed.gh.services.lockout.failed(slot, policy);
    expect(await bed.gh.services.lockout.lockedUntil(account.accountId)).not.toBeNull();

    const browser = new Browser();
    let since = bed.smtp.received.length;
    let page = await startRecovery(browser, 'Forgetful@Example.com');
    expect(page.url).toBe(`${bed.gh.url}/recover/verify`);
    expect(page.body).toContain('we sent a one-time passcode to its email address');
    let code = await passcode('forgetful@example.com', since);

    // A wrong security code with the right passcode is "not right" – without saying which.
    page = await browser.submit(page, '/recover/verify', { securityCode: '111111', passcode: code });
    expect(page.status).toBe(400);
    expect(page.body).toContain('The security code or the passcode is not right');

    bed.clock.advance(31); // past the resend cooldown
    since = bed.smtp.received.length;
    page = await browser.submit(page, '/recover/resend');
    expect(page.body).toContain('If an account matches, we sent a new passcode');
    code = await passcode('forgetful@example.com', since);
    const flowCookie = async () => (await browser.jar.getCookies(`${bed.gh.url}/recover`)).find((c) => c.key === 'gh_recovery')?.value;
    const beforeVerify = await flowCookie();
    page = await browser.submit(page, '/recover/verify', { securityCode: SECURITY_CODE, passcode: code });
    expect(page.url).toBe(`${bed.gh.url}/recover/password`);
    expect(await flowCookie()).not.toBe(beforeVerify); // a verified flow goes on under a new id
    expect(page.body).toContain('Choose a new password');

    // The password rules, each explained.
    const tries: Array<[string, RegExp]> = [
      ['qwerty123456', /too common/],
      ['forgetful-is-my-name', /must not contain your User ID/],
      ['short', /at least 12 characters/],
    ];
    for (const [weak, problem] of tries) {
      const refused = await browser.submit(page, '/recover/password', { password: weak, confirm: weak });
      expect(refused.status).toBe(400);
      expect(pageText(refused.body)).toMatch(problem);
    }
    const mismatch = await browser.submit(page, '/recover/password', { password: NEW_PASSWORD, confirm: `${NEW_PASSWORD}!` });
    expect(mismatch.body).toContain('not the same');

    const done = await browser.submit(page, '/recover/password', { password: NEW_PASSWORD, confirm: NEW_PASSWORD });
    expect(done.status).toBe(200);
    expect(done.body).toContain('Your password was changed');

    // Old password out, new one in; sessions, tokens, device trust and the lock are gone.
    expect((await signInWithPassword('forgetful', OLD_PASSWORD)).page.status).toBe(401);
    expect(isCallback((await signInWithPassword('forgetful', NEW_PASSWORD)).page.url)).toBe(true);
    expect((await oidc.tokenIntrospection(bed.rp, tokens.access_token)).active).toBe(false);
    expect(await bed.gh.services.factors.trustedDevice.list(account.accountId)).toHaveLength(0);
    expect(await bed.gh.services.lockout.lockedUntil(account.accountId)).toBeNull();
    const mail = await bed.smtp.waitFor('forgetful@example.com', (m) => m.subject === 'Your password was reset');
    expect(mail.text).toContain('forgetful');
    const [entry] = await bed.gh.services.audit.model.find({ type: 'recovery.password_reset', 'actor.id': account.accountId }).lean();
    expect(entry?.details).toMatchObject({ unlocked: true, trustedDevicesRevoked: 1, device: expect.any(String) });
    expect(entry).not.toHaveProperty('device'); // only the schema's fields at the top level

    // The flow is used up: its pages now say it expired.
    const again = await browser.request(`${bed.gh.url}/recover/password`);
    expect(again.status).toBe(400);
    expect(again.body).toContain('This recovery has expired');
  });

  test('an account without a security code proves itself with the passcode alone', async () => {
    await createAccount('no-code-set', { securityCode: false });
    const browser = new Browser();
    const since = bed.smtp.received.length;
    const page = await startRecovery(browser, 'no-code-set');
    const verified = await browser.submit(page, '/recover/verify', { securityCode: '', passcode: await passcode('no-code-set@example.com', since) });
    expect(verified.url).toBe(`${bed.gh.url}/recover/password`);
  });

  test('five wrong answers end the flow, and a second flow goes on alike, for real and unknown accounts', async () => {
    await createAccount('guessed-at');
    const run = async (login: string) => {
      const browser = new Browser();
      const statuses: number[][] = [];
      for (const answers of [6, 2]) {
        await startRecovery(browser, login);
        const flow: number[] = [];
        for (let i = 0; i < answers; i++) {
          const page = await browser.submit(await browser.request(`${bed.gh.url}/recover/verify`), '/recover/verify', { securityCode: '999999', passcode: '00000000' });
          flow.push(page.status);
        }
        statuses.push(flow);
      }
      return statuses;
    };
    const real = await run('guessed-at');
    expect(real).toEqual([[400, 400, 400, 400, 429, 429], [400, 400]]);
    expect(await run('not-a-real-account')).toEqual(real);
  });

  test('two tabs setting a new password at once: exactly one succeeds', async () => {
    await createAccount('two-tabs', { securityCode: false });
    const browser = new Browser();
    const since = bed.smtp.received.length;
    const page = await startRecovery(browser, 'two-tabs');
    const verified = await browser.submit(page, '/recover/verify', { securityCode: '', passcode: await passcode('two-tabs@example.com', since) });
    const [a, b] = await Promise.all([
      browser.submit(verified, '/recover/password', { password: NEW_PASSWORD, confirm: NEW_PASSWORD }),
      browser.submit(verified, '/recover/password', { password: `${NEW_PASSWORD} two`, confirm: `${NEW_PASSWORD} two` }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 400]);
    const winner = a.status === 200 ? NEW_PASSWORD : `${NEW_PASSWORD} two`;
    expect(isCallback((await signInWithPassword('two-tabs', winner)).page.url)).toBe(true);
  });

  test('existing and unknown identifiers get the same answers, byte for byte apart from CSRF tokens', async () => {
    await createAccount('existing-person');
    const since = bed.smtp.received.length;
    const walk = async (login: string, channel: string) => {
      const browser = new Browser();
      const start = await browser.request(`${bed.gh.url}/recover`);
      const form = await browser.request(`${bed.gh.url}/recover`, { form: { csrf: /name="csrf" value="([^"]*)"/.exec(start.body)![1]!, login, channel } });
      const verify = await browser.request(`${bed.gh.url}/recover/verify`);
      const wrong = await browser.submit(verify, '/recover/verify', { securityCode: '123123', passcode: '123456' });
      return {
        post: { status: form.status, location: form.headers.get('location'), cookies: form.headers.getSetCookie().map((c) => c.replace(/=[^;]*/, '=X').replace(/expires=[^;]*/, 'expires=(a second may pass between the two)')), body: form.body },
        verify: { status: verify.status, body: withoutPerRequestValues(verify) },
        wrong: { status: wrong.status, body: withoutPerRequestValues(wrong) },
      };
    };
    for (const channel of ['email', 'sms']) {
      const existing = await walk('existing-person', channel);
      const unknown = await walk('nobody-here', channel);
      expect(existing.post.status).toBe(303);
      expect(unknown).toEqual(existing);
    }
    // Only the real account got a passcode (by email; it has no verified phone for SMS). Mail goes out
    // after the answer: wait for the real one, and give a stray one the same time to arrive.
    await bed.smtp.waitFor('existing-person@example.com', (m) => bed.smtp.received.indexOf(m) >= since && m.subject === 'Your Gatehouse account recovery code');
    await new Promise((r) => setTimeout(r, 300));
    const sent = bed.smtp.received.slice(since).filter((m) => m.subject === 'Your Gatehouse account recovery code');
    expect(sent.map((m) => m.to)).toEqual([['existing-person@example.com']]);
  });
});

describe('recovery started from an app\'s sign-in page', () => {
  /** From the app's sign-in page through "Forgot User ID or password?" to the done page. */
  async function recoverFrom(browser: Browser, signInPage: Page, login: string): Promise<Page> {
    const forgot = /href="(\/recover\?from=[^"]+)"/.exec(signInPage.body)?.[1];
    expect(forgot).toBeDefined();
    const start = await browser.request(new URL(forgot!.replace(/&amp;/g, '&'), signInPage.url).href);
    expect(start.status).toBe(200);
    const since = bed.smtp.received.length;
    const verify = await browser.submit(start, '/recover', { login, channel: 'email' });
    const password = await browser.submit(verify, '/recover/verify', { securityCode: SECURITY_CODE, passcode: await passcode(`${login}@example.com`, since) });
    const done = await browser.submit(password, '/recover/password', { password: NEW_PASSWORD, confirm: NEW_PASSWORD });
    expect(done.body).toContain('Your password was changed');
    return done;
  }
  const doneLink = (page: Page) => /<a class="button primary" href="([^"]*)">([^<]*)<\/a>/.exec(page.body)?.slice(1);

  test('the done page continues the sign-in to the app it started from; signing in there reaches the app', async () => {
    await createAccount('from-app');
    const browser = new Browser();
    const attempt = await startAuthorization(bed.rp, {}, browser);
    const uid = /\/interaction\/([^/?#]+)/.exec(attempt.page.url)![1]!;
    const done = await recoverFrom(browser, attempt.page, 'from-app');
    expect(doneLink(done)).toEqual([`/interaction/${uid}`, 'Continue to recovery RP']);
    expect(pageText(done.body)).toContain('Continue signing in to recovery RP with your new password.');
    expect(done.body).not.toContain('Sign in to your account');

    const signIn = await browser.request(new URL(`/interaction/${uid}`, bed.gh.url).href);
    expect(signIn.status).toBe(200);
    const callback = await browser.submit(signIn, '/login', { login: 'from-app', password: NEW_PASSWORD }, isCallback);
    expect(isCallback(callback.url)).toBe(true);
    expect((await exchange(bed.rp, attempt, callback.url)).claims()!.sub).toBeTruthy();
  });

  test('once that sign-in has expired, the done page leads to the app\'s registered site instead', async () => {
    await createAccount('from-app-late');
    const browser = new Browser();
    const attempt = await startAuthorization(bed.rp, {}, browser);
    const uid = /\/interaction\/([^/?#]+)/.exec(attempt.page.url)![1]!;
    const forgot = /href="(\/recover\?from=[^"]+)"/.exec(attempt.page.body)![1]!;
    await browser.request(new URL(forgot, bed.gh.url).href);
    await (await bed.gh.services.provider.Interaction.find(uid))!.destroy();
    const done = await recoverFrom(browser, attempt.page, 'from-app-late');
    expect(doneLink(done)).toEqual([`${new URL(RP_REDIRECT).origin}/`, 'Go back to recovery RP']);
  });

  test('a forged or unknown origin is ignored: the done page keeps the account link, never a URL from the request', async () => {
    for (const [i, from] of ['https://evil.example/steal', 'no-such-interaction', '//evil.example'].entries()) {
      await createAccount(`from-nowhere-${i}`);
      const browser = new Browser();
      const page: Page = { url: `${bed.gh.url}/interaction/x`, status: 200, headers: new Headers(), body: `<a href="/recover?from=${encodeURIComponent(from)}">` };
      const done = await recoverFrom(browser, page, `from-nowhere-${i}`);
      expect(doneLink(done)).toEqual(['/account', 'Sign in to your account']);
      expect(done.body).not.toContain('evil.example');
    }
  });
});

describe('forgot User ID', () => {
  test('the User ID is mailed if an account has the address; the page is the same either way', async () => {
    await createAccount('Reminded.Person');
    const ask = async (email: string) => {
      const browser = new Browser();
      const page = await browser.submit(await browser.request(`${bed.gh.url}/recover/user-id`), '/recover/user-id', { email });
      return { status: page.status, body: withoutPerRequestValues(page) };
    };
    const since = bed.smtp.received.length;
    const existing = await ask('reminded.person@EXAMPLE.com');
    const unknown = await ask('nobody@example.com');
    expect(existing.status).toBe(200);
    expect(unknown).toEqual(existing);
    expect(existing.body).toContain('If an account uses that email address, we sent its User ID there');
    const mail = await bed.smtp.waitFor('Reminded.Person@example.com', (m) => bed.smtp.received.indexOf(m) >= since && m.subject === 'Your Gatehouse User ID');
    expect(mail.text).toContain('Reminded.Person');
    await bed.gh.services.alerts.idle();
    expect(bed.smtp.received.slice(since).filter((m) => m.to.includes('nobody@example.com'))).toHaveLength(0);

    const bad = await ask('not an address');
    expect(bad.status).toBe(400);
  });

  test('the reminder mail is prepared only once the answer has gone out, so its work never shows in the response time', async () => {
    const { Recovery } = await import('../src/recovery/recovery.js');
    const { RecoveryFlows } = await import('../src/recovery/recovery-flows.js');
    const { GuessLimit } = await import('../src/interactions/guess-limit.js');
    const s = bed.gh.services;
    const recovery = new Recovery({
      accounts: s.accounts, accountAdmin: s.admin.accountAdmin, invitations: s.admin.invitations, factors: s.factors, hasher: s.hasher,
      lockout: s.lockout, guesses: new GuessLimit(s.connection, s.clock), flows: new RecoveryFlows(s.connection), audit: s.audit,
      alerts: s.alerts, mailer: s.mailer, clock: s.clock, log: s.log, issuer: s.config.issuer,
    });
    await createAccount('Deferred.Person');
    const since = bed.smtp.received.length;
    let answerSent: (() => void) | undefined;
    await recovery.forgotUserId('deferred.person@example.com', { ip: '192.0.2.7' }, (run) => {
      answerSent = run;
    });
    expect(answerSent).toBeDefined();
    await new Promise((r) => setTimeout(r, 300));
    expect(bed.smtp.received.slice(since)).toHaveLength(0);
    answerSent!();
    const mail = await bed.smtp.waitFor('Deferred.Person@example.com', (m) => bed.smtp.received.indexOf(m) >= since && m.subject === 'Your Gatehouse User ID');
    expect(mail.text).toContain('Deferred.Person');
  });
});

describe('activation of a pre-provisioned account', () => {
  test('the invitation link confirms the User ID, sets the password once, and sign-in then asks for 2FA enrolment', async () => {
    const since = bed.smtp.received.length;
    const { account } = await bed.gh.services.admin.accountOps.create({ userId: 'newcomer', email: 'newcomer@example.com', name: 'New Comer', market: 'US' }, cliCall());
    const invitation = await bed.smtp.waitFor('newcomer@example.com', (m) => bed.smtp.received.indexOf(m) >= since);
    const link = new RegExp(`${bed.gh.url}/activate/[A-Za-z0-9_-]{43}`).exec(invitation.text)![0];

    const browser = new Browser();
    const page = await browser.request(link);
    expect(page.status).toBe(200);
    expect(page.body).toContain('Welcome, New Comer');

    const wrongUser = await browser.submit(page, '/activate/', { userId: 'someone-else', password: NEW_PASSWORD, confirm: NEW_PASSWORD });
    expect(wrongUser.status).toBe(400);
    expect(wrongUser.body).toContain('not the User ID of this invitation');
    const weak = await browser.submit(page, '/activate/', { userId: 'Newcomer', password: 'newcomer-password', confirm: 'newcomer-password' });
    expect(pageText(weak.body)).toMatch(/must not contain your User ID/);

    const done = await browser.submit(page, '/activate/', { userId: 'Newcomer', password: NEW_PASSWORD, confirm: NEW_PASSWORD });
    expect(done.body).toContain('Your account is ready');
    const stored = await bed.gh.services.accounts.findByAccountId(account.accountId);
    expect(stored).toMatchObject({ emailVerified: true });

    // Single use: the link is dead now.
    const reused = await browser.request(link);
    expect(reused.status).toBe(400);
    expect(reused.body).toContain('expired or was already used');

    // The US policy requires 2FA: the first sign-in goes to enrolment.
    const first = await signInWithPassword('newcomer', NEW_PASSWORD);
    expect(first.page.body).toContain('Set up two-step verification');
  });

  test('an unknown or malformed link gets a friendly 400 page', async () => {
    for (const token of ['x'.repeat(43), 'short', '%00']) {
      const page = await new Browser().request(`${bed.gh.url}/activate/${token}`);
      expect(page.status).toBe(400);
      expect(page.body).toContain('expired or was already used');
    }
  });
});

describe('rate limits', () => {
  let limited: TestGatehouse;
  let limitedRp: oidc.Configuration;

  beforeAll(async () => {
    const small = { ip: { points: 3, durationSeconds: 600 }, identifier: { points: 100, durationSeconds: 600 } };
    limited = await startTestGatehouse('rate_limits', { env: { SMTP_URL: bed.smtp.url }, overrides: { rateLimits: { signin: small, 'code-send': small, recovery: small } } });
    const client = await limited.services.clients.create({ name: 'Limited RP', redirectUris: [RP_REDIRECT], firstParty: true });
    limitedRp = await discover(limited.url, client.clientId, client.clientSecret);
  });

  afterAll(async () => {
    await limited?.services.alerts.idle();
    await limited?.close();
  });

  test('sign-in answers 429 with Retry-After and a friendly page once the IP used its allowance; audited once', async () => {
    const attempt = await startAuthorization(limitedRp);
    let page = attempt.page;
    for (let i = 0; i < 3; i++) {
      page = await attempt.browser.submit(page, '/login', { login: `someone${i}`, password: 'wrong wrong wrong' }, isCallback);
      expect(page.status).toBe(401);
    }
    const throttled = await attempt.browser.submit(page, '/login', { login: 'someone', password: 'wrong wrong wrong' }, isCallback);
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(throttled.body).toContain('Too many attempts');
    expect(await limited.services.audit.model.countDocuments({ type: 'ratelimit.exceeded', 'details.bucket': 'signin' })).toBe(1);
  });

  test('recovery answers 429 with Retry-After too', async () => {
    const browser = new Browser();
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const start = await browser.request(`${limited.url}/recover`);
      const page = await browser.request(`${limited.url}/recover`, { form: { csrf: /name="csrf" value="([^"]*)"/.exec(start.body)![1]!, login: `person${i}`, channel: 'email' } });
      statuses.push(page.status);
      if (page.status === 429) expect(Number(page.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    expect(statuses).toEqual([303, 303, 303, 429]);
  });
});
