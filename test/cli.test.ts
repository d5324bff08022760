/**
 * The administrator CLI run as operators and scripts run it: a child process (`node --import tsx
 * scripts/cli.ts`, the quickest way to start it), on a database of this file's own, with stdin from
 * the test. Failures must exit 1 with one `error:` line and leave the database exactly as it was; what
 * the CLI creates must work with the provider.
 */
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { projectRoot } from '../src/config.js';
import { Lockout } from '../src/accounts/lockout.js';
import type { Database } from '../src/db/connection.js';
import { systemClock } from '../src/factors/types.js';
import { openTestDatabase, startTestGatehouse, testDatabaseUri, TEST_SECRETS_KEY, type TestGatehouse } from './support/gatehouse.js';
import { discover, exchange, RP_REDIRECT, signIn, startAuthorization } from './support/rp.js';
import { CLI, runCli, type CliResult } from './support/cli-process.js';

const dbUri = testDatabaseUri('cli');
const dataDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-cli-test-'));
const BOB_PASSWORD = 'correct horse battery';

const signingKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicJwksFile = path.join(dataDir, 'public-jwks.json');
const privateJwksFile = path.join(dataDir, 'private-jwks.json');
writeFileSync(publicJwksFile, JSON.stringify({ keys: [{ ...signingKeys.publicKey.export({ format: 'jwk' }), kid: 'k1' }] }));
writeFileSync(privateJwksFile, JSON.stringify({ keys: [{ ...signingKeys.privateKey.export({ format: 'jwk' }), kid: 'k1' }] }));

/** Runs the CLI against this file's database and data folder. */
function cli(args: string[], input = ''): Promise<CliResult> {
  return runCli(args, { input, env: { MONGODB_URI: dbUri, GATEHOUSE_DATA_DIR: dataDir } });
}

/** Runs the CLI for each argument list, a few at a time (the machine may have two cores). */
async function cliAll(runs: Array<{ args: string[]; input?: string }>, concurrency = 3): Promise<CliResult[]> {
  const results: CliResult[] = new Array(runs.length);
  let next = 0;
  const worker = async () => {
    while (next < runs.length) {
      const i = next++;
      results[i] = await cli(runs[i]!.args, runs[i]!.input);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, runs.length) }, worker));
  return results;
}

function expectSuccess(result: CliResult): void {
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
}

