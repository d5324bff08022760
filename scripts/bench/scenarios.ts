/**
 * The scenarios of issue 7. Each `prepare` first checks, with one real request, that the target answers
 * correctly (so a broken endpoint cannot pass as a fast one), then returns the load to run.
 */
import { BENCH_RESOURCE, basicAuth, type Fixtures } from './fixtures.js';
import type { HttpClient, HttpResponse } from './http.js';
import type { Load } from './load.js';
import { jwtParts, SignInDriver } from './signin-driver.js';
import type { TotpAccounts } from './totp-accounts.js';
import type { TargetName } from './targets.js';

export interface DiscoveryMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  userinfo_endpoint: string;
  introspection_endpoint: string;
  jwks_uri: string;
}

export interface TargetContext {
  name: TargetName;
  /** Where the load connects: http://127.0.0.1:PORT (the issuer says localhost). */
  origin: string;
  metadata: DiscoveryMetadata;
  fixtures: Fixtures;
  http: HttpClient;
  driver: SignInDriver;
  /** The seeded accounts with their authenticator apps, taken in turn (TOTP replay protection). */
  accounts: TotpAccounts;
}

export interface Prepared {
  load: Load;
  /** What the check saw, for the report (e.g. the forms a sign-in submitted). */
  facts: Record<string, string | number>;
}

export interface Scenario {
  id: string;
  /** The scenario's number in issue 7. */
  number: string;
  title: string;
  /** What one operation is. */
  op: string;
  note?: string;
  prepare(target: TargetContext): Promise<Prepared>;
}

export const SIGN_IN_NOTE =
  'password + TOTP: every seeded account is enrolled with an authenticator app (TOTP) and is challenged for it after the password; the driver computes the current code.';

export async function discover(http: HttpClient, issuer: string): Promise<DiscoveryMetadata> {
  const response = await http.request(new URL(`${issuer}/.well-known/openid-configuration`), { headers: { accept: 'application/json' } });
  const metadata = expectJson<DiscoveryMetadata>(response, 'discovery');
  for (const key of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'introspection_endpoint', 'jwks_uri'] as const) {
    if (typeof metadata[key] !== 'string') throw new Error(`discovery lacks ${key}`);
  }
  return metadata;
}

function expectJson<T>(response: HttpResponse, what: string): T {
  if (response.status !== 200) throw new Error(`${what}: HTTP ${response.status}: ${response.body.slice(0, 300)}`);
  try {
    return JSON.parse(response.body) as T;
  } catch {
    throw new Error(`${what}: not JSON: ${response.body.slice(0, 200)}`);
  }
}

const pathOf = (url: string) => {
  const u = new URL(url);
  return u.pathname + u.search;
};

const FORM = 'application/x-www-form-urlencoded';

async function post(t: TargetContext, endpoint: string, body: string, authorization: string): Promise<HttpResponse> {
  return t.http.request(new URL(endpoint), { method: 'POST', headers: { authorization, 'content-type': FORM, accept: 'application/json' }, body });
}

function postLoad(t: TargetContext, endpoint: string, body: string, authorization: string): Load {
  return { kind: 'http', origin: t.origin, requests: [{ method: 'POST', path: pathOf(endpoint), headers: { authorization, 'content-type': FORM, accept: 'application/json' }, body }] };
}

interface TokenBody {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope?: string;
}

async function clientCredentialsToken(t: TargetContext, body: string): Promise<TokenBody> {
  const token = expectJson<TokenBody>(await post(t, t.metadata.token_endpoint, body, basicAuth(t.fixtures.service)), 'client_credentials');
  if (token.token_type !== 'Bearer' || typeof token.access_token !== 'string') throw new Error(`client_credentials: unexpected answer ${JSON.stringify(token)}`);
  return token;
}


const CC_OPAQUE_BODY = 'grant_type=client_credentials';
const CC_JWT_BODY = new URLSearchParams({ grant_type: 'client_credentials', resource: BENCH_RESOURCE.indicator, scope: BENCH_RESOURCE.scope }).toString();

