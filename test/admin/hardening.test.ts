/**
 * Gaps a newcomer walkthrough of the admin API found, each checked through HTTP (and the CLI where it
 * shares the operation): a client's default_acr_values (set, changed, removed, and what sign-in then
 * does), the reserved id of the built-in account-area client, mail refused for disabled accounts, and
 * precise 400s for bodies and queries of the wrong shape.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ACCOUNT_CLIENT_ID } from '../../src/selfservice/account-client.js';
import { TEST_SECRETS_KEY } from '../support/gatehouse.js';
import { discover, isCallback, RP_REDIRECT, startAuthorization } from '../support/rp.js';
import { TestSmtpServer } from '../support/smtp.js';
import { inProcessCli, type CliResult, type CliRunner } from './in-process-cli.js';
import { api, auditEntries, createAdminConsole, createPerson, PASSWORD, startAdminGatehouse, type AdminGatehouse, type Person } from './support.js';

const PWD = 'urn:gatehouse:acr:pwd';
const MFA = 'urn:gatehouse:acr:mfa';

let smtp: TestSmtpServer;
let gh: AdminGatehouse;
let admin: Person;
let helpdesk: Person;
let cli: CliRunner;

beforeAll(async () => {
  smtp = await new TestSmtpServer().start();
  gh = await startAdminGatehouse('admin_hardening', { env: { SMTP_URL: smtp.url } });
  const console_ = await createAdminConsole(gh);
  admin = await createPerson(gh, console_.rp, 'root', ['admin']);
  helpdesk = await createPerson(gh, console_.rp, 'desk', ['helpdesk']);
  cli = await inProcessCli({
    NODE_ENV: 'test',
    ISSUER: gh.url,
    MONGODB_URI: gh.dbUri,
    GATEHOUSE_SECRETS_KEY: TEST_SECRETS_KEY,
    GATEHOUSE_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'gatehouse-admin-hardening-')),
    SMTP_URL: smtp.url,
  });
});

afterAll(async () => {
  await gh?.close();
  await smtp?.stop();
});

const as = (person: Person) => ({ token: person.token });
const clientCount = () => gh.services.connection.collection('clients').countDocuments();

function cliJson<T = any>(result: CliResult): T {
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  return JSON.parse(result.stdout) as T;
}

function cliFailed(result: CliResult, message: RegExp): void {
  expect(result.code).toBe(1);
  expect(result.stdout).toBe('');
  expect(result.stderr).toMatch(/^error: [^\n]+\n$/);
  expect(result.stderr).toMatch(message);
}

/** Signs a password-only account in to the client: the callback, or the page sign-in stopped at. */
async function passwordSignIn(clientId: string, clientSecret: string, userId: string) {
  const rp = await discover(gh.url, clientId, clientSecret);
  const attempt = await startAuthorization(rp);
  return attempt.browser.submit(attempt.page, '/login', { login: userId, password: PASSWORD }, isCallback);
}

