/**
 * The password-hashing ceiling: one argon2id verification at Gatehouse's configured parameters, run
 * alone and one at a time, bounds how many password sign-ins one core can do per second.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import argon2 from 'argon2';

export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export interface Argon2Ceiling {
  params: Argon2Params;
  samples: number;
  /** Medians of the samples, one verification at a time. */
  verifyWallMs: number;
  verifyCpuMs: number;
  /** 1000 / verifyCpuMs: password verifications one core can do per second. */
  loginsPerSecondPerCore: number;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export async function measureArgon2(params: Argon2Params, samples: number): Promise<Argon2Ceiling> {
  const password = randomBytes(12).toString('base64url');
  const hash = await argon2.hash(password, { type: argon2.argon2id, ...params });
  if (!(await argon2.verify(hash, password))) throw new Error('argon2 verify failed on its own hash');
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < Math.max(1, samples); i++) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await argon2.verify(hash, password);
    wall.push(performance.now() - t0);
    const used = process.cpuUsage(cpu0);
    cpu.push((used.user + used.system) / 1000);
  }
  const verifyCpuMs = median(cpu);
  return { params, samples: wall.length, verifyWallMs: median(wall), verifyCpuMs, loginsPerSecondPerCore: 1000 / verifyCpuMs };
}
