/**
 * The core OIDC flows end to end: openid-client as the RP, the real Gatehouse pages submitted as a
 * browser would, the real database underneath.
 */
import * as oidc from 'openid-client';
import { Browser } from './support/browser.js';
import { startTestGatehouse, type TestGatehouse } from './support/gatehouse.js';
import { discover, exchange, isCallback, RP_REDIRECT, signIn, startAuthorization } from './support/rp.js';

let gh: TestGatehouse;
let rp: oidc.Configuration;
let aliceId: string;
let machineClient: { clientId: string; clientSecret: string };
const PASSWORD = 'correct horse battery';

beforeAll(async () => {
  gh = await startTestGatehouse('oidc_flows');
  const alice = await gh.services.accounts.create({ userId: 'Alice', email: 'alice@example.com', name: 'Alice Example', password: PASSWORD, phone: '+14155550123', emailVerified: true });
  aliceId = alice.accountId;
  const web = await gh.services.clients.create({
    name: 'Example Web App',
    redirectUris: [RP_REDIRECT],
    postLogoutRedirectUris: ['http://localhost:8976/bye'],
    grantTypes: ['authorization_code', 'refresh_token'],
  });
  rp = await discover(gh.url, web.clientId, web.clientSecret);
  const machine = await gh.services.clients.create({ name: 'Nightly batch', grantTypes: ['client_credentials'] });
  machineClient = { clientId: machine.clientId, clientSecret: machine.clientSecret! };
});

afterAll(async () => {
  await gh?.close();
});

