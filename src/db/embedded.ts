/**
 * The database `npm start` and the CLI use when no MONGODB_URI is configured. One embedded database
 * per data folder, and the folder's record (embedded-record.ts) says which process runs it and on which
 * port. In order:
 *  1. a live record: a server's database is shared, whatever port it listens on (the CLI beside
 *     `npm start`); one that is starting, stopping, or belongs to a CLI command is waited for;
 *  2. otherwise this process claims the record and starts, on the configured port, a real mongod through
 *     mongodb-memory-server with its files in the data folder,
 *  3. or the wire-protocol stand-in, with a snapshot file in the data folder.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mongoose from 'mongoose';
import type { Logger } from '../logger.js';
import {
  claimRecord,
  EmbeddedDatabaseError,
  ownerAlive as recordOwnerAlive,
  PROCESS_BOOT,
  readRecord,
  recordPath,
  removeOwnRecord,
  removeStaleRecord,
  updateOwnRecord,
  type EmbeddedRecord,
  type EmbeddedRole,
} from './embedded-record.js';
import { startStandin } from './standin.js';

export { EmbeddedDatabaseError, type EmbeddedRole } from './embedded-record.js';

export type DatabaseKind = 'external' | 'shared-embedded' | 'mongod' | 'standin';

export interface EmbeddedDatabase {
  uri: string;
  kind: DatabaseKind;
  stop(): Promise<void>;
}

export const DATABASE_NAME = 'gatehouse';

export function localUri(port: number, dbName = DATABASE_NAME): string {
  return `mongodb://127.0.0.1:${port}/${dbName}?directConnection=true&retryWrites=false`;
}

/** Starts mongod through mongodb-memory-server; fails fast where no binary is cached and none can be downloaded. */
export async function startMongod(options: { port?: number; dbPath?: string }): Promise<{ port: number; stop(): Promise<void> }> {
  const { MongoMemoryServer } = await import('mongodb-memory-server-core');
  // mongodb-memory-server prints a failed download to the console itself; our caller reports it.
  const warn = console.warn;
  console.warn = () => undefined;
  const server = await Promise.race([
    MongoMemoryServer.create({
      instance: { ip: '127.0.0.1', ...(options.port ? { port: options.port } : {}), ...(options.dbPath ? { dbPath: options.dbPath, storageEngine: 'wiredTiger' as const } : {}) },
    }),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('mongod did not start within 60 s')), 60_000).unref()),
  ]).finally(() => {
    console.warn = warn;
  });
  return { port: Number(new URL(server.getUri()).port), stop: async () => void (await server.stop({ doCleanup: false })) };
}

/** Where the database proves which start it belongs to: `local` is never replicated and never holds Gatehouse data. */
const MARKER_DB = 'local';
const MARKER_COLLECTION = 'gatehouse_embedded';
interface Marker {
  _id: 'owner';
  instance: string;
  dataDir: string;
}

/** How long a start waits for another process's database to become ready or to go away before refusing. */
const DEFAULT_WAIT_MS = 90_000;
const POLL_MS = 250;

