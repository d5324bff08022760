/**
 * The database the tests run on, chosen once per run (global setup):
 *   MONGODB_URI if set → a real mongod through mongodb-memory-server → the wire-protocol stand-in.
 * Each test file then works in a database of its own on that server.
 */
import { localUri, startMongod } from '../../src/db/embedded.js';
import { startStandin } from '../../src/db/standin.js';

export interface TestDatabaseServer {
  uri: string;
  kind: 'MONGODB_URI' | 'mongod (mongodb-memory-server)' | 'stand-in (python3-mockupdb + python3-mongomock)';
  stop(): Promise<void>;
}

export async function startTestDatabaseServer(): Promise<TestDatabaseServer> {
  if (process.env.MONGODB_URI) return { uri: process.env.MONGODB_URI, kind: 'MONGODB_URI', stop: async () => undefined };
  try {
    const mongod = await startMongod({});
    return { uri: localUri(mongod.port, 'test'), kind: 'mongod (mongodb-memory-server)', stop: mongod.stop };
  } catch {
    const standin = await startStandin({ port: 0 });
    return { uri: localUri(standin.port, 'test'), kind: 'stand-in (python3-mockupdb + python3-mongomock)', stop: standin.stop };
  }
}

/** The same server, another database: one per test file, so files never see each other's data. */
export function uriForDatabase(serverUri: string, dbName: string): string {
  const url = new URL(serverUri);
  url.pathname = `/${dbName}`;
  return url.toString();
}
