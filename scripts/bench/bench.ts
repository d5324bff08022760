/**
 * One benchmark run (issue 7): build Gatehouse, start it and the bare oidc-provider baseline, seed both,
 * measure argon2id, then run every scenario against each target in turn and collect, per run, the load
 * generator's view (throughput, latency, errors) and the target process's own (CPU, RSS, DB commands).
 * Used by run.ts (`npm run bench`) and by test/bench-smoke.test.ts.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import mongoose from 'mongoose';
import { loadConfig } from '../../src/config.js';
import { measureArgon2, type Argon2Ceiling } from './argon2-ceiling.js';
import { measureRoundTrip, type RoundTripCost } from './round-trip-cost.js';
import { openBenchDatabase, redact } from './database.js';
import { DbServerMeter } from './db-server-meter.js';
import { createFixtures } from './fixtures.js';
import { TotpAccounts } from './totp-accounts.js';
import { HttpClient } from './http.js';
import { latencySummary, runLoad } from './load.js';
import { formatProfile } from './profile-summary.js';
import { parseCommandKey, type ChildStats } from './protocol.js';
import { createDriver, discover, SCENARIOS, type Scenario, type TargetContext } from './scenarios.js';
import { Target, type TargetName } from './targets.js';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface BenchOptions {
  /** Measured seconds per scenario and target. */
  durationSec: number;
  /** Unmeasured seconds of the same load first (JIT, connection pools, caches). */
  warmupSec: number;
  /**
   * Measured runs per scenario and target, alternating between the targets (G B, then B G, …) and added
   * together: slow drifts of a shared machine then weigh on both alike.
   */
  rounds: number;
  connections: number;
  /** Concurrent sign-ins (virtual users) in the sign-in scenario. */
  signInConnections: number;
  accounts: number;
  argon2Samples: number;
  /** Database commands timed for the cost of one round trip (round-trip-cost.ts). */
  roundTripSamples: number;
  /** Scenario ids to run (all when empty). */
  scenarios: string[];
  /**
   * Gatehouse's code: 'build' runs `npm run build` and uses dist/ (what `npm run bench` does); 'existing'
   * uses dist/ as it is; 'source' runs the TypeScript sources through tsx (the smoke test: no build).
   */
  gatehouseCode: 'build' | 'existing' | 'source';
  /** A MongoDB server to use instead of the one the tests would use. */
  dbUri?: string;
  /** UV_THREADPOOL_SIZE for both targets. */
  threadpoolSize: number;
  /**
   * Write a main-thread CPU profile of both targets for every measured run into the log folder, and
   * summarise it in the result. For finding costs only: profiling slows the targets down.
   */
  profile: boolean;
  /** Progress lines (stderr in run.ts). */
  progress?: (line: string) => void;
}

export function defaultThreadpoolSize(): number {
  const fromEnv = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : Math.max(4, os.availableParallelism());
}

export const DEFAULT_OPTIONS: BenchOptions = {
  durationSec: 6,
  warmupSec: 1,
  rounds: 1,
  connections: 10,
  signInConnections: 10,
  accounts: 600,
  argon2Samples: 15,
  roundTripSamples: 1000,
  scenarios: [],
  gatehouseCode: 'build',
  threadpoolSize: defaultThreadpoolSize(),
  profile: false,
};

export interface Measurement {
  ops: number;
  errors: number;
  errorSamples: string[];
  elapsedSec: number;
  opsPerSec: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  cpuMsPerOp: number;
  cpu: { userMs: number; systemMs: number };
  /** Ops one fully busy core could do at this CPU cost (1000 / cpuMsPerOp). */
  opsPerCpuSecond: number;
  eventLoopUtilization: number;
  peakRssMB: number;
  dbRoundTripsPerOp: number;
  dbByCommandPerOp: Record<string, number>;
  httpRequestsPerOp: number;
  /** Gatehouse runs on a local database server process only: its CPU per op and average cores busy. */
  dbServer?: { cpuMsPerOp: number; cores: number };
  /** With `profile`: the .cpuprofile file and its summary. */
  profile?: { file: string; summary: string };
}

export interface ScenarioResult {
  id: string;
  number: string;
  title: string;
  op: string;
  note?: string;
  facts: Partial<Record<TargetName, Record<string, string | number>>>;
  gatehouse: Measurement;
  baseline: Measurement;
  /** Gatehouse ÷ baseline for each figure. */
  ratio: { opsPerSec: number; p50: number; p95: number; p99: number; cpuMsPerOp: number; peakRssMB: number; opsPerCpuSecond: number };
}

