/**
 * Load generation, bounded in time: autocannon for the request/response scenarios, and N virtual users
 * looping over the sign-in driver for the multi-step one. Both record every operation's latency, so
 * p50/p95/p99 are computed the same way for both.
 */
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';

export interface LoadResult {
  /** Completed operations, failed ones included. */
  ops: number;
  errors: number;
  errorSamples: string[];
  elapsedMs: number;
  latenciesMs: number[];
  /** HTTP requests made by the load (for autocannon: one per op). */
  httpRequests: number;
}

export interface HttpLoad {
  kind: 'http';
  /** Origin to connect to, e.g. http://127.0.0.1:PORT. */
  origin: string;
  requests: autocannon.Request[];
}

export interface DriverLoad {
  kind: 'driver';
  /** One operation by virtual user `vu`; returns how many HTTP requests it made. */
  run(vu: number): Promise<number>;
}

export type Load = HttpLoad | DriverLoad;

export async function runLoad(load: Load, connections: number, durationSec: number): Promise<LoadResult> {
  return load.kind === 'http' ? runAutocannon(load, connections, durationSec) : runDriver(load, connections, durationSec);
}

function runAutocannon(load: HttpLoad, connections: number, durationSec: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const latenciesMs: number[] = [];
    const statuses = new Map<number, number>();
    let ops = 0;
    let errors = 0;
    const started = performance.now();
    const instance = autocannon(
      { url: load.origin, connections, duration: durationSec, requests: load.requests, timeout: 30 },
      (err: unknown, result: autocannon.Result) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        // Connection errors and timeouts never produced a response.
        const failures = result.errors + result.timeouts;
        const errorSamples = [...statuses].filter(([status]) => status < 200 || status >= 300).map(([status, n]) => `HTTP ${status} × ${n}`);
        if (failures > 0) errorSamples.push(`${result.errors} connection errors, ${result.timeouts} timeouts`);
        resolve({ ops: ops + failures, errors: errors + failures, errorSamples, elapsedMs: performance.now() - started, latenciesMs, httpRequests: ops + failures });
      },
    );
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      ops++;
      latenciesMs.push(responseTime);
      statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1);
      if (statusCode < 200 || statusCode >= 300) errors++;
    });
  });
}

async function runDriver(load: DriverLoad, connections: number, durationSec: number): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  const samples = new Map<string, number>();
  let ops = 0;
  let errors = 0;
  let httpRequests = 0;
  const started = performance.now();
  const deadline = started + durationSec * 1000;
  await Promise.all(
    Array.from({ length: connections }, async (_, vu) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        try {
          const requests = await load.run(vu);
          httpRequests += requests;
          latenciesMs.push(performance.now() - t0);
        } catch (err) {
          errors++;
          const message = (err as Error).message.slice(0, 300);
          samples.set(message, (samples.get(message) ?? 0) + 1);
          // A failing target must not turn into a tight loop.
          await new Promise((r) => setTimeout(r, 20));
        }
        ops++;
      }
    }),
  );
  return {
    ops,
    errors,
    errorSamples: [...samples].map(([message, n]) => `${message} × ${n}`),
    elapsedMs: performance.now() - started,
    latenciesMs,
    httpRequests,
  };
}

/** Nearest-rank percentile of `sorted` (ascending); NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function latencySummary(latenciesMs: number[]): { p50: number; p95: number; p99: number; max: number } {
  const sorted = Float64Array.from(latenciesMs).sort();
  const values = Array.from(sorted);
  return { p50: percentile(values, 50), p95: percentile(values, 95), p99: percentile(values, 99), max: values.length ? values[values.length - 1]! : Number.NaN };
}