/** Exit 1, nothing on stdout, exactly one line on stderr: `error: …`. */
function expectFailure(result: CliResult, message: RegExp): void {
  expect(result.code).toBe(1);
  expect(result.stdout).toBe('');
  expect(result.stderr).toMatch(/^error: [^\n]+\n$/);
  expect(result.stderr).toMatch(message);
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

function parseJson<T = Record<string, unknown>>(result: CliResult): T {
  expectSuccess(result);
  expect(result.stdout.trim().split('\n')).toHaveLength(1);
  return JSON.parse(result.stdout) as T;
}

let db: Database;

/** Every collection's document count: equal before and after means nothing was written. */
async function documentCounts(): Promise<Record<string, number>> {
  const collections = await db.connection.db!.listCollections({}, { nameOnly: true }).toArray();
  const counts: Record<string, number> = {};
  for (const { name } of collections) counts[name] = await db.connection.db!.collection(name).countDocuments();
  return counts;
}

// Made in beforeAll, through the CLI, and used throughout.
let webHuman: CliResult;
let web: { clientId: string; clientSecret: string };
let spaJson: Record<string, unknown>;
let machineJson: Record<string, unknown>;
let bobJson: Record<string, unknown>;
let keyJwtJson: Record<string, unknown>;

beforeAll(async () => {
  db = await openTestDatabase(dbUri);
  // The first command on an empty database also creates the provider keys: run it alone.
  webHuman = await cli(['client', 'create', '--name', 'CLI Web App', '--redirect-uri', RP_REDIRECT, '--post-logout-redirect-uri', 'http://localhost:8976/bye']);
  expectSuccess(webHuman);
  web = {
    clientId: /^\s*client_id\s+(\S+)$/m.exec(webHuman.stdout)![1]!,
    clientSecret: /^\s*client_secret\s+(\S+)$/m.exec(webHuman.stdout)![1]!,
  };
  const [spa, machine, bob, keyJwt] = await cliAll([
    {
      args: ['client', 'create', '--name', 'CLI SPA', '--redirect-uri', 'https://spa.example.com/cb', '--redirect-uri', 'http://127.0.0.1:5173/cb',
        '--auth-method', 'client_secret_post', '--scope', 'openid profile', '--first-party', '--json'],
    },
    { args: ['client', 'create', '--name', 'CLI Nightly Batch', '--grant-type', 'client_credentials', '--json'] },
    {
      args: ['account', 'create', '--user-id', 'Bob', '--email', 'bob@example.com', '--name', 'Bob Builder', '--market', 'LAB', '--role', 'admin', '--role', 'auditor',
        '--phone', '+14155550123', '--password-stdin', '--json'],
      // One trailing CRLF is stripped: signing in with the bare password proves it.
      input: `${BOB_PASSWORD}\r\n`,
    },
    {
      args: ['client', 'create', '--name', 'CLI Key JWT', '--redirect-uri', 'https://rp.example.com/cb', '--auth-method', 'private_key_jwt', '--jwks-file', publicJwksFile, '--json'],
    },
  ]);
  spaJson = parseJson(spa!);
  machineJson = parseJson(machine!);
  bobJson = parseJson(bob!);
  keyJwtJson = parseJson(keyJwt!);
}, 60_000);

afterAll(async () => {
  await db?.close();
});

describe('client create', () => {
  test('prints client_id and client_secret for people, and says the secret is shown only once', () => {
    expect(webHuman.stdout).toContain('Created client "CLI Web App"');
    expect(web.clientId).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(web.clientSecret).toMatch(/^[A-Za-z0-9_-]{32,}$/);
    expect(webHuman.stdout).toMatch(/shown only this once.*never display it again/);
    expect(webHuman.stdout).toContain(RP_REDIRECT);
  });

  test('--json prints one JSON object with the registration and the secret', () => {
    expect(spaJson).toMatchObject({
      client_name: 'CLI SPA',
      redirect_uris: ['https://spa.example.com/cb', 'http://127.0.0.1:5173/cb'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_post',
      first_party: true,
      scope: 'openid profile',
    });
    expect(spaJson.client_id).toEqual(expect.any(String));
    expect(String(spaJson.client_secret)).toMatch(/^[A-Za-z0-9_-]{32,}$/);
  });

  test('a client_credentials-only client needs no redirect URI', () => {
    expect(machineJson).toMatchObject({ client_name: 'CLI Nightly Batch', grant_types: ['client_credentials'], redirect_uris: [], first_party: false });
    expect(machineJson.client_secret).toEqual(expect.any(String));
  });

  test('a private_key_jwt client gets its public keys from --jwks-file, and no secret', () => {
    expect(keyJwtJson).toMatchObject({ client_name: 'CLI Key JWT', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'EC', crv: 'P-256', kid: 'k1' }] } });
    expect(keyJwtJson).not.toHaveProperty('client_secret');
    expect(JSON.stringify(keyJwtJson.jwks)).not.toContain('"d"');
  });

  test('--help describes the command and its flags, and exits 0', async () => {
    const [client, account] = await cliAll([{ args: ['client', 'create', '--help'] }, { args: ['account', 'create', '--help'] }]);
    expectSuccess(client!);
    expect(client!.stdout).toMatch(/^Usage: .*client create \[options\]/);
    for (const flag of ['--name', '--redirect-uri', '--post-logout-redirect-uri', '--grant-type', '--auth-method', '--jwks-file', '--scope', '--first-party', '--json']) {
      expect(client!.stdout).toContain(flag);
    }
    expectSuccess(account!);
    for (const flag of ['--user-id', '--email', '--name', '--market', '--role', '--phone', '--password-stdin', '--json']) {
      expect(account!.stdout).toContain(flag);
    }
  });
});

