// Jest loads global setup outside its ESM transform; tsx loads the TypeScript it needs.
import { tsImport } from 'tsx/esm/api';

export default async function globalSetup() {
  const { startTestDatabaseServer } = await tsImport('./test-database.ts', import.meta.url);
  const started = Date.now();
  const server = await startTestDatabaseServer();
  globalThis.__GATEHOUSE_TEST_DB__ = server;
  process.env.GATEHOUSE_TEST_DB_URI = server.uri;
  process.env.GATEHOUSE_TEST_DB_KIND = server.kind;
  console.log(`\nTest database: ${server.kind} at ${server.uri.replace(/\/\/[^@/]*@/, '//***@')} (ready in ${Date.now() - started} ms)\n`);
}
