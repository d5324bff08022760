/**
 * Starts Gatehouse: database, services, HTTP. Used by `npm start` (src/main.ts) and by the tests,
 * which ask for port 0 and get the issuer of the port actually bound.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, createServices, type Services } from './app.js';
import type { Config } from './config.js';
import { loadSecretBox } from './crypto/secrets-key.js';
import { openDatabase, type Database } from './db/connection.js';
import { seedDemo, type DemoCredentials } from './demo/seed.js';
import type { Clock } from './factors/types.js';
import type { Logger } from './logger.js';

export interface RunningGatehouse {
  config: Config;
  services: Services;
  server: http.Server;
  url: string;
  databaseKind: Database['kind'];
  demo?: DemoCredentials;
  close(): Promise<void>;
}

export interface StartOptions {
  /** An already-open database (tests share one); otherwise one is opened from config. */
  database?: Database;
  /** Tests pass a clock they can move. */
  clock?: Clock;
}

export async function startGatehouse(config: Config, log: Logger, options: StartOptions = {}): Promise<RunningGatehouse> {
  const server = http.createServer();
  // The port is taken first (with port 0 the issuer follows it); until the app is ready, requests get a
  // clear 503 rather than a connection that never answers (health checks, browsers opened too early).
  const answerStarting = (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '2', 'Cache-Control': 'no-store', Connection: 'close' });
    res.end('Gatehouse is starting. Try again in a moment.\n');
  };
  server.on('request', answerStarting);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, () => {
      // Only a failure to listen rejects the start; a later server error (e.g. running out of file
      // descriptors) is logged, not swallowed.
      server.off('error', reject);
      server.on('error', (err) => log.error({ err }, 'HTTP server error'));
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  // With port 0 and no explicit issuer, the issuer follows the port the OS picked.
  const effective: Config = config.port === 0 && config.issuer === 'http://localhost:0' ? { ...config, port, issuer: `http://localhost:${port}` } : config;

  let database: Database | undefined;
  try {
    database = options.database ?? (await openDatabase(effective, log));
    const secretBox = loadSecretBox(effective, log);
    const services = await createServices(effective, log, database.connection, secretBox, options.clock ? { clock: options.clock } : {});
    const demo = effective.demo.enabled ? await seedDemo(services) : undefined;
    const app = createApp(services);
    app.on('error', (err: Error & { status?: number }) => {
      if (!err.status || err.status >= 500) log.error({ err }, 'unhandled app error');
    });
    server.on('request', app.callback());
    server.off('request', answerStarting);

    const ownDatabase = !options.database;
    return {
      config: effective,
      services,
      server,
      url: effective.issuer,
      databaseKind: database.kind,
      ...(demo ? { demo } : {}),
      close: async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        services.mailer.close();
        if (ownDatabase) await database!.close();
      },
    };
  } catch (err) {
    server.close();
    if (database && !options.database) await database.close().catch(() => undefined);
    throw err;
  }
}
