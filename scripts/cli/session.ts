/**
 * The CLI's view of Gatehouse: configuration, a logger on stderr, and the services on the database
 * (MONGODB_URI, or the embedded database: shared with a running `npm start` on the same data folder,
 * found through the folder's record whatever its port, or started here and stopped again, which saves
 * the stand-in's snapshot). The database is always closed before returning.
 */
import { pino } from 'pino';
import type { Services } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { loadSecretBox } from '../../src/crypto/secrets-key.js';
import { openDatabase, redactUri, type Database } from '../../src/db/connection.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { CliError } from './output.js';

export interface CliEnvironment {
  config: Config;
  log: Logger;
}

let current: CliEnvironment | undefined;

/** Loads (once) the configuration and a logger writing to stderr at LOG_LEVEL, default `warn`. */
export function cliEnvironment(env: NodeJS.ProcessEnv = process.env): CliEnvironment {
  if (current) return current;
  const config = loadConfig({ env });
  // config.logLevel has the server's default; the CLI is quiet unless LOG_LEVEL asks otherwise
  // (loadConfig has validated LOG_LEVEL when it is set).
  const level = env.LOG_LEVEL ? config.logLevel : 'warn';
  current = { config, log: createLogger(level, pino.destination({ dest: 2, sync: true })) };
  return current;
}

/** The logger when the environment has loaded, for reporting unexpected errors. */
export function cliLogger(): Logger | undefined {
  return current?.log;
}

/**
 * Without an SMTP server (development only), mail "sent" by a CLI command would go to this process's own
 * development mailbox and vanish with it: print it on stderr instead, so the link or code can be used.
 */
function showDevelopmentMail(services: Services): void {
  const mails = services.mailer.devMailbox?.list() ?? [];
  for (const mail of [...mails].reverse()) {
    process.stderr.write(
      `\n(development: no SMTP server is configured (SMTP_URL), so this mail was not sent; it reads:)\nTo: ${mail.to}\nSubject: ${mail.subject}\n\n${mail.text.trim()}\n\n`,
    );
  }
}

export async function withServices<T>(environment: CliEnvironment, work: (services: Services) => Promise<T>): Promise<T> {
  const { config, log } = environment;
  let database: Database;
  try {
    // Without MONGODB_URI: the database of the server running on this data folder, whatever its port.
    database = await openDatabase(config, log, { embeddedRole: 'cli' });
  } catch (err) {
    const where = config.mongodb.uri ? `MongoDB at ${redactUri(config.mongodb.uri)}` : `the embedded database of ${config.dataDir}`;
    throw new CliError(`cannot open ${where}: ${(err as Error).message}`);
  }
  try {
    const secretBox = loadSecretBox(config, log);
    // Loaded here, not up front: oidc-provider and Koa take a second to load, which --help and
    // mistyped flags need not wait for.
    const { createServices } = await import('../../src/app.js');
    const services = await createServices(config, log, database.connection, secretBox);
    try {
      return await work(services);
    } finally {
      showDevelopmentMail(services);
    }
  } finally {
    await database.close().catch((err: unknown) => log.warn({ err }, 'error while closing the database'));
  }
}
