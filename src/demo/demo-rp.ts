/**
 * A tiny relying party served at /demo in development: a "Sign in" button that runs the real
 * authorization code flow (PKCE, state, nonce) against this Gatehouse with openid-client, then shows
 * the ID token claims and userinfo. It is never mounted in production.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import * as oidc from 'openid-client';
import type { Services } from '../app.js';

const TX_COOKIE = 'gh_demo_tx';
const ID_TOKEN_COOKIE = 'gh_demo_idt';

export function demoRoutes(services: Services): Router {
  const { config, provider } = services;
  const router = new Router({ prefix: '/demo' });
  const callbackUrl = `${config.issuer}/demo/callback`;
  const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, signed: true, secure: config.issuer.startsWith('https:'), path: '/demo' };
  // Discovered once per client secret: a rotated secret (CLI `client rotate-secret`) is picked up on the
  // next sign-in, as soon as the provider serves the new one.
  let discovered: { secret: string | undefined; configuration: Promise<oidc.Configuration> } | undefined;

  async function rpConfiguration(): Promise<oidc.Configuration> {
    const client = await provider.Client.find(config.demo.clientId);
    if (!client) throw Object.assign(new Error('The demo client is not registered.'), { status: 404, expose: true });
    let current = discovered;
    if (!current || current.secret !== client.clientSecret) {
      const configuration = oidc
        .discovery(new URL(config.issuer), client.clientId, client.clientSecret, undefined, {
          execute: config.issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [],
        })
        .catch((err: unknown) => {
          discovered = undefined;
          throw err;
        });
      discovered = current = { secret: client.clientSecret, configuration };
    }
    return current.configuration;
  }

  /** What went wrong, with the OAuth error the token endpoint gave when there was one. */
  function describe(err: unknown): string {
    const { error, error_description: description } = err as { error?: unknown; error_description?: unknown };
    if (typeof error === 'string') return `${error}${typeof description === 'string' ? ` (${description})` : ''}`;
    return (err as Error).message;
  }

  async function page(ctx: Context, locals: Record<string, unknown>): Promise<void> {
    await ctx.render('demo', { title: 'Demo relying party', result: null, error: null, userId: config.demo.userId, password: config.demo.password, ...locals });
  }

  router.get('/', async (ctx) => page(ctx, {}));

  router.get('/login', async (ctx) => {
    const rp = await rpConfiguration();
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    ctx.cookies.set(TX_COOKIE, JSON.stringify({ verifier, state, nonce }), { ...cookieOptions, maxAge: 10 * 60 * 1000 });
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: callbackUrl,
      scope: 'openid profile email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    ctx.redirect(url.href);
  });

  router.get('/callback', async (ctx) => {
    const raw = ctx.cookies.get(TX_COOKIE, { signed: true });
    ctx.cookies.set(TX_COOKIE, null, cookieOptions);
    if (typeof ctx.query.error === 'string') {
      ctx.status = 400;
      return page(ctx, { error: `${ctx.query.error}: ${String(ctx.query.error_description ?? '')}` });
    }
    if (!raw) {
      ctx.status = 400;
      return page(ctx, { error: 'This sign-in was not started here, or took too long. Press "Sign in" again.' });
    }
    const tx = JSON.parse(raw) as { verifier: string; state: string; nonce: string };
    const rp = await rpConfiguration();
    try {
      const tokens = await oidc.authorizationCodeGrant(rp, new URL(ctx.href), {
        pkceCodeVerifier: tx.verifier,
        expectedState: tx.state,
        expectedNonce: tx.nonce,
      });
      const claims = tokens.claims()!;
      const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, claims.sub);
      ctx.cookies.set(ID_TOKEN_COOKIE, tokens.id_token ?? '', { ...cookieOptions, maxAge: 60 * 60 * 1000 });
      return page(ctx, { result: { claims, userinfo } });
    } catch (err) {
      ctx.status = 400;
      return page(ctx, { error: `The code exchange failed: ${describe(err)}` });
    }
  });

  router.get('/logout', async (ctx) => {
    const rp = await rpConfiguration();
    const idToken = ctx.cookies.get(ID_TOKEN_COOKIE, { signed: true });
    ctx.cookies.set(ID_TOKEN_COOKIE, null, cookieOptions);
    const url = oidc.buildEndSessionUrl(rp, {
      post_logout_redirect_uri: `${config.issuer}/demo`,
      ...(idToken ? { id_token_hint: idToken } : {}),
    });
    ctx.redirect(url.href);
  });

  return router;
}
