/**
 * "Apps with access" in /account, over HTTP: a third-party app that got consent and a refresh token is
 * listed (first-party apps, the account area's own client included, are not); "Remove access" needs the
 * session's CSRF token, deletes the grant and every token under it (the refresh token grant fails, the
 * access token introspects inactive), is audited, and the app's next sign-in asks for consent again. An
 * unknown, malformed or first-party client id gets the not_found notice. The consent page says where.
 */
import * as oidc from 'openid-client';
import { Browser, findForm, type Page } from './support/browser.js';
import { startTestGatehouse, type TestGatehouse } from './support/gatehouse.js';
import { pageText } from './support/pages.js';
import { registerSoftwarePasskey } from './support/passkeys.js';
import { discover, exchange, isCallback, RP_REDIRECT, startAuthorization } from './support/rp.js';

const PASSWORD = 'correct horse battery staple 7';
let gh: TestGatehouse;
let origin: string;
let thirdParty: oidc.Configuration;
let thirdPartyId: string;
let firstParty: oidc.Configuration;

beforeAll(async () => {
  gh = await startTestGatehouse('app_access');
  origin = new URL(gh.url).origin;
  const app = await gh.services.clients.create({ name: 'Photo Printer', redirectUris: [RP_REDIRECT], grantTypes: ['authorization_code', 'refresh_token'] });
  thirdPartyId = app.clientId;
  thirdParty = await discover(gh.url, app.clientId, app.clientSecret);
  const own = await gh.services.clients.create({ name: 'Staff Portal', redirectUris: [RP_REDIRECT], firstParty: true });
  firstParty = await discover(gh.url, own.clientId, own.clientSecret);
});

afterAll(async () => {
  await gh?.close();
});

let serial = 0;
async function accountWithPasskey() {
  serial += 1;
  const account = await gh.services.accounts.create({ userId: `apps${serial}`, email: `apps${serial}@example.com`, name: `Apps ${serial}`, password: PASSWORD });
  const { authenticator } = await registerSoftwarePasskey(gh, account.accountId);
  return { accountId: account.accountId, authenticator };
}