/** Whether anything accepts TCP connections on the loopback port (refused: nothing; no answer in time: assume something). */
function portInUse(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (inUse: boolean) => {
      socket.destroy();
      resolve(inUse);
    };
    socket.setTimeout(timeoutMs, () => done(true));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * What listens on a recorded port: `ours` (the database of that very start), `absent` (nothing),
 * `other` (a database without that start's marker), or `unsure` (something that did not answer in time;
 * never treated as gone, since starting a second database beside a slow first one would fork the data).
 */
async function probeRecordedDatabase(record: EmbeddedRecord): Promise<'ours' | 'absent' | 'other' | 'unsure'> {
  if (!(await portInUse(record.port))) return 'absent';
  const client = new mongoose.mongo.MongoClient(localUri(record.port), { serverSelectionTimeoutMS: 3000, socketTimeoutMS: 3000, directConnection: true });
  try {
    await client.connect();
    const marker = await client.db(MARKER_DB).collection<Marker>(MARKER_COLLECTION).findOne({ _id: 'owner' });
    return marker?.instance === record.instance ? 'ours' : 'other';
  } catch {
    return 'unsure';
  } finally {
    await client.close().catch(() => undefined);
  }
}

async function writeMarker(port: number, marker: Marker): Promise<void> {
  const client = new mongoose.mongo.MongoClient(localUri(port), { serverSelectionTimeoutMS: 10_000, directConnection: true });
  try {
    await client.connect();
    await client.db(MARKER_DB).collection<Marker>(MARKER_COLLECTION).replaceOne({ _id: 'owner' }, marker, { upsert: true });
  } finally {
    await client.close().catch(() => undefined);
  }
}

type Verdict = 'share' | 'wait' | 'stale';

async function judge(record: EmbeddedRecord): Promise<Verdict> {
  const ownerAlive = recordOwnerAlive(record);
  const database = await probeRecordedDatabase(record);
  if (database === 'ours') {
    // A CLI command stops its database when it ends; a dead owner's database is winding down (the
    // stand-in and mongodb-memory-server's mongod exit with their parent, saving on the way out).
    return ownerAlive && record.role === 'server' && record.state === 'ready' ? 'share' : 'wait';
  }
  if (database === 'unsure') return 'wait';
  // The recorded database is gone (nothing, or something else, on its port).
  return ownerAlive && record.state !== 'ready' ? 'wait' : 'stale';
}

function describe(record: EmbeddedRecord): string {
  const who = record.role === 'server' ? 'a Gatehouse server' : 'a Gatehouse CLI command';
  return `${who} (process ${record.pid}, database port ${record.port}, ${record.state})`;
}

export interface EmbeddedOptions {
  /** The port to start a database on when none runs for this data folder (GATEHOUSE_EMBEDDED_DB_PORT). */
  port: number;
  dataDir: string;
  log: Logger;
  /** `server` (the default) lets other processes share the database; `cli` makes them wait until it stops. */
  role?: EmbeddedRole;
  waitMs?: number;
}

export async function startEmbeddedDatabase(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const { dataDir, log, role = 'server', waitMs = DEFAULT_WAIT_MS } = options;
  // Owner-only, like the secrets key in it: the record and the database files beside it.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = recordPath(dataDir);
  const deadline = Date.now() + waitMs;
  let announced = false;
  for (;;) {
    const found = readRecord(file);
    if (!found) {
      const record: EmbeddedRecord = { pid: process.pid, role, state: 'starting', port: options.port, instance: randomBytes(16).toString('hex'), startedAt: new Date().toISOString(), boot: PROCESS_BOOT };
      if (!claimRecord(file, record)) continue; // another process claimed it first: judge its record
      try {
        return await startOwnDatabase(file, record, dataDir, log);
      } catch (err) {
        removeOwnRecord(file, record.instance);
        throw err;
      }
    }

    const { record } = found;
    const verdict = await judge(record);
    if (verdict === 'share') {
      log.info({ port: record.port, configuredPort: options.port, ownerPid: record.pid, record: file }, 'using the embedded database of the Gatehouse server running on this data folder');
      return { uri: localUri(record.port), kind: 'shared-embedded', stop: async () => undefined };
    }
    if (verdict === 'stale') {
      log.warn({ record: file, ...record }, 'ignoring the record of an embedded database that no longer runs');
      removeStaleRecord(file, found.raw);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new EmbeddedDatabaseError(
        `the embedded database of ${dataDir} is held by ${describe(record)}, which did not make it available within ${Math.round(waitMs / 1000)} s. ` +
          `Try again when it has finished; if no such process runs, remove ${file}`,
      );
    }
    if (!announced) {
      announced = true;
      log.warn({ record: file, ...record }, `waiting for ${describe(record)}, which holds the embedded database of this data folder`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Starts the data folder's database on the claimed record's port; the caller removes the claim if this throws. */
async function startOwnDatabase(file: string, record: EmbeddedRecord, dataDir: string, log: Logger): Promise<EmbeddedDatabase> {
  const { port } = record;
  // Not this folder's database (that would have a record): another folder's, or another program. Sharing
  // it would put this folder's accounts in someone else's database.
  if (await portInUse(port)) {
    throw new EmbeddedDatabaseError(
      `port ${port} (GATEHOUSE_EMBEDDED_DB_PORT) is already in use by another program or by the embedded database of another data folder, ` +
        `and no Gatehouse process records an embedded database for ${dataDir}. Choose a free port, or set MONGODB_URI to use a database you run`,
    );
  }
  const uri = localUri(port);
  const started = await startDatabaseProcess(port, dataDir, log);
  try {
    await writeMarker(port, { _id: 'owner', instance: record.instance, dataDir });
    updateOwnRecord(file, { ...record, state: 'ready', kind: started.kind });
  } catch (err) {
    await started.stop().catch(() => undefined);
    throw err;
  }
  log.info({ port, record: file }, 'recorded the embedded database for other Gatehouse processes on this data folder');
  return {
    uri,
    kind: started.kind,
    stop: async () => {
      // Others wait while the record says `stopping`: the stand-in saves its snapshot on the way out.
      try {
        updateOwnRecord(file, { ...record, state: 'stopping', kind: started.kind });
      } catch (err) {
        log.warn({ err, record: file }, 'could not mark the embedded database as stopping; stopping it anyway');
      }
      try {
        await started.stop();
      } finally {
        removeOwnRecord(file, record.instance);
      }
    },
  };
}

async function startDatabaseProcess(port: number, dataDir: string, log: Logger): Promise<{ kind: 'mongod' | 'standin'; stop(): Promise<void> }> {
  const dbPath = path.join(dataDir, 'mongo');
  // Owner-only, like the secrets key beside it: the database files hold every account's data.
  mkdirSync(dbPath, { recursive: true, mode: 0o700 });
  try {
    const mongod = await startMongod({ port, dbPath });
    log.info({ port, dbPath }, 'started an embedded mongod (mongodb-memory-server)');
    return { kind: 'mongod', stop: mongod.stop };
  } catch (err) {
    log.info({ reason: (err as Error).message.split('\n')[0] }, 'mongodb-memory-server could not provide a mongod');
  }

  const dataFile = path.join(dataDir, 'standin-snapshot.bson');
  const standin = await startStandin({ port, dataFile });
  log.warn(
    { port, dataFile },
    '!!! NO MONGOD AVAILABLE: using the MongoDB wire-protocol STAND-IN (python3-mockupdb + python3-mongomock). ' +
      'It keeps data in memory with a best-effort snapshot file; it is NOT durable and NOT for production. ' +
      'Set MONGODB_URI to a real MongoDB for anything that matters. !!!',
  );
  return { kind: 'standin', stop: standin.stop };
}
