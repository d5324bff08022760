/**
 * Dynamic Client Registration (RFC 7591) and management (RFC 7592): an initial access token minted
 * by an administrator is required, honours its expiry and use count, and registered clients obey
 * the same rules as those made through the admin API.
 */
import * as oidc from 'openid-client';
import { RP_REDIRECT } from '../support/rp.js';
import { api, auditEntries, createAdminConsole, createPerson, startAdminGatehouse, waitForAudit, type AdminGatehouse, type Person } from './support.js';

let gh: AdminGatehouse;
let admin: Person;
let registrationEndpoint: string;

beforeAll(async () => {
  gh = await startAdminGatehouse('admin_dcr');
  const console_ = await createAdminConsole(gh);
  admin = await createPerson(gh, console_.rp, 'root', ['admin']);
  registrationEndpoint = console_.rp.serverMetadata().registration_endpoint!;
});

afterAll(async () => {
  await gh?.close();
});

async function mint(body: Record<string, unknown> = {}): Promise<{ id: string; token: string }> {
  const res = await api(gh, 'POST', '/registration-tokens', { token: admin.token, body });
  expect(res.status).toBe(201);
  return res.body;
}

async function register(metadata: Record<string, unknown>, token?: string): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(registrationEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(metadata),
  });
  return { status: response.status, body: await response.json(), headers: response.headers };
}

const webClient = { client_name: 'Self-registered app', redirect_uris: [RP_REDIRECT] };

test('discovery advertises the registration endpoint', () => {
  expect(registrationEndpoint).toBe(`${gh.url}/reg`);
});

test('without an initial access token, registration is refused', async () => {
  const res = await register(webClient);
  expect(res.status).toBe(401);
  expect(res.body.error).toBe('invalid_token');
  expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
  const forged = await register(webClient, 'made-up-token-value');
  expect(forged.status).toBe(401);
});

