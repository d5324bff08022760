/**
 * The administration services shared by the admin API and the CLI.
 */
import type { Connection } from 'mongoose';
import type { RateLimits } from '../http/rate-limit.js';
import type Provider from 'oidc-provider';
import { AccountAdmin } from '../accounts/account-admin.js';
import type { AccountService } from '../accounts/accounts.js';
import { Invitations } from '../accounts/invitations.js';
import type { AuditLog } from '../audit/audit.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Mailer } from '../notify/mailer.js';
import type { SecurityAlerts } from '../notify/security-alerts.js';
import type { ClientRegistry } from '../oidc/clients.js';
import type { Lockout } from '../accounts/lockout.js';
import type { GuessLimit } from '../interactions/guess-limit.js';
import type { TrustedDeviceFactor } from '../factors/trusted-device/trusted-device.js';
import type { WebAuthnFactor } from '../factors/webauthn/webauthn.js';
import { ensureRegistrationTokenIndexes, RegistrationTokenStore } from '../oidc/registration.js';
import { AccountOperations } from './account-operations.js';
import { ClientOperations } from './client-operations.js';
import { PasskeyOperations } from './passkey-operations.js';

export interface AdminServices {
  accountAdmin: AccountAdmin;
  invitations: Invitations;
  registrationTokens: RegistrationTokenStore;
  accountOps: AccountOperations;
  clientOps: ClientOperations;
  /** An account's passkeys and security keys: list, revoke. */
  passkeyOps: PasskeyOperations;
}

export interface AdminDeps {
  config: Config;
  log: Logger;
  connection: Connection;
  provider: Provider;
  accounts: AccountService;
  clients: ClientRegistry;
  audit: AuditLog;
  mailer: Mailer;
  lockout: Lockout;
  /** Wrong second-factor codes per account: an unlock lifts their pause too. */
  guesses: GuessLimit;
  /** The sign-in throttle per identifier: an unlock lifts it too. */
  rateLimits: RateLimits;
  trustedDevices: TrustedDeviceFactor;
  webauthn: WebAuthnFactor;
  alerts: SecurityAlerts;
}

export async function createAdminServices(deps: AdminDeps): Promise<AdminServices> {
  const accountAdmin = new AccountAdmin(deps.connection, deps.accounts, deps.lockout, deps.guesses, deps.rateLimits);
  const invitations = new Invitations(deps.connection);
  const registrationTokens = new RegistrationTokenStore(deps.provider, deps.connection);
  await Promise.all([invitations.ensureIndexes(), ensureRegistrationTokenIndexes(deps.connection)]);
  const accountOps = new AccountOperations({
    accounts: deps.accounts,
    accountAdmin,
    invitations,
    audit: deps.audit,
    mailer: deps.mailer,
    log: deps.log,
    issuer: deps.config.issuer,
    invitationLifetimeSeconds: deps.config.invitations.lifetimeHours * 3600,
    trustedDevices: deps.trustedDevices,
    alerts: deps.alerts,
  });
  const clientOps = new ClientOperations(deps.clients, registrationTokens, deps.audit);
  const passkeyOps = new PasskeyOperations({ accountAdmin, webauthn: deps.webauthn, audit: deps.audit, alerts: deps.alerts });
  return { accountAdmin, invitations, registrationTokens, accountOps, clientOps, passkeyOps };
}
