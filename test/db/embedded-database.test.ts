/**
 * One embedded database per data folder, found through the folder's record whatever its port: a server
 * started with its own GATEHOUSE_EMBEDDED_DB_PORT, then the CLI (a child process, as operators run it)
 * without that port must work on the server's data, never on a database of its own. A record whose
 * process or database is gone is ignored; a CLI command's database is waited for, not forked.
 * These tests start the real embedded database (a mongod if mongodb-memory-server has one locally,
 * else the wire-protocol stand-in); no MONGODB_URI is involved.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import * as oidc from 'openid-client';
import { loadConfig, projectRoot } from '../../src/config.js';
import { recordPath, type EmbeddedRecord } from '../../src/db/embedded-record.js';
import { localUri, startEmbeddedDatabase } from '../../src/db/embedded.js';
import { createLogger } from '../../src/logger.js';
import { CLIENTS_COLLECTION as CLIENTS } from '../../src/oidc/adapter.js';
import { startGatehouse, type RunningGatehouse } from '../../src/server.js';
import { TEST_SECRETS_KEY } from '../support/gatehouse.js';
import { runCli, type CliResult } from '../support/cli-process.js';
import { discover } from '../support/rp.js';

// Where no mongod is cached, fail over to the stand-in at once instead of trying a download (as the bench does).
process.env.MONGOMS_RUNTIME_DOWNLOAD ??= 'false';

const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');

/** A port nothing listens on right now (the OS picked it and it was released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The id of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

/** Runs the CLI with the data folder and no MONGODB_URI; GATEHOUSE_EMBEDDED_DB_PORT only when `env` gives one. */
function cli(dataDir: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(args, { timeoutMs: 45_000, env: { MONGOMS_RUNTIME_DOWNLOAD: process.env.MONGOMS_RUNTIME_DOWNLOAD!, GATEHOUSE_DATA_DIR: dataDir, ...env } });
}

function readRecordFile(dataDir: string): EmbeddedRecord {
  return JSON.parse(readFileSync(recordPath(dataDir), 'utf8')) as EmbeddedRecord;
}

async function countDocuments(port: number, collection: string, filter: Record<string, unknown>): Promise<number> {
  const client = new mongoose.mongo.MongoClient(localUri(port), { serverSelectionTimeoutMS: 5000 });
  try {
    return await client.db().collection(collection).countDocuments(filter);
  } finally {
    await client.close();
  }
}

describe('the CLI beside a server started on another embedded-database port', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-embedded-'));
  let serverDbPort: number;
  let gatehouse: RunningGatehouse | undefined;
  let batch: { client_id: string; client_secret: string };

  beforeAll(async () => {
    serverDbPort = await freePort();
    const config = loadConfig({
      env: {
        NODE_ENV: 'test',
        PORT: '0',
        GATEHOUSE_SECRETS_KEY: TEST_SECRETS_KEY,
        GATEHOUSE_DEMO: 'false',
        GATEHOUSE_DATA_DIR: dataDir,
        GATEHOUSE_EMBEDDED_DB_PORT: String(serverDbPort),
      },
    });
    // No database given: the server opens the embedded one itself, as `npm start` does.
    gatehouse = await startGatehouse(config, log);
  });

  afterAll(async () => {
    await gatehouse?.close();
  });

  test('the running server records its embedded database: owner-only file, its pid and port', () => {
    expect(['mongod', 'standin']).toContain(gatehouse!.databaseKind);
    expect(statSync(recordPath(dataDir)).mode & 0o777).toBe(0o600);
    expect(readRecordFile(dataDir)).toMatchObject({ pid: process.pid, port: serverDbPort, role: 'server', state: 'ready', kind: gatehouse!.databaseKind });
  });

  test('a client the CLI creates without GATEHOUSE_EMBEDDED_DB_PORT is in the server database at once', async () => {
    const before = readFileSync(recordPath(dataDir), 'utf8');
    const created = await cli(dataDir, ['client', 'create', '--name', 'Embedded Batch', '--grant-type', 'client_credentials', '--json']);
    expect({ code: created.code, stderr: created.stderr }).toEqual({ code: 0, stderr: '' });
    batch = JSON.parse(created.stdout) as typeof batch;

    // The server itself authenticates the new client: it reads the same database the CLI wrote.
    const machine = await discover(gatehouse!.url, batch.client_id, batch.client_secret);
    const tokens = await oidc.clientCredentialsGrant(machine, {});
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(await countDocuments(serverDbPort, CLIENTS, { _id: batch.client_id })).toBe(1);
    // The CLI joined; it neither replaced nor removed the server's record.
    expect(readFileSync(recordPath(dataDir), 'utf8')).toBe(before);
  });

  test('a CLI given yet another port also uses the server database', async () => {
    const listed = await cli(dataDir, ['client', 'list', '--json'], { GATEHOUSE_EMBEDDED_DB_PORT: String(await freePort()) });
    expect({ code: listed.code, stderr: listed.stderr }).toEqual({ code: 0, stderr: '' });
    expect((JSON.parse(listed.stdout) as Array<{ client_id: string }>).map((c) => c.client_id)).toContain(batch.client_id);
  });

  test('a second start on the data folder with another port shares the running database instead of starting one', async () => {
    const second = await startEmbeddedDatabase({ port: await freePort(), dataDir, log, role: 'server' });
    expect(second).toMatchObject({ kind: 'shared-embedded', uri: localUri(serverDbPort) });
    await second.stop(); // sharing stops nothing
    expect(await countDocuments(serverDbPort, CLIENTS, { _id: batch.client_id })).toBe(1);
  });

  test('a clean shutdown removes the record; a stale record is then ignored and the data is still there', async () => {
    await gatehouse!.close();
    gatehouse = undefined;
    expect(existsSync(recordPath(dataDir))).toBe(false);

    // A server killed without shutting down: its process is gone, its port answers nothing.
    const stale: EmbeddedRecord = { pid: deadPid(), role: 'server', state: 'ready', port: await freePort(), instance: 'a'.repeat(32), kind: 'standin', startedAt: new Date().toISOString() };
    writeFileSync(recordPath(dataDir), JSON.stringify(stale), { mode: 0o600 });
    const listed = await cli(dataDir, ['client', 'list', '--json'], { GATEHOUSE_EMBEDDED_DB_PORT: String(await freePort()) });
    expect(listed.code).toBe(0);
    expect(listed.stderr).toMatch(/ignoring the record of an embedded database that no longer runs/);
    expect((JSON.parse(listed.stdout) as Array<{ client_id: string }>).map((c) => c.client_id)).toContain(batch.client_id);
    // The CLI removed the stale record and, on exit, its own.
    expect(existsSync(recordPath(dataDir))).toBe(false);
  });

  test('a record whose process lives but whose port answers nothing is stale too', async () => {
    // Another live process (this one's parent): a process with this very id is judged by its boot token (below).
    const stale: EmbeddedRecord = { pid: process.ppid, role: 'server', state: 'ready', port: await freePort(), instance: 'b'.repeat(32), startedAt: new Date().toISOString() };
    writeFileSync(recordPath(dataDir), JSON.stringify(stale), { mode: 0o600 });
    const port = await freePort();
    const own = await startEmbeddedDatabase({ port, dataDir, log, role: 'cli' });
    try {
      expect(['mongod', 'standin']).toContain(own.kind);
      expect(own.uri).toBe(localUri(port));
      expect(readRecordFile(dataDir)).toMatchObject({ pid: process.pid, port, role: 'cli', state: 'ready' });
      expect(await countDocuments(port, CLIENTS, { _id: batch.client_id })).toBe(1);
    } finally {
      await own.stop();
    }
    expect(existsSync(recordPath(dataDir))).toBe(false);
  });
});

