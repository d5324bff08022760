/**
 * The database the bench runs Gatehouse on: the one the tests would use (test/support/test-database.ts):
 * MONGODB_URI if set, else a real mongod through mongodb-memory-server if one is available locally, else
 * the wire-protocol stand-in. The bench never lets mongodb-memory-server download a binary (loopback only).
 * Every run gets a database of its own on that server.
 */
import { randomBytes } from 'node:crypto';
import { startTestDatabaseServer, uriForDatabase } from '../../test/support/test-database.js';

export interface BenchDatabase {
  uri: string;
  kind: string;
  stop(): Promise<void>;
}

export { redactUri as redact } from '../../src/db/connection.js';

export async function openBenchDatabase(givenUri?: string): Promise<BenchDatabase> {
  const name = `gatehouse_bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  if (givenUri) return { uri: uriForDatabase(givenUri, name), kind: 'given by --db-uri', stop: async () => undefined };
  process.env.MONGOMS_RUNTIME_DOWNLOAD ??= 'false';
  const server = await startTestDatabaseServer();
  return { uri: uriForDatabase(server.uri, name), kind: server.kind, stop: () => server.stop() };
}
