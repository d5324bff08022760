/**
 * The Gatehouse target: a production build (the compiled JavaScript in BENCH_BUILD_DIR, NODE_ENV=production)
 * started through its own startGatehouse(), in a process of its own so that its CPU, RSS and database
 * commands can be measured alone. Forked by targets.ts; talks to the bench over IPC (protocol.ts).
 *
 * What this wrapper adds to a plain `npm start`, all from outside src/:
 *  - the MongoDB connection is opened here, with the driver's command monitoring on, and handed to
 *    startGatehouse (its `database` option), so every command Gatehouse sends is counted;
 *  - the HTTP server listens on 127.0.0.1 only (startGatehouse binds every interface);
 *  - the bench API (fixtures.ts BENCH_RESOURCE) in the configuration's `resourceServers`, as an operator
 *    would configure one: JWT access tokens signed ES256.
 */
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import mongoose from 'mongoose';
import { generate as generateTotp } from 'otplib';
import type * as ConfigModule from '../../src/config.js';
import type * as ConnectionModule from '../../src/db/connection.js';
import type * as LoggerModule from '../../src/logger.js';
import type * as ServerModule from '../../src/server.js';
import { announceReady, Meter, serveControl, type SeedResult } from './protocol.js';
import { BENCH_RESOURCE, type Fixtures } from './fixtures.js';

const buildDir = process.env.BENCH_BUILD_DIR;
const dbUri = process.env.BENCH_DB_URI;
if (!buildDir || !dbUri) throw new Error('gatehouse-child needs BENCH_BUILD_DIR and BENCH_DB_URI');
// Off only to measure what the monitoring itself costs (then no round trips are counted).
const commandMonitoring = process.env.BENCH_COMMAND_MONITORING !== '0';

// A build has .js modules; BENCH_MODULE_EXT=.ts runs the TypeScript sources instead (smoke test only).
const moduleExt = process.env.BENCH_MODULE_EXT ?? '.js';
const built = (file: string) => pathToFileURL(path.join(buildDir, 'src', file.replace(/\.js$/, moduleExt))).href;

// Only loopback: the bench never exposes a port beyond this machine.
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function listenOnLoopback(this: http.Server, ...args: unknown[]) {
  if (typeof args[0] === 'number' && typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
  return listen.apply(this, args as Parameters<typeof listen>);
} as typeof listen;

const { loadConfig } = (await import(built('config.js'))) as typeof ConfigModule;
const { createLogger } = (await import(built('logger.js'))) as typeof LoggerModule;
const { startGatehouse } = (await import(built('server.js'))) as typeof ServerModule;
const { connectionOptions } = (await import(built('db/connection.js'))) as typeof ConnectionModule;

const meter = new Meter();
const config = loadConfig({
  env: { ...process.env, PORT: '0', MONGODB_URI: dbUri },
  overrides: {
    resourceServers: {
      [BENCH_RESOURCE.indicator]: { scopes: [BENCH_RESOURCE.scope], accessTokenFormat: 'jwt', signingAlg: 'ES256', accessTokenSeconds: BENCH_RESOURCE.accessTokenTTL, clients: ['bench-service'] },
    },
  },
});
// Every simulated browser signs in from 127.0.0.1, so the per-IP sign-in limit (30 per 5 minutes by
// default) would answer most of the load with 429s. The limiter still runs and counts every attempt (its
// round trips and CPU are measured); only its thresholds are raised out of the load's reach.
config.rateLimits = {
  ...config.rateLimits,
  signin: { ip: { points: 1_000_000, durationSeconds: 300 }, identifier: { points: 1_000_000, durationSeconds: 300 } },
};
const log = createLogger(config.logLevel);

// Gatehouse's own connection options, plus command monitoring.
const connection = mongoose.createConnection(dbUri, { ...connectionOptions(config.mongodb), monitorCommands: commandMonitoring });
await connection.asPromise();
if (commandMonitoring) {
  connection.getClient().on('commandStarted', (event) => meter.countCommand(event.commandName, event.command));
}

const gatehouse = await startGatehouse(config, log, { database: { connection, kind: 'external', close: () => connection.close() } });

async function seed(fixtures: Fixtures): Promise<SeedResult> {
  const { clients, accounts, factors } = gatehouse.services;
  await clients.create({
    clientId: fixtures.service.clientId,
    clientSecret: fixtures.service.clientSecret,
    name: fixtures.service.name,
    grantTypes: ['client_credentials'],
    authMethod: 'client_secret_basic',
  });
  await clients.create({
    clientId: fixtures.web.clientId,
    clientSecret: fixtures.web.clientSecret,
    name: fixtures.web.name,
    redirectUris: [fixtures.web.redirectUri],
    grantTypes: ['authorization_code', 'refresh_token'],
    authMethod: 'client_secret_basic',
    firstParty: true,
  });
  // Every account is enrolled with an authenticator app through the real factor API, as a person would be
  // at the end of enrolment. The confirming code is the previous time step's (accepted: ±1 step of drift),
  // so the current step is still free for the first sign-in (an accepted step cannot be used again).
  const totpSecrets: Record<string, string> = {};
  const enrolOne = async (account: Fixtures['accounts'][number]) => {
    const created = await accounts.create({ userId: account.userId, email: account.email, name: account.name, password: fixtures.password, emailVerified: true });
    const subject = { accountId: created.accountId, userId: created.userId, name: created.name, email: created.email ?? null, phone: null, phoneVerified: false };
    const enrolment = await factors.totp.enrol(subject);
    const code = await generateTotp({ secret: enrolment.secret, epoch: Math.floor(Date.now() / 1000) - 30 });
    const confirmed = await factors.totp.confirmEnrolment(subject, code);
    if (!confirmed.ok) throw new Error(`TOTP enrolment of ${account.userId} was refused: ${confirmed.reason}`);
    await accounts.updateMfa(created.accountId, { set: { enrolledAt: new Date(), defaultMethod: 'totp' } });
    totpSecrets[account.userId] = enrolment.secret;
  };
  // A few at a time: argon2 hashing runs on the thread pool, the rest waits for the database.
  const queue = [...fixtures.accounts];
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) await enrolOne(next);
  }));
  return { totpSecrets };
}

let stopping: Promise<void> | undefined;
serveControl(meter, {
  seed,
  stop: () =>
    (stopping ??= (async () => {
      await gatehouse.close().catch(() => undefined);
      await connection.close().catch(() => undefined);
    })()),
});

announceReady(gatehouse.url, {
  nodeEnv: config.env,
  argon2: config.password.argon2,
  logLevel: config.logLevel,
  commandMonitoring,
  uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (Node default)',
});
