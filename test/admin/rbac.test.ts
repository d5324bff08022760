/**
 * Authentication and roles on the admin API: every endpoint for every kind of caller (allowed,
 * forbidden, unauthenticated), RFC 6750 challenges, and the rule that what a caller may do follows
 * their *current* roles, status and client registration, not what their token once carried.
 */
import * as oidc from 'openid-client';
import { discover, RP_REDIRECT, signIn, startAuthorization, exchange, isCallback } from '../support/rp.js';
import { registerSoftwarePasskey } from '../support/passkeys.js';
import { documentedOperations } from './openapi.js';
import { ALL_ADMIN_SCOPES, api, auditEntries, createAdminConsole, createMachine, createPerson, PASSWORD, signInForToken, startAdminGatehouse, type AdminConsole, type AdminGatehouse, type Person } from './support.js';

let gh: AdminGatehouse;
let console_: AdminConsole;
const people: Record<'admin' | 'helpdesk' | 'auditor' | 'nobody', Person> = {} as never;
const machines: Record<'admin' | 'auditor', string> = {} as never;

beforeAll(async () => {
  gh = await startAdminGatehouse('admin_rbac');
  console_ = await createAdminConsole(gh);
  const [admin, helpdesk, auditor, nobody] = await Promise.all([
    createPerson(gh, console_.rp, 'ada', ['admin']),
    createPerson(gh, console_.rp, 'hugo', ['helpdesk']),
    createPerson(gh, console_.rp, 'aude', ['auditor']),
    createPerson(gh, console_.rp, 'nora', []),
  ]);
  Object.assign(people, { admin, helpdesk, auditor, nobody });
  machines.admin = (await createMachine(gh, 'Provisioning robot', 'admin')).token;
  machines.auditor = (await createMachine(gh, 'SIEM exporter', 'admin:auditor')).token;
});

afterAll(async () => {
  await gh?.close();
});

type Caller = 'admin' | 'helpdesk' | 'auditor' | 'nobody' | 'machine-admin' | 'machine-auditor';
const CALLERS: Caller[] = ['admin', 'helpdesk', 'auditor', 'nobody', 'machine-admin', 'machine-auditor'];
const tokenOf = (caller: Caller) => (caller === 'machine-admin' ? machines.admin : caller === 'machine-auditor' ? machines.auditor : people[caller].token);

let serial = 0;
async function freshAccount(options: { status?: 'active' | 'disabled' | 'locked'; password?: boolean } = {}): Promise<string> {
  serial += 1;
  const account = await gh.services.accounts.create({ userId: `target${serial}`, email: `target${serial}@example.com`, name: `Target ${serial}`, ...(options.password === false ? {} : { password: PASSWORD }) });
  if (options.status && options.status !== 'active') await gh.services.accounts.model.collection.updateOne({ accountId: account.accountId }, { $set: { status: options.status } });
  return account.accountId;
}
async function freshClient(): Promise<string> {
  serial += 1;
  return (await gh.services.clients.create({ name: `Target client ${serial}`, redirectUris: [`https://rp${serial}.example.com/cb`] })).clientId;
}

interface Endpoint {
  method: string;
  template: string;
  allowed: Caller[];
  success: number;
  /** Builds the path (and body) for one call; targets are made fresh so every allowed call succeeds. */
  prepare: () => Promise<{ path: string; body?: unknown }>;
}

const EVERYONE: Caller[] = CALLERS;
const READERS: Caller[] = ['admin', 'helpdesk', 'auditor', 'machine-admin', 'machine-auditor'];
const ADMINS: Caller[] = ['admin', 'machine-admin'];
const SUPPORT: Caller[] = ['admin', 'helpdesk', 'machine-admin'];
const AUDITORS: Caller[] = ['admin', 'auditor', 'machine-admin', 'machine-auditor'];

