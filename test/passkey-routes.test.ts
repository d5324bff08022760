/**
 * The passkey endpoints of the sign-in interaction and of /account, spoken to as the page's script
 * does (JSON, cookies, CSRF token), with the software authenticator in place of a browser: a synced
 * passkey signs in passwordless with amr swk + user + mfa; a missing CSRF token, a cloned key (counter
 * regression), a locked or disabled account are refused and audited; the account area needs an MFA
 * session and its CSRF token.
 */
import { SoftwareAuthenticator } from './factors/webauthn-authenticator.js';
import { Browser, findForm, type Page } from './support/browser.js';
import { startTestGatehouse, type TestGatehouse } from './support/gatehouse.js';
import { registerSoftwarePasskey } from './support/passkeys.js';
import { discover, exchange, isCallback, RP_REDIRECT, startAuthorization } from './support/rp.js';
import type * as oidc from 'openid-client';

const PASSWORD = 'correct horse battery staple 7';
let gh: TestGatehouse;
let rp: oidc.Configuration;
let origin: string;

beforeAll(async () => {
  gh = await startTestGatehouse('passkey_routes');
  origin = new URL(gh.url).origin;
  const client = await gh.services.clients.create({ name: 'Passkey RP', redirectUris: [RP_REDIRECT], firstParty: true });
  rp = await discover(gh.url, client.clientId, client.clientSecret);
});

afterAll(async () => {
  await gh?.close();
});

let serial = 0;
async function accountWithPasskey(traits: ConstructorParameters<typeof SoftwareAuthenticator>[0] = {}) {
  serial += 1;
  const account = await gh.services.accounts.create({ userId: `pk${serial}`, email: `pk${serial}@example.com`, name: `Passkey ${serial}`, password: PASSWORD });
  const { authenticator } = await registerSoftwarePasskey(gh, account.accountId, new SoftwareAuthenticator(traits));
  return { accountId: account.accountId, authenticator };
}

/** The sign-in page of a fresh authorization request: its interaction URL and CSRF token. */
async function loginPage(browser = new Browser()) {
  const attempt = await startAuthorization(rp, {}, browser);
  const csrf = findForm(attempt.page.body, '/login').hidden.csrf!;
  return { attempt, browser, base: attempt.page.url.replace(/\/$/, ''), csrf };
}

