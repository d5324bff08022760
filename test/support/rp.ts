/**
 * Relying-party side of the end-to-end tests: openid-client (a third-party RP library) drives the
 * protocol; the Browser submits Gatehouse's pages.
 */
import * as oidc from 'openid-client';
import { Browser, type Page } from './browser.js';

export const RP_REDIRECT = 'http://localhost:8976/callback';

export async function discover(issuer: string, clientId: string, clientSecret?: string): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), clientId, clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
}

export interface AuthorizationAttempt {
  browser: Browser;
  page: Page;
  verifier: string;
  state: string;
  nonce: string;
}

/** Starts an authorization request and follows Gatehouse's redirects to its first page. */
export async function startAuthorization(
  rp: oidc.Configuration,
  params: Record<string, string> = {},
  browser = new Browser(),
): Promise<AuthorizationAttempt> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: RP_REDIRECT,
    scope: 'openid profile email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...params,
  });
  const page = await browser.follow(url.href, isCallback);
  return { browser, page, verifier, state, nonce };
}

export function isCallback(url: string): boolean {
  return url.startsWith(RP_REDIRECT);
}

/** Password page → (consent page → approve) → the RP's callback URL. */
export async function signIn(attempt: AuthorizationAttempt, login: string, password: string, options: { consent?: boolean } = {}): Promise<Page> {
  let page = await attempt.browser.submit(attempt.page, '/login', { login, password }, isCallback);
  if (options.consent !== false && !isCallback(page.url)) {
    page = await attempt.browser.submit(page, '/confirm', {}, isCallback);
  }
  return page;
}

export async function exchange(rp: oidc.Configuration, attempt: AuthorizationAttempt, callbackUrl: string, tokenParameters?: Record<string, string>) {
  return oidc.authorizationCodeGrant(
    rp,
    new URL(callbackUrl),
    {
      pkceCodeVerifier: attempt.verifier,
      expectedState: attempt.state,
      expectedNonce: attempt.nonce,
    },
    tokenParameters,
  );
}
