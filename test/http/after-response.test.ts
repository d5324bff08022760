/** Work started after a response: once when it went out, and still once when the client left early. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterResponse } from '../../src/http/after-response.js';

async function serve(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test('runs once the response has gone out, and only once', async () => {
  let runs = 0;
  let sentBeforeRun: boolean | undefined;
  let done: () => void = () => undefined;
  const ran = new Promise<void>((resolve) => (done = resolve));
  const s = await serve((_req, res) => {
    afterResponse(res)(() => {
      runs++;
      sentBeforeRun = res.writableFinished;
      done();
    });
    res.end('ok');
  });
  expect(await (await fetch(s.url)).text()).toBe('ok');
  await ran;
  await new Promise((r) => setTimeout(r, 50));
  expect(runs).toBe(1);
  expect(sentBeforeRun).toBe(true);
  await s.close();
});

test('a client that left before the work was scheduled still gets it run, once', async () => {
  let runs = 0;
  let closedWhenScheduled: boolean | undefined;
  let done: () => void = () => undefined;
  const ran = new Promise<void>((resolve) => (done = resolve));
  const s = await serve((_req, res) => {
    // As in a route that did database work first: by the time it schedules the mail, the client is gone.
    res.once('close', () => {
      closedWhenScheduled = res.closed;
      afterResponse(res)(() => {
        runs++;
        done();
      });
    });
  });
  const aborted = new AbortController();
  const request = fetch(s.url, { signal: aborted.signal }).catch(() => undefined);
  setTimeout(() => aborted.abort(), 100);
  await request;
  await ran;
  await new Promise((r) => setTimeout(r, 50));
  expect(closedWhenScheduled).toBe(true);
  expect(runs).toBe(1);
  await s.close();
});
