/**
 * Account administration as the API and the CLI perform it: each operation checks what the caller
 * may do to this particular account, does the work, and writes one audit entry with the changed
 * fields. Reads are not audited; every change is.
 */
import { AccountAdmin, accountView, type AccountPatch, type AccountView, type Changes, type StatusAction, type UnlockCleared } from '../accounts/account-admin.js';
import type { AccountService, NewAccountInput } from '../accounts/accounts.js';
import type { Invitations } from '../accounts/invitations.js';
import type { TrustedDeviceFactor, TrustedDeviceSummary } from '../factors/trusted-device/trusted-device.js';
import type { AuditLog } from '../audit/audit.js';
import { ConflictError, InputError, NotFoundError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Mailer } from '../notify/mailer.js';
import type { SecurityAlerts } from '../notify/security-alerts.js';
import { auditFacts, type AdminCall } from './call.js';
import { forbidden } from './errors.js';
import { isPrivilegedAccount } from './permissions.js';

export interface AccountOperationsDeps {
  accounts: AccountService;
  accountAdmin: AccountAdmin;
  invitations: Invitations;
  audit: AuditLog;
  mailer: Mailer;
  log: Logger;
  issuer: string;
  invitationLifetimeSeconds: number;
  trustedDevices: TrustedDeviceFactor;
  alerts: Pick<SecurityAlerts, 'sendInBackground'>;
}

export interface TrustedDeviceView {
  id: string;
  label: string;
  firstSeenAt: string;
  lastSeenAt: string;
  lastIp: string | null;
  expiresAt: string;
}

const deviceView = (d: TrustedDeviceSummary): TrustedDeviceView => ({
  id: d.id,
  label: d.label,
  firstSeenAt: d.firstSeenAt.toISOString(),
  lastSeenAt: d.lastSeenAt.toISOString(),
  lastIp: d.lastIp,
  expiresAt: d.expiresAt.toISOString(),
});

export interface InvitationResult {
  sent: boolean;
  expiresAt: string;
}

/** Mail that invites a disabled account's owner to act would only lead to a refused sign-in. */
function refuseDisabled(account: { status?: string }): void {
  if (account.status === 'disabled') throw new ConflictError('the account is disabled; enable it first');
}

const STATUS_EVENTS: Record<StatusAction, string> = { disable: 'admin.account.disabled', enable: 'admin.account.enabled', unlock: 'admin.account.unlocked' };

export class AccountOperations {
  constructor(private readonly deps: AccountOperationsDeps) {}

  private target(accountId: string) {
    return { kind: 'account', id: accountId };
  }

  /**
   * The helpdesk may not act on accounts that hold an administrative role: resetting an
   * administrator's second factor (or locking one out) is an administrator's decision.
   */
  private async assertMayManage(call: AdminCall, accountId: string): Promise<void> {
    if (call.permissions.has('accounts:write')) return;
    const account = await this.deps.accountAdmin.raw(accountId);
    if (isPrivilegedAccount(account.roles ?? [])) {
      throw forbidden('Accounts with an administrative role (admin, helpdesk, auditor) can only be managed by an administrator.');
    }
  }

  private async sendInvitation(account: { accountId: string; userId: string; email?: string | null; name: string }, call: AdminCall): Promise<InvitationResult> {
    const { token, expiresAt } = await this.deps.invitations.issue(account.accountId, this.deps.invitationLifetimeSeconds, call.actor);
    let sent = true;
    try {
      await this.deps.mailer.send(account.email!, 'You have been invited to Gatehouse', 'account-invitation', {
        name: account.name,
        userId: account.userId,
        link: `${this.deps.issuer}/activate/${token}`,
        expiresAt: expiresAt.toUTCString(),
      });
    } catch (err) {
      sent = false;
      this.deps.log.warn({ err: { message: (err as Error).message }, accountId: account.accountId, requestId: call.requestId }, 'the invitation mail could not be sent');
    }
    return { sent, expiresAt: expiresAt.toISOString() };
  }