const ENDPOINTS: Endpoint[] = [
  { method: 'GET', template: '/me', allowed: EVERYONE, success: 200, prepare: async () => ({ path: '/me' }) },
  { method: 'GET', template: '/accounts', allowed: READERS, success: 200, prepare: async () => ({ path: '/accounts?limit=2' }) },
  {
    method: 'POST', template: '/accounts', allowed: ADMINS, success: 201,
    prepare: async () => ((serial += 1), { path: '/accounts', body: { userId: `created${serial}`, name: 'Created', email: `created${serial}@example.com`, password: PASSWORD } }),
  },
  { method: 'GET', template: '/accounts/{accountId}', allowed: READERS, success: 200, prepare: async () => ({ path: `/accounts/${await freshAccount()}` }) },
  { method: 'PATCH', template: '/accounts/{accountId}', allowed: ADMINS, success: 200, prepare: async () => ({ path: `/accounts/${await freshAccount()}`, body: { name: 'Renamed' } }) },
  { method: 'POST', template: '/accounts/{accountId}/disable', allowed: SUPPORT, success: 200, prepare: async () => ({ path: `/accounts/${await freshAccount()}/disable` }) },
  { method: 'POST', template: '/accounts/{accountId}/enable', allowed: SUPPORT, success: 200, prepare: async () => ({ path: `/accounts/${await freshAccount({ status: 'disabled' })}/enable` }) },
  { method: 'POST', template: '/accounts/{accountId}/unlock', allowed: SUPPORT, success: 200, prepare: async () => ({ path: `/accounts/${await freshAccount({ status: 'locked' })}/unlock` }) },
  { method: 'POST', template: '/accounts/{accountId}/reset-second-factor', allowed: SUPPORT, success: 200, prepare: async () => ({ path: `/accounts/${await freshAccount()}/reset-second-factor` }) },
  { method: 'POST', template: '/accounts/{accountId}/password-reset', allowed: SUPPORT, success: 202, prepare: async () => ({ path: `/accounts/${await freshAccount()}/password-reset` }) },
  { method: 'GET', template: '/accounts/{accountId}/trusted-devices', allowed: READERS, success: 200, prepare: async () => ({ path: `/accounts/${await freshAccount()}/trusted-devices` }) },
  {
    method: 'DELETE', template: '/accounts/{accountId}/trusted-devices/{deviceId}', allowed: SUPPORT, success: 200,
    prepare: async () => {
      const accountId = await freshAccount();
      const device = await gh.services.factors.trustedDevice.enrol({ accountId, userId: 'x', name: 'x', phoneVerified: false }, { label: 'Chrome on Linux', lifetimeDays: 30 });
      return { path: `/accounts/${accountId}/trusted-devices/${device.id}` };
    },
  },
  { method: 'DELETE', template: '/accounts/{accountId}/trusted-devices', allowed: SUPPORT, success: 200, prepare: async () => ({ path: `/accounts/${await freshAccount()}/trusted-devices` }) },
  { method: 'GET', template: '/accounts/{accountId}/passkeys', allowed: READERS, success: 200, prepare: async () => ({ path: `/accounts/${await freshAccount()}/passkeys` }) },
  {
    method: 'DELETE', template: '/accounts/{accountId}/passkeys/{credentialId}', allowed: SUPPORT, success: 200,
    prepare: async () => {
      const accountId = await freshAccount();
      const { credentialId } = await registerSoftwarePasskey(gh, accountId);
      return { path: `/accounts/${accountId}/passkeys/${credentialId}` };
    },
  },
  { method: 'DELETE', template: '/accounts/{accountId}/passkeys', allowed: SUPPORT, success: 200, prepare: async () => ({ path: `/accounts/${await freshAccount()}/passkeys` }) },
  { method: 'POST', template: '/accounts/{accountId}/revoke-sessions', allowed: ADMINS, success: 200, prepare: async () => ({ path: `/accounts/${await freshAccount()}/revoke-sessions` }) },
  { method: 'POST', template: '/accounts/{accountId}/invitation', allowed: ADMINS, success: 200, prepare: async () => ({ path: `/accounts/${await freshAccount({ password: false })}/invitation` }) },
  { method: 'GET', template: '/clients', allowed: READERS, success: 200, prepare: async () => ({ path: '/clients' }) },
  { method: 'POST', template: '/clients', allowed: ADMINS, success: 201, prepare: async () => ({ path: '/clients', body: { client_name: 'Made by API', redirect_uris: ['https://made.example.com/cb'] } }) },
  { method: 'GET', template: '/clients/{clientId}', allowed: READERS, success: 200, prepare: async () => ({ path: `/clients/${await freshClient()}` }) },
  { method: 'PATCH', template: '/clients/{clientId}', allowed: ADMINS, success: 200, prepare: async () => ({ path: `/clients/${await freshClient()}`, body: { client_name: 'Renamed client' } }) },
  { method: 'DELETE', template: '/clients/{clientId}', allowed: ADMINS, success: 200, prepare: async () => ({ path: `/clients/${await freshClient()}` }) },
  { method: 'POST', template: '/clients/{clientId}/secret', allowed: ADMINS, success: 200, prepare: async () => ({ path: `/clients/${await freshClient()}/secret` }) },
  { method: 'GET', template: '/registration-tokens', allowed: AUDITORS, success: 200, prepare: async () => ({ path: '/registration-tokens' }) },
  { method: 'POST', template: '/registration-tokens', allowed: ADMINS, success: 201, prepare: async () => ({ path: '/registration-tokens', body: { maxUses: 1 } }) },
  {
    method: 'DELETE', template: '/registration-tokens/{tokenId}', allowed: ADMINS, success: 200,
    prepare: async () => ({ path: `/registration-tokens/${(await gh.services.admin.registrationTokens.mint({ maxUses: 1 })).id}` }),
  },
  { method: 'GET', template: '/audit', allowed: AUDITORS, success: 200, prepare: async () => ({ path: '/audit?limit=5' }) },
];

