/**
 * The database `npm start` and the CLI use when no MONGODB_URI is configured. In order:
 *  1. something already answers on the configured embedded port (another Gatehouse process started
 *     it, e.g. the server while the CLI runs): share it;
 *  2. a real mongod through mongodb-memory-server, with its files in the data folder;
 *  3. the wire-protocol stand-in, with a snapshot file in the data folder.
 * The port is fixed by config so that the CLI, run beside `npm start`, reaches the same data.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import mongoose from 'mongoose';
import type { Logger } from '../logger.js';
import { startStandin } from './standin.js';

export type DatabaseKind = 'external' | 'shared-embedded' | 'mongod' | 'standin';

export interface EmbeddedDatabase {
  uri: string;
  kind: DatabaseKind;
  stop(): Promise<void>;
}

export const DATABASE_NAME = 'gatehouse';

export async function answersMongo(uri: string, timeoutMs = 1500): Promise<boolean> {
  const client = new mongoose.mongo.MongoClient(uri, { serverSelectionTimeoutMS: timeoutMs, directConnection: true });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
    return true;
  } catch {
    return false;
  } finally {
    await client.close().catch(() => undefined);
  }
}

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

export async function startEmbeddedDatabase(options: { port: number; dataDir: string; log: Logger }): Promise<EmbeddedDatabase> {
  const { port, dataDir, log } = options;
  const uri = localUri(port);
  if (await answersMongo(uri)) {
    log.info({ port }, 'using the embedded database already running on this port');
    return { uri, kind: 'shared-embedded', stop: async () => undefined };
  }

  const dbPath = path.join(dataDir, 'mongo');
  // Owner-only, like the secrets key beside it: the database files hold every account's data.
  mkdirSync(dbPath, { recursive: true, mode: 0o700 });
  try {
    const mongod = await startMongod({ port, dbPath });
    log.info({ port, dbPath }, 'started an embedded mongod (mongodb-memory-server)');
    return { uri, kind: 'mongod', stop: mongod.stop };
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
  return { uri, kind: 'standin', stop: standin.stop };
}
