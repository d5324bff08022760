/**
 * The benchmark (scripts/bench/, `npm run bench`) is not part of the suite; this runs every scenario of
 * it for about a second against both targets so that it cannot rot. Gatehouse runs from its TypeScript
 * sources here (no build), on the test database server.
 */
import { runBench } from '../scripts/bench/bench.js';
import { formatReport } from '../scripts/bench/report.js';
import { SCENARIOS } from '../scripts/bench/scenarios.js';

test('every benchmark scenario runs against Gatehouse and the baseline and yields real figures', async () => {
  const dbUri = process.env.GATEHOUSE_TEST_DB_URI;
  if (!dbUri) throw new Error('GATEHOUSE_TEST_DB_URI is not set: run through jest (global setup starts the database)');

  const result = await runBench({
    gatehouseCode: 'source',
    dbUri,
    durationSec: 1,
    warmupSec: 0,
    connections: 2,
    signInConnections: 2,
    // Each account signs in at most once per 30-s TOTP step: enough for a second of sign-ins on the baseline.
    accounts: 80,
    argon2Samples: 2,
    roundTripSamples: 20,
  });

  expect(result.scenarios.map((s) => s.id)).toEqual(SCENARIOS.map((s) => s.id));
  for (const scenario of result.scenarios) {
    for (const target of ['gatehouse', 'baseline'] as const) {
      const m = scenario[target];
      const where = `${scenario.id} on ${target}`;
      expect({ where, errors: m.errors, samples: m.errorSamples }).toEqual({ where, errors: 0, samples: [] });
      expect({ where, ops: m.ops > 0 }).toEqual({ where, ops: true });
      expect(m.opsPerSec).toBeGreaterThan(0);
      expect(m.cpuMsPerOp).toBeGreaterThan(0);
      expect(m.peakRssMB).toBeGreaterThan(10);
      expect(Number.isFinite(m.latencyMs.p50) && m.latencyMs.p99 >= m.latencyMs.p50).toBe(true);
    }
    // The baseline keeps everything in memory; Gatehouse's round trips are counted by command monitoring.
    expect(scenario.baseline.dbRoundTripsPerOp).toBe(0);
    expect(Number.isFinite(scenario.ratio.cpuMsPerOp)).toBe(true);
  }

  const byId = Object.fromEntries(result.scenarios.map((s) => [s.id, s]));
  // An opaque client_credentials token is stored: writes happen, at most one per token (concurrent tokens
  // share one write command: group commit); discovery needs no database.
  expect(byId['cc-opaque']!.gatehouse.dbRoundTripsPerOp).toBeGreaterThan(0);
  expect(byId['cc-opaque']!.gatehouse.dbRoundTripsPerOp).toBeLessThanOrEqual(1.05);
  expect(Object.keys(byId['cc-opaque']!.gatehouse.dbByCommandPerOp).some((k) => k.startsWith('update oidc_client_credentials'))).toBe(true);
  expect(byId['discovery-jwks']!.gatehouse.dbRoundTripsPerOp).toBe(0);
  // The sign-in went through the password form and then the TOTP form on both targets, the ID token says
  // both factors were used, each sign-in is several requests, and no sign-in waited for a free account.
  for (const target of ['gatehouse', 'baseline'] as const) {
    const facts = byId['sign-in']!.facts[target]!;
    expect(facts).toMatchObject({ formsSubmitted: expect.stringMatching(/\/login → .*\/second-factor$/), accountWaits: 0 });
    expect(String(facts.amr).split(' ')).toEqual(expect.arrayContaining(['pwd', 'otp']));
    expect(byId['sign-in']![target].httpRequestsPerOp).toBeGreaterThanOrEqual(5);
  }
  // The TOTP step costs Gatehouse database work of its own (the credential read and the replay-guarded write).
  expect(Object.keys(byId['sign-in']!.gatehouse.dbByCommandPerOp).some((k) => k.startsWith('findAndModify credentials'))).toBe(true);

  expect(result.argon2.verifyCpuMs).toBeGreaterThan(0);
  expect(result.argon2.signIn?.ratioToCeiling).toBeGreaterThan(0);
  expect(result.indexCheck.length).toBeGreaterThan(0);
  // The price of one round trip is measured, and the report sets it against the room each target leaves.
  expect(result.roundTrip.samples).toBeGreaterThanOrEqual(20);
  expect(result.roundTrip.aloneCpuMs).toBeGreaterThan(0);
  expect(result.roundTrip.concurrentCpuMs).toBeGreaterThan(0);

  const report = formatReport(result);
  expect(report).toMatch(/client_credentials \(opaque\): 0\.9× leaves [\d.]+ ms\/op beyond the baseline's [\d.]+; its [\d.]+ trips\/op cost about [\d.]+ ms\/op/);
  expect(report).toMatch(/sign-in: 0\.8× leaves [\d.]+ ms per sign-in beyond argon2id's [\d.]+/);
  for (const scenario of SCENARIOS) expect(report).toContain(scenario.title);
  expect(report).toContain('password + TOTP');
  expect(report).not.toContain('PASSWORD ONLY');
}, 90_000);
