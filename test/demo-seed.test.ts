/**
 * The development demo data follows the policy file it runs with: the two-step demo account goes into a
 * market that requires two-step verification, US when the file still has it, another one when not.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { seedDemo } from '../src/demo/seed.js';
import { createLogger } from '../src/logger.js';
import { PolicyStore, policiesFile } from '../src/policy/policy-store.js';
import { startTestGatehouse, type TestGatehouse } from './support/gatehouse.js';

let gh: TestGatehouse;

beforeAll(async () => {
  gh = await startTestGatehouse('demo_seed');
});

afterAll(async () => {
  await gh?.close();
});

function policyStore(edit: (markets: Record<string, { mfa: string }>) => void): PolicyStore {
  const shipped = JSON.parse(readFileSync(policiesFile({}), 'utf8')) as { markets: Record<string, { mfa: string }> };
  edit(shipped.markets);
  const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-policies-'));
  writeFileSync(path.join(dir, 'policies.json'), JSON.stringify(shipped));
  return PolicyStore.open(path.join(dir, 'policies.json'), { log: createLogger('silent') });
}

test('the two-step demo account is in US with the shipped policy file', async () => {
  const demo = await seedDemo(gh.services);
  expect((await gh.services.accounts.findByLogin(demo.mfaUserId))?.market).toBe('US');
});

test('without US in the policy file it goes into another market that requires two-step verification', async () => {
  const policies = policyStore((markets) => delete markets.US);
  const services = { ...gh.services, policies, config: { ...gh.config, demo: { ...gh.config.demo, userId: 'demo-nous' } } };
  const demo = await seedDemo(services);
  const market = (await gh.services.accounts.findByLogin(demo.mfaUserId))?.market;
  expect(market).not.toBe('US');
  expect(policies.policyFor(market).mfa).toBe('required');
});
