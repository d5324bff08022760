/**
 * Opens the MongoDB connection Gatehouse runs on: MONGODB_URI when configured, otherwise the
 * embedded database. Commands are not buffered while disconnected: a request during an outage
 * fails fast (and becomes a 503) instead of hanging; the driver reconnects by itself. A database
 * that stops answering without closing its connections (a stalled server, a dropped network path)
 * fails the waiting commands after the operation timeout, which also becomes a 503.
 */
import mongoose, { type ConnectOptions, type Connection } from 'mongoose';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { startEmbeddedDatabase, type DatabaseKind, type EmbeddedRole } from './embedded.js';

export interface Database {
  connection: Connection;
  kind: DatabaseKind;
  close(): Promise<void>;
}

export function redactUri(uri: string): string {
  return uri.replace(/\/\/[^@/]*@/, '//***@');
}

export interface ConnectionTimeouts {
  serverSelectionTimeoutMs: number;
  operationTimeoutMs: number;
}

/** The connection options every Gatehouse process uses (the benchmark adds command monitoring). */
export function connectionOptions(timeouts: ConnectionTimeouts): ConnectOptions {
  return {
    serverSelectionTimeoutMS: timeouts.serverSelectionTimeoutMs,
    // No answer on a connection within this time closes it and fails its command (a read is retried
    // once); no free connection within it fails the request instead of queueing it forever.
    socketTimeoutMS: timeouts.operationTimeoutMs,
    waitQueueTimeoutMS: timeouts.operationTimeoutMs,
    bufferCommands: false,
    autoIndex: true,
  };
}

export async function connectMongoose(uri: string, timeouts: ConnectionTimeouts): Promise<Connection> {
  const connection = mongoose.createConnection(uri, connectionOptions(timeouts));
  await connection.asPromise();
  return connection;
}

/** `embeddedRole`: what this process is to the embedded database it may start (see embedded.ts); the server by default. */
export async function openDatabase(config: Config, log: Logger, options: { embeddedRole?: EmbeddedRole } = {}): Promise<Database> {
  let uri = config.mongodb.uri;
  let kind: DatabaseKind = 'external';
  let stopEmbedded = async (): Promise<void> => undefined;
  if (!uri) {
    const embedded = await startEmbeddedDatabase({ port: config.mongodb.embedded.port, dataDir: config.dataDir, log, role: options.embeddedRole ?? 'server' });
    uri = embedded.uri;
    kind = embedded.kind;
    stopEmbedded = embedded.stop;
  }
  log.info({ uri: redactUri(uri), kind }, 'connecting to MongoDB');
  let connection: Connection;
  try {
    connection = await connectMongoose(uri, config.mongodb);
  } catch (err) {
    await stopEmbedded().catch(() => undefined);
    throw err;
  }
  let closing = false;
  connection.on('disconnected', () => {
    if (!closing) log.error('MongoDB connection lost; answering 503 until it is back');
  });
  connection.on('reconnected', () => log.info('MongoDB connection restored'));
  return {
    connection,
    kind,
    close: async () => {
      closing = true;
      await connection.close();
      await stopEmbedded();
    },
  };
}

/**
 * True for driver errors that mean "the database cannot be reached right now" (or did not answer in
 * time). A bulk write (insertMany, bulkWrite) wraps such an error in a MongoBulkWriteError: it is
 * looked for inside.
 */
const SOCKET_ERROR_CODES = new Set(['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'ENOTCONN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN']);

export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof mongoose.mongo.MongoBulkWriteError && err.errorResponse instanceof Error && err.errorResponse !== err) {
    return isDatabaseUnavailable(err.errorResponse);
  }
  return (
    err instanceof mongoose.mongo.MongoNetworkError ||
    err instanceof mongoose.mongo.MongoServerSelectionError ||
    err instanceof mongoose.mongo.MongoNotConnectedError ||
    err instanceof mongoose.mongo.MongoTopologyClosedError ||
    err instanceof mongoose.mongo.MongoOperationTimeoutError ||
    // Not exported by the driver: every connection stayed busy for the whole operation timeout.
    err.name === 'MongoWaitQueueTimeoutError' ||
    // A socket error the driver passed on unwrapped (seen: EPIPE writing to a server that just went away).
    SOCKET_ERROR_CODES.has(String((err as NodeJS.ErrnoException).code)) ||
    /buffering timed out|Client must be connected|connection .* closed/i.test(err.message)
  );
}
