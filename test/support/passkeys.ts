/**
 * Registers a passkey for an account through the real ceremony, with the software authenticator of
 * the factor tests standing in for the browser (for tests that need a passkey but no browser).
 */
import { SoftwareAuthenticator } from '../factors/webauthn-authenticator.js';
import type { RunningGatehouse } from '../../src/server.js';
import { subjectFromAccount } from '../../src/factors/index.js';

export async function registerSoftwarePasskey(gh: Pick<RunningGatehouse, 'services' | 'url'>, accountId: string, authenticator = new SoftwareAuthenticator(), name = 'Test key') {
  const account = await gh.services.accounts.findByAccountId(accountId);
  if (!account) throw new Error(`no account ${accountId}`);
  const subject = subjectFromAccount(account);
  const binding = { sessionKey: `test-${accountId}-${authenticator.keys.length}-${Math.random()}` };
  const options = await gh.services.factors.webauthn.registrationOptions(subject, binding);
  const response = authenticator.create(options, new URL(gh.url).origin);
  const outcome = await gh.services.factors.webauthn.verifyRegistration(subject, response, { ...binding, name });
  if (!outcome.ok) throw new Error(`passkey registration failed: ${outcome.reason}`);
  return { authenticator, credentialId: response.id };
}