export interface BenchResult {
  startedAt: string;
  finishedAt: string;
  elapsedSec: number;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; os: string; node: string; loadAverageAtStart: number[]; loadAverageAtEnd: number[] };
  database: { kind: string; uri: string; standIn: boolean; serverProcess?: string };
  gatehouse: { code: string; nodeEnv: string; logLevel: unknown; pid?: number };
  baseline: { oidcProvider: string };
  options: Omit<BenchOptions, 'progress'>;
  threadpoolSize: number;
  argon2: Argon2Ceiling & { signIn?: { gatehouseCpuMsPerSignIn: number; gatehousePerCore: number; ratioToCeiling: number; baselineRatioToCeiling: number; throughputPerSec: number; ratioOfMachineCeiling: number } };
  /** What one database round trip costs the client here (measured before the scenarios). */
  roundTrip: RoundTripCost;
  scenarios: ScenarioResult[];
  /**
   * Every query shape Gatehouse sent (command, collection, filter fields) and the index whose leading
   * field it can use, from listIndexes (explain is not available on the stand-in). null: none.
   */
  indexCheck: Array<{ query: string; index: string | null }>;
  logs: { dir: string };
}

const execFileAsync = promisify(execFile);

async function buildGatehouse(progress: (line: string) => void): Promise<void> {
  progress('building Gatehouse (npm run build)…');
  try {
    await execFileAsync('npm', ['run', 'build', '--silent'], { cwd: PROJECT_ROOT, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`npm run build failed; the benchmark measures a build of the current sources.\n${(e.stdout ?? '') + (e.stderr ?? '') || e.message}`);
  }
}

function oidcProviderVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'node_modules', 'oidc-provider', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

type LoadRun = Awaited<ReturnType<typeof runLoad>>;

/** Several measured runs of one target as one: operations, time, CPU and round trips added, latencies pooled, the highest RSS. */
export function combineRuns(runs: Array<{ load: LoadRun; stats: ChildStats }>): { load: LoadRun; stats: ChildStats } {
  if (runs.length === 1) return runs[0]!;
  const sum = (pick: (r: { load: LoadRun; stats: ChildStats }) => number) => runs.reduce((total, r) => total + pick(r), 0);
  const elapsedMs = sum((r) => r.stats.elapsedMs);
  const dbByCommand: Record<string, number> = {};
  for (const { stats } of runs) for (const [key, n] of Object.entries(stats.dbByCommand)) dbByCommand[key] = (dbByCommand[key] ?? 0) + n;
  return {
    load: {
      ops: sum((r) => r.load.ops),
      errors: sum((r) => r.load.errors),
      errorSamples: runs.flatMap((r) => r.load.errorSamples).slice(0, 10),
      elapsedMs: sum((r) => r.load.elapsedMs),
      latenciesMs: runs.flatMap((r) => r.load.latenciesMs),
      httpRequests: sum((r) => r.load.httpRequests),
    },
    stats: {
      cpuUserMs: sum((r) => r.stats.cpuUserMs),
      cpuSystemMs: sum((r) => r.stats.cpuSystemMs),
      elapsedMs,
      eventLoopUtilization: elapsedMs > 0 ? sum((r) => r.stats.eventLoopUtilization * r.stats.elapsedMs) / elapsedMs : 0,
      peakRssBytes: Math.max(...runs.map((r) => r.stats.peakRssBytes)),
      lifetimeMaxRssBytes: Math.max(...runs.map((r) => r.stats.lifetimeMaxRssBytes)),
      dbCommands: sum((r) => r.stats.dbCommands),
      dbByCommand,
    },
  };
}

function measurement(load: LoadRun, stats: ChildStats): Measurement {
  const ops = Math.max(load.ops, 1);
  const cpuMs = stats.cpuUserMs + stats.cpuSystemMs;
  const perOp = (n: number) => n / ops;
  return {
    ops: load.ops,
    errors: load.errors,
    errorSamples: load.errorSamples,
    elapsedSec: load.elapsedMs / 1000,
    opsPerSec: load.ops / (load.elapsedMs / 1000),
    latencyMs: latencySummary(load.latenciesMs),
    cpuMsPerOp: perOp(cpuMs),
    cpu: { userMs: stats.cpuUserMs, systemMs: stats.cpuSystemMs },
    opsPerCpuSecond: cpuMs > 0 ? (1000 * load.ops) / cpuMs : Number.NaN,
    eventLoopUtilization: stats.eventLoopUtilization,
    peakRssMB: stats.peakRssBytes / (1024 * 1024),
    dbRoundTripsPerOp: perOp(stats.dbCommands),
    dbByCommandPerOp: Object.fromEntries(Object.entries(stats.dbByCommand).map(([k, n]) => [k, perOp(n)])),
    httpRequestsPerOp: perOp(load.httpRequests),
  };
}

const ratio = (a: number, b: number) => (b === 0 || !Number.isFinite(a) || !Number.isFinite(b) ? Number.NaN : a / b);

export async function runBench(partial: Partial<BenchOptions> = {}): Promise<BenchResult> {
  const options: BenchOptions = { ...DEFAULT_OPTIONS, ...partial };
  const progress = options.progress ?? (() => undefined);
  const startedAt = new Date();
  const loadAverageAtStart = os.loadavg();
  const scenarios: Scenario[] = options.scenarios.length ? SCENARIOS.filter((s) => options.scenarios.includes(s.id)) : SCENARIOS;
  if (scenarios.length === 0) throw new Error(`no such scenario: ${options.scenarios.join(', ')} (known: ${SCENARIOS.map((s) => s.id).join(', ')})`);

  const logRoot = path.join(os.tmpdir(), 'gatehouse-bench');
  mkdirSync(logRoot, { recursive: true });
  const logDir = mkdtempSync(path.join(logRoot, `${startedAt.toISOString().replace(/[:.]/g, '-')}-`));

  if (options.gatehouseCode === 'build') await buildGatehouse(progress);
  const codeDir = options.gatehouseCode === 'source' ? PROJECT_ROOT : path.join(PROJECT_ROOT, 'dist');
  const moduleExt = options.gatehouseCode === 'source' ? '.ts' : '.js';

  // The environment both targets run in: production, a fresh secrets key, the chosen thread pool.
  const secretsKey = randomBytes(32).toString('base64');
  const targetEnv: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'production',
    GATEHOUSE_SECRETS_KEY: secretsKey,
    UV_THREADPOOL_SIZE: String(options.threadpoolSize),
  };
  delete targetEnv.NODE_OPTIONS; // jest's --experimental-vm-modules and the like are not for the targets
  const config = loadConfig({ env: { ...targetEnv, PORT: '0' } });

  progress('starting the database…');
  const database = await openBenchDatabase(options.dbUri);
  const targets: Partial<Record<TargetName, Target>> = {};
  const http = new HttpClient(Math.max(options.connections, options.signInConnections) + 4);
  try {
    progress(`database: ${database.kind}; starting Gatehouse (${options.gatehouseCode === 'source' ? 'TypeScript sources' : 'production build'}) and the baseline…`);
    const started = await Promise.allSettled([
      Target.start(
        'gatehouse',
        new URL('./gatehouse-child.ts', import.meta.url),
        {
          env: { ...targetEnv, BENCH_BUILD_DIR: codeDir, BENCH_MODULE_EXT: moduleExt, BENCH_DB_URI: database.uri },
          cwd: PROJECT_ROOT,
          logFile: path.join(logDir, 'gatehouse.log'),
        },
      ),
      Target.start(
        'baseline',
        new URL('./baseline-child.ts', import.meta.url),
        {
          env: { ...targetEnv, BENCH_BASELINE_SETTINGS: JSON.stringify({ argon2: config.password.argon2, ttl: config.ttl }) },
          cwd: PROJECT_ROOT,
          logFile: path.join(logDir, 'baseline.log'),
        },
      ),
    ]);
    for (const outcome of started) if (outcome.status === 'fulfilled') targets[outcome.value.name] = outcome.value;
    for (const outcome of started) if (outcome.status === 'rejected') throw outcome.reason;
    const gatehouse = targets.gatehouse!;
    const baseline = targets.baseline!;

    const fixtures = createFixtures(options.accounts);
    progress(`seeding ${fixtures.accounts.length} accounts and 2 clients into each target…`);
    const [gatehouseSeed, baselineSeed] = await Promise.all([gatehouse.seed(fixtures), baseline.seed(fixtures)]);
    const seeded = { gatehouse: gatehouseSeed, baseline: baselineSeed };

    const contexts = {} as Record<TargetName, TargetContext>;
    for (const target of [gatehouse, baseline]) {
      const metadata = await discover(http, target.url);
      contexts[target.name] = {
        name: target.name,
        origin: target.url.replace('//localhost:', '//127.0.0.1:'),
        metadata,
        fixtures,
        http,
        driver: createDriver(http, metadata, fixtures),
        accounts: new TotpAccounts(fixtures.accounts.map((a) => a.userId), seeded[target.name].totpSecrets, fixtures.password),
      };
    }

    const dbServer = DbServerMeter.find();

    progress(`measuring argon2id verification (${options.argon2Samples} samples)…`);
    const argon2 = await measureArgon2(config.password.argon2, options.argon2Samples);
    progress(`measuring one database round trip (${options.roundTripSamples} commands)…`);
    const roundTrip = await measureRoundTrip(database.uri, options.roundTripSamples);

    const results: ScenarioResult[] = [];
    for (const scenario of scenarios) {
      const measured = {} as Record<TargetName, Measurement>;
      const facts: ScenarioResult['facts'] = {};
      const connections = scenario.id === 'sign-in' ? options.signInConnections : options.connections;
      const prepared = {} as Record<TargetName, Awaited<ReturnType<typeof scenario.prepare>>>;
      const runs: Record<TargetName, Array<{ load: LoadRun; stats: ChildStats }>> = { gatehouse: [], baseline: [] };
      const profiles: Partial<Record<TargetName, { file: string; ops: number }>> = {};
      let dbServerCpuMs = 0;
      let dbServerCores = 0;
      for (let round = 0; round < options.rounds; round++) {
        // G B, then B G, …: each target goes first as often as the other.
        for (const target of round % 2 === 0 ? [gatehouse, baseline] : [baseline, gatehouse]) {
          if (round === 0) {
            try {
              prepared[target.name] = await scenario.prepare(contexts[target.name]);
            } catch (err) {
              throw new Error(`${scenario.id} on ${target.name}: the check before the load failed: ${(err as Error).message}`);
            }
            facts[target.name] = prepared[target.name].facts;
          }
          const load = prepared[target.name].load;
          const roundNote = options.rounds > 1 ? ` (round ${round + 1} of ${options.rounds})` : '';
          progress(`${scenario.id} on ${target.name}${roundNote}: ${round === 0 && options.warmupSec ? `${options.warmupSec} s warm-up, ` : ''}${options.durationSec} s with ${connections} connections…`);
          if (round === 0 && options.warmupSec > 0) await runLoad(load, connections, options.warmupSec);
          await target.reset();
          dbServer?.reset();
          const profiling = options.profile && round === 0;
          if (profiling) await target.profileStart();
          const result = await runLoad(load, connections, options.durationSec);
          runs[target.name].push({ load: result, stats: await target.stats() });
          if (dbServer && target.name === 'gatehouse') {
            const used = dbServer.read();
            dbServerCpuMs += used.cpuMs;
            dbServerCores += used.cores / options.rounds;
          }
          if (profiling) {
            const file = path.join(logDir, `${scenario.id}.${target.name}.cpuprofile`);
            await target.profileStop(file);
            profiles[target.name] = { file, ops: result.ops };
          }
        }
      }
      for (const target of [gatehouse, baseline]) {
        const combined = combineRuns(runs[target.name]);
        measured[target.name] = measurement(combined.load, combined.stats);
        if (dbServer && target.name === 'gatehouse') {
          measured[target.name].dbServer = { cpuMsPerOp: dbServerCpuMs / Math.max(1, combined.load.ops), cores: dbServerCores };
        }
        const profile = profiles[target.name];
        if (profile) measured[target.name].profile = { file: profile.file, summary: formatProfile(profile.file, profile.ops) };
      }
      const g = measured.gatehouse;
      const b = measured.baseline;
      results.push({
        id: scenario.id,
        number: scenario.number,
        title: scenario.title,
        op: scenario.op,
        ...(scenario.note ? { note: scenario.note } : {}),
        facts,
        gatehouse: g,
        baseline: b,
        ratio: {
          opsPerSec: ratio(g.opsPerSec, b.opsPerSec),
          p50: ratio(g.latencyMs.p50, b.latencyMs.p50),
          p95: ratio(g.latencyMs.p95, b.latencyMs.p95),
          p99: ratio(g.latencyMs.p99, b.latencyMs.p99),
          cpuMsPerOp: ratio(g.cpuMsPerOp, b.cpuMsPerOp),
          peakRssMB: ratio(g.peakRssMB, b.peakRssMB),
          opsPerCpuSecond: ratio(g.opsPerCpuSecond, b.opsPerCpuSecond),
        },
      });
    }

    const indexCheck = await checkIndexes(database.uri, results.flatMap((r) => Object.keys(r.gatehouse.dbByCommandPerOp))).catch((err: unknown) => [
      { query: `index check failed: ${(err as Error).message}`, index: null },
    ]);

    const signIn = results.find((r) => r.id === 'sign-in');
    const cores = os.availableParallelism();
    const finished = new Date();
    return {
      startedAt: startedAt.toISOString(),
      finishedAt: finished.toISOString(),
      elapsedSec: (finished.getTime() - startedAt.getTime()) / 1000,
      machine: {
        cpus: cores,
        cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
        memoryGiB: os.totalmem() / 1024 ** 3,
        os: `${os.type()} ${os.release()} ${os.arch()}`,
        node: process.version,
        loadAverageAtStart,
        loadAverageAtEnd: os.loadavg(),
      },
      database: {
        kind: database.kind,
        uri: redact(database.uri),
        standIn: /stand-in/i.test(database.kind),
        ...(dbServer ? { serverProcess: `${dbServer.label}, pid ${dbServer.pid}` } : {}),
      },
      gatehouse: {
        code: options.gatehouseCode === 'source' ? 'TypeScript sources through tsx (not a production build)' : 'production build (dist/)',
        nodeEnv: String(gatehouse.info.nodeEnv),
        logLevel: gatehouse.info.logLevel,
        ...(gatehouse.pid ? { pid: gatehouse.pid } : {}),
      },
      baseline: { oidcProvider: `oidc-provider ${oidcProviderVersion()}, bare, in-memory adapter` },
      options: { ...options, progress: undefined } as Omit<BenchOptions, 'progress'>,
      threadpoolSize: options.threadpoolSize,
      argon2: {
        ...argon2,
        ...(signIn
          ? {
              signIn: {
                gatehouseCpuMsPerSignIn: signIn.gatehouse.cpuMsPerOp,
                gatehousePerCore: 1000 / signIn.gatehouse.cpuMsPerOp,
                ratioToCeiling: argon2.verifyCpuMs / signIn.gatehouse.cpuMsPerOp,
                baselineRatioToCeiling: argon2.verifyCpuMs / signIn.baseline.cpuMsPerOp,
                throughputPerSec: signIn.gatehouse.opsPerSec,
                ratioOfMachineCeiling: signIn.gatehouse.opsPerSec / (argon2.loginsPerSecondPerCore * cores),
              },
            }
          : {}),
      },
      roundTrip,
      scenarios: results,
      indexCheck,
      logs: { dir: logDir },
    };
  } catch (err) {
    throw Object.assign(new Error(`${(err as Error).message}\nTarget logs: ${logDir}`), { cause: err });
  } finally {
    http.close();
    await Promise.all(Object.values(targets).map((t) => t.stop().catch(() => undefined)));
    await dropDatabase(database.uri).catch(() => undefined);
    await database.stop().catch(() => undefined);
  }
}

async function checkIndexes(uri: string, keys: string[]): Promise<BenchResult['indexCheck']> {
  const client = new mongoose.mongo.MongoClient(uri, { serverSelectionTimeoutMS: 3000 });
  try {
    await client.connect();
    const db = client.db();
    const indexes = new Map<string, Array<{ name: string; key: Record<string, unknown> }>>();
    const out: BenchResult['indexCheck'] = [];
    for (const query of [...new Set(keys)].sort()) {
      const { collection, fields } = parseCommandKey(query);
      if (!collection || !fields || fields.length === 0) continue;
      if (!indexes.has(collection)) indexes.set(collection, (await db.collection(collection).listIndexes().toArray()) as Array<{ name: string; key: Record<string, unknown> }>);
      const usable = indexes.get(collection)!.find((index) => fields.includes(Object.keys(index.key)[0]!));
      out.push({ query, index: usable ? usable.name : null });
    }
    return out;
  } finally {
    await client.close();
  }
}

async function dropDatabase(uri: string): Promise<void> {
  const client = new mongoose.mongo.MongoClient(uri, { serverSelectionTimeoutMS: 3000 });
  try {
    await client.connect();
    await client.db().dropDatabase();
  } finally {
    await client.close();
  }
}
