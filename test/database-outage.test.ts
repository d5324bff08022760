/**
 * MongoDB going away: requests get a 503 (page or JSON), never a crash or a 500, and Gatehouse
 * recovers by itself when the database comes back. Runs on its own stand-in process, which it stops
 * and restarts (with its snapshot file, so the data is the same when it comes back).
 */
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { localUri } from '../src/db/embedded.js';
import { startStandin, type RunningStandin } from '../src/db/standin.js';
import { Browser } from './support/browser.js';
import { startTestGatehouse, type TestGatehouse } from './support/gatehouse.js';
import { discover, RP_REDIRECT } from './support/rp.js';

let standin: RunningStandin | undefined;
let gh: TestGatehouse | undefined;
const dataFile = path.join(mkdtempSync(path.join(tmpdir(), 'gatehouse-outage-')), 'snapshot.bson');

afterAll(async () => {
  await gh?.close().catch(() => undefined);
  await standin?.stop();
});

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('condition not met in time');
}

test('a database outage gives 503s and Gatehouse recovers when the database returns', async () => {
  standin = await startStandin({ port: 0, dataFile });
  const port = standin.port;
  gh = await startTestGatehouse('outage', { dbUri: localUri(port, 'outage'), overrides: { mongodb: { serverSelectionTimeoutMs: 1000 } } });
  const machine = await gh.services.clients.create({ name: 'Outage machine', grantTypes: ['client_credentials'] });
  const web = await gh.services.clients.create({ name: 'Outage web app', redirectUris: [RP_REDIRECT] });
  const rp = await discover(gh.url, machine.clientId, machine.clientSecret);
  expect((await oidc.clientCredentialsGrant(rp, {})).access_token).toBeTruthy();
  await new Promise((r) => setTimeout(r, 600)); // let the stand-in write its snapshot
  // It holds password hashes and sealed keys: readable by its owner only.
  expect(statSync(dataFile).mode & 0o777).toBe(0o600);

  await standin.stop();

  const token = await fetch(rp.serverMetadata().token_endpoint!, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${machine.clientId}:${machine.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  expect(token.status).toBe(503);
  expect(await token.json()).toMatchObject({ error: 'temporarily_unavailable' });

  // A valid authorization request (its client may be served from memory) must store an interaction: 503.
  const authorize = `${gh.url}/auth?client_id=${web.clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(RP_REDIRECT)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`;
  const page = await new Browser().request(authorize);
  expect(page.status).toBe(503);
  expect(page.body).toContain('Temporarily unavailable');

  const health = await fetch(`${gh.url}/health`);
  expect(health.status).toBe(503);
  expect(await health.json()).toEqual({ status: 'unavailable', database: 'down' });

  // The database comes back on the same port with the same data.
  standin = await startStandin({ port, dataFile });
  await waitFor(async () => (await fetch(`${gh!.url}/health`)).status === 200, 30_000);
  await waitFor(async () => {
    try {
      return Boolean((await oidc.clientCredentialsGrant(rp, {})).access_token);
    } catch {
      return false;
    }
  }, 30_000);
});

test('while Gatehouse is still starting (here: waiting for a database that is not there), requests get a 503 that says so', async () => {
  const { loadConfig } = await import('../src/config.js');
  const { createLogger } = await import('../src/logger.js');
  const { startGatehouse } = await import('../src/server.js');
  const net = await import('node:net');
  const freePort = async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    return port;
  };
  const [httpPort, deadDbPort] = [await freePort(), await freePort()];
  const config = loadConfig({
    env: { NODE_ENV: 'test', PORT: String(httpPort), MONGODB_URI: localUri(deadDbPort, 'never') },
    overrides: { mongodb: { serverSelectionTimeoutMs: 3000 } },
  });
  const starting = startGatehouse(config, createLogger('silent'));
  const failed = starting.then(
    () => false,
    () => true,
  );
  await waitFor(async () => (await fetch(`http://127.0.0.1:${httpPort}/health`).catch(() => null)) !== null, 2500);
  const res = await fetch(`http://127.0.0.1:${httpPort}/.well-known/openid-configuration`);
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBe('2');
  expect(await res.text()).toMatch(/starting/);
  // Start-up then fails (no database), and the port is given back.
  expect(await failed).toBe(true);
  const again = net.createServer();
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject);
    again.listen(httpPort, '127.0.0.1', resolve);
  });
  await new Promise((resolve) => again.close(resolve));
});

/**
 * A TCP relay between Gatehouse and the database that can go silent: connections stay open but
 * nothing gets through (a stalled server or a dropped network path, which no connection error reports).
 */
async function silentableRelay(targetPort: number) {
  const net = await import('node:net');
  let silent = false;
  const sockets = new Set<import('node:net').Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(from);
      from.on('data', (chunk) => {
        if (!silent) to.write(chunk);
      });
      from.on('error', () => to.destroy());
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    setSilent: (value: boolean) => {
      silent = value;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

test('a database that stops answering without closing its connections gives 503s after the operation timeout, not a hang', async () => {
  const { isDatabaseUnavailable } = await import('../src/db/connection.js');
  const silentDb = await startStandin({ port: 0 });
  let relay: Awaited<ReturnType<typeof silentableRelay>> | undefined;
  let stalled: TestGatehouse | undefined;
  try {
    relay = await silentableRelay(silentDb.port);
    stalled = await startTestGatehouse('stall', {
      dbUri: localUri(relay.port, 'stall'),
      overrides: { mongodb: { serverSelectionTimeoutMs: 1000, operationTimeoutMs: 1500 } },
    });
    const machine = await stalled.services.clients.create({ name: 'Stall machine', grantTypes: ['client_credentials'] });
    const rp = await discover(stalled.url, machine.clientId, machine.clientSecret);
    expect((await oidc.clientCredentialsGrant(rp, {})).access_token).toBeTruthy();
    await stalled.services.accounts.findByLogin('nobody@example.com');

    relay.setSilent(true);
    // A direct read: fails as "database unavailable" once the operation timeout has passed (twice: the
    // driver retries a read once).
    let started = Date.now();
    const readError = await stalled.services.accounts.findByLogin('nobody@example.com').then(
      () => null,
      (err: unknown) => err,
    );
    expect(isDatabaseUnavailable(readError)).toBe(true);
    expect(Date.now() - started).toBeLessThan(8000);
    // A token request (its client is cached, its save must reach the database): a 503 with a message.
    started = Date.now();
    const token = await fetch(rp.serverMetadata().token_endpoint!, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${machine.clientId}:${machine.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(token.status).toBe(503);
    expect(await token.json()).toMatchObject({ error: 'temporarily_unavailable' });
    expect(Date.now() - started).toBeLessThan(8000);

    // The path answers again: Gatehouse opens fresh connections and serves tokens.
    relay.setSilent(false);
    await waitFor(async () => {
      try {
        return Boolean((await oidc.clientCredentialsGrant(rp, {})).access_token);
      } catch {
        return false;
      }
    }, 30_000);
  } finally {
    await stalled?.close().catch(() => undefined);
    await relay?.close();
    await silentDb.stop();
  }
});
