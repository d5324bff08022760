/**
 * The administrator CLI's admin commands: the same operations as the admin API, on the database
 * directly (the bootstrap path), tables for people, --json for scripts, `error: …` and exit 1 on any
 * failure. Commands run in-process through the CLI's own entry point (fast); one runs as a child
 * process the way an operator runs it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { projectRoot } from '../../src/config.js';
import { TEST_SECRETS_KEY } from '../support/gatehouse.js';
import { discover, RP_REDIRECT } from '../support/rp.js';
import { TestSmtpServer } from '../support/smtp.js';
import { inProcessCli, type CliResult, type CliRunner } from './in-process-cli.js';
import { api, auditEntries, createAdminConsole, PASSWORD, signInForToken, startAdminGatehouse, type AdminConsole, type AdminGatehouse } from './support.js';

let smtp: TestSmtpServer;
let gh: AdminGatehouse;
let console_: AdminConsole;
let env: Record<string, string>;
let cli: CliRunner;

function json<T = any>(result: CliResult): T {
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  return JSON.parse(result.stdout) as T;
}

function failed(result: CliResult, message: RegExp): void {
  expect(result.code).toBe(1);
  expect(result.stdout).toBe('');
  expect(result.stderr).toMatch(/^error: [^\n]+\n$/);
  expect(result.stderr).toMatch(message);
}

beforeAll(async () => {
  smtp = await new TestSmtpServer().start();
  gh = await startAdminGatehouse('admin_cli', { env: { SMTP_URL: smtp.url } });
  console_ = await createAdminConsole(gh);
  // The CLI shares the server's configuration, issuer included (it is in the invitation link).
  env = { NODE_ENV: 'test', ISSUER: gh.url, MONGODB_URI: gh.dbUri, GATEHOUSE_SECRETS_KEY: TEST_SECRETS_KEY, GATEHOUSE_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'gatehouse-admin-cli-')), SMTP_URL: smtp.url };
  cli = await inProcessCli(env);
});

afterAll(async () => {
  await gh?.close();
  await smtp?.stop();
});

test('bootstrap: the first administrator is created with the CLI, then uses the admin API', async () => {
  const created = json(await cli(['account', 'create', '--user-id', 'first-admin', '--email', 'first@example.com', '--name', 'First Admin', '--role', 'admin', '--password-stdin', '--json'], `${PASSWORD}\n`));
  expect(created).toMatchObject({ userId: 'first-admin', roles: ['admin'] });
  const { accessToken } = await signInForToken(console_.rp, 'first-admin');
  const me = await api(gh, 'GET', '/me', { token: accessToken });
  expect(me.body).toMatchObject({ actor: { id: created.accountId }, roles: ['admin'], scopes: ['admin', 'admin:helpdesk', 'admin:auditor'] });
  const [entry] = await auditEntries(gh, { type: 'admin.account.created', 'target.id': created.accountId });
  expect(entry).toMatchObject({ actor: { kind: 'system', id: `cli:${userInfo().username}` }, userAgent: 'gatehouse-cli', requestId: expect.any(String) });
});

describe('accounts', () => {
  test('invite: an account without a password, and the activation mail', async () => {
    const invited = json(await cli(['account', 'invite', '--user-id', 'invitee', '--email', 'invitee@example.com', '--name', 'Invitee', '--role', 'helpdesk', '--json']));
    expect(invited).toMatchObject({ account: { userId: 'invitee', hasPassword: false, roles: ['helpdesk'] }, invitation: { sent: true } });
    const mail = await smtp.waitFor('invitee@example.com');
    expect(mail.text).toMatch(new RegExp(`${gh.url}/activate/[\\w-]{43}`));
    const shown = json(await cli(['account', 'show', 'INVITEE@example.com', '--json']));
    expect(shown).toMatchObject({ accountId: invited.account.accountId, pendingInvitation: { expiresAt: invited.invitation.expiresAt } });
  });

  test('search prints a table for people and JSON for scripts', async () => {
    const table = await cli(['account', 'search', 'invit']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ACCOUNT_ID \(SUB\)\s+USER ID\s+EMAIL\s+NAME\s+ROLES\s+STATUS$/);
    expect(table.stdout).toContain('invitee@example.com');
    const found = json<Array<{ userId: string }>>(await cli(['account', 'search', '--role', 'admin', '--json']));
    expect(found.map((a) => a.userId)).toEqual(['first-admin']);
  });

  test('update, disable, enable, unlock, reset the second factor and revoke sessions', async () => {
    const updated = json(await cli(['account', 'update', 'invitee', '--name', 'Invited Person', '--add-role', 'auditor', '--remove-role', 'helpdesk', '--json']));
    expect(updated.account).toMatchObject({ name: 'Invited Person', roles: ['auditor'] });
    expect(updated.changes.roles).toEqual({ before: ['helpdesk'], after: ['auditor'] });

    expect(json(await cli(['account', 'disable', 'invitee', '--json'])).account.status).toBe('disabled');
    failed(await cli(['account', 'disable', 'invitee']), /the account is disabled: only active or locked accounts can be disabled/);
    const enabled = await cli(['account', 'enable', 'invitee']);
    expect(enabled.stdout).toMatch(/^Enabled account "invitee" \(now active\)\.\n$/);
    await gh.services.accounts.model.collection.updateOne({ userIdLower: 'invitee' }, { $set: { status: 'locked', lockedUntil: new Date(Date.now() + 60_000) } });
    expect(json(await cli(['account', 'unlock', 'invitee', '--json'])).account).toMatchObject({ status: 'active', lockedUntil: null });

    expect(json(await cli(['account', 'reset-second-factor', 'invitee', '--json']))).toMatchObject({ credentialsRemoved: 0, hadSecondFactor: false });
    // An invited account has no password to reset: the answer points to its invitation, and nothing is mailed.
    const mailsBefore = smtp.received.length;
    failed(await cli(['account', 'reset-password', 'invitee']), /^error: the account has no password yet \(it was invited and has not activated\): resend its invitation instead .*account resend-invitation/);
    expect(smtp.received.slice(mailsBefore).filter((m) => m.to.includes('invitee@example.com'))).toEqual([]);
    expect(await auditEntries(gh, { type: 'admin.account.password_reset_requested', 'target.id': updated.account.accountId })).toEqual([]);
    expect(json(await cli(['account', 'reset-password', 'first-admin', '--json']))).toEqual({ sent: true });
    expect(json(await cli(['account', 'devices', 'invitee', '--json']))).toEqual({ items: [] });
    expect((await cli(['account', 'revoke-devices', 'invitee'])).stdout).toBe('Revoked 0 trusted device(s); their next sign-in asks for the second factor.\n');
    expect(json(await cli(['account', 'revoke-sessions', 'first-admin', '--json'])).revoked).toMatchObject({ sessions: 1, grants: 1 });
    const types = (await auditEntries(gh, { 'actor.kind': 'system' })).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['admin.account.updated', 'admin.account.disabled', 'admin.account.enabled', 'admin.account.unlocked', 'admin.account.second_factor_reset', 'admin.account.sessions_revoked', 'admin.account.password_reset_requested', 'admin.account.trusted_devices_revoked']));
  });

  test('unlock lifts a sign-in rate limit on an account that is not locked, audited with the CLI as actor', async () => {
    const account = await gh.services.accounts.create({ userId: 'throttled', name: 'Throttled', email: 'throttled@example.com', password: PASSWORD });
    const limits = gh.services.rateLimits;
    for (let i = 0; i <= limits.config.signin.identifier.points; i++) await limits.consume('signin', { ip: '198.51.100.7', identifier: 'Throttled' });
    const unlocked = await cli(['account', 'unlock', 'throttled']);
    expect(unlocked).toEqual({ code: 0, stderr: '', stdout: 'Unlocked account "throttled" (now active). Cleared the sign-in rate limit.\n' });
    expect(await limits.identifierLimited('signin', 'throttled')).toBe(false);
    const [reset] = await auditEntries(gh, { type: 'ratelimit.reset' });
    expect(reset).toMatchObject({ actor: { kind: 'system', id: `cli:${userInfo().username}` }, details: { bucket: 'signin', limitedBy: 'identifier' } });
    const [entry] = await auditEntries(gh, { type: 'admin.account.unlocked', 'target.id': account.accountId });
    expect(entry).toMatchObject({ actor: { kind: 'system', id: `cli:${userInfo().username}` }, details: { cleared: { lockout: false, secondFactorPause: false, signInThrottle: true } } });
    failed(await cli(['account', 'unlock', 'throttled']), /^error: the account is not locked, its second-factor verification is not paused, and its sign-in is not rate-limited\n$/);
  });

  test('failures: one clear line, exit 1', async () => {
    failed(await cli(['account', 'show', 'nobody-here']), /no account with id, User ID or email "nobody-here"/);
    failed(await cli(['account', 'update', 'invitee']), /nothing to change/);
    failed(await cli(['account', 'update', 'invitee', '--email', 'not-an-email']), /email: must be a valid email address/);
    failed(await cli(['account', 'revoke-devices', 'invitee', '--device', 'no-such-device']), /no trusted device "no-such-device"/);
    failed(await cli(['account', 'search', '--status', 'gone']), /--status.*'gone' is invalid/);
  });
});

describe('clients and registration tokens', () => {
  test('update and rotate-secret', async () => {
    const machine = await gh.services.clients.create({ name: 'CLI robot', grantTypes: ['client_credentials'] });
    const updated = json(await cli(['client', 'update', machine.clientId, '--name', 'Audit robot', '--scope', 'openid admin:auditor', '--json']));
    expect(updated.changes).toEqual({ client_name: { before: 'CLI robot', after: 'Audit robot' }, scope: { before: null, after: 'openid admin:auditor' } });
    const rotated = json(await cli(['client', 'rotate-secret', machine.clientId, '--json']));
    expect(rotated.client_secret).not.toBe(machine.clientSecret);
    const rp = await discover(gh.url, machine.clientId, rotated.client_secret);
    const token = await oidc.clientCredentialsGrant(rp, { scope: 'admin:auditor' });
    expect((await api(gh, 'GET', '/audit?limit=1', { token: token.access_token })).status).toBe(200);
    failed(await cli(['client', 'update', machine.clientId, '--redirect-uri', 'http://evil.example/cb']), /redirect_uris: .*must use https/);
    failed(await cli(['client', 'update', 'no-such-client', '--name', 'X']), /no client with id "no-such-client"/);
    failed(await cli(['client', 'update', machine.clientId, '--scope', 'x', '--remove-scope']), /--scope or --remove-scope/);
  });

  test('registration-token create/list/revoke, and the token works once at the registration endpoint', async () => {
    const minted = json(await cli(['registration-token', 'create', '--expires-in', '1h', '--max-uses', '1', '--description', 'partner', '--json']));
    expect(minted).toMatchObject({ maxUses: 1, uses: 0, description: 'partner', token: expect.any(String) });
    expect(Date.parse(minted.expiresAt) - Date.now()).toBeGreaterThan(3500_000);
    const register = () => fetch(`${gh.url}/reg`, { method: 'POST', headers: { authorization: `Bearer ${minted.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [RP_REDIRECT] }) });
    expect((await register()).status).toBe(201);
    expect((await register()).status).toBe(401);

    const list = await cli(['registration-token', 'list']);
    expect(list.stdout).toMatch(/^ID\s+DESCRIPTION\s+USES\s+MAX USES\s+EXPIRES\s+CREATED$/m);
    expect(list.stdout).toContain(minted.id);
    expect(list.stdout).not.toContain(minted.token);
    expect(json(await cli(['registration-token', 'revoke', minted.id, '--json']))).toMatchObject({ id: minted.id, revoked: true });
    failed(await cli(['registration-token', 'revoke', minted.id]), /no registration token/);
    failed(await cli(['registration-token', 'create', '--expires-in', '5']), /--expires-in.*between 1 minute and 366 days/);
  });
});

describe('audit', () => {
  test('list with filters, a cursor for the next page, and JSON', async () => {
    const page = json(await cli(['audit', 'list', '--type', 'admin.account.*', '--limit', '2', '--json']));
    expect(page.items).toHaveLength(2);
    expect(page.nextCursor).toEqual(expect.any(String));
    const next = json(await cli(['audit', 'list', '--type', 'admin.account.*', '--limit', '2', '--cursor', page.nextCursor, '--json']));
    expect(next.items.map((e: { id: string }) => e.id)).not.toContain(page.items[0].id);
    const human = await cli(['audit', 'list', '--actor', `cli:${userInfo().username}`, '--limit', '3']);
    // The ACTOR column's own text is accepted as the filter, and finds the same entries.
    const shownActor = /^\S+\s+\S+\s+\S+\s+(\S+)/.exec(human.stdout.split('\n')[2]!)![1]!;
    expect(shownActor).toBe(`system:cli:${userInfo().username}`);
    const byShown = await cli(['audit', 'list', '--actor', shownActor, '--limit', '3']);
    expect(byShown).toEqual(human);
    expect(human.stdout.split('\n')[0]).toMatch(/^AT\s+TYPE\s+OUTCOME\s+ACTOR\s+TARGET\s+IP\s+REQUEST ID$/);
    expect(human.stdout).toMatch(/More: --cursor \S+/);
    failed(await cli(['audit', 'list', '--cursor', 'garbage']), /cursor: is not a cursor from this list/);
    failed(await cli(['audit', 'list', '--since', 'last week']), /ISO 8601/);
  });
});

test('as an operator runs it: a child process, exit code and output', async () => {
  const result = await new Promise<CliResult>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'scripts', 'cli.ts'), 'registration-token', 'list', '--json'], {
      cwd: projectRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
  expect(json(result)).toEqual([]);
}, 30_000);
