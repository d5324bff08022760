/**
 * Shared set-up for the admin API tests: a real Gatehouse (real database, real provider) whose log
 * lines are kept for inspection, people with each role who sign in through a first-party admin
 * console with openid-client, machine clients that use client_credentials, and an API caller that
 * checks every response against the OpenAPI document.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startGatehouse } from '../../src/server.js';
import { openTestDatabase, testDatabaseUri, TEST_SECRETS_KEY, type TestGatehouse } from '../support/gatehouse.js';
import { discover, exchange, RP_REDIRECT, signIn, startAuthorization } from '../support/rp.js';
import { assertConforms, templateFor } from './openapi.js';

export const PASSWORD = 'correct horse battery';
export const ALL_ADMIN_SCOPES = 'admin admin:helpdesk admin:auditor';

export interface AdminGatehouse extends TestGatehouse {
  /** Every log line Gatehouse wrote (JSON text), from start-up on. */
  logs: string[];
}

export async function startAdminGatehouse(name: string, options: { env?: Record<string, string>; overrides?: Record<string, unknown> } = {}): Promise<AdminGatehouse> {
  const dbUri = testDatabaseUri(name);
  const config = loadConfig({
    env: { NODE_ENV: 'test', PORT: '0', GATEHOUSE_SECRETS_KEY: TEST_SECRETS_KEY, ...options.env },
    // Cheaper argon2 (still within the allowed range): these tests sign in a few people.
    overrides: { dataDir: mkdtempSync(path.join(tmpdir(), 'gatehouse-admin-test-')), password: { argon2: { memoryCost: 8192, timeCost: 1, parallelism: 1 } }, ...options.overrides },
  });
  const logs: string[] = [];
  const log = createLogger('debug', { write: (line: string) => void logs.push(line) });
  const database = await openTestDatabase(dbUri);
  const running = await startGatehouse(config, log, { database });
  return {
    ...running,
    dbUri,
    logs,
    close: async () => {
      await running.close();
      await database.close();
    },
  };
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface ApiOptions {
  token?: string;
  /** JSON-encoded and sent as application/json. */
  body?: unknown;
  /** Sent as is (with `headers`), for malformed requests. */
  rawBody?: string;
  headers?: Record<string, string>;
  /** Off for paths the API does not document (they must still answer in JSON). */
  conform?: boolean;
}

/** Calls the admin API; every JSON response is checked against the OpenAPI document. */
export async function api<T = any>(gh: { url: string }, method: string, apiPath: string, options: ApiOptions = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const url = `${gh.url}/admin/api${apiPath}`;
  const response = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await response.text();
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  const json = JSON.parse(text) as T;
  const documented = templateFor(new URL(url).pathname.replace(/^\/admin\/api/, '')) !== undefined;
  if (options.conform !== false && documented && response.status !== 405) assertConforms(method, url, response.status, json);
  return { status: response.status, headers: response.headers, body: json };
}

export interface Person {
  accountId: string;
  userId: string;
  token: string;
}

export interface AdminConsole {
  clientId: string;
  clientSecret: string;
  rp: oidc.Configuration;
}

/** A first-party "admin console" client registered with every admin scope. */
export async function createAdminConsole(gh: TestGatehouse): Promise<AdminConsole> {
  const created = await gh.services.clients.create({
    name: 'Admin console',
    redirectUris: [RP_REDIRECT],
    grantTypes: ['authorization_code'],
    firstParty: true,
    scope: `openid profile ${ALL_ADMIN_SCOPES}`,
  });
  return { clientId: created.clientId, clientSecret: created.clientSecret!, rp: await discover(gh.url, created.clientId, created.clientSecret) };
}

/** Signs a person in to the console with openid-client, asking for `scope`; returns the access token. */
export async function signInForToken(rp: oidc.Configuration, login: string, scope = `openid ${ALL_ADMIN_SCOPES}`): Promise<{ accessToken: string; scope: string }> {
  const attempt = await startAuthorization(rp, { scope });
  const callback = await signIn(attempt, login, PASSWORD);
  const tokens = await exchange(rp, attempt, callback.url);
  return { accessToken: tokens.access_token, scope: tokens.scope ?? '' };
}

export async function createPerson(gh: TestGatehouse, rp: oidc.Configuration, userId: string, roles: string[], extra: { email?: string } = {}): Promise<Person> {
  const account = await gh.services.accounts.create({ userId, name: `${userId} Example`, email: extra.email ?? `${userId}@example.com`, roles, password: PASSWORD });
  const { accessToken } = await signInForToken(rp, userId);
  return { accountId: account.accountId, userId, token: accessToken };
}

/** A client_credentials client registered with `scope`, and a token for `requested` scopes. */
export async function createMachine(gh: TestGatehouse, name: string, scope: string | undefined, requested = scope): Promise<{ clientId: string; clientSecret: string; token: string; rp: oidc.Configuration }> {
  const created = await gh.services.clients.create({ name, grantTypes: ['client_credentials'], ...(scope ? { scope } : {}) });
  const rp = await discover(gh.url, created.clientId, created.clientSecret);
  const tokens = await oidc.clientCredentialsGrant(rp, requested ? { scope: requested } : {});
  return { clientId: created.clientId, clientSecret: created.clientSecret!, token: tokens.access_token, rp };
}

/** The audit entries written so far, newest first, straight from the database. */
export async function auditEntries(gh: TestGatehouse, filter: Record<string, unknown> = {}): Promise<Array<Record<string, any>>> {
  return gh.services.audit.model.collection.find(filter).sort({ at: -1, _id: -1 }).toArray();
}

/** Audit writes from provider events are not awaited by the request: wait until one shows up. */
export async function waitForAudit(gh: TestGatehouse, filter: Record<string, unknown>, timeoutMs = 5000): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [found] = await auditEntries(gh, filter);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no audit entry matching ${JSON.stringify(filter)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
