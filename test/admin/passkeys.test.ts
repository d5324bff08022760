/**
 * An account's passkeys through the admin API and the CLI: listed without public keys, revoked one
 * by one or all at once (each revoke audited, the owner alerted), the helpdesk kept off privileged
 * accounts, and a revoked passkey no longer accepted at sign-in.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TEST_SECRETS_KEY } from '../support/gatehouse.js';
import { SoftwareAuthenticator } from '../factors/webauthn-authenticator.js';
import { registerSoftwarePasskey } from '../support/passkeys.js';
import { TestSmtpServer } from '../support/smtp.js';
import { inProcessCli, type CliRunner } from './in-process-cli.js';
import { api, auditEntries, createAdminConsole, createPerson, PASSWORD, startAdminGatehouse, type AdminGatehouse, type Person } from './support.js';

let smtp: TestSmtpServer;
let gh: AdminGatehouse;
let admin: Person;
let helpdesk: Person;
let cli: CliRunner;

beforeAll(async () => {
  smtp = await new TestSmtpServer().start();
  gh = await startAdminGatehouse('admin_passkeys', { env: { SMTP_URL: smtp.url } });
  const console_ = await createAdminConsole(gh);
  [admin, helpdesk] = await Promise.all([createPerson(gh, console_.rp, 'root', ['admin']), createPerson(gh, console_.rp, 'desk', ['helpdesk'])]);
  cli = await inProcessCli({ NODE_ENV: 'test', ISSUER: gh.url, MONGODB_URI: gh.dbUri, GATEHOUSE_SECRETS_KEY: TEST_SECRETS_KEY, GATEHOUSE_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'gatehouse-passkeys-cli-')), SMTP_URL: smtp.url });
});

afterAll(async () => {
  await gh?.close();
  await smtp?.stop();
});

let serial = 0;
async function accountWithPasskeys(count: number, roles: string[] = []) {
  serial += 1;
  const account = await gh.services.accounts.create({ userId: `owner${serial}`, email: `owner${serial}@example.com`, name: `Owner ${serial}`, password: PASSWORD, roles });
  const ids: string[] = [];
  const authenticators: SoftwareAuthenticator[] = [];
  for (let i = 0; i < count; i++) {
    const registered = await registerSoftwarePasskey(gh, account.accountId, undefined, `Key ${i + 1}`);
    ids.push(registered.credentialId);
    authenticators.push(registered.authenticator);
  }
  return { accountId: account.accountId, ids, authenticators, email: `owner${serial}@example.com` };
}


test('the API lists an account\'s passkeys (never their public keys)', async () => {
  const owner = await accountWithPasskeys(2);
  const res = await api(gh, 'GET', `/accounts/${owner.accountId}/passkeys`, { token: helpdesk.token });
  expect(res.status).toBe(200);
  expect(res.body.items).toEqual([
    expect.objectContaining({ credentialId: owner.ids[0], name: 'Key 1', deviceType: 'singleDevice', backedUp: false, lastUsedAt: null }),
    expect.objectContaining({ credentialId: owner.ids[1], name: 'Key 2' }),
  ]);
  expect(JSON.stringify(res.body)).not.toMatch(/publicKey|counter/);
  expect((await api(gh, 'GET', '/accounts/nobody-here/passkeys', { token: admin.token })).status).toBe(404);
});

test('revoking one passkey: audited, the owner alerted, and it can no longer sign in', async () => {
  const owner = await accountWithPasskeys(2);
  const res = await api(gh, 'DELETE', `/accounts/${owner.accountId}/passkeys/${owner.ids[0]}`, { token: helpdesk.token });
  expect(res).toMatchObject({ status: 200, body: { revoked: 1 } });
  expect((await gh.services.factors.webauthn.list(owner.accountId)).map((p) => p.credentialId)).toEqual([owner.ids[1]]);
  const [entry] = await auditEntries(gh, { type: 'admin.account.passkey_revoked', 'target.id': owner.accountId });
  expect(entry).toMatchObject({ outcome: 'success', actor: { kind: 'account', id: helpdesk.accountId }, details: { credentialId: owner.ids[0] } });
  const mail = await smtp.waitFor(owner.email);
  expect(mail.text).toMatch(/passkey or security key/);
  expect((await api(gh, 'DELETE', `/accounts/${owner.accountId}/passkeys/${owner.ids[0]}`, { token: helpdesk.token })).status).toBe(404);

  // The revoked credential is unknown at sign-in now.
  const options = await gh.services.factors.webauthn.authenticationOptions({ interactionId: 'after-revoke' });
  if (!options.ok) throw new Error('no options');
  const assertion = owner.authenticators[0]!.get(options.options, new URL(gh.url).origin);
  expect(await gh.services.factors.webauthn.verifyAuthentication(assertion, { interactionId: 'after-revoke' })).toMatchObject({ ok: false, reason: 'unknown_credential' });
});

test('revoking all passkeys, and the helpdesk kept off administrators\' accounts', async () => {
  const owner = await accountWithPasskeys(2);
  expect(await api(gh, 'DELETE', `/accounts/${owner.accountId}/passkeys`, { token: admin.token })).toMatchObject({ status: 200, body: { revoked: 2 } });
  expect(await gh.services.factors.webauthn.list(owner.accountId)).toEqual([]);
  expect((await auditEntries(gh, { type: 'admin.account.passkeys_revoked', 'target.id': owner.accountId }))[0]).toMatchObject({ details: { revoked: 2 } });

  const privileged = await accountWithPasskeys(1, ['auditor']);
  expect((await api(gh, 'DELETE', `/accounts/${privileged.accountId}/passkeys`, { token: helpdesk.token })).status).toBe(403);
  expect(await gh.services.factors.webauthn.list(privileged.accountId)).toHaveLength(1);
});

test('the CLI lists and revokes passkeys, by User ID', async () => {
  const owner = await accountWithPasskeys(2);
  const userId = `owner${serial}`;
  const listed = await cli(['account', 'passkeys', userId, '--json']);
  expect(listed.stderr).toBe('');
  expect(JSON.parse(listed.stdout).items.map((p: { credentialId: string }) => p.credentialId)).toEqual(owner.ids);
  const table = await cli(['account', 'passkeys', userId]);
  expect(table.stdout).toContain('Key 1');

  const one = await cli(['account', 'revoke-passkeys', userId, '--credential', owner.ids[0]!, '--json']);
  expect(JSON.parse(one.stdout)).toEqual({ revoked: 1 });
  const rest = await cli(['account', 'revoke-passkeys', userId]);
  expect(rest.stdout).toContain('Revoked 1 passkey(s)');
  expect(await gh.services.factors.webauthn.list(owner.accountId)).toEqual([]);
  expect((await auditEntries(gh, { type: 'admin.account.passkey_revoked', 'target.id': owner.accountId }))[0]).toMatchObject({ actor: { kind: 'system' } });

  const missing = await cli(['account', 'revoke-passkeys', userId, '--credential', 'not-a-passkey']);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toMatch(/^error: .*passkey/);
});