test('with one, the client is registered, works, and the registration is audited without the token', async () => {
  const iat = await mint({ description: 'partner onboarding', maxUses: 5, expiresInSeconds: 3600 });
  const res = await register({ ...webClient, grant_types: ['authorization_code', 'client_credentials'] }, iat.token);
  expect(res.status).toBe(201);
  expect(res.body).toMatchObject({ client_name: 'Self-registered app', redirect_uris: [RP_REDIRECT], registration_client_uri: `${gh.url}/reg/${res.body.client_id}` });
  expect(res.body.client_secret).toEqual(expect.any(String));
  expect(res.body.registration_access_token).toEqual(expect.any(String));

  const rp = await oidc.discovery(new URL(gh.url), res.body.client_id, res.body.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  expect((await oidc.clientCredentialsGrant(rp, {})).access_token).toEqual(expect.any(String));

  const entry = await waitForAudit(gh, { type: 'client.registered', 'target.id': res.body.client_id });
  expect(entry).toMatchObject({ actor: { kind: 'anonymous' }, details: { via: 'dynamic_registration', registrationTokenId: iat.id }, requestId: res.headers.get('x-request-id') });
  const text = JSON.stringify(await auditEntries(gh));
  for (const secret of [iat.token, res.body.client_secret, res.body.registration_access_token]) expect(text).not.toContain(secret);

  const listed = await api(gh, 'GET', '/registration-tokens', { token: admin.token });
  expect(listed.body.items.find((t: { id: string }) => t.id === iat.id)).toMatchObject({ uses: 1, maxUses: 5, description: 'partner onboarding' });
  expect(JSON.stringify(listed.body)).not.toContain(iat.token);
  // Only a hash of the token is kept beside oidc-provider's record.
  expect(JSON.stringify(await gh.services.connection.collection('registration_tokens').find({}).toArray())).not.toContain(iat.token);
});

test('the use count is enforced atomically, and a refused registration does not use it up', async () => {
  const iat = await mint({ maxUses: 2 });
  expect((await register({ ...webClient, redirect_uris: ['http://example.com/cb'] }, iat.token)).status).toBe(400);
  const results = await Promise.all([1, 2, 3, 4].map((i) => register({ ...webClient, client_name: `Racer ${i}` }, iat.token)));
  expect(results.map((r) => r.status).sort()).toEqual([201, 201, 401, 401]);
  expect(results.find((r) => r.status === 401)!.body.error).toBe('invalid_token');
  expect((await register(webClient, iat.token)).status).toBe(401);
  const listed = await api(gh, 'GET', '/registration-tokens', { token: admin.token });
  expect(listed.body.items.find((t: { id: string }) => t.id === iat.id)).toMatchObject({ uses: 2, maxUses: 2 });
});

test('an expired or revoked initial access token is refused', async () => {
  const shortLived = await gh.services.admin.registrationTokens.mint({ expiresInSeconds: 1 });
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const expired = await register(webClient, shortLived.token);
  expect(expired.status).toBe(401);
  expect(expired.body.error).toBe('invalid_token');

  const revoked = await mint();
  const res = await api(gh, 'DELETE', `/registration-tokens/${revoked.id}`, { token: admin.token });
  expect(res.status).toBe(200);
  expect((await register(webClient, revoked.token)).status).toBe(401);
  expect((await api(gh, 'DELETE', `/registration-tokens/${revoked.id}`, { token: admin.token })).status).toBe(404);
  expect(await auditEntries(gh, { type: 'admin.registration_token.revoked', 'target.id': revoked.id })).toHaveLength(1);
});

test("an initial access token made without Gatehouse's policy (so without its rules and use count) registers nothing", async () => {
  const bare = await new gh.services.provider.InitialAccessToken({}).save();
  const before = await gh.services.connection.collection('clients').countDocuments();
  const res = await register(webClient, bare);
  expect(res.status).toBe(401);
  expect(res.body.error).toBe('invalid_token');
  expect(await gh.services.connection.collection('clients').countDocuments()).toBe(before);
});

test('minting validates its input', async () => {
  for (const body of [{ maxUses: 0 }, { maxUses: 1.5 }, { expiresInSeconds: 5 }, { expiresInSeconds: 10 ** 9 }, { maxUses: '3' }, { token: 'chosen' }]) {
    const res = await api(gh, 'POST', '/registration-tokens', { token: admin.token, body });
    expect({ body, status: res.status }).toEqual({ body, status: 400 });
  }
});

describe('registered clients obey the same rules', () => {
  let iat: string;
  beforeAll(async () => {
    iat = (await mint()).token;
  });

  test.each([
    ['an http redirect URI to another host', { redirect_uris: ['http://example.com/cb'] }, /redirect_uris/],
    ['a fragment', { redirect_uris: ['https://example.com/cb#f'] }, /fragment/],
    ['first_party', { first_party: true }, /first_party/],
    ['an admin scope', { scope: 'openid admin' }, /admin/],
    ['keys by URL', { token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://example.com/jwks' }, /jwks/],
    ['refresh_token alone', { grant_types: ['refresh_token'] }, /grant_types|refresh_token/],
    ['client_credentials with no authentication', { grant_types: ['client_credentials'], redirect_uris: [], response_types: [], token_endpoint_auth_method: 'none' }, /token_endpoint_auth_method|authenticated/],
    ['a sector_identifier_uri (Gatehouse would fetch it)', { sector_identifier_uri: 'https://127.0.0.1:1/x' }, /sector_identifier_uri/],
    ['request_uris', { request_uris: ['https://127.0.0.1:1/r'] }, /request_uris/],
    ['grant_types that is not a list', { grant_types: 'authorization_code' }, /grant_types/],
    ['redirect_uris that is a number', { redirect_uris: 5 }, /redirect_uris/],
    ['jwks keys that are not objects', { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [1] } }, /jwks/],
  ])('refuses %s', async (_name, extra, message) => {
    const before = await gh.services.connection.collection('clients').countDocuments();
    const res = await register({ ...webClient, ...extra }, iat);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/^invalid_(client_metadata|redirect_uri)$/);
    expect(res.body.error_description).toMatch(message);
    expect(await gh.services.connection.collection('clients').countDocuments()).toBe(before);
  });

  test('RFC 7592: read, update under the same rules, and delete with the registration access token', async () => {
    const created = await register(webClient, iat);
    const { registration_client_uri: uri, client_id: clientId } = created.body;
    let rat: string = created.body.registration_access_token;
    const call = (method: string, body?: unknown) =>
      fetch(uri, { method, headers: { authorization: `Bearer ${rat}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });

    const read = await call('GET');
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ client_id: clientId, client_name: 'Self-registered app' });

    const base = { client_id: clientId, client_secret: created.body.client_secret, client_name: 'Self-registered app', redirect_uris: [RP_REDIRECT] };
    const bad = await call('PUT', { ...base, redirect_uris: ['http://evil.example/cb'] });
    expect(bad.status).toBe(400);
    const firstParty = await call('PUT', { ...base, first_party: true });
    expect(firstParty.status).toBe(400);
    expect((await firstParty.json()).error_description).toMatch(/first_party/);
    const adminScope = await call('PUT', { ...base, scope: 'openid admin:auditor' });
    expect(adminScope.status).toBe(400);

    const updated = await call('PUT', { ...base, client_name: 'Renamed by itself', redirect_uris: [RP_REDIRECT, 'https://app.example.com/cb'] });
    expect(updated.status).toBe(200);
    const body = (await updated.json()) as { client_name: string; registration_access_token: string; first_party?: boolean };
    expect(body.client_name).toBe('Renamed by itself');
    expect(body.first_party).toBe(false);
    rat = body.registration_access_token;
    await waitForAudit(gh, { type: 'client.updated', 'target.id': clientId });

    // An administrator may still manage it through the admin API; its registration metadata is kept.
    const viaApi = await api(gh, 'PATCH', `/clients/${clientId}`, { token: admin.token, body: { first_party: true } });
    expect(viaApi.status).toBe(200);
    expect(viaApi.body).toMatchObject({ first_party: true, client_name: 'Renamed by itself', client_id_issued_at: expect.any(Number) });
    // …and the client may repeat what it read, but not change what the administrator set.
    const keep = await call('PUT', { ...base, client_name: 'Renamed by itself', first_party: true });
    expect(keep.status).toBe(200);
    rat = ((await keep.json()) as { registration_access_token: string }).registration_access_token;

    // A token the client got before deleting itself must not outlive it.
    const { provider } = gh.services;
    const self = await provider.Client.find(clientId);
    const leftover = await new provider.ClientCredentials({ client: self!, scope: 'openid' } as never).save();
    expect(await provider.ClientCredentials.find(leftover)).toBeTruthy();

    const removed = await call('DELETE');
    expect(removed.status).toBe(204);
    expect((await api(gh, 'GET', `/clients/${clientId}`, { token: admin.token })).status).toBe(404);
    await waitForAudit(gh, { type: 'client.deleted', 'target.id': clientId });
    for (let i = 0; i < 40 && (await provider.ClientCredentials.find(leftover)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await provider.ClientCredentials.find(leftover)).toBeUndefined();
  });
});
