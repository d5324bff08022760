/**
 * Client administration through the API: create with Gatehouse's rules (400 per field), paginate,
 * update every field the issue lists, rotate the secret, and delete — which revokes the client's
 * grants and tokens. Secrets are shown once and never audited.
 */
import { generateKeyPairSync } from 'node:crypto';
import * as oidc from 'openid-client';
import { discover, exchange, RP_REDIRECT, signIn, startAuthorization } from '../support/rp.js';
import { api, auditEntries, createAdminConsole, createPerson, startAdminGatehouse, type AdminGatehouse, type Person } from './support.js';

let gh: AdminGatehouse;
let admin: Person;

const ecKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicJwks = { keys: [{ ...ecKey.publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'ES256' }] };
const privateJwks = { keys: [{ ...ecKey.privateKey.export({ format: 'jwk' }), kid: 'k1' }] };

beforeAll(async () => {
  gh = await startAdminGatehouse('admin_clients');
  const console_ = await createAdminConsole(gh);
  admin = await createPerson(gh, console_.rp, 'root', ['admin']);
});

afterAll(async () => {
  await gh?.close();
});

const post = (body: unknown) => api(gh, 'POST', '/clients', { token: admin.token, body });
const patch = (clientId: string, body: unknown) => api(gh, 'PATCH', `/clients/${clientId}`, { token: admin.token, body });

