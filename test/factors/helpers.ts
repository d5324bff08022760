/** Shared by the factor tests: a clock tests move by hand, a log they can read, a database per file. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Connection } from 'mongoose';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { createFactors, type Factors } from '../../src/factors/index.js';
import { PasswordHasher } from '../../src/factors/password/password.js';
import type { Clock } from '../../src/factors/types.js';
import { createLogger, type Logger } from '../../src/logger.js';
import type { Mailer } from '../../src/notify/mailer.js';
import type { SmsGateway } from '../../src/notify/sms.js';
import type { PolicySource } from '../../src/policy/policy-store.js';
import { parsePolicySet, policyFor, type Policy } from '../../src/policy/policy.js';
import { openTestDatabase, testDatabaseUri, TEST_SECRETS_KEY } from '../support/gatehouse.js';

/**
 * Starts at the real time and only moves forward: documents' retention dates then lie in the real
 * future, so the database's TTL monitor never removes something a test still looks at.
 */
export class TestClock implements Clock {
  private current = new Date();
  now(): Date {
    return new Date(this.current);
  }
  advance(seconds: number): void {
    this.current = new Date(this.current.getTime() + seconds * 1000);
  }
}

/** A logger whose every line is kept, so tests can check that no code or secret was logged. */
export function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger('debug', { write: (line: string) => void lines.push(line) }), lines };
}

/** The default policy from the tests' point of view, with markets given inline. */
/** A complete, valid default policy for tests. */
export const TEST_DEFAULT_POLICY: Policy = {
  mfa: 'optional',
  allowDeferral: true,
  factors: ['totp', 'email-otp', 'sms-otp', 'recovery-codes'],
  otp: { length: 6, ttlSeconds: 600, maxAttempts: 5, resendCooldownSeconds: 30, maxSendsPerHour: 5 },
  trustedDevice: { enabled: true, lifetimeDays: 30 },
  lockout: { threshold: 5, durationsMinutes: [5, 15, 60] },
};

export function testPolicies(markets: Record<string, unknown> = {}, defaults: Partial<Policy> = {}): PolicySource {
  const base: Policy = { ...TEST_DEFAULT_POLICY, ...defaults };
  const set = parsePolicySet({ default: base, markets }, 'test policies');
  return { policyFor: (market) => policyFor(set, market) };
}

/** argon2 at the lowest parameters the config allows: the tests check behaviour, not cost. */
export const cheapHasher = () => new PasswordHasher({ memoryCost: 8192, timeCost: 1, parallelism: 1 }, { minLength: 10, maxLength: 256 });

export const secretBox = () => new SecretBox(Buffer.from(TEST_SECRETS_KEY, 'base64'));

export interface FactorTestBed {
  connection: Connection;
  factors: Factors;
  clock: TestClock;
  lines: string[];
  close(): Promise<void>;
}

const unusedMailer: Pick<Mailer, 'send'> = { send: async () => Promise.reject(new Error('no mailer in this test')) };
const unusedSms: SmsGateway = { send: async () => Promise.reject(new Error('no SMS gateway in this test')) };

export async function openFactorTestBed(
  name: string,
  options: { mailer?: Pick<Mailer, 'send'>; sms?: SmsGateway; policies?: PolicySource } = {},
): Promise<FactorTestBed> {
  const database = await openTestDatabase(testDatabaseUri(name));
  const clock = new TestClock();
  const { log, lines } = capturingLogger();
  const factors = await createFactors({
    connection: database.connection,
    secretBox: secretBox(),
    mailer: options.mailer ?? unusedMailer,
    sms: options.sms ?? unusedSms,
    hasher: cheapHasher(),
    policies: options.policies ?? testPolicies(),
    clock,
    log,
  });
  return { connection: database.connection, factors, clock, lines, close: database.close };
}

/** Every document of a collection as one JSON string, for "never stored in clear" checks. */
export async function rawDump(connection: Connection, collection: string): Promise<string> {
  return JSON.stringify(await connection.collection(collection).find({}).toArray());
}

export function subject(overrides: Partial<{ accountId: string; userId: string; name: string; email: string | null; phone: string | null; phoneVerified: boolean; market: string }> = {}) {
  return {
    accountId: `acc-${Math.random().toString(36).slice(2, 10)}`,
    userId: 'jdoe',
    name: 'Jane Doe',
    email: 'jane.doe@example.com',
    phone: null,
    phoneVerified: false,
    market: 'default',
    ...overrides,
  };
}

/** A local HTTP server playing the SMS webhook gateway: keeps every request; answers with `status`. */
export class SmsWebhookReceiver {
  readonly received: Array<{ authorization?: string; contentType?: string; body: { to: string; text: string } }> = [];
  status = 202;
  delayMs = 0;
  private server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      this.received.push({
        authorization: req.headers.authorization,
        contentType: req.headers['content-type'],
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as { to: string; text: string },
      });
      setTimeout(() => {
        res.statusCode = this.status;
        res.end('{"echo":"whatever the gateway says"}');
      }, this.delayMs);
    });
  });

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/sms`;
  }

  /** The code in the last message to `to`. */
  lastCodeTo(to: string): string {
    const message = [...this.received].reverse().find((r) => r.body.to === to);
    const code = message && /\b(\d{6,9})\b/.exec(message.body.text)?.[1];
    if (!code) throw new Error(`no code was texted to ${to}`);
    return code;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
