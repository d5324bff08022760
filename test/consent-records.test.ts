/**
 * Consent outlives sign-out, and a password change ends the account's other sessions, over HTTP with
 * openid-client as the app: after consent and RP-initiated logout (end_session), the next sign-in shows no
 * consent page and gets the same scopes (a wider request is asked only for what is new); the sign-out is
 * audited with the app sign-ins it ended and no consent.revoked; "Apps with access" still lists the app from
 * its consent record and removing it there makes the app ask again. Revoking an account's sessions and
 * grants, deleting the client and the app revoking its refresh token forget the consent too. Changing the
 * password in /account signs out another browser (its session and app tokens end) but not this one, says so
 * on the page and in the mail, and is audited.
 */
import * as oidc from 'openid-client';
import { Browser, findForm, type Page } from './support/browser.js';
import { startTestGatehouse, type TestGatehouse } from './support/gatehouse.js';
import { pageText } from './support/pages.js';
import { registerSoftwarePasskey } from './support/passkeys.js';
import { discover, exchange, isCallback, RP_REDIRECT, startAuthorization, type AuthorizationAttempt } from './support/rp.js';
import { TestSmtpServer } from './support/smtp.js';

const PASSWORD = 'correct horse battery staple 7';
const BYE = 'http://localhost:8976/bye';
let smtp: TestSmtpServer;
let gh: TestGatehouse;
let origin: string;
let app: oidc.Configuration;
let appId: string;

beforeAll(async () => {
  smtp = await new TestSmtpServer().start();
  gh = await startTestGatehouse('consent_records', { env: { SMTP_URL: smtp.url } });
  origin = new URL(gh.url).origin;
  const created = await gh.services.clients.create({ name: 'Photo Printer', redirectUris: [RP_REDIRECT], postLogoutRedirectUris: [BYE], grantTypes: ['authorization_code', 'refresh_token'] });
  appId = created.clientId;
  app = await discover(gh.url, created.clientId, created.clientSecret);
});

afterAll(async () => {
  await gh?.close();
  await smtp?.stop();
});

let serial = 0;
async function accountWithPasskey() {
  serial += 1;
  const account = await gh.services.accounts.create({ userId: `consent${serial}`, email: `consent${serial}@example.com`, name: `Consent ${serial}`, password: PASSWORD });
  const { authenticator } = await registerSoftwarePasskey(gh, account.accountId);
  return { accountId: account.accountId, email: `consent${serial}@example.com`, authenticator };
}
type Person = Awaited<ReturnType<typeof accountWithPasskey>>;

