/**
 * The sign-in driver: one complete authorization code flow, done the way a browser and a relying party
 * do it. The RP builds the authorization request (PKCE S256, state, nonce); the "browser" (a fresh cookie
 * jar per sign-in) follows every redirect and, on every HTML page, submits the form a person would submit,
 * filling in the fields it recognises; when the redirect reaches the RP's redirect_uri the RP exchanges
 * the code at the token endpoint.
 *
 * Nothing here knows Gatehouse's page sequence. A page is one more form: the password page today; the
 * second-factor page once issue 4 lands needs only `Credentials.oneTimeCode` (an input with
 * autocomplete="one-time-code" or named code/otp/totp is filled from it).
 */
import { createHash, randomBytes } from 'node:crypto';
import { basicAuth, type BenchWebClient } from './fixtures.js';
import { CookieJar, isRedirect, setCookieHeaders, type HttpClient, type HttpResponse } from './http.js';

export interface Credentials {
  login: string;
  password: string;
  /** The current one-time code for a second-factor page (TOTP, issue 4). Not used yet. */
  oneTimeCode?: () => string | Promise<string>;
}

export interface TokenResponse {
  access_token: string;
  token_type: string;
  id_token?: string;
  refresh_token?: string;
  expires_in?: number;
  scope?: string;
}

export interface SignInResult {
  tokens: TokenResponse;
  /** HTTP requests this sign-in made, the token request included. */
  requests: number;
  /** The forms submitted, by action path with the interaction id removed (e.g. "/interaction/:uid/login"). */
  forms: string[];
}

export interface Endpoints {
  authorization: URL;
  token: URL;
}

const MAX_STEPS = 20;

// ---- HTML forms -----------------------------------------------------------------------------------

interface FormField {
  tag: 'input' | 'button';
  name: string;
  type: string;
  value: string;
  autocomplete: string;
  checked: boolean;
}

export interface HtmlForm {
  action: string;
  method: string;
  fields: FormField[];
}

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, entity: string) => {
    const e = entity.toLowerCase();
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e] ?? _;
  });
}

