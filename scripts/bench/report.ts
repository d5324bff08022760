/**
 * The human-readable report: a table per scenario (Gatehouse, baseline, ratio), where Gatehouse's
 * database round trips go, the argon2id ceiling, and the issue's targets.
 */
import type { BenchResult, Measurement, ScenarioResult } from './bench.js';
import { SIGN_IN_NOTE } from './scenarios.js';
import { BENCH_RESOURCE } from './fixtures.js';

const COLUMNS = [
  { title: 'Scenario', width: 35, align: 'left' },
  { title: 'Target', width: 10, align: 'left' },
  { title: 'ops/s', width: 8 },
  { title: 'p50 ms', width: 8 },
  { title: 'p95 ms', width: 8 },
  { title: 'p99 ms', width: 8 },
  { title: 'CPU ms/op', width: 10 },
  { title: 'ops/CPU-s', width: 10 },
  { title: 'peak RSS MB', width: 12 },
  { title: 'DB trips/op', width: 12 },
  { title: 'errors', width: 7 },
] as const;

function num(value: number, digits?: number): string {
  if (!Number.isFinite(value)) return '–';
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  return value.toFixed(d);
}

function times(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : '–';
}

function row(cells: string[]): string {
  return cells
    .map((cell, i) => {
      const column = COLUMNS[i]!;
      const text = cell.length > column.width ? cell.slice(0, column.width - 1) + '…' : cell;
      return 'align' in column && column.align === 'left' ? text.padEnd(column.width) : text.padStart(column.width);
    })
    .join(' ')
    .trimEnd();
}

function measurementRow(label: string, target: string, m: Measurement, db: boolean): string {
  return row([
    label,
    target,
    num(m.opsPerSec),
    num(m.latencyMs.p50),
    num(m.latencyMs.p95),
    num(m.latencyMs.p99),
    num(m.cpuMsPerOp, 3),
    num(m.opsPerCpuSecond, 0),
    num(m.peakRssMB, 0),
    db ? num(m.dbRoundTripsPerOp, 2) : '0 (memory)',
    String(m.errors),
  ]);
}

/**
 * How much CPU per operation each target leaves Gatehouse beyond what the baseline (or argon2id) needs,
 * set against what its database round trips alone cost at the measured price of one: when the trips
 * cost more than the room, no other saving can meet that target on this machine.
 */
function roomForTargets(result: BenchResult): string[] {
  const rt = result.roundTrip;
  const out: string[] = [];
  for (const id of ['cc-opaque', 'introspection']) {
    const s = result.scenarios.find((x) => x.id === id);
    if (!s || !(s.gatehouse.dbRoundTripsPerOp > 0)) continue;
    const room = s.baseline.cpuMsPerOp / 0.9 - s.baseline.cpuMsPerOp;
    const trips = s.gatehouse.dbRoundTripsPerOp * rt.concurrentCpuMs;
    out.push(`  ${s.title}: 0.9× leaves ${room.toFixed(3)} ms/op beyond the baseline's ${s.baseline.cpuMsPerOp.toFixed(3)}; its ${s.gatehouse.dbRoundTripsPerOp.toFixed(2)} trips/op cost about ${trips.toFixed(3)} ms/op (at ${rt.concurrentCpuMs.toFixed(2)} ms each, ${rt.inFlight} in flight)`);
  }
  const si = result.scenarios.find((x) => x.id === 'sign-in');
  if (si && result.argon2.signIn) {
    const argon2 = result.argon2.verifyCpuMs;
    const room = argon2 / 0.8 - argon2;
    const [low, high] = [Math.min(rt.concurrentCpuMs, rt.aloneCpuMs), Math.max(rt.concurrentCpuMs, rt.aloneCpuMs)];
    const trips = (price: number) => (si.gatehouse.dbRoundTripsPerOp * price).toFixed(1);
    out.push(`  sign-in: 0.8× leaves ${room.toFixed(1)} ms per sign-in beyond argon2id's ${argon2.toFixed(1)}; the baseline (no database) spends ${(si.baseline.cpuMsPerOp - argon2).toFixed(1)} ms there, and Gatehouse's ${si.gatehouse.dbRoundTripsPerOp.toFixed(1)} trips cost ${trips(low)}–${trips(high)} ms (between the two prices above)`);
  }
  return out.length ? ['Room the targets leave, and what the database round trips alone cost (at least: the price is a small findOne):', ...out] : [];
}

