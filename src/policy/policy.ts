/**
 * Per-market sign-in policy, kept as data (config/policies.json): a complete `default` policy plus
 * `markets`, each a partial override of it. Every market's merged policy is validated up front, so a
 * bad override is reported by its own path (`markets.US.otp.length: …`) before anyone signs in.
 */
import { z } from 'zod';

export const POLICY_FACTORS = ['totp', 'email-otp', 'sms-otp', 'recovery-codes'] as const;
export type PolicyFactor = (typeof POLICY_FACTORS)[number];

const wholeNumber = (min: number, max: number) =>
  z.number({ error: 'must be a number' }).int('must be a whole number').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);

const otpSchema = z
  .object({
    length: wholeNumber(6, 9),
    ttlSeconds: wholeNumber(60, 3600),
    maxAttempts: wholeNumber(1, 10),
    resendCooldownSeconds: wholeNumber(0, 3600),
    maxSendsPerHour: wholeNumber(1, 100),
  })
  .strict();

export const policySchema = z
  .object({
    mfa: z.enum(['required', 'optional', 'off'], { error: 'must be "required", "optional" or "off"' }),
    /** With mfa "required": may an account that has not enrolled yet skip enrolment at sign-in? */
    allowDeferral: z.boolean({ error: 'must be true or false' }),
    factors: z
      .array(z.enum(POLICY_FACTORS, { error: `must be one of ${POLICY_FACTORS.join(', ')}` }))
      .refine((list) => new Set(list).size === list.length, 'must not list a factor twice'),
    otp: otpSchema,
    trustedDevice: z.object({ enabled: z.boolean({ error: 'must be true or false' }), lifetimeDays: wholeNumber(1, 400) }).strict(),
    lockout: z
      .object({
        threshold: wholeNumber(1, 100),
        durationsMinutes: z.array(wholeNumber(1, 7 * 24 * 60)).min(1, 'must list at least one duration'),
      })
      .strict(),
  })
  .strict()
  .superRefine((policy, ctx) => {
    // Recovery codes are a fallback, not a way to sign in every day: a policy with 2FA needs a real factor.
    if (policy.mfa !== 'off' && !policy.factors.some((f) => f !== 'recovery-codes')) {
      ctx.addIssue({ code: 'custom', path: ['factors'], message: 'must allow totp, email-otp or sms-otp when mfa is not "off"' });
    }
  });

export type Policy = z.infer<typeof policySchema>;
export type OtpPolicy = Policy['otp'];

/** Same form as an account's market. Codes are matched case-insensitively ("us" finds "US"). */
const MARKET_CODE = /^[A-Za-z0-9_-]{1,16}$/;

const fileSchema = z
  .object({
    default: z.record(z.string(), z.unknown(), { error: 'must be an object (the complete default policy)' }),
    markets: z.record(z.string(), z.unknown(), { error: 'must be an object of market codes' }).default({}),
  })
  .strict();

export class PolicyError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`Invalid policy file ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'PolicyError';
  }
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Objects merge field by field; anything else (including arrays such as `factors`) is replaced. */
export function mergePolicy(base: Json, override: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = out[key];
    out[key] = isObject(current) && isObject(value) ? mergePolicy(current, value) : value;
  }
  return out;
}

export interface PolicySet {
  default: Policy;
  /** Keyed by upper-cased market code; each value is already merged with the default. */
  markets: ReadonlyMap<string, Policy>;
}

function describe(issues: z.ZodError['issues'], prefix: string): string[] {
  return issues.map((issue) => `${[prefix, ...issue.path.map(String)].filter(Boolean).join('.') || '(root)'}: ${issue.message}`);
}

/** Validates a parsed policies file; throws PolicyError listing every bad field by path. */
export function parsePolicySet(raw: unknown, source: string): PolicySet {
  const file = fileSchema.safeParse(raw);
  if (!file.success) throw new PolicyError(source, describe(file.error.issues, ''));

  const problems: string[] = [];
  const base = policySchema.safeParse(file.data.default);
  if (!base.success) problems.push(...describe(base.error.issues, 'default'));

  const markets = new Map<string, Policy>();
  const seen = new Set<string>();
  for (const [code, override] of Object.entries(file.data.markets)) {
    if (!MARKET_CODE.test(code)) {
      problems.push(`markets.${code}: must be a short market code such as US (letters, digits, "_" or "-", at most 16)`);
      continue;
    }
    if (!isObject(override)) {
      problems.push(`markets.${code}: must be an object (overrides of the default policy)`);
      continue;
    }
    const key = code.toUpperCase();
    if (seen.has(key)) problems.push(`markets.${code}: listed twice (market codes ignore case)`);
    seen.add(key);
    const merged = policySchema.safeParse(mergePolicy(file.data.default, override));
    if (merged.success) markets.set(key, merged.data);
    // With a valid default every fault is the override's; otherwise list only the fields it sets itself,
    // so one mistake in the default is not repeated once per market.
    else problems.push(...describe(merged.error.issues.filter((i) => base.success || overrideSets(override, i.path)), `markets.${code}`));
  }
  if (problems.length > 0 || !base.success) throw new PolicyError(source, problems);
  return { default: base.data, markets };
}

function overrideSets(override: Json, path: PropertyKey[]): boolean {
  let node: unknown = override;
  for (const key of path) {
    if (!isObject(node)) return true; // the override replaced this part wholesale (an array, a wrong type)
    if (!(String(key) in node)) return false;
    node = node[String(key)];
  }
  return true;
}

export function policyFor(set: PolicySet, market: string | null | undefined): Policy {
  return (market && set.markets.get(market.toUpperCase())) || set.default;
}