  /** Creates an account; without a password, it gets an invitation by email to set one. */
  async create(input: NewAccountInput, call: AdminCall): Promise<{ account: AccountView; invitation?: InvitationResult }> {
    const invite = input.password === undefined;
    if (invite && !input.email) {
      throw new InputError('invalid account: an account created without a password needs an email address for its invitation', {
        email: 'required when no password is given (the invitation is sent there)',
      });
    }
    const created = await this.deps.accounts.create(input);
    const account = accountView(created.toObject());
    const invitation = invite ? await this.sendInvitation(created, call) : undefined;
    const { accountId, userId, email, name, phone, market, roles } = account;
    await this.deps.audit.record({
      type: 'admin.account.created',
      outcome: 'success',
      ...auditFacts(call),
      target: this.target(accountId),
      changes: Object.fromEntries(Object.entries({ userId, email, name, phone, market, roles }).map(([k, v]) => [k, { before: null, after: v }])),
      details: { withPassword: !invite, ...(invitation ? { invitation } : {}) },
    });
    return { account, ...(invitation ? { invitation } : {}) };
  }

  /** Sends a new invitation (the earlier link stops working) to an account that has no password yet. */
  async resendInvitation(accountId: string, call: AdminCall): Promise<InvitationResult> {
    const account = await this.deps.accountAdmin.raw(accountId);
    refuseDisabled(account);
    if (account.passwordHash) throw new ConflictError('the account already has a password: there is nothing to activate');
    if (!account.email) throw new ConflictError('the account has no email address to send the invitation to');
    const invitation = await this.sendInvitation(account, call);
    await this.deps.audit.record({ type: 'admin.account.invitation_sent', outcome: invitation.sent ? 'success' : 'failure', ...auditFacts(call), target: this.target(accountId), details: { ...invitation } });
    return invitation;
  }

  async update(accountId: string, patch: AccountPatch, call: AdminCall): Promise<{ account: AccountView; changes: Changes }> {
    // An administrator cannot take their own admin role away: someone else must, so nobody locks themselves out by mistake.
    if (call.actor.kind === 'account' && call.actor.id === accountId && patch.roles && !patch.roles.includes('admin')) {
      const self = await this.deps.accountAdmin.raw(accountId);
      if (self.roles?.includes('admin')) throw new ConflictError('you cannot remove your own admin role; ask another administrator');
    }
    const { account, changes } = await this.deps.accountAdmin.update(accountId, patch);
    // An invitation went to the old address: it must not keep working for whoever reads that mailbox.
    if (changes.email) await this.deps.invitations.cancel(accountId);
    if (Object.keys(changes).length > 0) {
      await this.deps.audit.record({ type: 'admin.account.updated', outcome: 'success', ...auditFacts(call), target: this.target(accountId), changes });
    }
    return { account, changes };
  }

  /** Disabling also ends the account's sessions and revokes its grants and tokens, so it takes effect now. */
  /** `cleared` (unlock only): whether a lock after wrong passwords and a pause after wrong second-factor codes were lifted. */
  async setStatus(
    accountId: string,
    action: StatusAction,
    call: AdminCall,
  ): Promise<{ account: AccountView; revoked?: { sessions: number; grants: number; tokens: number }; cleared?: UnlockCleared }> {
    if (action === 'disable' && call.actor.kind === 'account' && call.actor.id === accountId) {
      throw new ConflictError('you cannot disable your own account');
    }
    await this.assertMayManage(call, accountId);
    const { account, changes, cleared } = await this.deps.accountAdmin.setStatus(accountId, action, call.actor);
    const revoked = action === 'disable' ? await this.deps.accountAdmin.revokeSessionsAndGrants(accountId) : undefined;
    // A disabled account's remembered devices must not outlive it (re-enabling starts without them).
    const trustedDevicesRevoked = action === 'disable' ? await this.deps.trustedDevices.revokeAll(accountId) : undefined;
    if (action === 'disable') await this.deps.invitations.cancel(accountId);
    const details = revoked ? { revoked, trustedDevicesRevoked } : cleared ? { cleared } : undefined;
    await this.deps.audit.record({ type: STATUS_EVENTS[action], outcome: 'success', ...auditFacts(call), target: this.target(accountId), changes, ...(details ? { details } : {}) });
    return { account, ...(revoked ? { revoked } : {}), ...(cleared ? { cleared } : {}) };
  }

