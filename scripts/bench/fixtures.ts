/**
 * What both targets (Gatehouse and the bare oidc-provider baseline) are seeded with: the same two
 * clients, the same accounts and passwords, and the same JWT resource server. Secrets are random per run.
 */
import { randomBytes } from 'node:crypto';

export interface BenchClient {
  clientId: string;
  clientSecret: string;
  name: string;
}

export interface BenchWebClient extends BenchClient {
  redirectUri: string;
}

export interface BenchAccount {
  userId: string;
  email: string;
  name: string;
}

export interface Fixtures {
  /** A service: client_credentials with client_secret_basic (scenarios 1 and 2). */
  service: BenchClient;
  /** A first-party web app: authorization code + PKCE, client_secret_basic, consent not asked (scenarios 3 and 5). */
  web: BenchWebClient;
  accounts: BenchAccount[];
  /** Every account has this password. */
  password: string;
}

/**
 * The resource server behind the JWT scenario: a client_credentials token requested with
 * `resource=BENCH_RESOURCE.indicator` is a JWT signed with ES256 (RFC 9068 style), on both targets.
 */
export const BENCH_RESOURCE = {
  indicator: 'urn:gatehouse:bench:api',
  scope: 'bench.read',
  accessTokenTTL: 600,
} as const;

export function createFixtures(accountCount: number): Fixtures {
  const secret = () => randomBytes(32).toString('base64url');
  return {
    service: { clientId: 'bench-service', clientSecret: secret(), name: 'Benchmark service' },
    web: { clientId: 'bench-web', clientSecret: secret(), name: 'Benchmark web app', redirectUri: 'http://localhost:9/bench/callback' },
    accounts: Array.from({ length: accountCount }, (_, i) => ({
      userId: `bench-user-${i}`,
      email: `bench-user-${i}@bench.example`,
      name: `Bench User ${i}`,
    })),
    password: `Correct-horse-${randomBytes(6).toString('base64url')}`,
  };
}

export function basicAuth(client: BenchClient): string {
  // RFC 6749 2.3.1: form-urlencode each part before base64.
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(client.clientId)}:${enc(client.clientSecret)}`).toString('base64')}`;
}