test('the matrix covers every operation the OpenAPI document describes (but the public document itself)', () => {
  const covered = ENDPOINTS.map((e) => `${e.method} ${e.template}`).sort();
  const documented = documentedOperations()
    .filter((o) => o.template !== '/openapi.json')
    .map((o) => `${o.method.toUpperCase()} ${o.template}`)
    .sort();
  expect(covered).toEqual(documented);
});

describe.each(ENDPOINTS)('$method $template', (endpoint) => {
  test('without a token: 401 with a Bearer challenge and no error code', async () => {
    const { path, body } = await endpoint.prepare();
    const res = await api(gh, endpoint.method, path, { body });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse-admin"');
    expect(res.body.error).toBe('unauthorized');
  });

  test('with a token that Gatehouse never issued: 401 invalid_token', async () => {
    const { path, body } = await endpoint.prepare();
    const res = await api(gh, endpoint.method, path, { body, token: 'not-a-real-token-value-0123456789' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="gatehouse-admin", error="invalid_token", error_description="[^"]+"$/);
  });

  test.each(CALLERS)('as %s', async (caller) => {
    const { path, body } = await endpoint.prepare();
    const res = await api(gh, endpoint.method, path, { body, token: tokenOf(caller) });
    if (endpoint.allowed.includes(caller)) {
      expect({ caller, status: res.status }).toEqual({ caller, status: endpoint.success });
    } else {
      expect({ caller, status: res.status, error: res.body.error }).toEqual({ caller, status: 403, error: 'insufficient_scope' });
      expect(res.headers.get('www-authenticate')).toMatch(/error="insufficient_scope".*scope="admin( admin:\w+)*"/);
    }
  });
});

test('the OpenAPI document is public', async () => {
  const res = await api(gh, 'GET', '/openapi.json');
  expect(res.status).toBe(200);
  expect(res.body.openapi).toBe('3.1.0');
});

test('refusals for lack of permission are audited', async () => {
  const denied = await auditEntries(gh, { type: 'admin.forbidden', 'actor.id': people.nobody.accountId });
  expect(denied.length).toBeGreaterThan(5);
  expect(denied[0]).toMatchObject({ outcome: 'failure', clientId: console_.clientId, details: { method: expect.any(String), permission: expect.any(String) } });
});

describe('tokens and where they come from', () => {
  test('a person gets admin scopes only for the roles they hold', async () => {
    const me = async (person: Person) => (await api(gh, 'GET', '/me', { token: person.token })).body;
    expect(await me(people.admin)).toMatchObject({ actor: { kind: 'account', id: people.admin.accountId }, scopes: ['admin', 'admin:helpdesk', 'admin:auditor'], roles: ['admin'] });
    expect(await me(people.helpdesk)).toMatchObject({ scopes: ['admin:helpdesk'], permissions: ['accounts:read', 'accounts:support', 'clients:read'] });
    expect(await me(people.auditor)).toMatchObject({ scopes: ['admin:auditor'] });
    expect(await me(people.nobody)).toMatchObject({ scopes: [], permissions: [] });
    // The tokens themselves carry only what was granted: introspection says so.
    const nobody = await oidc.tokenIntrospection(console_.rp, people.nobody.token);
    expect(nobody.scope).toBe('openid');
    const helpdesk = await oidc.tokenIntrospection(console_.rp, people.helpdesk.token);
    expect(helpdesk.scope).toBe('openid admin:helpdesk');
  });

  test('on a client with a consent page, approving does not grant admin scopes the account lacks', async () => {
    const thirdParty = await gh.services.clients.create({ name: 'Ops dashboard', redirectUris: [RP_REDIRECT], scope: `openid ${ALL_ADMIN_SCOPES}` });
    const rp = await discover(gh.url, thirdParty.clientId, thirdParty.clientSecret);
    const attempt = await startAuthorization(rp, { scope: 'openid admin admin:auditor' });
    const consent = await attempt.browser.submit(attempt.page, '/login', { login: 'aude', password: PASSWORD }, isCallback);
    const callback = await attempt.browser.submit(consent, '/confirm', {}, isCallback);
    expect(isCallback(callback.url)).toBe(true);
    const tokens = await exchange(rp, attempt, callback.url);
    expect(tokens.scope).toBe('openid admin:auditor');
    expect((await api(gh, 'GET', '/audit?limit=1', { token: tokens.access_token })).status).toBe(200);
    expect((await api(gh, 'GET', '/registration-tokens', { token: tokens.access_token })).status).toBe(200);
    expect((await api(gh, 'POST', '/registration-tokens', { token: tokens.access_token, body: {} })).status).toBe(403);
  });

  test('a client not registered with an admin scope cannot obtain it, by either grant', async () => {
    const plain = await gh.services.clients.create({ name: 'Plain batch', grantTypes: ['client_credentials'] });
    const rp = await discover(gh.url, plain.clientId, plain.clientSecret);
    await expect(oidc.clientCredentialsGrant(rp, { scope: 'admin' })).rejects.toMatchObject({ error: 'invalid_scope' });
    const web = await gh.services.clients.create({ name: 'Plain web', redirectUris: [RP_REDIRECT], firstParty: true });
    const webRp = await discover(gh.url, web.clientId, web.clientSecret);
    const attempt = await startAuthorization(webRp, { scope: 'openid admin' });
    expect(isCallback(attempt.page.url)).toBe(true);
    expect(new URL(attempt.page.url).searchParams.get('error')).toBe('invalid_scope');
  });

  test('narrowing a machine client takes its admin power away at the next request', async () => {
    const robot = await createMachine(gh, 'Short-lived robot', 'admin');
    expect((await api(gh, 'GET', '/clients', { token: robot.token })).status).toBe(200);
    await gh.services.clients.update(robot.clientId, { scope: 'openid' });
    const after = await api(gh, 'GET', '/clients', { token: robot.token });
    expect(after.status).toBe(403);
    expect(after.body.error).toBe('insufficient_scope');
  });

  test('removing a role or disabling the account takes effect at the next request', async () => {
    const temp = await createPerson(gh, console_.rp, 'temp-admin', ['admin']);
    expect((await api(gh, 'GET', '/audit?limit=1', { token: temp.token })).status).toBe(200);
    expect((await api(gh, 'PATCH', `/accounts/${temp.accountId}`, { token: people.admin.token, body: { roles: ['helpdesk'] } })).status).toBe(200);
    // The same token now only carries what the helpdesk role allows.
    expect((await api(gh, 'GET', '/audit?limit=1', { token: temp.token })).status).toBe(403);
    expect((await api(gh, 'GET', '/clients', { token: temp.token })).status).toBe(200);
    expect((await api(gh, 'GET', '/me', { token: temp.token })).body).toMatchObject({ scopes: ['admin:helpdesk'], roles: ['helpdesk'] });
    expect((await api(gh, 'POST', `/accounts/${temp.accountId}/disable`, { token: people.admin.token })).status).toBe(200);
    const disabled = await api(gh, 'GET', '/me', { token: temp.token });
    expect(disabled.status).toBe(401);
    expect(disabled.body.error).toBe('invalid_token');
  });

  test('a revoked token is refused', async () => {
    const { accessToken } = await signInForToken(console_.rp, 'ada');
    expect((await api(gh, 'GET', '/me', { token: accessToken })).status).toBe(200);
    await oidc.tokenRevocation(console_.rp, accessToken);
    expect((await api(gh, 'GET', '/me', { token: accessToken })).status).toBe(401);
  });

  test('the token goes in the Authorization header, well-formed', async () => {
    const inQuery = await api(gh, 'GET', `/me?access_token=${people.admin.token}`);
    expect(inQuery.status).toBe(400);
    expect(inQuery.headers.get('www-authenticate')).toMatch(/error="invalid_request"/);
    for (const authorization of ['Basic YWRhOnB3', `Bearer ${people.admin.token} extra`, 'Bearer', `Bearer "${people.admin.token}"`]) {
      const res = await api(gh, 'GET', '/me', { headers: { authorization } });
      expect({ authorization, status: res.status, error: res.body.error }).toEqual({ authorization, status: 400, error: 'invalid_request' });
    }
    // The scheme is case-insensitive (RFC 7235).
    expect((await api(gh, 'GET', '/me', { headers: { authorization: `bearer ${people.admin.token}` } })).status).toBe(200);
  });
});

describe('who may act on whom', () => {
  test('the helpdesk may not manage accounts that hold an administrative role', async () => {
    for (const action of ['disable', 'reset-second-factor', 'password-reset']) {
      const res = await api(gh, 'POST', `/accounts/${people.auditor.accountId}/${action}`, { token: people.helpdesk.token });
      expect({ action, status: res.status, error: res.body.error }).toEqual({ action, status: 403, error: 'forbidden' });
    }
    expect((await gh.services.accounts.findByAccountId(people.auditor.accountId))!.status).toBe('active');
  });

  test('an administrator cannot disable their own account or drop their own admin role', async () => {
    const disable = await api(gh, 'POST', `/accounts/${people.admin.accountId}/disable`, { token: people.admin.token });
    expect(disable.status).toBe(409);
    const demote = await api(gh, 'PATCH', `/accounts/${people.admin.accountId}`, { token: people.admin.token, body: { roles: [] } });
    expect(demote.status).toBe(409);
    expect(demote.body.error_description).toMatch(/your own admin role/);
    expect((await gh.services.accounts.findByAccountId(people.admin.accountId))!.roles).toEqual(['admin']);
  });
});