function scenarioRows(s: ScenarioResult): string[] {
  const r = s.ratio;
  return [
    measurementRow(`${s.number}. ${s.title}`, 'Gatehouse', s.gatehouse, true),
    measurementRow('', 'baseline', s.baseline, false),
    row(['', 'ratio', times(r.opsPerSec), times(r.p50), times(r.p95), times(r.p99), times(r.cpuMsPerOp), times(r.opsPerCpuSecond), times(r.peakRssMB), '', '']),
  ];
}

function verdict(value: number, threshold: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value >= threshold ? 'met' : 'NOT met';
}

export function formatReport(result: BenchResult): string {
  const lines: string[] = [];
  const m = result.machine;
  const o = result.options;
  lines.push(`Gatehouse benchmark, ${result.startedAt} (${result.elapsedSec.toFixed(0)} s)`);
  lines.push(`Machine:   ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB.toFixed(0)} GiB, ${m.os}, Node ${m.node}; load average ${m.loadAverageAtStart.map((x) => x.toFixed(2)).join(' ')} at start, ${m.loadAverageAtEnd.map((x) => x.toFixed(2)).join(' ')} at end`);
  lines.push(`Database:  ${result.database.kind} (${result.database.uri})`);
  if (result.database.standIn) {
    lines.push('           The stand-in (Python) is far slower than a real mongod, and shares the cores with Gatehouse and the load generator:');
    lines.push('           Gatehouse\'s ops/s and latencies are held back by it. Compare CPU ms/op (ops/CPU-s) and DB trips/op, which do not');
    lines.push('           depend on the database\'s speed.');
  }
  const a = result.argon2.params;
  lines.push(`Gatehouse: ${result.gatehouse.code}, NODE_ENV=${result.gatehouse.nodeEnv}, log level ${String(result.gatehouse.logLevel)}, UV_THREADPOOL_SIZE=${result.threadpoolSize}, argon2id m=${a.memoryCost} KiB t=${a.timeCost} p=${a.parallelism}, bench API ${BENCH_RESOURCE.indicator} in resourceServers`);
  lines.push(`Baseline:  ${result.baseline.oidcProvider}, same clients, keys of the same kinds, same token formats, argon2id password form`);
  lines.push(`Load:      ${o.connections} connections (sign-in: ${o.signInConnections} concurrent users), ${o.warmupSec} s warm-up + ${o.rounds > 1 ? `${o.rounds} × ${o.durationSec} s measured per scenario and target, the targets alternating` : `${o.durationSec} s measured per scenario and target`}; the load generator runs on the same machine`);
  if (result.scenarios.some((s) => s.id === 'sign-in')) lines.push(`Scenario 5: ${SIGN_IN_NOTE}`);
  lines.push('');
  lines.push(row(COLUMNS.map((c) => c.title)));
  lines.push('-'.repeat(row(COLUMNS.map((c) => c.title)).length));
  for (const s of result.scenarios) lines.push(...scenarioRows(s), '');
  lines.push('ops/CPU-s = operations per second of the target\'s own CPU time (all threads): 1000 ÷ CPU ms/op. Ratio = Gatehouse ÷ baseline.');
  lines.push('');

  lines.push('Where Gatehouse\'s database round trips go (commands per operation):');
  for (const s of result.scenarios) {
    const parts = Object.entries(s.gatehouse.dbByCommandPerOp)
      .filter(([, n]) => n >= 0.005)
      .map(([command, n]) => `${command} ${n.toFixed(2)}`);
    lines.push(`  ${s.title}: ${parts.join(', ') || 'none'}`);
  }
  lines.push('');

  const dbServerRows = result.scenarios.filter((s) => s.gatehouse.dbServer && s.gatehouse.dbRoundTripsPerOp > 0);
  if (dbServerRows.length) {
    lines.push(`The database server process (${result.database.serverProcess}) during the Gatehouse runs: CPU ms per operation, and cores busy on average:`);
    for (const s of dbServerRows) lines.push(`  ${s.title}: ${num(s.gatehouse.dbServer!.cpuMsPerOp, 2)} ms/op, ${num(s.gatehouse.dbServer!.cores, 2)} cores`);
    lines.push('');
  }

  if (result.indexCheck.length) {
    const missing = result.indexCheck.filter((c) => !c.index);
    lines.push(`Index check (listIndexes; every query shape Gatehouse sent → an index it can use): ${missing.length ? `${missing.length} WITHOUT an index` : 'all indexed'}`);
    for (const c of result.indexCheck) lines.push(`  ${c.query.padEnd(52)} ${c.index ?? 'NO INDEX'}`);
    lines.push('');
  }

  const details = result.scenarios.flatMap((s) => {
    const notes: string[] = [`  ${s.title} (one op = one ${s.op})${s.note ? `: ${s.note}` : ''}`];
    for (const [target, facts] of Object.entries(s.facts)) {
      const text = Object.entries(facts ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');
      if (text) notes.push(`    ${target}: ${text}`);
    }
    for (const target of ['gatehouse', 'baseline'] as const) {
      const measured = s[target];
      if (measured.errorSamples.length) notes.push(`    ${target} errors: ${measured.errorSamples.slice(0, 5).join(' | ')}`);
    }
    return notes.length > 1 || s.note ? notes : [];
  });
  if (details.length) lines.push('Scenario notes:', ...details, '');

  const ar = result.argon2;
  lines.push(`argon2id verify (m=${a.memoryCost} KiB, t=${a.timeCost}, p=${a.parallelism}), ${ar.samples} samples one at a time: median ${ar.verifyCpuMs.toFixed(1)} ms CPU (${ar.verifyWallMs.toFixed(1)} ms wall)`);
  lines.push(`Ceiling:   ${ar.loginsPerSecondPerCore.toFixed(1)} password sign-ins/s per core (${(ar.loginsPerSecondPerCore * m.cpus).toFixed(0)}/s on ${m.cpus} cores)`);
  if (ar.signIn) {
    const si = ar.signIn;
    lines.push('Sign-in:   password + TOTP (the argon2id ceiling counts the password only: the TOTP step adds its own cost on top)');
    lines.push(`           Gatehouse ${si.gatehouseCpuMsPerSignIn.toFixed(1)} CPU ms per sign-in = ${si.gatehousePerCore.toFixed(1)} sign-ins/s per core = ${si.ratioToCeiling.toFixed(2)}× the ceiling (target ≥ 0.80×: ${verdict(si.ratioToCeiling, 0.8)}); baseline ${si.baselineRatioToCeiling.toFixed(2)}×`);
    lines.push(`           measured ${si.throughputPerSec.toFixed(1)} sign-ins/s = ${si.ratioOfMachineCeiling.toFixed(2)}× the ${m.cpus}-core ceiling (the load generator${result.database.standIn ? ' and the stand-in database' : ''} share those cores)`);
  }
  lines.push('');

  const rt = result.roundTrip;
  lines.push(`One database round trip (${rt.command} with Gatehouse's driver, timed from the bench process while the targets idle): ${rt.aloneCpuMs.toFixed(2)} ms CPU each one after another (${rt.aloneWallMs.toFixed(2)} ms wall), ${rt.concurrentCpuMs.toFixed(2)} ms each with ${rt.inFlight} in flight`);
  lines.push(...roomForTargets(result));
  lines.push('');

  lines.push('Targets of issue 7:');
  for (const id of ['cc-opaque', 'cc-jwt', 'introspection']) {
    const s = result.scenarios.find((x) => x.id === id);
    if (!s) continue;
    lines.push(
      `  ${s.title} ≥ 0.9× baseline: throughput ${times(s.ratio.opsPerSec)} (${verdict(s.ratio.opsPerSec, 0.9)}), per CPU-second ${times(s.ratio.opsPerCpuSecond)} (${verdict(s.ratio.opsPerCpuSecond, 0.9)})`,
    );
  }
  if (ar.signIn) lines.push(`  sign-in ≥ 0.8× the argon2id ceiling (per core): ${ar.signIn.ratioToCeiling.toFixed(2)}× (${verdict(ar.signIn.ratioToCeiling, 0.8)})`);
  const cc = result.scenarios.find((x) => x.id === 'cc-opaque');
  const si = result.scenarios.find((x) => x.id === 'sign-in');
  if (cc || si) {
    lines.push(
      `  Keycloak's sizing per vCPU: 120 client-credentials grants/s and 15 password logins/s. Gatehouse per core of its own CPU:${cc ? ` ${num(cc.gatehouse.opsPerCpuSecond, 0)} grants/s (opaque)` : ''}${si ? `, ${num(si.gatehouse.opsPerCpuSecond, 1)} sign-ins/s` : ''}`,
    );
  }
  const profiles = result.scenarios.flatMap((s) => (['gatehouse', 'baseline'] as const).flatMap((t) => (s[t].profile ? [`${s.title}, ${t}:`, s[t].profile!.summary, ''] : [])));
  if (profiles.length) {
    lines.push('', 'CPU profiles (main thread, self time; profiling slows the targets, so the table above is not comparable with unprofiled runs):', '', ...profiles);
  }
  lines.push('');
  lines.push(`Target logs: ${result.logs.dir}`);
  return lines.join('\n');
}