function attributes(tag: string): Map<string, string> {
  const attrs = new Map<string, string>();
  const inner = tag.replace(/^<\w+/, '').replace(/\/?>$/, '');
  for (const match of inner.matchAll(/([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
    attrs.set(match[1]!.toLowerCase(), decodeEntities(match[2] ?? match[3] ?? match[4] ?? ''));
  }
  return attrs;
}

export function parseForms(html: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const match of html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/gi)) {
    const source = match[0];
    const formAttrs = attributes(/^<form\b[^>]*>/i.exec(source)![0]);
    const fields: FormField[] = [];
    for (const tag of source.matchAll(/<(input|button)\b[^>]*>/gi)) {
      const attrs = attributes(tag[0]);
      const name = attrs.get('name');
      if (!name) continue;
      const kind = tag[1]!.toLowerCase() as FormField['tag'];
      fields.push({
        tag: kind,
        name,
        type: (attrs.get('type') ?? (kind === 'button' ? 'submit' : 'text')).toLowerCase(),
        value: attrs.get('value') ?? '',
        autocomplete: (attrs.get('autocomplete') ?? '').toLowerCase(),
        checked: attrs.has('checked'),
      });
    }
    forms.push({ action: formAttrs.get('action') ?? '', method: (formAttrs.get('method') ?? 'get').toLowerCase(), fields });
  }
  return forms;
}

/** Forms a person signing in does not press: cancel, deny, sign out. */
const DECLINE = /abort|cancel|deny|decline|logout|sign-?out/i;

type Filled = { ok: true; data: URLSearchParams } | { ok: false; missing: string[] };

async function fill(form: HtmlForm, credentials: Credentials): Promise<Filled> {
  const data = new URLSearchParams();
  const missing: string[] = [];
  let pressed = false;
  for (const field of form.fields) {
    if (field.type === 'submit' || field.type === 'button' || field.type === 'image') {
      // The first named submit button is the one pressed, as a browser sends it.
      if (!pressed && field.type === 'submit') {
        data.append(field.name, field.value);
        pressed = true;
      }
      continue;
    }
    if (field.type === 'hidden') data.append(field.name, field.value);
    else if (field.type === 'checkbox' || field.type === 'radio') {
      if (field.checked) data.append(field.name, field.value || 'on');
    } else if (field.type === 'password') data.append(field.name, credentials.password);
    else if (field.autocomplete.includes('one-time-code') || /^(code|otp|totp|one_?time_?code)$/i.test(field.name)) {
      if (credentials.oneTimeCode) data.append(field.name, await credentials.oneTimeCode());
      else missing.push(`${field.name} (a one-time code: second factor)`);
    } else if (field.autocomplete.includes('username') || field.autocomplete.includes('email') || /^(login|username|email|identifier)$/i.test(field.name)) {
      data.append(field.name, credentials.login);
    } else if (field.value) data.append(field.name, field.value);
    else missing.push(field.name);
  }
  return missing.length > 0 ? { ok: false, missing } : { ok: true, data };
}

function pageTitle(html: string): string {
  return /<title>([^<]*)<\/title>/i.exec(html)?.[1]?.trim() ?? '(no title)';
}

// ---- the flow -------------------------------------------------------------------------------------

export class SignInDriver {
  constructor(
    private readonly http: HttpClient,
    private readonly endpoints: Endpoints,
    private readonly client: BenchWebClient,
    private readonly scope = 'openid profile email',
  ) {}

  async signIn(credentials: Credentials): Promise<SignInResult> {
    const jar = new CookieJar();
    const verifier = randomBytes(32).toString('base64url');
    const state = randomBytes(16).toString('base64url');
    const nonce = randomBytes(16).toString('base64url');
    const authorize = new URL(this.endpoints.authorization);
    authorize.search = new URLSearchParams({
      client_id: this.client.clientId,
      response_type: 'code',
      redirect_uri: this.client.redirectUri,
      scope: this.scope,
      state,
      nonce,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();

    let requests = 0;
    const forms: string[] = [];
    const browse = async (url: URL, init: { method?: string; body?: string } = {}): Promise<HttpResponse> => {
      const headers: Record<string, string> = { accept: 'text/html,application/xhtml+xml', 'user-agent': 'gatehouse-bench' };
      const cookie = jar.header(url);
      if (cookie) headers.cookie = cookie;
      if (init.body !== undefined) {
        headers['content-type'] = 'application/x-www-form-urlencoded';
        headers.origin = url.origin;
      }
      requests++;
      const response = await this.http.request(url, { ...init, headers });
      jar.store(setCookieHeaders(response), url);
      return response;
    };

    let response = await browse(authorize);
    for (let step = 0; step < MAX_STEPS; step++) {
      if (isRedirect(response)) {
        const next = new URL(response.headers.location!, response.url);
        if (next.href.startsWith(this.client.redirectUri)) {
          const tokens = await this.exchange(next, state, verifier);
          requests++;
          return { tokens, requests, forms };
        }
        response = await browse(next);
        continue;
      }
      if (response.status === 200 && /text\/html/.test(String(response.headers['content-type']))) {
        const candidates = parseForms(response.body).filter((f) => !DECLINE.test(f.action));
        const problems: string[] = [];
        let submitted = false;
        for (const form of candidates) {
          const filled = await fill(form, credentials);
          if (!filled.ok) {
            problems.push(`${form.action}: cannot fill ${filled.missing.join(', ')}`);
            continue;
          }
          const action = new URL(form.action || response.url.href, response.url);
          forms.push(action.pathname.replace(/\/interaction\/[^/]+/, '/interaction/:uid'));
          if (form.method === 'post') response = await browse(action, { method: 'POST', body: filled.data.toString() });
          else {
            action.search = filled.data.toString();
            response = await browse(action);
          }
          submitted = true;
          break;
        }
        if (!submitted) {
          throw new Error(`page "${pageTitle(response.body)}" at ${response.url.pathname} has no form the driver can submit${problems.length ? `: ${problems.join('; ')}` : ''}`);
        }
        continue;
      }
      throw new Error(`unexpected ${response.status} "${pageTitle(response.body)}" at ${response.url.pathname}: ${response.body.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200)}`);
    }
    throw new Error(`no callback after ${MAX_STEPS} steps`);
  }

  private async exchange(callback: URL, state: string, verifier: string): Promise<TokenResponse> {
    const params = callback.searchParams;
    if (params.get('error')) throw new Error(`the authorization ended with ${params.get('error')}: ${params.get('error_description') ?? ''}`);
    if (params.get('state') !== state) throw new Error('state mismatch on the callback');
    const code = params.get('code');
    if (!code) throw new Error('no code on the callback');
    const response = await this.http.request(this.endpoints.token, {
      method: 'POST',
      headers: { authorization: basicAuth(this.client), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: this.client.redirectUri, code_verifier: verifier }).toString(),
    });
    if (response.status !== 200) throw new Error(`token exchange answered ${response.status}: ${response.body.slice(0, 200)}`);
    const tokens = JSON.parse(response.body) as TokenResponse;
    if (!tokens.access_token || !tokens.id_token) throw new Error('token exchange returned no access_token or id_token');
    return tokens;
  }
}

/** The payload of a JWS, unverified: the bench checks claims it was handed over loopback, not signatures. */
export function jwtParts(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [header, payload] = token.split('.');
  if (!header || !payload) throw new Error('not a JWT');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>,
  };
}