describe('discovery', () => {
  test('advertises the endpoints, PKCE and the claims Gatehouse supports', () => {
    const meta = rp.serverMetadata();
    expect(meta.issuer).toBe(gh.url);
    for (const endpoint of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'introspection_endpoint', 'revocation_endpoint', 'end_session_endpoint'] as const) {
      expect(meta[endpoint]).toMatch(new RegExp(`^${gh.url}/`));
    }
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
    expect(meta.response_types_supported).toEqual(['code']);
    expect(meta.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token', 'client_credentials']));
    expect(meta.claims_supported).toEqual(expect.arrayContaining(['sub', 'preferred_username', 'email', 'phone_number', 'amr', 'acr', 'auth_time']));
  });

  test('publishes ES256 and RS256 public signing keys, and no private parts', async () => {
    const jwks = (await (await fetch(`${gh.url}/jwks`)).json()) as { keys: Array<Record<string, string>> };
    expect(jwks.keys.map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
    for (const key of jwks.keys) expect(key.d).toBeUndefined();
  });
});

describe('authorization code + PKCE', () => {
  test('password sign-in and consent give tokens with the right claims; userinfo, refresh, introspection and revocation work', async () => {
    const attempt = await startAuthorization(rp, { scope: 'openid profile email phone offline_access', prompt: 'consent' });
    expect(attempt.page.status).toBe(200);
    expect(attempt.page.body).toContain('Example Web App');
    expect(attempt.page.url).toMatch(/\/interaction\//);

    const afterLogin = await attempt.browser.submit(attempt.page, '/login', { login: 'alice', password: PASSWORD }, isCallback);
    expect(afterLogin.body).toContain('Allow access?');
    expect(afterLogin.body).toContain('See your email address');
    expect(afterLogin.body).toContain('See your phone number');
    const callback = await attempt.browser.submit(afterLogin, '/confirm', {}, isCallback);
    expect(callback.url).toMatch(/^http:\/\/localhost:8976\/callback\?code=/);

    const tokens = await exchange(rp, attempt, callback.url);
    const claims = tokens.claims()!;
    expect(claims.sub).toBe(aliceId);
    expect(claims.sub).not.toMatch(/alice/i);
    expect(claims.amr).toEqual(['pwd']);
    expect(claims.acr).toBe('urn:gatehouse:acr:pwd');
    expect(typeof claims.auth_time).toBe('number');
    expect(Math.abs(Number(claims.auth_time) - Date.now() / 1000)).toBeLessThan(60);
    expect(JSON.parse(Buffer.from(tokens.id_token!.split('.')[1]!, 'base64url').toString()).iss).toBe(gh.url);

    const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, claims.sub);
    expect(userinfo).toMatchObject({
      sub: aliceId,
      name: 'Alice Example',
      preferred_username: 'Alice',
      email: 'alice@example.com',
      email_verified: true,
      phone_number: '+14155550123',
      phone_number_verified: false,
    });
    expect(typeof userinfo.updated_at).toBe('number');

    // The account comes back with the token (one round trip) but is never kept between requests: a change
    // made straight in the database shows in the very next userinfo, and a disabled account gets nothing.
    await gh.services.accounts.model.updateOne({ accountId: aliceId }, { $set: { name: 'Alice Renamed' } });
    expect(await oidc.fetchUserInfo(rp, tokens.access_token, claims.sub)).toMatchObject({ sub: aliceId, name: 'Alice Renamed' });
    await gh.services.accounts.model.updateOne({ accountId: aliceId }, { $set: { status: 'disabled' } });
    await expect(oidc.fetchUserInfo(rp, tokens.access_token, claims.sub)).rejects.toThrow();
    await gh.services.accounts.model.updateOne({ accountId: aliceId }, { $set: { status: 'active', name: 'Alice Example' } });

    expect(tokens.refresh_token).toBeTruthy();
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed.claims()!.sub).toBe(aliceId);

    const active = await oidc.tokenIntrospection(rp, refreshed.access_token);
    expect(active).toMatchObject({ active: true, sub: aliceId, client_id: rp.clientMetadata().client_id });

    await oidc.tokenRevocation(rp, refreshed.access_token);
    const revoked = await oidc.tokenIntrospection(rp, refreshed.access_token);
    expect(revoked.active).toBe(false);
  });

  test('an account can sign in with its email, in any letter case', async () => {
    const attempt = await startAuthorization(rp);
    const callback = await signIn(attempt, 'ALICE@Example.com', PASSWORD);
    const tokens = await exchange(rp, attempt, callback.url);
    expect(tokens.claims()!.sub).toBe(aliceId);
  });

  test('a second authorization reuses the remembered grant: no consent page', async () => {
    const browser = new Browser();
    const first = await startAuthorization(rp, {}, browser);
    await signIn(first, 'alice', PASSWORD);
    const second = await startAuthorization(rp, {}, browser);
    expect(isCallback(second.page.url)).toBe(true);
    const tokens = await exchange(rp, second, second.page.url);
    expect(tokens.claims()!.sub).toBe(aliceId);
  });

  test('consent is remembered for the account, not only the browser: another browser signs in without the consent page', async () => {
    await gh.services.accounts.create({ userId: 'carol', email: 'carol@example.com', name: 'Carol Example', password: PASSWORD });
    const first = await startAuthorization(rp, { scope: 'openid profile' }, new Browser());
    const consent = await first.browser.submit(first.page, '/login', { login: 'carol', password: PASSWORD }, isCallback);
    expect(consent.body).toContain('Allow access?');
    await first.browser.submit(consent, '/confirm', {}, isCallback);
    const elsewhere = await startAuthorization(rp, { scope: 'openid profile' }, new Browser());
    const page = await elsewhere.browser.submit(elsewhere.page, '/login', { login: 'carol', password: PASSWORD }, isCallback);
    expect(isCallback(page.url)).toBe(true);
    // Asking for more than was granted brings the consent page back.
    const more = await startAuthorization(rp, { scope: 'openid profile email' }, new Browser());
    const again = await more.browser.submit(more.page, '/login', { login: 'carol', password: PASSWORD }, isCallback);
    expect(again.body).toContain('Allow access?');
  });

  test('prompt=consent for what was already granted lists every requested permission, marked as already allowed', async () => {
    await gh.services.accounts.create({ userId: 'dora', email: 'dora@example.com', name: 'Dora Example', password: PASSWORD });
    const listed = (body: string) => [...(/<ul class="scopes">([\s\S]*?)<\/ul>/.exec(body)?.[1] ?? '').matchAll(/<li>([\s\S]*?)<\/li>/g)].map((m) => m[1]!.replace(/<[^>]+>/g, '').replace(/\s+/g, ' ').trim());
    const first = await startAuthorization(rp, { scope: 'openid offline_access', prompt: 'consent' }, new Browser());
    const consent = await first.browser.submit(first.page, '/login', { login: 'dora', password: PASSWORD }, isCallback);
    expect(listed(consent.body)).toEqual([expect.stringMatching(/^Confirm who you are/), expect.stringMatching(/^Keep access when you are not using it/)]);
    expect(consent.body).not.toContain('already allowed');
    await first.browser.submit(consent, '/confirm', {}, isCallback);

    const again = await startAuthorization(rp, { scope: 'openid offline_access', prompt: 'consent' }, new Browser());
    const page = await again.browser.submit(again.page, '/login', { login: 'dora', password: PASSWORD }, isCallback);
    expect(page.body).toContain('Allow access?');
    const items = listed(page.body);
    expect(items).toHaveLength(2);
    expect(items[0]).toMatch(/^Confirm who you are.*\(already allowed\)$/);
    expect(items[1]).toMatch(/^Keep access when you are not using it.*\(already allowed\)$/);

    // Asking for one more: the new permission first, unmarked, then what was granted before.
    const more = await startAuthorization(rp, { scope: 'openid email offline_access', prompt: 'consent' }, new Browser());
    const morePage = await more.browser.submit(more.page, '/login', { login: 'dora', password: PASSWORD }, isCallback);
    const moreItems = listed(morePage.body);
    expect(moreItems[0]).toBe('See your email address');
    expect(moreItems.slice(1).every((item) => item.endsWith('(already allowed)'))).toBe(true);
    expect(moreItems).toHaveLength(3);
    const callback = await more.browser.submit(morePage, '/confirm', {}, isCallback);
    const tokens = await exchange(rp, more, callback.url);
    expect(tokens.refresh_token).toBeTruthy();
    expect((await oidc.fetchUserInfo(rp, tokens.access_token, tokens.claims()!.sub)).email).toBe('dora@example.com');
  });

  test('a first-party client skips the consent page', async () => {
    const portal = await gh.services.clients.create({ name: 'Company portal', redirectUris: [RP_REDIRECT], firstParty: true });
    const portalRp = await discover(gh.url, portal.clientId, portal.clientSecret);
    const attempt = await startAuthorization(portalRp, { scope: 'openid profile email' });
    const callback = await attempt.browser.submit(attempt.page, '/login', { login: 'alice', password: PASSWORD }, isCallback);
    expect(isCallback(callback.url)).toBe(true);
    const tokens = await exchange(portalRp, attempt, callback.url);
    const userinfo = await oidc.fetchUserInfo(portalRp, tokens.access_token, aliceId);
    expect(userinfo).toMatchObject({ preferred_username: 'Alice', email: 'alice@example.com' });
  });

  test('a replayed authorization code is refused', async () => {
    const attempt = await startAuthorization(rp);
    const callback = await signIn(attempt, 'alice', PASSWORD);
    await exchange(rp, attempt, callback.url);
    await expect(exchange(rp, attempt, callback.url)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('the login result is stored on the interaction read by the request, keeping its expiry; the RP gets its code', async () => {
    const portal = await gh.services.clients.create({ name: 'Result portal', redirectUris: [RP_REDIRECT], firstParty: true });
    const portalRp = await discover(gh.url, portal.clientId, portal.clientSecret);
    const attempt = await startAuthorization(portalRp, { scope: 'openid profile' });
    const uid = /\/interaction\/([^/?#]+)/.exec(attempt.page.url)![1]!;
    const before = (await gh.services.provider.Interaction.find(uid))!;
    expect(before.result).toBeUndefined();

    // Stop at oidc-provider's resume: the interaction now carries the result, and nothing else changed.
    const resume = await attempt.browser.submit(attempt.page, '/login', { login: 'alice', password: PASSWORD }, (url) => url.includes(`/auth/${uid}`));
    expect(resume.status).toBe(303);
    const after = (await gh.services.provider.Interaction.find(uid))!;
    expect(after.result?.login).toMatchObject({ accountId: aliceId, amr: ['pwd'], remember: true });
    expect(after.exp).toBe(before.exp);
    expect(after.returnTo).toBe(before.returnTo);
    expect(after.params).toEqual(before.params);
    expect(resume.url).toBe(before.returnTo);

    const callback = await attempt.browser.follow(resume.url, isCallback);
    expect(isCallback(callback.url)).toBe(true);
    expect((await exchange(portalRp, attempt, callback.url)).claims()).toMatchObject({ sub: aliceId, amr: ['pwd'] });
    // The resume consumed the interaction; it is not stored again.
    expect(await gh.services.provider.Interaction.find(uid)).toBeUndefined();
  });

  test('cancelling on the sign-in page returns access_denied to the RP', async () => {
    const attempt = await startAuthorization(rp);
    const callback = await attempt.browser.submit(attempt.page, '/abort', {}, isCallback);
    const params = new URL(callback.url).searchParams;
    expect(params.get('error')).toBe('access_denied');
    expect(params.get('state')).toBe(attempt.state);
  });

  test('denying consent returns access_denied to the RP', async () => {
    const attempt = await startAuthorization(rp, { prompt: 'consent' });
    const consent = await attempt.browser.submit(attempt.page, '/login', { login: 'alice', password: PASSWORD }, isCallback);
    const callback = await attempt.browser.submit(consent, '/abort', {}, isCallback);
    const params = new URL(callback.url).searchParams;
    expect(params.get('error')).toBe('access_denied');
    expect(params.get('state')).toBe(attempt.state);
  });
});

describe('client_credentials', () => {
  test('a client registered for it gets an access token, which introspects as active', async () => {
    const machine = await discover(gh.url, machineClient.clientId, machineClient.clientSecret);
    const tokens = await oidc.clientCredentialsGrant(machine, {});
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    const info = await oidc.tokenIntrospection(machine, tokens.access_token);
    expect(info).toMatchObject({ active: true, client_id: machineClient.clientId });
  });

  test('a rotated secret or a deleted client stops working at once, although clients are cached', async () => {
    const created = await gh.services.clients.create({ name: 'Rotating batch', grantTypes: ['client_credentials'] });
    const before = await discover(gh.url, created.clientId, created.clientSecret);
    expect((await oidc.clientCredentialsGrant(before, {})).access_token).toBeTruthy(); // now cached
    const rotated = await gh.services.clients.rotateSecret(created.clientId);
    await expect(oidc.clientCredentialsGrant(before, {})).rejects.toMatchObject({ error: 'invalid_client' });
    const after = await discover(gh.url, created.clientId, rotated.clientSecret);
    expect((await oidc.clientCredentialsGrant(after, {})).access_token).toBeTruthy();
    await gh.services.clients.remove(created.clientId);
    await expect(oidc.clientCredentialsGrant(after, {})).rejects.toMatchObject({ error: 'invalid_client' });
  });

  test('a client not registered for it is refused', async () => {
    const { client_id: id } = rp.clientMetadata();
    const secret = (await gh.services.provider.Client.find(id))!.clientSecret!;
    const response = await fetch(rp.serverMetadata().token_endpoint!, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error_description: 'requested grant type is not allowed for this client' });
  });
});

describe('RP-initiated logout', () => {
  test('ends the session and returns to the registered post-logout URI', async () => {
    const attempt = await startAuthorization(rp);
    const callback = await signIn(attempt, 'alice', PASSWORD);
    const tokens = await exchange(rp, attempt, callback.url);

    const logoutUrl = oidc.buildEndSessionUrl(rp, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://localhost:8976/bye', state: 'xyz' });
    const confirm = await attempt.browser.follow(logoutUrl.href);
    expect(confirm.status).toBe(200);
    expect(confirm.body).toContain('Sign out?');
    const done = await attempt.browser.submit(confirm, '/session/end/confirm', { logout: 'yes' }, (url) => url.startsWith('http://localhost:8976/bye'));
    expect(done.url).toBe('http://localhost:8976/bye?state=xyz');

    // The session is gone: a new authorization asks for the password again.
    const again = await startAuthorization(rp, {}, attempt.browser);
    expect(again.page.body).toContain('name="password"');
  });
});
