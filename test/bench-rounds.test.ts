/**
 * `npm run bench -- --rounds N`: the runs of one target are added together into one measurement.
 */
import { combineRuns } from '../scripts/bench/bench.js';

const run = (ops: number, elapsedMs: number, cpuMs: number, elu: number, rssMB: number, commands: Record<string, number>) => ({
  load: { ops, errors: ops === 7 ? 1 : 0, errorSamples: ops === 7 ? ['502 once'] : [], elapsedMs, latenciesMs: Array.from({ length: ops }, (_, i) => i + elapsedMs / 1000), httpRequests: ops * 2 },
  stats: {
    cpuUserMs: cpuMs * 0.8,
    cpuSystemMs: cpuMs * 0.2,
    elapsedMs,
    eventLoopUtilization: elu,
    peakRssBytes: rssMB * 1024 * 1024,
    lifetimeMaxRssBytes: rssMB * 2 * 1024 * 1024,
    dbCommands: Object.values(commands).reduce((a, b) => a + b, 0),
    dbByCommand: commands,
  },
});

test('one run is passed through unchanged', () => {
  const only = run(10, 1000, 50, 0.5, 100, { 'find x': 2 });
  expect(combineRuns([only])).toBe(only);
});

test('runs are added: operations, time, CPU and round trips summed, latencies pooled, the highest RSS, utilisation weighted by time', () => {
  const combined = combineRuns([run(10, 1000, 50, 0.5, 100, { 'find x': 2, 'update y': 10 }), run(7, 3000, 30, 0.9, 140, { 'find x': 5 })]);
  expect(combined.load).toMatchObject({ ops: 17, errors: 1, errorSamples: ['502 once'], elapsedMs: 4000, httpRequests: 34 });
  expect(combined.load.latenciesMs).toHaveLength(17);
  expect(combined.stats.cpuUserMs + combined.stats.cpuSystemMs).toBeCloseTo(80);
  expect(combined.stats.elapsedMs).toBe(4000);
  expect(combined.stats.eventLoopUtilization).toBeCloseTo((0.5 * 1000 + 0.9 * 3000) / 4000);
  expect(combined.stats.peakRssBytes).toBe(140 * 1024 * 1024);
  expect(combined.stats.dbCommands).toBe(17);
  expect(combined.stats.dbByCommand).toEqual({ 'find x': 7, 'update y': 10 });
});
