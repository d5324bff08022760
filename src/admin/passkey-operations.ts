/**
 * Administrators' view of an account's passkeys and security keys: list them, revoke one or all.
 * Each revoke is audited (admin.account.passkey_revoked / passkeys_revoked) and the owner gets the
 * security-alert mail. The helpdesk may not act on accounts with an administrative role.
 */
import type { AccountAdmin } from '../accounts/account-admin.js';
import type { AuditLog } from '../audit/audit.js';
import { NotFoundError } from '../errors.js';
import type { PasskeySummary } from '../factors/webauthn/passkey-record.js';
import type { WebAuthnFactor } from '../factors/webauthn/webauthn.js';
import type { SecurityAlerts } from '../notify/security-alerts.js';
import { auditFacts, type AdminCall } from './call.js';
import { forbidden } from './errors.js';
import { isPrivilegedAccount } from './permissions.js';

export interface PasskeyView {
  credentialId: string;
  name: string;
  deviceType: 'singleDevice' | 'multiDevice';
  backedUp: boolean;
  transports: string[];
  aaguid: string;
  createdAt: string;
  lastUsedAt: string | null;
}

const passkeyView = (p: PasskeySummary): PasskeyView => ({
  credentialId: p.credentialId,
  name: p.name,
  deviceType: p.deviceType,
  backedUp: p.backedUp,
  transports: [...p.transports],
  aaguid: p.aaguid,
  createdAt: p.createdAt.toISOString(),
  lastUsedAt: p.lastUsedAt ? p.lastUsedAt.toISOString() : null,
});

export interface PasskeyOperationsDeps {
  accountAdmin: AccountAdmin;
  webauthn: WebAuthnFactor;
  audit: AuditLog;
  alerts: Pick<SecurityAlerts, 'sendInBackground'>;
}

export class PasskeyOperations {
  constructor(private readonly deps: PasskeyOperationsDeps) {}

  /** 404 for an unknown account; 403 for the helpdesk on a privileged one. Returns the account. */
  private async account(accountId: string, call?: AdminCall) {
    const account = await this.deps.accountAdmin.raw(accountId);
    if (call && !call.permissions.has('accounts:write') && isPrivilegedAccount(account.roles ?? [])) {
      throw forbidden('Accounts with an administrative role (admin, helpdesk, auditor) can only be managed by an administrator.');
    }
    return account;
  }

  async list(accountId: string): Promise<PasskeyView[]> {
    await this.account(accountId);
    return (await this.deps.webauthn.list(accountId)).map(passkeyView);
  }

  async revoke(accountId: string, credentialId: string, call: AdminCall): Promise<{ revoked: number }> {
    const account = await this.account(accountId, call);
    if (!(await this.deps.webauthn.remove(accountId, credentialId))) throw new NotFoundError(`the account has no passkey "${credentialId}"`);
    await this.deps.audit.record({ type: 'admin.account.passkey_revoked', outcome: 'success', ...auditFacts(call), target: { kind: 'account', id: accountId }, details: { credentialId } });
    this.alert(account, call);
    return { revoked: 1 };
  }

  async revokeAll(accountId: string, call: AdminCall): Promise<{ revoked: number }> {
    const account = await this.account(accountId, call);
    const revoked = await this.deps.webauthn.removeAll(accountId);
    await this.deps.audit.record({ type: 'admin.account.passkeys_revoked', outcome: 'success', ...auditFacts(call), target: { kind: 'account', id: accountId }, details: { revoked } });
    if (revoked > 0) this.alert(account, call);
    return { revoked };
  }

  private alert(account: { email?: string | null; name: string; userId: string }, call: AdminCall) {
    this.deps.alerts.sendInBackground(account, { kind: 'factor-removed', factor: 'webauthn' }, { at: new Date(), ...(call.ip ? { ip: call.ip } : {}), device: 'Gatehouse administration' });
  }
}