describe('default_acr_values', () => {
  test('set at creation, shown, audited; and every sign-in to the client then needs a second factor', async () => {
    const created = await api(gh, 'POST', '/clients', { ...as(admin), body: { client_name: 'Payroll', redirect_uris: [RP_REDIRECT], first_party: true, default_acr_values: [MFA] } });
    expect(created.status).toBe(201);
    expect(created.body.default_acr_values).toEqual([MFA]);
    const shown = await api(gh, 'GET', `/clients/${created.body.client_id}`, as(admin));
    expect(shown.body.default_acr_values).toEqual([MFA]);
    const [entry] = await auditEntries(gh, { type: 'admin.client.created', 'target.id': created.body.client_id });
    expect(entry!.changes.default_acr_values).toEqual({ before: null, after: [MFA] });

    // An account in a market where two-step verification is optional must still set it up, without deferring.
    await gh.services.accounts.create({ userId: 'paula', name: 'Paula', email: 'paula@example.com', password: PASSWORD, market: 'default' });
    const page = await passwordSignIn(created.body.client_id, created.body.client_secret, 'paula');
    expect(isCallback(page.url)).toBe(false);
    expect(page.body).toContain('Set up two-step verification');
    expect(page.body).not.toContain('Remind me next time');
  });

  test('PATCH sets, changes and removes it (null), and oidc-provider follows at once', async () => {
    await gh.services.accounts.create({ userId: 'olga', name: 'Olga', email: 'olga@example.com', password: PASSWORD, market: 'default' });
    const created = await api(gh, 'POST', '/clients', { ...as(admin), body: { client_name: 'Intranet', redirect_uris: [RP_REDIRECT], first_party: true } });
    const { client_id: clientId, client_secret: secret } = created.body;
    expect(created.body).not.toHaveProperty('default_acr_values');
    expect(isCallback((await passwordSignIn(clientId, secret, 'olga')).url)).toBe(true);

    const strict = await api(gh, 'PATCH', `/clients/${clientId}`, { ...as(admin), body: { default_acr_values: [MFA, MFA] } });
    expect(strict.status).toBe(200);
    expect(strict.body.default_acr_values).toEqual([MFA]);
    const [entry] = await auditEntries(gh, { type: 'admin.client.updated', 'target.id': clientId });
    expect(entry!.changes).toEqual({ default_acr_values: { before: null, after: [MFA] } });
    expect((await passwordSignIn(clientId, secret, 'olga')).body).toContain('Set up two-step verification');

    const passwordLevel = await api(gh, 'PATCH', `/clients/${clientId}`, { ...as(admin), body: { default_acr_values: [PWD] } });
    expect(passwordLevel.body.default_acr_values).toEqual([PWD]);
    expect(isCallback((await passwordSignIn(clientId, secret, 'olga')).url)).toBe(true);

    const removed = await api(gh, 'PATCH', `/clients/${clientId}`, { ...as(admin), body: { default_acr_values: null } });
    expect(removed.status).toBe(200);
    expect(removed.body).not.toHaveProperty('default_acr_values');
    expect((await api(gh, 'GET', `/clients/${clientId}`, as(admin))).body).not.toHaveProperty('default_acr_values');
  });

  test.each([
    ['an acr value Gatehouse does not issue', ['urn:example:loa:3'], /"urn:example:loa:3" is not an acr value Gatehouse issues; allowed: urn:gatehouse:acr:pwd, urn:gatehouse:acr:mfa/],
    ['a known value beside an unknown one', [MFA, 'silver'], /"silver" is not an acr value/],
    ['an empty list', [], /at least one acr value/],
    ['a string instead of a list', MFA, /expected array/i],
  ])('refuses %s: 400 naming the allowed values, nothing written', async (_name, value, message) => {
    const before = await clientCount();
    const created = await api(gh, 'POST', '/clients', { ...as(admin), body: { client_name: 'Bad acr', redirect_uris: [RP_REDIRECT], default_acr_values: value } });
    expect(created.status).toBe(400);
    expect(created.body.fields.default_acr_values).toMatch(message);
    expect(await clientCount()).toBe(before);

    const target = await gh.services.clients.create({ name: 'Unchanged', redirectUris: [RP_REDIRECT] });
    const changed = await api(gh, 'PATCH', `/clients/${target.clientId}`, { ...as(admin), body: { default_acr_values: value } });
    expect(changed.status).toBe(400);
    expect(changed.body.fields.default_acr_values).toMatch(message);
    expect((await gh.services.clients.show(target.clientId)).metadata).not.toHaveProperty('default_acr_values');
  });

  test('the CLI: create --require-mfa, update --no-require-mfa / --require-mfa, through the same rule', async () => {
    const created = cliJson(await cli(['client', 'create', '--name', 'CLI payroll', '--redirect-uri', RP_REDIRECT, '--require-mfa', '--json']));
    expect(created.default_acr_values).toEqual([MFA]);
    expect((await api(gh, 'GET', `/clients/${created.client_id}`, as(admin))).body.default_acr_values).toEqual([MFA]);

    const relaxed = cliJson(await cli(['client', 'update', created.client_id, '--no-require-mfa', '--json']));
    expect(relaxed.changes).toEqual({ default_acr_values: { before: [MFA], after: null } });
    expect((await api(gh, 'GET', `/clients/${created.client_id}`, as(admin))).body).not.toHaveProperty('default_acr_values');
    const strict = cliJson(await cli(['client', 'update', created.client_id, '--require-mfa', '--json']));
    expect(strict.changes).toEqual({ default_acr_values: { before: null, after: [MFA] } });

    // The registry (the CLI's and the API's) applies the rule whichever way the value arrives.
    await expect(gh.services.clients.create({ name: 'Direct', redirectUris: [RP_REDIRECT], defaultAcrValues: ['urn:example:loa:3'] })).rejects.toMatchObject({
      fields: { defaultAcrValues: expect.stringMatching(/allowed: urn:gatehouse:acr:pwd, urn:gatehouse:acr:mfa/) },
    });
  });
});