describe('one embedded database per data folder', () => {
  test("a start waits for a CLI command's database to stop, then starts its own on the same data", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-embedded-'));
    const cliPort = await freePort();
    const held = await startEmbeddedDatabase({ port: cliPort, dataDir, log, role: 'cli' });
    const client = new mongoose.mongo.MongoClient(held.uri);
    await client.db().collection('notes').insertOne({ _id: 'written-by-the-cli' } as never);
    await client.close();

    const serverPort = await freePort();
    let settled = false;
    const waiting = startEmbeddedDatabase({ port: serverPort, dataDir, log, role: 'server' }).finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // Still waiting: sharing a database that is about to stop, or starting a second one, would lose data.
    expect(settled).toBe(false);
    expect(readRecordFile(dataDir)).toMatchObject({ role: 'cli', port: cliPort });

    await held.stop();
    const server = await waiting;
    try {
      expect(server.uri).toBe(localUri(serverPort));
      expect(readRecordFile(dataDir)).toMatchObject({ role: 'server', port: serverPort, state: 'ready' });
      expect(await countDocuments(serverPort, 'notes', { _id: 'written-by-the-cli' })).toBe(1);
    } finally {
      await server.stop();
    }
  });

  test('a port taken by something that is not this folder’s database is refused with a clear message, and nothing is recorded', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-embedded-'));
    const squatter = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as net.AddressInfo).port;
    try {
      await expect(startEmbeddedDatabase({ port, dataDir, log })).rejects.toThrow(
        new RegExp(`port ${port} \\(GATEHOUSE_EMBEDDED_DB_PORT\\) is already in use .* no Gatehouse process records an embedded database for`),
      );
      expect(existsSync(recordPath(dataDir))).toBe(false);
    } finally {
      squatter.close();
    }
  });

  test('a record an earlier process with this same id left while starting or stopping (a restarted container) is stale, not waited for', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-embedded-'));
    // Killed while stopping its database: the record stays, naming the pid a restarted container gives again.
    const left: EmbeddedRecord = { pid: process.pid, role: 'server', state: 'stopping', port: await freePort(), instance: 'c'.repeat(32), startedAt: new Date().toISOString(), boot: 'earlier' };
    writeFileSync(recordPath(dataDir), JSON.stringify(left), { mode: 0o600 });
    const port = await freePort();
    const own = await startEmbeddedDatabase({ port, dataDir, log, role: 'server', waitMs: 3000 });
    try {
      expect(own.uri).toBe(localUri(port));
      expect(readRecordFile(dataDir)).toMatchObject({ pid: process.pid, port, state: 'ready', boot: expect.any(String) });
      expect(readRecordFile(dataDir).boot).not.toBe('earlier');
    } finally {
      await own.stop();
    }
  });

  test('an unreadable record is refused, not guessed at', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-embedded-'));
    writeFileSync(recordPath(dataDir), 'not json', { mode: 0o600 });
    await expect(startEmbeddedDatabase({ port: await freePort(), dataDir, log })).rejects.toThrow(/is not a Gatehouse embedded-database record; if no Gatehouse process uses .* remove the file/);
    expect(readFileSync(recordPath(dataDir), 'utf8')).toBe('not json');
  });
});