describe('create', () => {
  test('registers a web client: the secret is in this response only, and the client works', async () => {
    const res = await post({ client_name: 'Web shop', redirect_uris: [RP_REDIRECT], post_logout_redirect_uris: ['https://shop.example.com/bye'] });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ client_name: 'Web shop', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', first_party: false });
    expect(res.body.client_secret).toMatch(/^[\w-]{43}$/);
    const shown = await api(gh, 'GET', `/clients/${res.body.client_id}`, { token: admin.token });
    expect(shown.body).not.toHaveProperty('client_secret');
    const rp = await discover(gh.url, res.body.client_id, res.body.client_secret);
    const attempt = await startAuthorization(rp);
    await gh.services.accounts.create({ userId: 'shopper', name: 'Shopper', password: 'correct horse battery' });
    const callback = await signIn(attempt, 'shopper', 'correct horse battery');
    expect((await exchange(rp, attempt, callback.url)).access_token).toEqual(expect.any(String));

    const [entry] = await auditEntries(gh, { type: 'admin.client.created', 'target.id': res.body.client_id });
    expect(entry).toMatchObject({ actor: { id: admin.accountId }, details: { secretIssued: true }, changes: { client_name: { after: 'Web shop' } } });
    expect(JSON.stringify(entry)).not.toContain(res.body.client_secret);
  });

  test('registers private_key_jwt with public keys, and a client_credentials machine with an admin scope', async () => {
    const keyJwt = await post({ client_name: 'Key JWT', redirect_uris: ['https://rp.example.com/cb'], token_endpoint_auth_method: 'private_key_jwt', jwks: publicJwks });
    expect(keyJwt.status).toBe(201);
    expect(keyJwt.body).not.toHaveProperty('client_secret');
    expect(keyJwt.body.jwks.keys[0]).toMatchObject({ kid: 'k1', kty: 'EC' });
    const machine = await post({ client_name: 'Auditor robot', grant_types: ['client_credentials'], scope: 'admin:auditor' });
    expect(machine.status).toBe(201);
    expect(machine.body.response_types).toEqual([]);
    const rp = await discover(gh.url, machine.body.client_id, machine.body.client_secret);
    const token = await oidc.clientCredentialsGrant(rp, { scope: 'admin:auditor' });
    expect((await api(gh, 'GET', '/audit?limit=1', { token: token.access_token })).status).toBe(200);
  });

  test.each([
    ['an http redirect URI to another host', { redirect_uris: ['http://example.com/cb'] }, 'redirect_uris', /must use https/],
    ['a redirect URI with a fragment', { redirect_uris: ['https://example.com/cb#x'] }, 'redirect_uris', /fragment/],
    ['a relative redirect URI', { redirect_uris: ['/cb'] }, 'redirect_uris', /absolute URL/],
    ['authorization_code without a redirect URI', { redirect_uris: [] }, 'redirect_uris', /at least one redirect URI/],
    ['refresh_token without authorization_code', { grant_types: ['refresh_token', 'client_credentials'] }, 'grant_types', /requires authorization_code/],
    ['response types without authorization_code', { grant_types: ['client_credentials'], response_types: ['code'] }, 'response_types', /need the authorization_code/],
    ['redirect URIs on a client_credentials-only client', { grant_types: ['client_credentials'], redirect_uris: ['https://a.example/cb'] }, 'redirect_uris', /only used by the authorization_code grant/],
    ['authorization_code without the code response type', { redirect_uris: ['https://a.example/cb'], response_types: [] }, 'response_types', /requires the "code"/],
    ['an unknown grant type', { grant_types: ['implicit'] }, 'grant_types.0', /Invalid option/i],
    ['private_key_jwt without keys', { redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: 'private_key_jwt' }, 'jwks', /needs the client public keys/],
    ['private key material in jwks', { redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: 'private_key_jwt', jwks: privateJwks }, 'jwks', /private key material/],
    ['client_credentials for a public client', { grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' }, 'token_endpoint_auth_method', /authenticated client/],
    ['an unsupported scope', { redirect_uris: ['https://a.example/cb'], scope: 'openid launch-missiles' }, 'scope', /supported scope/],
    ['a post-logout URI over http', { redirect_uris: ['https://a.example/cb'], post_logout_redirect_uris: ['http://a.example/bye'] }, 'post_logout_redirect_uris', /https/],
    ['a client secret chosen by the caller', { redirect_uris: ['https://a.example/cb'], client_secret: 'x'.repeat(40) }, '(input)', /Unrecognized key/],
    ['no name', { client_name: '  ', redirect_uris: ['https://a.example/cb'] }, 'client_name', /must not be empty/],
    ['a client_id with unsafe characters', { client_id: 'a/b', redirect_uris: ['https://a.example/cb'] }, 'client_id', /URL-safe/],
  ])('refuses %s: 400 naming the field', async (_name, fields, field, message) => {
    const before = await gh.services.connection.collection('clients').countDocuments();
    const res = await post({ client_name: 'Bad', ...fields });
    expect(res.status).toBe(400);
    expect(res.body.fields).toHaveProperty([field]);
    expect(res.body.fields[field]).toMatch(message);
    expect(await gh.services.connection.collection('clients').countDocuments()).toBe(before);
  });
});

describe('list', () => {
  test('pages in creation order with an opaque cursor', async () => {
    for (let i = 0; i < 5; i++) await gh.services.clients.create({ name: `Listed ${i}`, grantTypes: ['client_credentials'] });
    const all = (await api(gh, 'GET', '/clients?limit=200', { token: admin.token })).body.items.map((c: { client_id: string }) => c.client_id);
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { body: { items: Array<{ client_id: string }>; nextCursor: string | null } } = await api(gh, 'GET', `/clients?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: admin.token });
      paged.push(...res.body.items.map((c) => c.client_id));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(paged).toEqual(all);
    expect(new Set(paged).size).toBe(paged.length);
    expect(all.length).toBeGreaterThanOrEqual(7);
  });
});

describe('update', () => {
  let clientId: string;
  let secret: string;

  beforeAll(async () => {
    const res = await post({ client_name: 'Changing', redirect_uris: ['https://changing.example.com/cb'] });
    clientId = res.body.client_id;
    secret = res.body.client_secret;
  });

  test('changes URIs, grant types, scope and first-party, and records only what changed', async () => {
    const res = await patch(clientId, {
      redirect_uris: ['https://changing.example.com/cb2', 'http://localhost:5000/cb'],
      post_logout_redirect_uris: ['https://changing.example.com/bye'],
      grant_types: ['authorization_code', 'client_credentials'],
      scope: 'openid profile',
      first_party: true,
      client_name: 'Changing',
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ redirect_uris: ['https://changing.example.com/cb2', 'http://localhost:5000/cb'], grant_types: ['authorization_code', 'client_credentials'], response_types: ['code'], scope: 'openid profile', first_party: true });
    expect(res.body).not.toHaveProperty('client_secret');
    const [entry] = await auditEntries(gh, { type: 'admin.client.updated', 'target.id': clientId });
    expect(Object.keys(entry!.changes).sort()).toEqual(['first_party', 'grant_types', 'post_logout_redirect_uris', 'redirect_uris', 'scope']);
    expect(entry!.changes.first_party).toEqual({ before: false, after: true });
    // Still the same secret.
    const rp = await discover(gh.url, clientId, secret);
    expect((await oidc.clientCredentialsGrant(rp, {})).access_token).toEqual(expect.any(String));
  });

  test('switching to private_key_jwt drops the secret; switching back issues a new one, shown once', async () => {
    const toKeys = await patch(clientId, { token_endpoint_auth_method: 'private_key_jwt', jwks: publicJwks });
    expect(toKeys.status).toBe(200);
    expect(toKeys.body.jwks.keys[0].kid).toBe('k1');
    expect((await gh.services.connection.collection('clients').findOne({ _id: clientId as never }))!.secretSealed).toBeUndefined();
    const [entry] = await auditEntries(gh, { type: 'admin.client.updated', 'target.id': clientId });
    expect(entry).toMatchObject({ changes: { jwks: { before: null, after: ['k1'] }, token_endpoint_auth_method: { before: 'client_secret_basic', after: 'private_key_jwt' } }, details: { secretRemoved: true } });

    const back = await patch(clientId, { token_endpoint_auth_method: 'client_secret_post', jwks: null });
    expect(back.body.client_secret).toMatch(/^[\w-]{43}$/);
    expect(back.body).not.toHaveProperty('jwks');
    secret = back.body.client_secret;
  });

  test('the same rules as creation, on the result of the change', async () => {
    for (const [body, field] of [
      [{ redirect_uris: ['http://evil.example/cb'] }, 'redirect_uris'],
      [{ redirect_uris: [] }, 'redirect_uris'],
      [{ grant_types: ['refresh_token'] }, 'grant_types'],
      [{ response_types: [] }, 'response_types'],
      [{ token_endpoint_auth_method: 'private_key_jwt' }, 'jwks'],
      [{ scope: 'bogus' }, 'scope'],
      [{ client_secret: 'mine' }, '(input)'],
      [{}, '(input)'],
    ] as const) {
      const res = await patch(clientId, body);
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
      expect(res.body.fields).toHaveProperty([field]);
    }
    expect((await patch('no-such-client', { client_name: 'X' })).status).toBe(404);
  });

  test('rotating the secret: the new one works, the old one no longer does', async () => {
    const res = await api(gh, 'POST', `/clients/${clientId}/secret`, { token: admin.token });
    expect(res.status).toBe(200);
    expect(res.body.client_secret).not.toBe(secret);
    const fresh = await discover(gh.url, clientId, res.body.client_secret);
    expect((await oidc.clientCredentialsGrant(fresh, {})).access_token).toEqual(expect.any(String));
    const stale = await discover(gh.url, clientId, secret);
    await expect(oidc.clientCredentialsGrant(stale, {})).rejects.toMatchObject({ error: 'invalid_client' });
    const [entry] = await auditEntries(gh, { type: 'admin.client.secret_rotated', 'target.id': clientId });
    expect(JSON.stringify(entry)).not.toContain(res.body.client_secret);
    const keyJwt = await post({ client_name: 'No secret', redirect_uris: ['https://rp.example.com/cb'], token_endpoint_auth_method: 'none' });
    expect((await api(gh, 'POST', `/clients/${keyJwt.body.client_id}/secret`, { token: admin.token })).status).toBe(409);
  });
});

describe('redirect URIs a client cannot use', () => {
  test('are refused when a change sets them or the grant types, not on other changes to a client stored before the rule', async () => {
    const created = await gh.services.clients.create({ name: 'Legacy machine', redirectUris: ['https://legacy.example/cb'] });
    // Stored before the rule: client_credentials only, with a redirect URI left over.
    await gh.services.connection.collection('clients').updateOne({ _id: created.clientId as never }, { $set: { 'metadata.grant_types': ['client_credentials'], 'metadata.response_types': [] } });
    expect((await patch(created.clientId, { client_name: 'Legacy machine, renamed' })).status).toBe(200);
    const refused = await patch(created.clientId, { redirect_uris: ['https://legacy.example/other'] });
    expect(refused.status).toBe(400);
    expect(refused.body.fields.redirect_uris).toMatch(/only used by the authorization_code grant/);
    expect((await patch(created.clientId, { redirect_uris: [] })).status).toBe(200);
  });
});

describe('delete', () => {
  test("revokes the client's grants and tokens, and leaves other clients' alone", async () => {
    await gh.services.accounts.create({ userId: 'leaver', name: 'Leaver', password: 'correct horse battery' });
    const issue = async (name: string) => {
      const created = await post({ client_name: name, redirect_uris: [RP_REDIRECT], grant_types: ['authorization_code', 'refresh_token'] });
      const rp = await discover(gh.url, created.body.client_id, created.body.client_secret);
      const attempt = await startAuthorization(rp, { scope: 'openid offline_access', prompt: 'consent' });
      const tokens = await exchange(rp, attempt, (await signIn(attempt, 'leaver', 'correct horse battery')).url);
      return { clientId: created.body.client_id as string, rp, tokens };
    };
    const doomed = await issue('Doomed');
    const kept = await issue('Kept');
    expect(doomed.tokens.refresh_token).toEqual(expect.any(String));

    const res = await api(gh, 'DELETE', `/clients/${doomed.clientId}`, { token: admin.token });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ client_id: doomed.clientId, deleted: true, revoked: { AccessToken: 1, RefreshToken: 1, Grant: 1 } });

    // The tokens are gone: the userinfo endpoint refuses the access token, the token endpoint the client.
    await expect(oidc.fetchUserInfo(doomed.rp, doomed.tokens.access_token, oidc.skipSubjectCheck)).rejects.toThrow();
    await expect(oidc.refreshTokenGrant(doomed.rp, doomed.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_client' });
    expect(await gh.services.provider.AccessToken.find(doomed.tokens.access_token)).toBeUndefined();
    expect(await gh.services.provider.RefreshToken.find(doomed.tokens.refresh_token!)).toBeUndefined();
    expect((await oidc.tokenIntrospection(kept.rp, kept.tokens.access_token)).active).toBe(true);
    expect((await api(gh, 'GET', `/clients/${doomed.clientId}`, { token: admin.token })).status).toBe(404);
    expect((await api(gh, 'DELETE', `/clients/${doomed.clientId}`, { token: admin.token })).status).toBe(404);
    const [entry] = await auditEntries(gh, { type: 'admin.client.deleted', 'target.id': doomed.clientId });
    expect(entry).toMatchObject({ details: { name: 'Doomed', revoked: { Grant: 1 } } });
  });
});