describe('client list, show and delete', () => {
  test('list shows every client, as a table and as JSON', async () => {
    const [human, json] = await cliAll([{ args: ['client', 'list'] }, { args: ['client', 'list', '--json'] }]);
    expectSuccess(human!);
    expect(human!.stdout.split('\n')[0]).toMatch(/^CLIENT_ID\s+NAME\s+GRANT TYPES\s+AUTH METHOD\s+FIRST-PARTY\s+REDIRECT URIS$/);
    for (const name of ['CLI Web App', 'CLI SPA', 'CLI Nightly Batch']) expect(human!.stdout).toContain(name);
    const list = parseJson<Array<Record<string, unknown>>>(json!);
    expect(list.map((c) => c.client_id).sort()).toEqual([web.clientId, spaJson.client_id, machineJson.client_id, keyJwtJson.client_id].sort());
    expect(list.find((c) => c.client_id === spaJson.client_id)).toMatchObject({ client_name: 'CLI SPA', first_party: true, token_endpoint_auth_method: 'client_secret_post' });
    for (const secret of [web.clientSecret, spaJson.client_secret, machineJson.client_secret]) {
      expect(human!.stdout).not.toContain(secret);
      expect(json!.stdout).not.toContain(secret);
    }
  });

  test('show prints the registration and never the secret', async () => {
    const [human, json] = await cliAll([{ args: ['client', 'show', web.clientId] }, { args: ['client', 'show', web.clientId, '--json'] }]);
    expectSuccess(human!);
    expect(human!.stdout).toContain(web.clientId);
    expect(human!.stdout).toContain('CLI Web App');
    const shown = parseJson(json!);
    expect(shown).toMatchObject({ client_id: web.clientId, client_name: 'CLI Web App', redirect_uris: [RP_REDIRECT], post_logout_redirect_uris: ['http://localhost:8976/bye'] });
    expect(shown).not.toHaveProperty('client_secret');
    expect(human!.stdout).not.toContain(web.clientSecret);
    expect(json!.stdout).not.toContain(web.clientSecret);
  });

  test('delete removes the client: showing it then fails', async () => {
    const id = String(spaJson.client_id);
    expect(parseJson(await cli(['client', 'delete', id, '--json']))).toEqual({ client_id: id, deleted: true });
    expectFailure(await cli(['client', 'show', id]), new RegExp(`no client with id "${id}"`));
  });
});

describe('account create and list', () => {
  test('--password-stdin --json creates the account and prints it as one JSON object', () => {
    expect(bobJson).toMatchObject({ userId: 'Bob', email: 'bob@example.com', name: 'Bob Builder', market: 'LAB', roles: ['admin', 'auditor'], phone: '+14155550123' });
    expect(bobJson.accountId).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(JSON.stringify(bobJson)).not.toMatch(/password|argon2/i);
  });

  test('list shows the accounts, as a table and as JSON', async () => {
    const [human, json] = await cliAll([{ args: ['account', 'list'] }, { args: ['account', 'list', '--json'] }]);
    expectSuccess(human!);
    expect(human!.stdout).toMatch(/^ACCOUNT_ID \(SUB\)\s+USER ID\s+EMAIL\s+NAME\s+MARKET\s+ROLES\s+STATUS$/m);
    expect(human!.stdout).toContain(String(bobJson.accountId));
    expect(human!.stdout).toContain('admin, auditor');
    const list = parseJson<Array<Record<string, unknown>>>(json!);
    expect(list).toEqual([expect.objectContaining({ accountId: bobJson.accountId, userId: 'Bob', email: 'bob@example.com', status: 'active' })]);
    expect(json!.stdout).not.toMatch(/passwordHash|argon2/);
  });
});