async function postJson(browser: Browser, url: string, body: unknown): Promise<Page & { json: Record<string, any> }> {
  const page = await browser.request(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', accept: 'application/json', origin } });
  return { ...page, json: JSON.parse(page.body) as Record<string, any> };
}

async function passkeySignIn(authenticator: SoftwareAuthenticator, bend: Parameters<SoftwareAuthenticator['get']>[2] = {}) {
  const login = await loginPage();
  const options = await postJson(login.browser, `${login.base}/passkey/options`, { csrf: login.csrf });
  expect(options.status).toBe(200);
  const response = authenticator.get(options.json.options, origin, bend);
  const verified = await postJson(login.browser, `${login.base}/passkey/verify`, { csrf: login.csrf, response });
  return { login, verified };
}

const lastEvent = async (type: string) => (await gh.services.connection.collection('audit_events').find({ type }).sort({ _id: -1 }).limit(1).toArray())[0];

test('the sign-in page offers a passkey: autofill on the User ID field and the script, served from our own origin', async () => {
  const { attempt } = await loginPage();
  expect(attempt.page.body).toContain('autocomplete="username webauthn"');
  expect(attempt.page.body).toContain('Sign in with a passkey');
  const browser = new Browser();
  const lib = await browser.request(`${gh.url}/assets/simplewebauthn-browser.js`);
  expect(lib.status).toBe(200);
  expect(lib.headers.get('content-type')).toMatch(/javascript/);
  expect(lib.body).toContain('SimpleWebAuthnBrowser');
  expect((await browser.request(`${gh.url}/assets/passkey.js`)).body).toContain('startAuthentication');
});

test('a synced passkey signs in without a password: amr swk + user + mfa in the ID token', async () => {
  const { accountId, authenticator } = await accountWithPasskey({ synced: true });
  const { login, verified } = await passkeySignIn(authenticator);
  expect(verified.status).toBe(200);
  expect(verified.json).toEqual({ ok: true, redirect: expect.stringContaining('/auth/') });
  const callback = await login.browser.follow(verified.json.redirect, isCallback);
  expect(isCallback(callback.url)).toBe(true);
  const tokens = await exchange(rp, login.attempt, callback.url);
  expect(tokens.claims()).toMatchObject({ sub: accountId, amr: ['swk', 'user', 'mfa'], acr: 'urn:gatehouse:acr:mfa' });
  expect(await lastEvent('signin.passkey')).toMatchObject({ outcome: 'success', actor: { id: accountId }, details: { amr: ['swk', 'user'] } });
});

test('the JSON endpoints need the interaction\'s CSRF token and refuse other sites', async () => {
  const login = await loginPage();
  expect((await postJson(login.browser, `${login.base}/passkey/options`, {})).status).toBe(403);
  expect((await postJson(login.browser, `${login.base}/passkey/options`, { csrf: 'forged' })).status).toBe(403);
  const crossSite = await login.browser.request(`${login.base}/passkey/options`, {
    method: 'POST',
    body: JSON.stringify({ csrf: login.csrf }),
    headers: { 'content-type': 'application/json', accept: 'application/json', origin: 'https://evil.example' },
  });
  expect(crossSite.status).toBe(403);
});

test('a cloned security key (its counter did not advance) is refused, and the owner\'s audit log says counter_regression', async () => {
  const { accountId, authenticator } = await accountWithPasskey({ countsSignatures: true });
  const clone = authenticator.clone();
  expect((await passkeySignIn(authenticator)).verified.status).toBe(200); // counter 1
  const { verified } = await passkeySignIn(clone); // the clone also says 1
  expect(verified.status).toBe(401);
  expect(verified.json.error).toBe('We could not verify this passkey. Try again, or sign in with your password.');
  expect(await lastEvent('signin.passkey')).toMatchObject({ outcome: 'failure', actor: { kind: 'account', id: accountId }, details: { reason: 'counter_regression' } });
});

test('a locked or disabled account cannot sign in with its passkey; each refusal is audited', async () => {
  const locked = await accountWithPasskey();
  await gh.services.lockout.model.collection.updateOne(
    { _id: `account:${locked.accountId}` } as never,
    { $set: { failures: 0, locks: 1, lockedUntil: new Date(Date.now() + 600_000), lastAttemptAt: new Date(), expiresAt: new Date(Date.now() + 86_400_000) } },
    { upsert: true },
  );
  const lockedTry = await passkeySignIn(locked.authenticator);
  expect(lockedTry.verified.status).toBe(403);
  expect(lockedTry.verified.json.error).toMatch(/temporarily unavailable/);
  expect(await lastEvent('signin.passkey')).toMatchObject({ outcome: 'failure', actor: { id: locked.accountId }, details: { reason: 'locked' } });

  const disabled = await accountWithPasskey();
  await gh.services.accounts.model.updateOne({ accountId: disabled.accountId }, { $set: { status: 'disabled' } });
  const disabledTry = await passkeySignIn(disabled.authenticator);
  expect(disabledTry.verified.status).toBe(403);
  expect(await lastEvent('signin.passkey')).toMatchObject({ outcome: 'failure', actor: { id: disabled.accountId }, details: { reason: 'account_disabled' } });
});

test('a passkey without user verification cannot replace the password', async () => {
  const { authenticator } = await accountWithPasskey();
  const { verified } = await passkeySignIn(authenticator, { userVerified: false });
  expect(verified.status).toBe(401);
  expect(await lastEvent('signin.passkey')).toMatchObject({ outcome: 'failure', details: { reason: 'invalid' } });
});

test('the account area needs a multi-factor session; its changes need the session\'s CSRF token', async () => {
  const browser = new Browser();
  const signedOut = await browser.request(`${gh.url}/account`);
  expect(signedOut.status).toBe(200);
  expect(signedOut.body).toContain('href="/account/login"');
  const start = await browser.request(`${gh.url}/account/login`);
  expect(start.status).toBe(302);
  const auth = new URL(start.headers.get('location')!);
  expect(auth.searchParams.get('client_id')).toBe('gatehouse-account');
  expect(auth.searchParams.get('acr_values')).toBe('urn:gatehouse:acr:mfa');
  expect((await postJson(browser, `${gh.url}/account/passkeys/options`, { csrf: 'x' })).status).toBe(403);

  // Signed in with a passkey (MFA), the area opens; a change without its CSRF token is refused.
  const { accountId, authenticator } = await accountWithPasskey();
  const { login, verified } = await passkeySignIn(authenticator);
  await login.browser.follow(verified.json.redirect, isCallback);
  const area = await login.browser.request(`${gh.url}/account`);
  expect(area.body).toContain('Passkeys and security keys');
  expect(area.body).toContain('Test key');
  expect((await postJson(login.browser, `${gh.url}/account/passkeys/options`, {})).status).toBe(403);
  // Renaming: control and bidirectional-override characters cannot disguise the name.
  const renameForm = findForm(area.body, '/rename');
  const renamed = await login.browser.request(new URL(renameForm.action, gh.url).href, { form: { ...renameForm.hidden, name: 'Work\u202e laptop\n' }, headers: { origin } });
  expect(renamed.headers.get('location')).toBe('/account?done=renamed');
  expect((await gh.services.factors.webauthn.list(accountId))[0]!.name).toBe('Work laptop');
  expect(await lastEvent('mfa.passkey_renamed')).toMatchObject({ outcome: 'success', actor: { id: accountId } });
  const blank = await login.browser.request(new URL(renameForm.action, gh.url).href, { form: { ...renameForm.hidden, name: '   ' }, headers: { origin } });
  expect(blank.headers.get('location')).toBe('/account?error=invalid_name');
  const removeForm = findForm(area.body, '/remove');
  const removed = await login.browser.request(new URL(removeForm.action, gh.url).href, { form: removeForm.hidden, headers: { origin } });
  expect(removed.status).toBe(303);
  // Policy "optional" (the default market): removing the only passkey is allowed.
  expect(removed.headers.get('location')).toBe('/account?done=removed');
  expect(await gh.services.factors.webauthn.list(accountId)).toEqual([]);
});

test('where policy requires two-step verification, the last second factor cannot be removed', async () => {
  serial += 1;
  // No email: a passkey is the account's only second factor.
  const account = await gh.services.accounts.create({ userId: `pk${serial}`, name: 'No Email', market: 'US', password: PASSWORD });
  const { authenticator } = await registerSoftwarePasskey(gh, account.accountId);
  const { login, verified } = await passkeySignIn(authenticator);
  await login.browser.follow(verified.json.redirect, isCallback);
  const area = await login.browser.request(`${gh.url}/account`);
  const removeForm = findForm(area.body, '/remove');
  const refused = await login.browser.request(new URL(removeForm.action, gh.url).href, { form: removeForm.hidden, headers: { origin } });
  expect(refused.headers.get('location')).toBe('/account?error=last_factor');
  expect(await gh.services.factors.webauthn.list(account.accountId)).toHaveLength(1);
  const page = await login.browser.request(`${gh.url}/account?error=last_factor`);
  expect(page.body).toContain('You cannot remove your only way to complete two-step verification');
});

test('changing the password at /account needs the current one, applies the rules, and forgets remembered devices', async () => {
  const { accountId, authenticator } = await accountWithPasskey();
  const account = (await gh.services.accounts.findByAccountId(accountId))!;
  await gh.services.factors.trustedDevice.enrol({ accountId, userId: account.userId, name: account.name, phoneVerified: false }, { label: 'Chrome on Windows', lifetimeDays: 30 });
  const { login, verified } = await passkeySignIn(authenticator);
  await login.browser.follow(verified.json.redirect, isCallback);
  const area = await login.browser.request(`${gh.url}/account`);
  const change = (fields: Record<string, string>) => {
    const form = findForm(area.body, '/account/password');
    return login.browser.request(new URL(form.action, gh.url).href, { form: { ...form.hidden, ...fields }, headers: { origin } });
  };
  const NEW = 'a fresh and longer secret';

  const wrongCurrent = await change({ currentPassword: 'not my password', password: NEW, confirm: NEW });
  expect(wrongCurrent.status).toBe(400);
  expect(wrongCurrent.body).toContain('Your current password is not right');
  const weak = await change({ currentPassword: PASSWORD, password: 'qwerty123456', confirm: 'qwerty123456' });
  expect(weak.status).toBe(400);
  expect(weak.body).toContain('too common');

  const done = await change({ currentPassword: PASSWORD, password: NEW, confirm: NEW });
  expect(done.headers.get('location')).toBe('/account?done=password');
  expect(await gh.services.hasher.verify((await gh.services.accounts.findByAccountId(accountId))!.passwordHash, NEW)).toBe(true);
  expect(await gh.services.factors.trustedDevice.list(accountId)).toEqual([]);
  expect(await lastEvent('account.password_changed')).toMatchObject({ outcome: 'success', details: { trustedDevicesRevoked: 1 } });
  expect((await login.browser.request(`${gh.url}/account?done=password`)).body).toContain('Your password was changed');
});

test('a passkey as the second factor after the password: its amr is added to the password\'s, and the sign-in state is consumed', async () => {
  const { accountId, authenticator } = await accountWithPasskey();
  await gh.services.accounts.model.updateOne({ accountId }, { $set: { mfa: { enrolledAt: new Date(), defaultMethod: 'webauthn', deferrals: 0 } } });
  const login = await loginPage();
  const afterPassword = await login.browser.submit(login.attempt.page, '/login', { login: `pk${serial}`, password: PASSWORD }, isCallback);
  expect(afterPassword.body).toContain('Use your passkey or security key');
  const csrf = findForm(afterPassword.body, '/second-factor').hidden.csrf!;
  const uid = /\/interaction\/([^/?#]+)/.exec(login.base)![1]!;
  expect(await gh.services.signInStates.model.findById(uid).lean()).toMatchObject({ step: 'second-factor', method: 'webauthn', amr: ['pwd'] });

  const options = await postJson(login.browser, `${login.base}/second-factor/passkey/options`, { csrf });
  expect(options.status).toBe(200);
  const response = authenticator.get(options.json.options, origin);
  const verified = await postJson(login.browser, `${login.base}/second-factor/passkey/verify`, { csrf, response });
  expect(verified.json).toEqual({ ok: true, redirect: expect.stringContaining('/auth/') });
  expect(await gh.services.signInStates.model.findById(uid).lean()).toBeNull();
  const callback = await login.browser.follow(verified.json.redirect, isCallback);
  const tokens = await exchange(rp, login.attempt, callback.url);
  expect(tokens.claims()).toMatchObject({ sub: accountId, amr: ['pwd', 'hwk', 'user', 'mfa'], acr: 'urn:gatehouse:acr:mfa' });

  // The step is over: the same answer again is refused.
  const again = await postJson(login.browser, `${login.base}/second-factor/passkey/verify`, { csrf, response });
  expect(again.status).toBe(400);
});