async function postJson(browser: Browser, url: string, body: unknown) {
  const page = await browser.request(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', accept: 'application/json', origin } });
  return { ...page, json: JSON.parse(page.body) as Record<string, any> };
}

/** Signs in with the passkey (a multi-factor session) to `rp`; returns the page after sign-in (consent or the callback). */
async function passkeySignIn(rp: oidc.Configuration, authenticator: Awaited<ReturnType<typeof accountWithPasskey>>['authenticator'], params: Record<string, string> = {}, browser = new Browser()) {
  const attempt = await startAuthorization(rp, params, browser);
  const base = attempt.page.url.replace(/\/$/, '');
  const csrf = findForm(attempt.page.body, '/login').hidden.csrf!;
  const options = await postJson(browser, `${base}/passkey/options`, { csrf });
  const response = authenticator.get(options.json.options, origin);
  const verified = await postJson(browser, `${base}/passkey/verify`, { csrf, response });
  expect(verified.json.ok).toBe(true);
  return { attempt, page: await browser.follow(verified.json.redirect, isCallback) };
}

const consentAsked = (page: Page) => !isCallback(page.url) && page.body.includes('Allow access?');

/** An account that allowed the third-party app offline access (consent + refresh token), in an MFA session. */
async function withConsent() {
  const { accountId, authenticator } = await accountWithPasskey();
  const { attempt, page } = await passkeySignIn(thirdParty, authenticator, { scope: 'openid profile email offline_access', prompt: 'consent' });
  expect(consentAsked(page)).toBe(true);
  const callback = await attempt.browser.submit(page, '/confirm', {}, isCallback);
  const tokens = await exchange(thirdParty, attempt, callback.url);
  expect(tokens.refresh_token).toBeTruthy();
  return { accountId, authenticator, browser: attempt.browser, tokens, consentPage: page };
}

const removeUrl = (clientId: string) => `${gh.url}/account/apps/${encodeURIComponent(clientId)}/remove`;
const remove = (browser: Browser, clientId: string, csrf: string) => browser.request(removeUrl(clientId), { form: { csrf }, headers: { origin } });
const csrfOf = (page: Page) => findForm(page.body, '/account/password').hidden.csrf!;

test('the consent page says where permission is withdrawn', async () => {
  const { consentPage } = await withConsent();
  expect(pageText(consentPage.body)).toContain(`You can withdraw this permission at any time on your account page (${gh.url}/account), under “Apps with access”.`);
});

test('a third-party app is listed with what it may do; removing access revokes its tokens, is audited, and consent is asked again', async () => {
  const { accountId, authenticator, browser, tokens } = await withConsent();
  // The account area's own client and a first-party app also hold grants of this account: neither is listed.
  expect((await browser.follow(`${gh.url}/account/login`)).body).toContain('Apps with access');
  expect(isCallback((await startAuthorization(firstParty, {}, browser)).page.url)).toBe(true);
  const clientsWithGrants = await gh.services.connection.collection('oidc_grant').distinct('clientId', { accountId });
  expect(clientsWithGrants.sort()).toEqual([firstParty.clientMetadata().client_id, 'gatehouse-account', thirdPartyId].sort());

  const area = await browser.request(`${gh.url}/account`);
  expect(area.status).toBe(200);
  const text = pageText(area.body);
  expect(text).toContain('Apps with access');
  expect(text).toContain('Photo Printer');
  expect(text).toContain('See your email address');
  expect(text).toContain('Keep access when you are not using it, also after you sign out, until you remove it');
  expect(text).not.toContain('under Apps with access');
  expect(text).toMatch(/Allowed \d/);
  expect(text).not.toContain('Staff Portal');
  expect(text).not.toContain('Your Gatehouse account');
  const form = findForm(area.body, `/account/apps/${thirdPartyId}/remove`);
  expect(form.hidden.csrf).toBeTruthy();

  // Without the CSRF token, or from another site, nothing happens.
  expect((await browser.request(removeUrl(thirdPartyId), { method: 'POST', form: {}, headers: { origin } })).status).toBe(403);
  expect((await browser.request(removeUrl(thirdPartyId), { form: { csrf: 'forged' }, headers: { origin } })).status).toBe(403);
  expect((await browser.request(removeUrl(thirdPartyId), { form: form.hidden, headers: { origin: 'https://evil.example' } })).status).toBe(403);
  expect((await oidc.tokenIntrospection(thirdParty, tokens.access_token)).active).toBe(true);

  const removed = await browser.request(new URL(form.action, gh.url).href, { form: form.hidden, headers: { origin } });
  expect(removed.status).toBe(303);
  expect(removed.headers.get('location')).toBe('/account?done=app_removed');

  await expect(oidc.refreshTokenGrant(thirdParty, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  expect((await oidc.tokenIntrospection(thirdParty, tokens.access_token)).active).toBe(false);
  for (const kind of ['oidc_access_token', 'oidc_refresh_token', 'oidc_authorization_code']) {
    expect(await gh.services.connection.collection(kind).countDocuments({ accountId, clientId: thirdPartyId })).toBe(0);
  }
  // Only that app's grant went.
  expect((await gh.services.connection.collection('oidc_grant').distinct('clientId', { accountId })).sort()).toEqual([firstParty.clientMetadata().client_id, 'gatehouse-account'].sort());

  const entry = await gh.services.connection.collection('audit_events').findOne({ type: 'consent.revoked', 'actor.id': accountId });
  expect(entry).toMatchObject({
    outcome: 'success',
    actor: { kind: 'account', id: accountId },
    target: { kind: 'grant', id: expect.any(String) },
    clientId: thirdPartyId,
    details: { via: 'account', by: 'owner', accountId },
  });

  const after = await browser.request(`${gh.url}/account?done=app_removed`);
  expect(pageText(after.body)).toContain('The app no longer has access to your account: its sign-in and the tokens Gatehouse keeps for it stop working now');
  expect(pageText(after.body)).toContain('No app has access to your account.');
  expect(after.body).not.toContain(`/account/apps/${thirdPartyId}/remove`);

  // The same browser (its session still names the old grant) and a new one both get the consent page.
  expect(consentAsked((await startAuthorization(thirdParty, {}, browser)).page)).toBe(true);
  expect(consentAsked((await passkeySignIn(thirdParty, authenticator)).page)).toBe(true);

  // Removing it again: the not_found notice.
  const again = await remove(browser, thirdPartyId, csrfOf(after));
  expect(again.headers.get('location')).toBe('/account?error=not_found');
});

test('an unknown, malformed or first-party client id gets the not_found notice and changes nothing', async () => {
  const { accountId, browser } = await withConsent();
  const area = await browser.request(`${gh.url}/account`);
  const csrf = csrfOf(area);
  for (const clientId of ['no-such-app', 'gatehouse-account', firstParty.clientMetadata().client_id, 'bad$id', 'x'.repeat(129)]) {
    const answer = await remove(browser, clientId, csrf);
    expect(answer.status).toBe(303);
    expect(answer.headers.get('location')).toBe('/account?error=not_found');
  }
  const page = await browser.request(`${gh.url}/account?error=not_found`);
  expect(pageText(page.body)).toContain('That passkey, device or app is not on your account any more.');
  expect(pageText(page.body)).toContain('Photo Printer');
  expect(await gh.services.connection.collection('audit_events').countDocuments({ type: 'consent.revoked', 'actor.id': accountId })).toBe(0);
});

test('another account cannot remove this account\'s app', async () => {
  const owner = await withConsent();
  const other = await withConsent();
  const otherCsrf = csrfOf(await other.browser.request(`${gh.url}/account`));
  // The other account's own grant is what goes; the owner's stays.
  expect((await remove(other.browser, thirdPartyId, otherCsrf)).headers.get('location')).toBe('/account?done=app_removed');
  expect((await oidc.tokenIntrospection(thirdParty, owner.tokens.access_token)).active).toBe(true);
  expect((await remove(other.browser, thirdPartyId, otherCsrf)).headers.get('location')).toBe('/account?error=not_found');
  expect(pageText((await owner.browser.request(`${gh.url}/account`)).body)).toContain('Photo Printer');
});

test('signed out, the remove form is refused', async () => {
  const answer = await new Browser().request(removeUrl(thirdPartyId), { form: { csrf: 'x' }, headers: { origin } });
  expect(answer.status).toBe(403);
});
