/**
 * Access tokens for configured APIs (RFC 8707 `resource`, RFC 9068 JWT access tokens): openid-client asks
 * for them as a relying party would, and the JWTs are verified as an API would, against /jwks with jose.
 */
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { loadConfig, ConfigError } from '../src/config.js';
import { startTestGatehouse, type TestGatehouse } from './support/gatehouse.js';
import { discover, exchange, signIn, startAuthorization, RP_REDIRECT } from './support/rp.js';

const ORDERS_API = 'https://api.example.com/orders';
const REPORTS_API = 'urn:example:reports';
const LEDGER_API = 'https://ledger.example.com/';
const PASSWORD = 'correct horse battery';

let gh: TestGatehouse;
let machine: oidc.Configuration;
let machineId: string;
let other: oidc.Configuration;

beforeAll(async () => {
  gh = await startTestGatehouse('resource_servers', {
    overrides: {
      resourceServers: {
        [ORDERS_API]: { scopes: ['orders.read', 'orders.write'], clients: '*' },
        [REPORTS_API]: { scopes: ['reports.read'], signingAlg: 'RS256', accessTokenSeconds: 120, clients: '*' },
        [LEDGER_API]: { scopes: ['ledger.read'], accessTokenFormat: 'opaque', clients: '*' },
      },
    },
  });
  const created = await gh.services.clients.create({ name: 'Order sync', grantTypes: ['client_credentials'] });
  machineId = created.clientId;
  machine = await discover(gh.url, created.clientId, created.clientSecret!);
  const second = await gh.services.clients.create({ name: 'Someone else', grantTypes: ['client_credentials'] });
  other = await discover(gh.url, second.clientId, second.clientSecret!);
});

afterAll(async () => {
  await gh?.close();
});

async function verifyAsApi(token: string, audience: string) {
  const jwks = createRemoteJWKSet(new URL(`${gh.url}/jwks`));
  return jwtVerify(token, jwks, { issuer: gh.url, audience, typ: 'at+jwt' });
}