describe('failures: exit 1, one clear line on stderr, nothing written', () => {
  const account = (userId: string, email: string) => ['account', 'create', '--user-id', userId, '--email', email, '--name', 'Someone'];
  const cases: Array<{ name: string; args: string[]; input?: string; message: RegExp }> = [
    { name: 'http redirect URI to a non-loopback host', args: ['client', 'create', '--name', 'Bad', '--redirect-uri', 'http://example.com/cb'], message: /redirect_uris: "http:\/\/example\.com\/cb" must use https/ },
    { name: 'redirect URI with a fragment', args: ['client', 'create', '--name', 'Bad', '--redirect-uri', 'https://example.com/cb#frag', '--json'], message: /must not contain a fragment/ },
    { name: 'private key material in --jwks-file', args: ['client', 'create', '--name', 'Bad', '--redirect-uri', 'https://example.com/cb', '--auth-method', 'private_key_jwt', '--jwks-file', privateJwksFile], message: /keys\[0\] contains private key material \(d\)/ },
    { name: 'unknown grant type', args: ['client', 'create', '--name', 'Bad', '--grant-type', 'implicit', '--redirect-uri', 'https://example.com/cb'], message: /--grant-type.*'implicit' is invalid/ },
    { name: 'missing --name', args: ['client', 'create', '--redirect-uri', 'https://example.com/cb'], message: /required option '--name <name>' not specified/ },
    { name: 'duplicate User ID in another letter case', args: [...account('bob', 'other@example.com'), '--password-stdin'], input: 'long enough password\n', message: /User ID already exists/ },
    { name: 'duplicate email', args: [...account('bobby', 'BOB@example.com'), '--password-stdin'], input: 'long enough password\n', message: /email already exists/ },
    { name: 'weak password', args: [...account('carol', 'carol@example.com'), '--password-stdin'], input: 'short\n', message: /Use at least 12 characters/ },
    { name: 'empty password (a lone newline)', args: [...account('carol', 'carol@example.com'), '--password-stdin'], input: '\n', message: /password must not be empty/ },
    { name: 'no terminal and no --password-stdin', args: account('carol', 'carol@example.com'), input: 'long enough password\n', message: /no terminal.*--password-stdin/ },
    { name: 'invalid User ID', args: [...account('carol@example.com', 'carol@example.com'), '--password-stdin'], input: 'long enough password', message: /userId: may contain letters/ },
    // A market the policy file does not name would fall back to the default policy unseen; roles are a closed list.
    { name: 'unknown market', args: [...account('carol', 'carol@example.com'), '--market', 'USA', '--password-stdin'], input: 'long enough password\n', message: /market: "USA" is not a market of the sign-in policy \(config\/policies\.json\): use one of CH, DE, LAB, US, default$/m },
    { name: 'unknown role', args: [...account('carol', 'carol@example.com'), '--role', 'admin', '--role', 'root', '--password-stdin'], input: 'long enough password\n', message: /roles\.1: "root" is not a known role: use admin, helpdesk, auditor/ },
    { name: 'invite into an unknown market', args: ['account', 'invite', '--user-id', 'dana', '--email', 'dana@example.com', '--name', 'Dana', '--market', 'XX'], message: /market: "XX" is not a market/ },
    { name: 'update to an unknown market', args: ['account', 'update', 'Bob', '--market', 'USA'], message: /market: "USA" is not a market.*use one of CH, DE, LAB, US, default/ },
    { name: 'update adding an unknown role', args: ['account', 'update', 'Bob', '--add-role', 'root'], message: /roles\.2: "root" is not a known role/ },
    { name: 'unknown command', args: ['client', 'frobnicate'], message: /unknown command 'frobnicate'/ },
    { name: 'unknown flag', args: ['account', 'list', '--verbose'], message: /unknown option '--verbose'/ },
  ];
  let results: Map<string, CliResult>;
  let before: Record<string, number>;
  let after: Record<string, number>;

  beforeAll(async () => {
    before = await documentCounts();
    const outcomes = await cliAll(cases.map(({ args, input }) => ({ args, ...(input !== undefined ? { input } : {}) })));
    results = new Map(cases.map((c, i) => [c.name, outcomes[i]!]));
    after = await documentCounts();
  }, 60_000);

  test.each(cases)('$name', ({ name, message }) => {
    expectFailure(results.get(name)!, message);
  });

  test('no failed command changed the database', () => {
    expect(before.accounts).toBe(1);
    expect(before.clients).toBe(3);
    expect(after).toEqual(before);
  });
});

describe('market, roles and status', () => {
  let uma: Record<string, unknown>;

  beforeAll(async () => {
    uma = parseJson(await cli(['account', 'create', '--user-id', 'uma', '--email', 'uma@example.com', '--name', 'Uma', '--market', 'us', '--role', 'helpdesk', '--password-stdin', '--json'], `${BOB_PASSWORD}\n`));
  }, 30_000);

  test('a market in lower case is stored as the policy file names it', () => {
    expect(uma).toMatchObject({ market: 'US', roles: ['helpdesk'], status: 'active', lockedUntil: null });
  });

  test('account list says "locked" for an account locked by wrong passwords, as account show does', async () => {
    // Two wrong passwords through the lockout service, with a threshold of two.
    const lockout = new Lockout(db.connection, systemClock, 'cli-test-key');
    const policy = { threshold: 2, durationsMinutes: [30] };
    for (let i = 0; i < 2; i++) {
      const slot = await lockout.reserve(lockout.keyForAccount(String(uma.accountId)), policy);
      if (slot.ok) await lockout.failed(slot, policy);
    }
    const [human, json, shown] = await cliAll([{ args: ['account', 'list'] }, { args: ['account', 'list', '--json'] }, { args: ['account', 'show', 'uma', '--json'] }]);
    const show = parseJson(shown!);
    expect(show).toMatchObject({ status: 'locked', lockedUntil: expect.any(String) });
    const list = parseJson<Array<Record<string, unknown>>>(json!);
    expect(list.find((a) => a.userId === 'uma')).toMatchObject({ status: 'locked', lockedUntil: show.lockedUntil });
    expect(list.find((a) => a.userId === 'Bob')).toMatchObject({ status: 'active', lockedUntil: null });
    expectSuccess(human!);
    const row = (id: unknown) => human!.stdout.split('\n').find((line) => line.startsWith(String(id)));
    expect(row(uma.accountId)).toMatch(/\slocked$/);
    expect(row(bobJson.accountId)).toMatch(/\sactive$/);
  });
});

