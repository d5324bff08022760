/**
 * What one database round trip costs the client: the CPU a process spends sending one small command
 * with the MongoDB driver Gatehouse uses and reading its answer, measured against the bench's own
 * database. Gatehouse pays this for every round trip the table counts, whatever the database's speed,
 * so "round trips per op × this" is the part of a scenario's CPU that only fewer trips can remove. It is a
 * lower bound: Gatehouse's commands are larger, some go through mongoose, and the bench monitors them.
 *
 * Two figures: commands sent one after another (as the steps of one sign-in are), and ten in flight
 * at once (as concurrent requests are), where the process is never idle between answers.
 */
import { performance } from 'node:perf_hooks';
import mongoose from 'mongoose';

export interface RoundTripCost {
  /** The command timed: a findOne by _id on a small collection. */
  command: string;
  samples: number;
  /** CPU (user + system) of this process per command, commands one after another. */
  aloneCpuMs: number;
  aloneWallMs: number;
  /** The same with `inFlight` commands outstanding at all times. */
  inFlight: number;
  concurrentCpuMs: number;
}

const COLLECTION = 'bench_round_trip_probe';

async function timed(run: () => Promise<void>): Promise<{ cpuMs: number; wallMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run();
  const wallMs = performance.now() - t0;
  const used = process.cpuUsage(cpu0);
  return { cpuMs: (used.user + used.system) / 1000, wallMs };
}

export async function measureRoundTrip(uri: string, samples: number, inFlight = 10): Promise<RoundTripCost> {
  const client = new mongoose.mongo.MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  await client.connect();
  try {
    const probe = client.db().collection<{ _id: string; value: number }>(COLLECTION);
    await probe.insertMany(Array.from({ length: inFlight }, (_, i) => ({ _id: `probe-${i}`, value: i })));
    const read = (i: number) => probe.findOne({ _id: `probe-${i % inFlight}` }).then(() => undefined);
    // Warm-up: opens the pool's connections and lets the code paths compile.
    await Promise.all(Array.from({ length: inFlight }, async (_, w) => {
      for (let i = 0; i < 20; i++) await read(w + i);
    }));
    const n = Math.max(inFlight, samples);
    const alone = await timed(async () => {
      for (let i = 0; i < n; i++) await read(i);
    });
    const perWorker = Math.ceil(n / inFlight);
    const concurrent = await timed(async () => {
      await Promise.all(Array.from({ length: inFlight }, async (_, w) => {
        for (let i = 0; i < perWorker; i++) await read(w + i);
      }));
    });
    return {
      command: 'findOne by _id',
      samples: n,
      aloneCpuMs: alone.cpuMs / n,
      aloneWallMs: alone.wallMs / n,
      inFlight,
      concurrentCpuMs: concurrent.cpuMs / (perWorker * inFlight),
    };
  } finally {
    await client.db().collection(COLLECTION).drop().catch(() => undefined);
    await client.close();
  }
}