export const SCENARIOS: Scenario[] = [
  {
    id: 'cc-opaque',
    number: '1a',
    title: 'client_credentials (opaque)',
    op: 'token request',
    async prepare(t) {
      const token = await clientCredentialsToken(t, CC_OPAQUE_BODY);
      if (token.access_token.includes('.')) throw new Error('expected an opaque access token, got a JWT');
      return { load: postLoad(t, t.metadata.token_endpoint, CC_OPAQUE_BODY, basicAuth(t.fixtures.service)), facts: { tokenLength: token.access_token.length } };
    },
  },
  {
    id: 'cc-jwt',
    number: '1b',
    title: 'client_credentials (JWT ES256)',
    op: 'token request',
    note: `resource=${BENCH_RESOURCE.indicator}: configured on Gatehouse as a resource server (resourceServers, JWT ES256), on the baseline through getResourceServerInfo`,
    async prepare(t) {
      const token = await clientCredentialsToken(t, CC_JWT_BODY);
      const { header, payload } = jwtParts(token.access_token);
      if (header.alg !== 'ES256' || header.typ !== 'at+jwt') throw new Error(`expected an ES256 at+jwt, got ${JSON.stringify(header)}`);
      if (payload.aud !== BENCH_RESOURCE.indicator || payload.client_id !== t.fixtures.service.clientId) throw new Error(`unexpected JWT claims ${JSON.stringify(payload)}`);
      return { load: postLoad(t, t.metadata.token_endpoint, CC_JWT_BODY, basicAuth(t.fixtures.service)), facts: { alg: String(header.alg), scope: String(payload.scope ?? '') } };
    },
  },
  {
    id: 'introspection',
    number: '2',
    title: 'introspection',
    op: 'introspection request',
    note: 'an opaque client_credentials token, introspected by its own client',
    async prepare(t) {
      const token = await clientCredentialsToken(t, CC_OPAQUE_BODY);
      const body = new URLSearchParams({ token: token.access_token }).toString();
      const answer = expectJson<{ active?: boolean; client_id?: string }>(await post(t, t.metadata.introspection_endpoint, body, basicAuth(t.fixtures.service)), 'introspection');
      if (answer.active !== true || answer.client_id !== t.fixtures.service.clientId) throw new Error(`introspection: unexpected answer ${JSON.stringify(answer)}`);
      return { load: postLoad(t, t.metadata.introspection_endpoint, body, basicAuth(t.fixtures.service)), facts: {} };
    },
  },
  {
    id: 'userinfo',
    number: '3',
    title: 'userinfo',
    op: 'userinfo request',
    note: 'an access token from a code-flow sign-in (scope openid profile email)',
    async prepare(t) {
      let login = '';
      const { tokens } = await t.accounts.with((credentials) => ((login = credentials.login), t.driver.signIn(credentials)));
      const authorization = `Bearer ${tokens.access_token}`;
      const response = await t.http.request(new URL(t.metadata.userinfo_endpoint), { headers: { authorization, accept: 'application/json' } });
      const claims = expectJson<{ sub?: string; email?: string }>(response, 'userinfo');
      if (!claims.sub || claims.email !== t.fixtures.accounts.find((a) => a.userId === login)?.email) throw new Error(`userinfo: unexpected claims ${JSON.stringify(claims)}`);
      return { load: { kind: 'http', origin: t.origin, requests: [{ method: 'GET', path: pathOf(t.metadata.userinfo_endpoint), headers: { authorization, accept: 'application/json' } }] }, facts: {} };
    },
  },
  {
    id: 'discovery-jwks',
    number: '4',
    title: 'discovery + JWKS',
    op: 'request (discovery and JWKS alternate)',
    async prepare(t) {
      const jwks = expectJson<{ keys?: Array<{ alg?: string }> }>(await t.http.request(new URL(t.metadata.jwks_uri)), 'jwks');
      const algs = (jwks.keys ?? []).map((k) => k.alg).sort();
      if (!algs.includes('ES256') || !algs.includes('RS256')) throw new Error(`jwks: expected ES256 and RS256 keys, got ${algs.join(', ')}`);
      return {
        load: {
          kind: 'http',
          origin: t.origin,
          requests: [
            { method: 'GET', path: '/.well-known/openid-configuration', headers: { accept: 'application/json' } },
            { method: 'GET', path: pathOf(t.metadata.jwks_uri), headers: { accept: 'application/json' } },
          ],
        },
        facts: { keys: algs.join(' ') },
      };
    },
  },
  {
    id: 'sign-in',
    number: '5',
    title: 'sign-in (password + TOTP)',
    op: 'complete sign-in',
    note: `the full authorization code flow: authorize → password form → TOTP code form → code → token exchange (PKCE); first-party client, so consent is already granted. ${SIGN_IN_NOTE}`,
    async prepare(t) {
      const result = await t.accounts.with((credentials) => t.driver.signIn(credentials));
      const { payload } = jwtParts(result.tokens.id_token!);
      const amr = Array.isArray(payload.amr) ? payload.amr.map(String) : [];
      if (!amr.includes('pwd') || !amr.includes('otp')) throw new Error(`sign-in: ID token amr is ${JSON.stringify(payload.amr)}, expected "pwd" and "otp"`);
      const stallsBefore = t.accounts.stalls;
      return {
        load: {
          kind: 'driver',
          run: async () => (await t.accounts.with((credentials) => t.driver.signIn(credentials))).requests,
        },
        facts: {
          httpRequestsPerSignIn: result.requests,
          formsSubmitted: result.forms.join(' → ') || '(none)',
          amr: amr.join(' '),
          accounts: t.fixtures.accounts.length,
          get accountWaits() {
            return t.accounts.stalls - stallsBefore;
          },
        },
      };
    },
  },
];

export function createDriver(http: HttpClient, metadata: DiscoveryMetadata, fixtures: Fixtures): SignInDriver {
  return new SignInDriver(http, { authorization: new URL(metadata.authorization_endpoint), token: new URL(metadata.token_endpoint) }, fixtures.web);
}