const python = ['/usr/bin/python3', 'python3'].find((candidate) => spawnSync(candidate, ['-c', 'import pty'], { stdio: 'ignore' }).status === 0);

// Drives the CLI on a pseudo-terminal: answers both password prompts, prints everything the terminal showed.
const PTY_DRIVER = `
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvpe(sys.argv[1], sys.argv[1:], os.environ)
seen = b''
def wait_for(marker, timeout=30):
    global seen
    end = time.time() + timeout
    while time.time() < end:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen += chunk
            if marker and marker in seen:
                return
wait_for(b'Password: ')
os.write(fd, os.environ['PW'].encode() + b'\\r')
wait_for(b'Repeat the password: ')
os.write(fd, os.environ['PW'].encode() + b'\\r')
wait_for(None)
status = os.waitpid(pid, 0)[1]
sys.stdout.write(seen.decode('utf-8', 'replace'))
sys.exit(os.waitstatus_to_exitcode(status))
`;

(python ? test : test.skip)('on a terminal, the password is asked twice with echo off', async () => {
  const password = 'typed on a terminal';
  const result = spawnSync(python!, ['-c', PTY_DRIVER, process.execPath, '--import', 'tsx', CLI, 'account', 'create', '--user-id', 'terry', '--email', 'terry@example.com', '--name', 'Terry', '--json'], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test', MONGODB_URI: dbUri, GATEHOUSE_SECRETS_KEY: TEST_SECRETS_KEY, GATEHOUSE_DATA_DIR: dataDir, PW: password },
    encoding: 'utf8',
    timeout: 40_000,
  });
  expect(result.status).toBe(0);
  expect(result.stdout).toContain('Password: ');
  expect(result.stdout).toContain('Repeat the password: ');
  expect(result.stdout).not.toContain(password);
  expect(result.stdout).toMatch(/\{"accountId":"[^"]+","userId":"terry"/);
});

describe('what the CLI creates works with the provider', () => {
  let gh: TestGatehouse;

  beforeAll(async () => {
    gh = await startTestGatehouse('cli', { dbUri });
  });

  afterAll(async () => {
    await gh?.close();
  });

  test('the client_credentials client gets an access token with its printed id and secret', async () => {
    const machine = await discover(gh.url, String(machineJson.client_id), String(machineJson.client_secret));
    const tokens = await oidc.clientCredentialsGrant(machine, {});
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(await oidc.tokenIntrospection(machine, tokens.access_token)).toMatchObject({ active: true, client_id: machineJson.client_id });
  });

  test('the web client signs in the account created with --password-stdin (trailing CRLF stripped)', async () => {
    const rp = await discover(gh.url, web.clientId, web.clientSecret);
    const attempt = await startAuthorization(rp);
    const callback = await signIn(attempt, 'bob', BOB_PASSWORD);
    const tokens = await exchange(rp, attempt, callback.url);
    expect(tokens.claims()!.sub).toBe(bobJson.accountId);
  });

  test('client secrets are stored sealed, never in plaintext', async () => {
    const docs = await db.connection.db!.collection('clients').find({}).toArray();
    expect(docs.length).toBeGreaterThanOrEqual(2);
    const raw = JSON.stringify(docs);
    expect(raw).not.toContain(web.clientSecret);
    expect(raw).not.toContain(String(machineJson.client_secret));
    expect(docs.find((d) => d._id === (web.clientId as unknown))?.secretSealed).toEqual(expect.any(String));
  });
});
