/**
 * The policies file, loaded at start (an invalid file stops Gatehouse with a message per bad field) and
 * picked up again when it changes: at most once a second a lookup stats the file, and a changed file is
 * re-read and validated. An invalid new version is logged and ignored; the last good one stays in force.
 * So a policy change takes effect at the next sign-in, without a restart.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../config.js';
import { systemClock, type Clock } from '../factors/types.js';
import type { Logger } from '../logger.js';
import { parsePolicySet, policyFor, PolicyError, type Policy, type PolicySet } from './policy.js';

/** What the factors and the sign-in flow need: the policy that applies to an account's market. */
export interface PolicySource {
  policyFor(market: string | null | undefined): Policy;
}

/** What account input is checked against: the market codes the policy file names (upper-cased), now. */
export interface MarketCatalogue {
  marketCodes(): string[];
}

/** config/policies.json, or the same file in GATEHOUSE_CONFIG_DIR (where the other config files live). */
export function policiesFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.GATEHOUSE_CONFIG_DIR ?? path.join(projectRoot, 'config'), 'policies.json');
}

function fileSignature(file: string): string {
  const stat = statSync(file);
  return `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
}

function readPolicySet(file: string): PolicySet {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new PolicyError(file, [(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file does not exist' : `not readable JSON: ${(err as Error).message}`]);
  }
  return parsePolicySet(raw, file);
}

export interface PolicyStoreOptions {
  log: Logger;
  clock?: Clock;
  /** How often, at most, a lookup checks the file for changes. */
  checkIntervalMs?: number;
}

export class PolicyStore implements PolicySource, MarketCatalogue {
  private set: PolicySet;
  private signature: string;
  private lastCheck: number;
  private readonly clock: Clock;
  private readonly checkIntervalMs: number;

  /** Throws PolicyError (every bad field by path) if the file is missing or invalid. */
  static open(file: string, options: PolicyStoreOptions): PolicyStore {
    const signature = fileSignature(file);
    return new PolicyStore(file, readPolicySet(file), signature, options);
  }

  private constructor(
    readonly file: string,
    set: PolicySet,
    signature: string,
    private readonly options: PolicyStoreOptions,
  ) {
    this.set = set;
    this.signature = signature;
    this.clock = options.clock ?? systemClock;
    this.checkIntervalMs = options.checkIntervalMs ?? 1000;
    this.lastCheck = this.clock.now().getTime();
  }

  policyFor(market: string | null | undefined): Policy {
    this.refresh();
    return policyFor(this.set, market);
  }

  /** The markets the file names now (after a check for changes), sorted; `default` is not among them. */
  marketCodes(): string[] {
    return [...this.current().markets.keys()].sort();
  }

  /** The policies now in force (after a check for changes). */
  current(): PolicySet {
    this.refresh();
    return this.set;
  }

  private refresh(): void {
    const now = this.clock.now().getTime();
    if (now - this.lastCheck < this.checkIntervalMs) return;
    this.lastCheck = now;
    let signature: string;
    try {
      signature = fileSignature(this.file);
    } catch (err) {
      if (this.signature !== 'missing') this.options.log.error({ file: this.file, reason: (err as Error).message }, 'policies file is gone; keeping the policies in force');
      this.signature = 'missing';
      return;
    }
    if (signature === this.signature) return;
    // Remember the version even if it is bad, so its problems are logged once, not every second.
    this.signature = signature;
    try {
      this.set = readPolicySet(this.file);
      this.options.log.info({ file: this.file }, 'policies reloaded');
    } catch (err) {
      const problems = err instanceof PolicyError ? err.problems : [(err as Error).message];
      this.options.log.error({ file: this.file, problems }, 'policies file changed but is invalid; keeping the last good version');
    }
  }
}
