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

  if (!(await accounts.findByLogin(userId))) {
    await accounts.create({ userId, email: `${userId}@example.com`, name: 'Demo User', emailVerified: true, password, market: 'default' });
    log.info({ userId }, 'seeded the demo account');
  }
  return { clientId, userId, password };
}