describe('client_credentials with a resource', () => {
  test('a JWT access token for that API alone, signed ES256, that the API verifies against /jwks', async () => {
    const tokens = await oidc.clientCredentialsGrant(machine, { resource: ORDERS_API, scope: 'orders.read' });
    expect(decodeProtectedHeader(tokens.access_token)).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
    const { payload } = await verifyAsApi(tokens.access_token, ORDERS_API);
    expect(payload).toMatchObject({ client_id: machineId, scope: 'orders.read', aud: ORDERS_API, sub: machineId });
    expect(payload.exp! - payload.iat!).toBe(600); // ttl.clientCredentialsSeconds
    // Not stored: nothing was written for it.
    expect(await gh.services.connection.collection('oidc_client_credentials').countDocuments({ clientId: machineId })).toBe(0);
    // Another API does not accept it.
    await expect(verifyAsApi(tokens.access_token, REPORTS_API)).rejects.toThrow(/aud/);
  });

  test('an API configured for RS256 and a shorter lifetime gets that', async () => {
    const tokens = await oidc.clientCredentialsGrant(machine, { resource: REPORTS_API, scope: 'reports.read' });
    expect(decodeProtectedHeader(tokens.access_token).alg).toBe('RS256');
    const { payload } = await verifyAsApi(tokens.access_token, REPORTS_API);
    expect(payload.exp! - payload.iat!).toBe(120);
    expect(tokens.expires_in).toBe(120);
  });

  test('scopes the API does not offer are not granted', async () => {
    const tokens = await oidc.clientCredentialsGrant(machine, { resource: ORDERS_API, scope: 'orders.read reports.read' });
    const { payload } = await verifyAsApi(tokens.access_token, ORDERS_API);
    expect(payload.scope).toBe('orders.read');
  });

  test('an opaque API gets a stored token that introspects with its audience', async () => {
    const tokens = await oidc.clientCredentialsGrant(machine, { resource: LEDGER_API, scope: 'ledger.read' });
    expect(tokens.access_token.split('.')).toHaveLength(1);
    const info = await oidc.tokenIntrospection(machine, tokens.access_token);
    expect(info).toMatchObject({ active: true, client_id: machineId, aud: LEDGER_API, scope: 'ledger.read' });
  });

  test('an unknown resource is refused with invalid_target', async () => {
    await expect(oidc.clientCredentialsGrant(machine, { resource: 'https://nope.example.com/', scope: 'orders.read' })).rejects.toMatchObject({ error: 'invalid_target' });
  });

  test("a token issued for an API is refused by Gatehouse's own admin API", async () => {
    const tokens = await oidc.clientCredentialsGrant(machine, { resource: LEDGER_API, scope: 'ledger.read' });
    const res = await fetch(`${gh.url}/admin/api/accounts`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(res.status).toBe(401);
    expect(await res.text()).toMatch(/another API/);
  });

  test('without a resource, tokens are opaque and stored as before', async () => {
    const tokens = await oidc.clientCredentialsGrant(other, {});
    expect(tokens.access_token.split('.')).toHaveLength(1);
    expect(await oidc.tokenIntrospection(other, tokens.access_token)).toMatchObject({ active: true });
  });
});

describe('an API limited to some clients', () => {
  let limited: TestGatehouse;
  let allowed: oidc.Configuration;
  let stranger: oidc.Configuration;

  beforeAll(async () => {
    const allowedClient = { name: 'Allowed', grantTypes: ['client_credentials' as const] };
    limited = await startTestGatehouse('resource_servers_limited', { overrides: { resourceServers: { [ORDERS_API]: { scopes: ['orders.read'], clients: ['svc-allowed'] } } } });
    const a = await limited.services.clients.create({ ...allowedClient, clientId: 'svc-allowed' });
    const s = await limited.services.clients.create({ name: 'Stranger', grantTypes: ['client_credentials'] });
    allowed = await discover(limited.url, a.clientId, a.clientSecret!);
    stranger = await discover(limited.url, s.clientId, s.clientSecret!);
  });

  afterAll(async () => {
    await limited?.close();
  });

  test('the listed client gets a token; another gets the same invalid_target as for an unknown API', async () => {
    const tokens = await oidc.clientCredentialsGrant(allowed, { resource: ORDERS_API, scope: 'orders.read' });
    expect(decodeProtectedHeader(tokens.access_token).typ).toBe('at+jwt');
    const refused = await oidc.clientCredentialsGrant(stranger, { resource: ORDERS_API, scope: 'orders.read' }).catch((err: unknown) => err);
    const unknown = await oidc.clientCredentialsGrant(stranger, { resource: 'https://nope.example.com/', scope: 'orders.read' }).catch((err: unknown) => err);
    expect(refused).toMatchObject({ error: 'invalid_target' });
    expect((refused as { error_description?: string }).error_description).toBe((unknown as { error_description?: string }).error_description);
  });
});

test('a first-party web app signing a person in gets a JWT for the API it names, with the API scopes it asked for', async () => {
  const account = await gh.services.accounts.create({ userId: 'resource-user', email: 'resource-user@example.com', name: 'Resource User', password: PASSWORD, emailVerified: true });
  const web = await gh.services.clients.create({ name: 'Shop', redirectUris: [RP_REDIRECT], grantTypes: ['authorization_code'], firstParty: true });
  const rp = await discover(gh.url, web.clientId, web.clientSecret!);
  const attempt = await startAuthorization(rp, { scope: 'openid orders.read', resource: ORDERS_API });
  const tokens = await exchange(rp, attempt, (await signIn(attempt, 'resource-user', PASSWORD)).url, { resource: ORDERS_API });
  const { payload } = await verifyAsApi(tokens.access_token, ORDERS_API);
  expect(payload).toMatchObject({ sub: account.accountId, client_id: web.clientId, scope: 'orders.read' });
});

describe('configuration', () => {
  const load = (resourceServers: unknown) => () => loadConfig({ env: { NODE_ENV: 'test' }, overrides: { resourceServers } as never });

  test('resource servers are checked at start, each problem named by its path', () => {
    expect(load({ [ORDERS_API]: { scopes: ['orders.read'] } })).toThrow(/clients.*client ids, or "\*"/);
    expect(load({ [ORDERS_API]: { scopes: ['orders.read'], clients: [] } })).toThrow(/at least one client id/);
    for (const reserved of ['openid', 'offline_access', 'profile', 'email', 'admin', 'admin:helpdesk']) {
      expect(load({ [ORDERS_API]: { scopes: ['orders.read', reserved], clients: '*' } })).toThrow(/reserved/);
    }
    expect(load({ [ORDERS_API]: { scopes: ['a', 'a'], clients: '*' } })).toThrow(/repeat/);
    expect(load({ 'https://api.example.com/?x=1': { scopes: ['a'], clients: '*' } })).toThrow(/absolute URI/);
    expect(load({ 'javascript:alert(1)': { scopes: ['a'], clients: '*' } })).toThrow(/absolute URI/);
    expect(load({ 'not a uri': { scopes: ['a'], clients: '*' } })).toThrow(ConfigError);
    expect(load({ 'not a uri': { scopes: ['a'], clients: '*' } })).toThrow(/resourceServers.*absolute URI/);
    expect(load({ 'https://api.example.com/#frag': { scopes: ['a'], clients: '*' } })).toThrow(/absolute URI/);
    expect(load({ [ORDERS_API]: { clients: '*', scopes: [] } })).toThrow(/at least one scope/);
    expect(load({ [ORDERS_API]: { clients: '*', scopes: ['has space'] } })).toThrow(/scope name/);
    expect(load({ [ORDERS_API]: { clients: '*', scopes: ['a'], accessTokenFormat: 'paseto' } })).toThrow(/accessTokenFormat/);
    expect(load({ [ORDERS_API]: { clients: '*', scopes: ['a'], signingAlg: 'HS256' } })).toThrow(/signingAlg/);
    expect(load({ [ORDERS_API]: { clients: '*', scopes: ['a'], audience: 'x' } })).toThrow(/audience/);
    expect(load({ [ORDERS_API]: { scopes: ['a'], clients: ['svc'] } })().resourceServers[ORDERS_API]).toEqual({ scopes: ['a'], accessTokenFormat: 'jwt', signingAlg: 'ES256', accessTokenSeconds: null, clients: ['svc'] });
  });
});