describe(`the built-in client "${ACCOUNT_CLIENT_ID}"`, () => {
  test('cannot be created, changed, rotated or deleted (409 saying it is built in), and is not listed or shown', async () => {
    const before = await clientCount();
    const builtIn = /"gatehouse-account" is a built-in client/;
    const created = await api(gh, 'POST', '/clients', { ...as(admin), body: { client_id: ACCOUNT_CLIENT_ID, client_name: 'Impostor', redirect_uris: [RP_REDIRECT] } });
    expect(created.status).toBe(409);
    expect(created.body.error_description).toMatch(builtIn);
    expect(await clientCount()).toBe(before);

    for (const [method, suffix, body] of [
      ['PATCH', '', { client_name: 'Renamed' }],
      ['PATCH', '', {}],
      ['POST', '/secret', undefined],
      ['DELETE', '', undefined],
    ] as const) {
      const res = await api(gh, method, `/clients/${ACCOUNT_CLIENT_ID}${suffix}`, { ...as(admin), ...(body ? { body } : {}) });
      expect({ method, suffix, status: res.status }).toEqual({ method, suffix, status: 409 });
      expect(res.body.error_description).toMatch(builtIn);
    }
    const shown = await api(gh, 'GET', `/clients/${ACCOUNT_CLIENT_ID}`, as(admin));
    expect(shown.status).toBe(404);
    expect(shown.body.error_description).toMatch(/built-in client .* not managed here/);
    expect(await auditEntries(gh, { 'target.id': ACCOUNT_CLIENT_ID })).toEqual([]);

    // The CLI goes through the same operations.
    cliFailed(await cli(['client', 'delete', ACCOUNT_CLIENT_ID]), builtIn);
    cliFailed(await cli(['client', 'rotate-secret', ACCOUNT_CLIENT_ID]), builtIn);
    cliFailed(await cli(['client', 'update', ACCOUNT_CLIENT_ID, '--name', 'Renamed']), builtIn);
  });

  test('a stored copy left from before is neither listed nor touched, and the account area keeps working', async () => {
    // As an older Gatehouse could have stored it: oidc-provider serves its static client instead.
    await gh.services.connection.collection('clients').insertOne({ _id: ACCOUNT_CLIENT_ID as never, metadata: { client_name: 'Stale copy', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' }, createdAt: new Date(0), updatedAt: new Date(0) });
    try {
      const listed = await api(gh, 'GET', '/clients?limit=200', as(admin));
      expect(listed.body.items.map((c: { client_id: string }) => c.client_id)).not.toContain(ACCOUNT_CLIENT_ID);
      expect((await api(gh, 'DELETE', `/clients/${ACCOUNT_CLIENT_ID}`, as(admin))).status).toBe(409);
      expect(await gh.services.connection.collection('clients').countDocuments({ _id: ACCOUNT_CLIENT_ID as never })).toBe(1);
      const served = await gh.services.provider.Client.find(ACCOUNT_CLIENT_ID);
      expect(served?.metadata()).toMatchObject({ client_name: 'Your Gatehouse account', token_endpoint_auth_method: 'none' });
      // The account area's sign-in is accepted by /auth: its redirect URI is the built-in client's, not the copy's.
      const login = await fetch(`${gh.url}/account/login`, { redirect: 'manual' });
      const authorize = new URL(login.headers.get('location')!, gh.url);
      expect(authorize.searchParams.get('client_id')).toBe(ACCOUNT_CLIENT_ID);
      const started = await fetch(authorize, { redirect: 'manual' });
      expect(started.status).toBe(303);
      expect(started.headers.get('location')).toMatch(/^\/interaction\//);
    } finally {
      await gh.services.connection.collection('clients').deleteOne({ _id: ACCOUNT_CLIENT_ID as never });
    }
  });
});

describe('mail for a disabled account', () => {
  test('an invitation or a password-reset request is refused with 409, and no mail is sent', async () => {
    const invited = await api(gh, 'POST', '/accounts', { ...as(admin), body: { userId: 'dormant', email: 'dormant@example.com', name: 'Dormant' } });
    await smtp.waitFor('dormant@example.com');
    const withPassword = await gh.services.accounts.create({ userId: 'away', name: 'Away', email: 'away@example.com', password: PASSWORD });
    for (const accountId of [invited.body.account.accountId, withPassword.accountId]) {
      expect((await api(gh, 'POST', `/accounts/${accountId}/disable`, as(admin))).status).toBe(200);
    }
    const mailsBefore = smtp.received.length;
    const auditBefore = (await auditEntries(gh)).length;

    const invitation = await api(gh, 'POST', `/accounts/${invited.body.account.accountId}/invitation`, as(admin));
    expect(invitation.status).toBe(409);
    expect(invitation.body).toMatchObject({ error: 'conflict', error_description: 'the account is disabled; enable it first' });
    expect(await gh.services.admin.invitations.pending(invited.body.account.accountId)).toBeNull();
    for (const who of [admin, helpdesk]) {
      const reset = await api(gh, 'POST', `/accounts/${withPassword.accountId}/password-reset`, as(who));
      expect(reset.status).toBe(409);
      expect(reset.body.error_description).toBe('the account is disabled; enable it first');
    }
    cliFailed(await cli(['account', 'resend-invitation', 'dormant']), /the account is disabled; enable it first/);
    cliFailed(await cli(['account', 'reset-password', 'away']), /the account is disabled; enable it first/);

    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(smtp.received.length).toBe(mailsBefore);
    expect((await auditEntries(gh)).length).toBe(auditBefore);

    // Enabled again, both work as before.
    await api(gh, 'POST', `/accounts/${withPassword.accountId}/enable`, as(admin));
    const reset = await api(gh, 'POST', `/accounts/${withPassword.accountId}/password-reset`, as(helpdesk));
    expect(reset).toMatchObject({ status: 202, body: { sent: true } });
    expect((await smtp.waitFor('away@example.com')).subject).toBe('Please reset your password');
  });
});

describe('bodies and queries of the wrong shape', () => {
  let accountId: string;
  let clientId: string;
  beforeAll(async () => {
    accountId = (await gh.services.accounts.create({ userId: 'shape', name: 'Shape', email: 'shape@example.com', password: PASSWORD })).accountId;
    clientId = (await gh.services.clients.create({ name: 'Shape client', redirectUris: [RP_REDIRECT] })).clientId;
  });

  test('PATCH {} is a 400 saying there is nothing to change', async () => {
    for (const target of [`/accounts/${accountId}`, `/clients/${clientId}`]) {
      for (const options of [{ body: {} }, {}]) {
        const res = await api(gh, 'PATCH', target, { ...as(admin), ...options });
        expect(res.status).toBe(400);
        expect(res.body.error_description).toMatch(/^invalid (account|client): nothing to change$/);
        expect(res.body.fields).toEqual({ '(input)': 'name at least one field to change' });
      }
    }
  });

  test('an empty body to a create is a 400 saying it is empty, labelled JSON or not; a create with only optional fields still takes it', async () => {
    const before = await gh.services.accounts.model.countDocuments();
    for (const target of ['/clients', '/accounts']) {
      for (const headers of [{ 'content-type': 'application/json' }, {}] as Array<Record<string, string>>) {
        const res = await api(gh, 'POST', target, { ...as(admin), rawBody: '', headers });
        expect({ target, headers, status: res.status, body: res.body }).toEqual({
          target, headers, status: 400,
          body: { error: 'invalid_request', error_description: 'request body is empty: expected a JSON object', fields: { '(body)': 'is empty: expected a JSON object' } },
        });
      }
    }
    expect(await gh.services.accounts.model.countDocuments()).toBe(before);
    // `{}` is not empty: it still gets the field-level answer.
    expect((await api(gh, 'POST', '/clients', { ...as(admin), body: {} })).body.error_description).toMatch(/client_name/);
    const token = await api(gh, 'POST', '/registration-tokens', { ...as(admin), rawBody: '', headers: { 'content-type': 'application/json' } });
    expect(token.status).toBe(201);
  });

  test.each([
    ['null', 'The request body must be a JSON object, not null.'],
    ['[]', 'The request body must be a JSON object, not an array.'],
    ['[{"name":"x"}]', 'The request body must be a JSON object, not an array.'],
    ['42', 'The request body must be a JSON object, not a number.'],
    ['"x"', 'The request body must be a JSON object, not a string.'],
    ['true', 'The request body must be a JSON object, not a boolean.'],
    ['{"__proto__":{"roles":["admin"]}}', 'The request body must not contain a "__proto__" key.'],
    ['{"name":"x","nested":{"a":[{"__proto__":{}}]}}', 'The request body must not contain a "__proto__" key.'],
    ['{"name":', 'The request body is not valid JSON (a JSON object is expected).'],
    ['nul', 'The request body is not valid JSON (a JSON object is expected).'],
  ])('body %s: a precise 400, nothing changed', async (rawBody, message) => {
    for (const [method, target] of [['PATCH', `/accounts/${accountId}`], ['POST', '/clients'], ['POST', `/accounts/${accountId}/disable`]] as const) {
      const res = await api(gh, method, target, { ...as(admin), rawBody, headers: { 'content-type': 'application/json' } });
      expect({ target, status: res.status, body: res.body }).toEqual({ target, status: 400, body: { error: 'invalid_request', error_description: message } });
    }
    expect((await api(gh, 'GET', `/accounts/${accountId}`, as(admin))).body).toMatchObject({ name: 'Shape', status: 'active', roles: [] });
  });

  test('?role= takes the known roles and older ones still held; anything else is a 400 listing them', async () => {
    for (const role of ['Admin', 'superuser', 'help desk', '', 'x'.repeat(65)]) {
      const res = await api(gh, 'GET', `/accounts?role=${encodeURIComponent(role)}`, as(admin));
      expect({ role, status: res.status }).toEqual({ role, status: 400 });
      expect(res.body.fields.role).toMatch(/^must be one of admin, helpdesk, auditor\b/);
    }
    expect((await api(gh, 'GET', '/accounts?role=admin&role=helpdesk', as(admin))).status).toBe(400);
    const helpdesks = await api(gh, 'GET', '/accounts?role=helpdesk', as(admin));
    expect(helpdesks.status).toBe(200);
    expect(helpdesks.body.items.map((a: { userId: string }) => a.userId)).toEqual(['desk']);
    // A role from before roles were checked can still be found (to clean it up).
    await gh.services.accounts.model.collection.updateOne({ accountId }, { $set: { roles: ['steward'] } });
    const legacy = await api(gh, 'GET', '/accounts?role=steward', as(admin));
    expect(legacy.status).toBe(200);
    expect(legacy.body.items.map((a: { userId: string }) => a.userId)).toEqual(['shape']);
    await gh.services.accounts.model.collection.updateOne({ accountId }, { $set: { roles: [] } });
  });

  test('audit: since later than until is a 400; equal or in order is fine', async () => {
    const late = await api(gh, 'GET', '/audit?since=2025-02-01T00:00:00Z&until=2025-01-01T00:00:00Z', as(admin));
    expect(late.status).toBe(400);
    expect(late.body).toMatchObject({ error_description: 'invalid query: since: must not be later than until', fields: { since: 'must not be later than until' } });
    // Offsets are compared as instants: 01:00+02:00 is before 00:00Z.
    expect((await api(gh, 'GET', `/audit?since=${encodeURIComponent('2025-01-01T01:00:00+02:00')}&until=2025-01-01T00:00:00Z`, as(admin))).status).toBe(200);
    expect((await api(gh, 'GET', '/audit?since=2025-01-01T00:00:00Z&until=2025-01-01T00:00:00Z', as(admin))).status).toBe(200);
    const now = new Date();
    const recent = await api(gh, 'GET', `/audit?since=${new Date(now.getTime() - 3_600_000).toISOString()}&until=${new Date(now.getTime() + 60_000).toISOString()}&limit=1`, as(admin));
    expect(recent.status).toBe(200);
    expect(recent.body.items).toHaveLength(1);
    cliFailed(await cli(['audit', 'list', '--since', '2025-02-01T00:00:00Z', '--until', '2025-01-01T00:00:00Z']), /since: must not be later than until/);
  });
});
