/**
 * Starts a real Gatehouse (HTTP on a free port, real provider, real database) for a test file.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config.js';
import { connectMongoose, type ConnectionTimeouts, type Database } from '../../src/db/connection.js';
import type { Clock } from '../../src/factors/types.js';
import { createLogger } from '../../src/logger.js';
import { startGatehouse, type RunningGatehouse } from '../../src/server.js';
import { uriForDatabase } from './test-database.js';

export function testDatabaseUri(name: string): string {
  const base = process.env.GATEHOUSE_TEST_DB_URI;
  if (!base) throw new Error('GATEHOUSE_TEST_DB_URI is not set: run the tests through jest (global setup starts the database)');
  return uriForDatabase(base, `${name}_${randomBytes(4).toString('hex')}`);
}

export async function openTestDatabase(uri: string, timeouts: Partial<ConnectionTimeouts> = {}): Promise<Database> {
  const connection = await connectMongoose(uri, { serverSelectionTimeoutMs: 10_000, operationTimeoutMs: 30_000, ...timeouts });
  return { connection, kind: 'external', close: () => connection.close() };
}

export interface TestGatehouseOptions {
  /** Reuse a database (e.g. to restart Gatehouse against the same data). */
  dbUri?: string;
  overrides?: Record<string, unknown>;
  env?: Record<string, string>;
  clock?: Clock;
}

export interface TestGatehouse extends RunningGatehouse {
  dbUri: string;
}

export async function startTestGatehouse(name: string, options: TestGatehouseOptions = {}): Promise<TestGatehouse> {
  const dbUri = options.dbUri ?? testDatabaseUri(name);
  const config: Config = loadConfig({
    env: { NODE_ENV: 'test', PORT: '0', GATEHOUSE_SECRETS_KEY: TEST_SECRETS_KEY, ...options.env },
    overrides: { dataDir: mkdtempSync(path.join(tmpdir(), 'gatehouse-test-')), ...options.overrides },
  });
  const database = await openTestDatabase(dbUri, { operationTimeoutMs: config.mongodb.operationTimeoutMs });
  const running = await startGatehouse(config, createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'), { database, ...(options.clock ? { clock: options.clock } : {}) });
  return {
    ...running,
    dbUri,
    close: async () => {
      await running.close();
      await database.close();
    },
  };
}

/** A fixed key for tests only, so a restarted test server can open what the first one sealed. */
export const TEST_SECRETS_KEY = Buffer.alloc(32, 7).toString('base64');
