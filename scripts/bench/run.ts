/**
 * `npm run bench`: Gatehouse against bare oidc-provider and against the argon2id ceiling (issue 7).
 * See docs/benchmarks.md. Progress goes to stderr, the report to stdout.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_OPTIONS, runBench, type BenchOptions } from './bench.js';
import { formatReport } from './report.js';
import { SCENARIOS } from './scenarios.js';

const HELP = `Usage: npm run bench -- [options]

  --duration S            measured seconds per scenario and target (default ${DEFAULT_OPTIONS.durationSec})
  --warmup S              unmeasured warm-up seconds before each (default ${DEFAULT_OPTIONS.warmupSec})
  --rounds N              measured runs per scenario and target, alternating the targets (G B, B G, …) and
                          added together, to even out a busy machine's drift (default ${DEFAULT_OPTIONS.rounds})
  --connections N         concurrent connections for the request/response scenarios (default ${DEFAULT_OPTIONS.connections})
  --signin-connections N  concurrent users in the sign-in scenario (default ${DEFAULT_OPTIONS.signInConnections})
  --accounts N            accounts seeded into each target, each with TOTP; an account signs in at most once per
                          30-s TOTP step, so give at least the sign-ins one step can see (default ${DEFAULT_OPTIONS.accounts})
  --argon2-samples N      argon2id verifications timed for the ceiling (default ${DEFAULT_OPTIONS.argon2Samples})
  --round-trip-samples N  database commands timed for the cost of one round trip (default ${DEFAULT_OPTIONS.roundTripSamples})
  --scenarios a,b         only these (${SCENARIOS.map((s) => s.id).join(', ')})
  --threadpool N          UV_THREADPOOL_SIZE for both targets (default: $UV_THREADPOOL_SIZE, else max(4, cores) = ${DEFAULT_OPTIONS.threadpoolSize})
  --db-uri URI            MongoDB server to use (default: what the tests use: MONGODB_URI, a local mongod, else the stand-in)
  --no-build              use dist/ as it is instead of running npm run build first
  --source                run Gatehouse from its TypeScript sources (quick checks only; not a production build)
  --profile               also write CPU profiles of both targets per scenario and summarise them
                          (finding costs only: profiling slows the targets, so do not record those figures)
  --json FILE             also write every figure as JSON to FILE
  -h, --help
`;

function positive(name: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > max) {
    console.error(`--${name} must be a number from 0 to ${max}`);
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  options: {
    duration: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    'signin-connections': { type: 'string' },
    accounts: { type: 'string' },
    'argon2-samples': { type: 'string' },
    'round-trip-samples': { type: 'string' },
    scenarios: { type: 'string' },
    threadpool: { type: 'string' },
    'db-uri': { type: 'string' },
    'no-build': { type: 'boolean' },
    source: { type: 'boolean' },
    profile: { type: 'boolean' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const connections = Math.max(1, Math.round(positive('connections', values.connections, DEFAULT_OPTIONS.connections, 1000)));
const options: Partial<BenchOptions> = {
  durationSec: Math.max(0.5, positive('duration', values.duration, DEFAULT_OPTIONS.durationSec, 600)),
  warmupSec: positive('warmup', values.warmup, DEFAULT_OPTIONS.warmupSec, 60),
  rounds: Math.max(1, Math.round(positive('rounds', values.rounds, DEFAULT_OPTIONS.rounds, 20))),
  connections,
  signInConnections: Math.max(1, Math.round(positive('signin-connections', values['signin-connections'], DEFAULT_OPTIONS.signInConnections, 1000))),
  accounts: Math.max(1, Math.round(positive('accounts', values.accounts, DEFAULT_OPTIONS.accounts, 1000))),
  argon2Samples: Math.max(1, Math.round(positive('argon2-samples', values['argon2-samples'], DEFAULT_OPTIONS.argon2Samples, 1000))),
  roundTripSamples: Math.max(10, Math.round(positive('round-trip-samples', values['round-trip-samples'], DEFAULT_OPTIONS.roundTripSamples, 100_000))),
  scenarios: values.scenarios ? values.scenarios.split(',').map((s) => s.trim()).filter(Boolean) : [],
  threadpoolSize: Math.max(1, Math.round(positive('threadpool', values.threadpool, DEFAULT_OPTIONS.threadpoolSize, 1024))),
  gatehouseCode: values.source ? 'source' : values['no-build'] ? 'existing' : 'build',
  profile: Boolean(values.profile),
  ...(values['db-uri'] ? { dbUri: values['db-uri'] } : {}),
  progress: (line) => process.stderr.write(`[bench] ${line}\n`),
};

try {
  const result = await runBench(options);
  const report = formatReport(result);
  process.stdout.write(`\n${report}\n`);
  if (values.json) {
    writeFileSync(values.json, JSON.stringify({ ...result, report }, null, 2) + '\n');
    process.stderr.write(`[bench] wrote ${values.json}\n`);
  }
  process.exit(0);
} catch (err) {
  process.stderr.write(`\nbenchmark failed: ${(err as Error).message}\n`);
  process.exit(1);
}