async function postJson(browser: Browser, url: string, body: unknown) {
  const page = await browser.request(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', accept: 'application/json', origin } });
  return JSON.parse(page.body) as Record<string, any>;
}

/** Completes the sign-in page `page` with the passkey (a multi-factor sign-in); returns where it leads. */
async function passkeyOn(browser: Browser, page: Page, person: Person, stop: (url: string) => boolean) {
  const base = page.url.replace(/\/$/, '');
  const csrf = findForm(page.body, '/login').hidden.csrf!;
  const options = await postJson(browser, `${base}/passkey/options`, { csrf });
  const verified = await postJson(browser, `${base}/passkey/verify`, { csrf, response: person.authenticator.get(options.options, origin) });
  expect(verified.ok).toBe(true);
  return browser.follow(verified.redirect, stop);
}

/** Signs in to the app (the consent page is not confirmed here); returns the attempt and the page after sign-in. */
async function signInToApp(person: Person, params: Record<string, string> = {}, browser = new Browser()) {
  const attempt = await startAuthorization(app, params, browser);
  const page = await passkeyOn(browser, attempt.page, person, isCallback);
  return { attempt, page };
}

const consentAsked = (page: Page) => !isCallback(page.url) && page.body.includes('Allow access?');

async function confirmAndExchange(attempt: AuthorizationAttempt, page: Page) {
  const callback = consentAsked(page) ? await attempt.browser.submit(page, '/confirm', {}, isCallback) : page;
  return exchange(app, attempt, callback.url);
}

async function signOut(browser: Browser, idToken: string) {
  const confirm = await browser.follow(oidc.buildEndSessionUrl(app, { id_token_hint: idToken, post_logout_redirect_uri: BYE }).href);
  const done = await browser.submit(confirm, '/session/end/confirm', { logout: 'yes' }, (url) => url.startsWith(BYE));
  expect(done.url.startsWith(BYE)).toBe(true);
}

/** Signs the browser in to /account (MFA, through the normal sign-in when its session has none). */
async function openAccountArea(browser: Browser, person: Person): Promise<Page> {
  const first = await browser.follow(`${gh.url}/account/login`, (url) => url === `${gh.url}/account`);
  if (first.url !== `${gh.url}/account`) await passkeyOn(browser, first, person, (url) => url === `${gh.url}/account`);
  const area = await browser.request(`${gh.url}/account`);
  expect(area.body).toContain('Apps with access');
  return area;
}

const records = () => gh.services.connection.collection('consent_records');
const liveGrants = (accountId: string, clientId = appId) => gh.services.connection.collection('oidc_grant').countDocuments({ accountId, clientId });
const sorted = (list: string[]) => [...list].sort();

async function auditEntry(filter: Record<string, unknown>) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const found = await gh.services.connection.collection('audit_events').findOne(filter);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no audit entry matching ${JSON.stringify(filter)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('after consent and sign-out, signing in again asks no consent and gets the same scopes; the sign-out is audited without consent.revoked', async () => {
  const person = await accountWithPasskey();
  const scope = 'openid profile email';
  const first = await signInToApp(person, { scope });
  expect(consentAsked(first.page)).toBe(true);
  const tokens = await confirmAndExchange(first.attempt, first.page);
  expect(sorted(tokens.scope!.split(' '))).toEqual(sorted(scope.split(' ')));

  const record = await records().findOne({ accountId: person.accountId, clientId: appId });
  expect(record).toMatchObject({ claims: [], resourceScopes: [], rejectedScopes: [], firstGrantedAt: expect.any(Date), lastGrantedAt: expect.any(Date) });
  expect(sorted(record!.scopes)).toEqual(sorted(scope.split(' ')));
  // It lives as long as a grant would.
  const grantTtl = gh.services.config.ttl.grantSeconds * 1000;
  expect(Math.abs(record!.expiresAt.getTime() - (Date.now() + grantTtl))).toBeLessThan(60_000);

  await signOut(first.attempt.browser, tokens.id_token!);
  // Sign-out ends the session's grant and tokens...
  expect((await oidc.tokenIntrospection(app, tokens.access_token)).active).toBe(false);
  expect(await liveGrants(person.accountId)).toBe(0);
  const signout = await auditEntry({ type: 'signout', 'actor.id': person.accountId });
  expect(signout.details).toEqual({ appSessionsEnded: 1 });
  // ...but not the consent: nothing says it was withdrawn.
  expect(await gh.services.connection.collection('audit_events').countDocuments({ type: 'consent.revoked', 'details.accountId': person.accountId })).toBe(0);

  // Signing in again (the session is gone: the passkey is asked for) goes straight back to the app.
  const again = await signInToApp(person, { scope }, first.attempt.browser);
  expect(isCallback(again.page.url)).toBe(true);
  const renewed = await exchange(app, again.attempt, again.page.url);
  expect(sorted(renewed.scope!.split(' '))).toEqual(sorted(scope.split(' ')));
  const claims = await oidc.fetchUserInfo(app, renewed.access_token, oidc.skipSubjectCheck);
  expect(claims).toMatchObject({ email: person.email, preferred_username: `consent${serial}` });
  // And in another browser too.
  expect(isCallback((await signInToApp(person, { scope })).page.url)).toBe(true);
});

test('a wider request after sign-out is asked only for what was not consented, and the record grows', async () => {
  const person = await accountWithPasskey();
  const first = await signInToApp(person, { scope: 'openid profile' });
  const tokens = await confirmAndExchange(first.attempt, first.page);
  const before = await records().findOne({ accountId: person.accountId, clientId: appId });
  await signOut(first.attempt.browser, tokens.id_token!);

  const wider = await signInToApp(person, { scope: 'openid profile email' }, first.attempt.browser);
  expect(consentAsked(wider.page)).toBe(true);
  const text = pageText(wider.page.body);
  expect(text).toContain('See your email address');
  expect(text).not.toContain('See your name and User ID');
  const widened = await confirmAndExchange(wider.attempt, wider.page);
  expect(sorted(widened.scope!.split(' '))).toEqual(['email', 'openid', 'profile']);

  const after = await records().findOne({ accountId: person.accountId, clientId: appId });
  expect(sorted(after!.scopes)).toEqual(['email', 'openid', 'profile']);
  expect(after!.firstGrantedAt).toEqual(before!.firstGrantedAt);
  expect(after!.lastGrantedAt.getTime()).toBeGreaterThan(before!.lastGrantedAt.getTime());
});

test('"Apps with access" lists an app from its consent record after sign-out; removing it forgets the consent, is audited, and the app asks again', async () => {
  const person = await accountWithPasskey();
  const first = await signInToApp(person, { scope: 'openid email' });
  const tokens = await confirmAndExchange(first.attempt, first.page);
  await signOut(first.attempt.browser, tokens.id_token!);
  expect(await liveGrants(person.accountId)).toBe(0);

  const browser = new Browser();
  const area = await openAccountArea(browser, person);
  const text = pageText(area.body);
  expect(text).toContain('Photo Printer');
  expect(text).toContain('See your email address');
  expect(text).toMatch(/Allowed \d/);

  const form = findForm(area.body, `/account/apps/${appId}/remove`);
  const removed = await browser.request(new URL(form.action, gh.url).href, { form: form.hidden, headers: { origin } });
  expect(removed.headers.get('location')).toBe('/account?done=app_removed');
  expect(await records().countDocuments({ accountId: person.accountId, clientId: appId })).toBe(0);
  expect(await auditEntry({ type: 'consent.revoked', 'actor.id': person.accountId })).toMatchObject({
    target: { kind: 'client', id: appId },
    clientId: appId,
    details: { via: 'account', by: 'owner', accountId: person.accountId, consentRecord: true },
  });
  expect(pageText((await browser.request(`${gh.url}/account`)).body)).toContain('No app has access to your account.');

  expect(consentAsked((await signInToApp(person, { scope: 'openid email' })).page)).toBe(true);
  // Removing it again: nothing left to remove.
  const again = await browser.request(new URL(form.action, gh.url).href, { form: findForm((await browser.request(`${gh.url}/account`)).body, '/account/password').hidden, headers: { origin } });
  expect(again.headers.get('location')).toBe('/account?error=not_found');
});

test('revoking an account\'s sessions and grants, deleting the client, and the app revoking its refresh token forget the consent', async () => {
  const person = await accountWithPasskey();
  const consentTo = async (rp: oidc.Configuration, params: Record<string, string> = {}) => {
    const attempt = await startAuthorization(rp, params);
    const page = await passkeyOn(attempt.browser, attempt.page, person, isCallback);
    expect(consentAsked(page)).toBe(true);
    return exchange(rp, attempt, (await attempt.browser.submit(page, '/confirm', {}, isCallback)).url);
  };

  // An administrator's "revoke sessions" (also what a password reset and disabling the account do).
  await consentTo(app);
  const revoked = await gh.services.admin.accountAdmin.revokeSessionsAndGrants(person.accountId);
  expect(revoked).toMatchObject({ sessions: 1, grants: 1, consents: 1 });
  expect(await records().countDocuments({ accountId: person.accountId })).toBe(0);
  expect(consentAsked((await signInToApp(person)).page)).toBe(true);

  // Deleting the client.
  const doomed = await gh.services.clients.create({ name: 'Doomed', redirectUris: [RP_REDIRECT] });
  const doomedRp = await discover(gh.url, doomed.clientId, doomed.clientSecret);
  await consentTo(doomedRp);
  expect(await records().countDocuments({ clientId: doomed.clientId })).toBe(1);
  expect((await gh.services.clients.remove(doomed.clientId)).revoked).toMatchObject({ Grant: 1, ConsentRecord: 1 });
  expect(await records().countDocuments({ clientId: doomed.clientId })).toBe(0);

  // The app revoking its refresh token gives up its access, consent included.
  const offline = await consentTo(app, { scope: 'openid offline_access', prompt: 'consent' });
  expect(await records().countDocuments({ accountId: person.accountId, clientId: appId })).toBe(1);
  await oidc.tokenRevocation(app, offline.refresh_token!);
  const deadline = Date.now() + 5000;
  while ((await records().countDocuments({ accountId: person.accountId, clientId: appId })) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(await records().countDocuments({ accountId: person.accountId, clientId: appId })).toBe(0);
});

test('changing the password in /account signs out the account\'s other browsers, not this one; the page, the mail and the audit say so', async () => {
  const person = await accountWithPasskey();
  // Here: signed in to the app (with consent) and to the account area.
  const here = await signInToApp(person, { scope: 'openid email' });
  const hereTokens = await confirmAndExchange(here.attempt, here.page);
  const area = await openAccountArea(here.attempt.browser, person);
  // Elsewhere: another browser signed in to the app and to the account area.
  const elsewhere = await signInToApp(person, { scope: 'openid email' });
  expect(isCallback(elsewhere.page.url)).toBe(true);
  const elsewhereTokens = await exchange(app, elsewhere.attempt, elsewhere.page.url);
  await openAccountArea(elsewhere.attempt.browser, person);
  // A third browser took offline access and signed out: its refresh token outlives the sign-out, and no
  // session holds its grant any more. Whoever knew the old password may have left such a token behind.
  const gone = await signInToApp(person, { scope: 'openid email offline_access', prompt: 'consent' });
  const goneTokens = await confirmAndExchange(gone.attempt, gone.page);
  await signOut(gone.attempt.browser, goneTokens.id_token!);
  expect((await oidc.tokenIntrospection(app, goneTokens.refresh_token!)).active).toBe(true);

  const form = findForm(area.body, '/account/password');
  const NEW = 'a fresh and longer secret';
  const mailsBefore = smtp.received.length;
  const changed = await here.attempt.browser.request(new URL(form.action, gh.url).href, { form: { ...form.hidden, currentPassword: PASSWORD, password: NEW, confirm: NEW }, headers: { origin } });
  expect(changed.headers.get('location')).toBe('/account?done=password');

  // The other browser's session is over: the account area asks it to sign in, its app token is dead, and
  // the app's next request shows the sign-in page.
  const otherArea = await elsewhere.attempt.browser.request(`${gh.url}/account`);
  expect(pageText(otherArea.body)).toContain('Sign in to manage your passkeys');
  expect((await oidc.tokenIntrospection(app, elsewhereTokens.access_token)).active).toBe(false);
  expect((await oidc.tokenIntrospection(app, goneTokens.refresh_token!)).active).toBe(false);
  const back = await startAuthorization(app, { scope: 'openid email' }, elsewhere.attempt.browser);
  expect(isCallback(back.page.url)).toBe(false);
  expect(back.page.body).toContain('name="login"');

  // This one stays signed in, with its app tokens, and is told what happened.
  const page = await here.attempt.browser.request(`${gh.url}/account?done=password`);
  expect(pageText(page.body)).toContain('You were signed out on every other browser and device (this one stays signed in)');
  expect((await oidc.tokenIntrospection(app, hereTokens.access_token)).active).toBe(true);
  // Consent is not a session: it stays.
  expect(await records().countDocuments({ accountId: person.accountId, clientId: appId })).toBe(1);

  expect(await auditEntry({ type: 'account.password_changed', 'actor.id': person.accountId, outcome: 'success' })).toMatchObject({
    // The other browser's grants (the app's and the account area's) and the signed-out browser's offline grant.
    details: { otherSessionsEnded: 1, grantsRevoked: 3, trustedDevicesRevoked: 0 },
  });
  const mail = await smtp.waitFor(person.email, (m) => smtp.received.indexOf(m) >= mailsBefore && m.subject === 'Your password was changed');
  expect(mail.text).toContain('Every other browser and device signed in to it was signed out.');
});

test('a sign-in racing "remove access" or a revocation of the account\'s grants cannot bring the consent back', async () => {
  const { AppAccess } = await import('../src/selfservice/app-access.js');
  const { ConsentRecords, restoreConsent } = await import('../src/oidc/consent-records.js');
  const { provider, connection, config } = gh.services;
  const consents = new ConsentRecords(connection, config.ttl.grantSeconds);
  const person = await accountWithPasskey();

  // "Remove access": between the record's deletion and the grant's, a sign-in still uses the live grant,
  // which records it again (what loadExistingGrant does with a grant in use).
  const first = await signInToApp(person, { scope: 'openid email' });
  await confirmAndExchange(first.attempt, first.page);
  const adapter = provider.Grant.adapter;
  const destroy = adapter.destroy.bind(adapter);
  adapter.destroy = async (grantId: string) => {
    const grant = await provider.Grant.find(grantId);
    if (grant) await consents.remember(grant, false);
    return destroy(grantId);
  };
  try {
    expect(await new AppAccess(provider, connection).remove(person.accountId, appId)).toMatchObject({ consentRecord: true });
  } finally {
    adapter.destroy = destroy;
  }
  expect(await records().countDocuments({ accountId: person.accountId, clientId: appId })).toBe(0);
  expect(consentAsked((await signInToApp(person, { scope: 'openid email' })).page)).toBe(true);

  // Revoking the account's sessions and grants: right after the grants are deleted, a sign-in whose session
  // has no grant left recreates one from the consent record, if there still is one.
  const second = await signInToApp(person, { scope: 'openid email' });
  await confirmAndExchange(second.attempt, second.page);
  const grants = connection.collection('oidc_grant');
  const deleteMany = grants.deleteMany.bind(grants);
  grants.deleteMany = (async (...args: Parameters<typeof deleteMany>) => {
    const result = await deleteMany(...args);
    const record = await consents.find(person.accountId, appId);
    if (record) {
      const grant = new provider.Grant({ accountId: person.accountId, clientId: appId });
      restoreConsent(grant, record, []);
      await grant.save();
    }
    return result;
  }) as typeof grants.deleteMany;
  try {
    await gh.services.admin.accountAdmin.revokeSessionsAndGrants(person.accountId);
  } finally {
    grants.deleteMany = deleteMany;
  }
  expect(await liveGrants(person.accountId)).toBe(0);
  expect(await records().countDocuments({ accountId: person.accountId })).toBe(0);
});

test('a grant in use extends a live consent record, but an expired record not yet swept is replaced, not extended', async () => {
  const { ConsentRecords } = await import('../src/oidc/consent-records.js');
  const { provider, connection, config } = gh.services;
  const consents = new ConsentRecords(connection, config.ttl.grantSeconds);
  const person = await accountWithPasskey();
  const grant = new provider.Grant({ accountId: person.accountId, clientId: appId });
  grant.addOIDCScope('openid email');

  // Live: the use pushes the expiry back and keeps what was consented earlier.
  const past = new Date(Date.now() - 60_000);
  await records().insertOne({ accountId: person.accountId, clientId: appId, scopes: ['openid', 'profile'], claims: [], resourceScopes: [], rejectedScopes: [], firstGrantedAt: past, lastGrantedAt: past, expiresAt: new Date(Date.now() + 60_000) });
  await consents.remember(grant, false);
  const live = await records().findOne({ accountId: person.accountId, clientId: appId });
  expect([...(live!.scopes as string[])].sort()).toEqual(['email', 'openid', 'profile']);
  expect((live!.expiresAt as Date).getTime()).toBeGreaterThan(Date.now() + config.ttl.grantSeconds * 1000 - 60_000);

  // Expired (the TTL sweep has not run yet): its old 'profile' consent must not come back with the grant.
  await records().updateOne({ accountId: person.accountId, clientId: appId }, { $set: { expiresAt: past } });
  await consents.remember(grant, false);
  const fresh = await records().find({ accountId: person.accountId, clientId: appId }).toArray();
  expect(fresh).toHaveLength(1);
  expect([...(fresh[0]!.scopes as string[])].sort()).toEqual(['email', 'openid']);
  expect((fresh[0]!.expiresAt as Date).getTime()).toBeGreaterThan(Date.now());
});