  async resetSecondFactor(accountId: string, call: AdminCall): Promise<{ credentialsRemoved: number; hadSecondFactor: boolean }> {
    await this.assertMayManage(call, accountId);
    const result = await this.deps.accountAdmin.resetSecondFactor(accountId);
    // Device trust stood in for the second factor that is now gone.
    const trustedDevicesRevoked = await this.deps.trustedDevices.revokeAll(accountId);
    if (result.hadSecondFactor || result.credentialsRemoved > 0) {
      const account = await this.deps.accountAdmin.raw(accountId);
      this.deps.alerts.sendInBackground(account, { kind: 'factor-removed', factor: 'two-step verification (reset by an administrator)' }, { at: new Date() });
    }
    await this.deps.audit.record({
      type: 'admin.account.second_factor_reset',
      outcome: 'success',
      ...auditFacts(call),
      target: this.target(accountId),
      details: { ...result, trustedDevicesRevoked },
      ...(result.hadSecondFactor ? { changes: { mfa: { before: 'enrolled', after: null } } } : {}),
    });
    return result;
  }

  async revokeSessions(accountId: string, call: AdminCall): Promise<{ sessions: number; grants: number; tokens: number }> {
    const revoked = await this.deps.accountAdmin.revokeSessionsAndGrants(accountId);
    await this.deps.audit.record({ type: 'admin.account.sessions_revoked', outcome: 'success', ...auditFacts(call), target: this.target(accountId), details: revoked });
    return revoked;
  }

  /**
   * Mails the person a request to reset their password through self-service recovery (/recover), where
   * they prove who they are with their security code and a one-time passcode. The helpdesk never sees or
   * sets the password, and no link that bypasses those checks is created.
   */
  async requestPasswordReset(accountId: string, call: AdminCall): Promise<{ sent: boolean }> {
    await this.assertMayManage(call, accountId);
    const account = await this.deps.accountAdmin.raw(accountId);
    refuseDisabled(account);
    // An invited account has no password to reset, and recovery cannot help it (it has no security code yet).
    if (!account.passwordHash) {
      throw new ConflictError('the account has no password yet (it was invited and has not activated): resend its invitation instead (POST /accounts/{id}/invitation, or `account resend-invitation`)');
    }
    if (!account.email) throw new ConflictError('the account has no email address to send the request to');
    let sent = true;
    try {
      await this.deps.mailer.send(account.email, 'Please reset your password', 'password-reset-request', { name: account.name, userId: account.userId, link: `${this.deps.issuer}/recover` });
    } catch (err) {
      sent = false;
      this.deps.log.warn({ err: { message: (err as Error).message }, accountId, requestId: call.requestId }, 'the password reset request mail could not be sent');
    }
    await this.deps.audit.record({ type: 'admin.account.password_reset_requested', outcome: sent ? 'success' : 'failure', ...auditFacts(call), target: this.target(accountId) });
    return { sent };
  }

  async listTrustedDevices(accountId: string): Promise<TrustedDeviceView[]> {
    await this.deps.accountAdmin.raw(accountId);
    return (await this.deps.trustedDevices.list(accountId)).map(deviceView);
  }

  async revokeTrustedDevice(accountId: string, deviceId: string, call: AdminCall): Promise<void> {
    await this.assertMayManage(call, accountId);
    if (!(await this.deps.trustedDevices.revoke(accountId, deviceId))) throw new NotFoundError(`the account has no trusted device "${deviceId}"`);
    await this.deps.audit.record({ type: 'admin.account.trusted_device_revoked', outcome: 'success', ...auditFacts(call), target: this.target(accountId), details: { deviceId } });
  }

  async revokeAllTrustedDevices(accountId: string, call: AdminCall): Promise<{ revoked: number }> {
    await this.assertMayManage(call, accountId);
    await this.deps.accountAdmin.raw(accountId);
    const revoked = await this.deps.trustedDevices.revokeAll(accountId);
    await this.deps.audit.record({ type: 'admin.account.trusted_devices_revoked', outcome: 'success', ...auditFacts(call), target: this.target(accountId), details: { revoked } });
    return { revoked };
  }
}
