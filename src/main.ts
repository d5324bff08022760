/** `npm start`: run Gatehouse with the configuration from config/ and the environment. */
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { startGatehouse } from './server.js';

const DATABASE_LABELS = {
  external: 'MONGODB_URI',
  'shared-embedded': 'embedded, shared with another Gatehouse process',
  mongod: 'embedded mongod',
  standin: 'embedded MongoDB stand-in',
} as const;

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  let gatehouse;
  try {
    gatehouse = await startGatehouse(config, log);
  } catch (err) {
    if ((err as Error).name === 'MongoNetworkTimeoutError') {
      // Start-up creates indexes; on a large collection that is getting a new one this can outlast the timeout.
      console.error(
        `The database did not answer within mongodb.operationTimeoutMs (${config.mongodb.operationTimeoutMs} ms) while Gatehouse was starting. ` +
          'If it is building an index on a large collection, let the build finish, or raise MONGODB_OPERATION_TIMEOUT_MS for this start.',
      );
    }
    throw err;
  }
  const { url, demo } = gatehouse;

  const lines = [
    '',
    `  Gatehouse is running at ${url}`,
    `  Discovery: ${url}/.well-known/openid-configuration`,
    `  Database:  ${gatehouse.services.connection.host}:${gatehouse.services.connection.port} (${DATABASE_LABELS[gatehouse.databaseKind]})`,
  ];
  if (gatehouse.databaseKind === 'standin') {
    lines.push('  WARNING:   no mongod on this machine; the MongoDB stand-in keeps data in memory with a snapshot file.', '             Fine for trying Gatehouse, never for real users: set MONGODB_URI.');
  }
  if (demo) {
    lines.push(
      '',
      `  Demo app:  ${url}/demo`,
      `  Demo account: User ID "${demo.userId}", password "${demo.password}"`,
      `  With two-step verification: User ID "${demo.mfaUserId}", same password (codes appear at ${url}/dev/mailbox)`,
      `  Demo client:  client_id "${demo.clientId}" (its secret is stored encrypted; the demo app reads it)`,
    );
  }
  console.log(lines.join('\n') + '\n');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await gatehouse.close().catch((err: unknown) => log.error({ err }, 'error while shutting down'));
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(`Gatehouse could not start: ${(err as Error).message}`);
  process.exit(1);
});
