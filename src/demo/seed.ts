/**
 * Development demo data: a relying-party client for /demo and an account to sign in with. Idempotent;
 * the client's redirect URIs follow the current issuer (the port may change between runs).
 */
import type { Services } from '../app.js';
import { clientAdapter } from '../oidc/clients.js';

export interface DemoCredentials {
  clientId: string;
  userId: string;
  password: string;
  /** A second demo account in a market that requires two-step verification (codes at /dev/mailbox). */
  mfaUserId: string;
}

/** The market whose policy requires 2FA without deferral in the shipped config/policies.json. */
const MFA_MARKET = 'US';

/** US when the policy file still requires 2FA there, else another market that does, else none. */
function twoStepMarket(services: Services): string | null {
  const requiresTwoStep = (market: string) => services.policies.policyFor(market).mfa === 'required';
  const markets = services.policies.marketCodes().filter((m) => m !== 'default');
  if (markets.includes(MFA_MARKET) && requiresTwoStep(MFA_MARKET)) return MFA_MARKET;
  return markets.find(requiresTwoStep) ?? null;
}

export async function seedDemo(services: Services): Promise<DemoCredentials> {
  const { config, clients, accounts, provider, log } = services;
  const { clientId, userId, password } = config.demo;
  const redirectUri = `${config.issuer}/demo/callback`;

  const existing = await clientAdapter(provider).find(clientId);
  const current = existing as { redirect_uris?: string[] } | undefined;
  if (!current || current.redirect_uris?.[0] !== redirectUri) {
    if (current) await clients.remove(clientId);
    await clients.create({
      clientId,
      name: 'Gatehouse demo app',
      redirectUris: [redirectUri],
      postLogoutRedirectUris: [`${config.issuer}/demo`],
      grantTypes: ['authorization_code', 'refresh_token'],
      authMethod: 'client_secret_basic',
    });
    log.info({ clientId }, 'seeded the demo client');
  }

  const mfaUserId = `${userId}-2fa`;
  const mfaMarket = twoStepMarket(services);
  if (!mfaMarket) log.warn({ userId: mfaUserId }, 'no market in the policy file requires two-step verification: the two-step demo account signs in with its password only');
  const demoAccounts = [
    { userId, name: 'Demo User', market: 'default' },
    { userId: mfaUserId, name: 'Demo Two-Step User', market: mfaMarket ?? 'default' },
  ];
  for (const demo of demoAccounts) {
    if (await accounts.findByLogin(demo.userId)) continue;
    await accounts.create({ ...demo, email: `${demo.userId}@example.com`, emailVerified: true, password });
    log.info({ userId: demo.userId }, 'seeded a demo account');
  }
  return { clientId, userId, password, mfaUserId };
}
