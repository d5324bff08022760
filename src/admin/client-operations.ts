/**
 * Client administration (create, update, rotate the secret, delete) and initial access tokens for
 * dynamic registration, as the API and the CLI perform them: the work, then one audit entry.
 * Secrets and token values are returned to the caller once and never reach the audit log.
 */
import type { AuditLog } from '../audit/audit.js';
import { refuseBuiltInClient, type ClientMetadataPatch, type ClientRegistry, type CreatedClient, type NewClientInput, type UpdatedClient } from '../oidc/clients.js';
import type { RegistrationTokenStore, RegistrationTokenView } from '../oidc/registration.js';
import { auditFacts, type AdminCall } from './call.js';

export class ClientOperations {
  constructor(
    private readonly clients: ClientRegistry,
    private readonly registrationTokens: RegistrationTokenStore,
    private readonly audit: AuditLog,
  ) {}

  private target(clientId: string) {
    return { kind: 'client', id: clientId };
  }

  async create(input: NewClientInput, call: AdminCall): Promise<CreatedClient> {
    const created = await this.clients.create(input);
    const { client_id: _id, ...metadata } = created.metadata;
    await this.audit.record({
      type: 'admin.client.created',
      outcome: 'success',
      ...auditFacts(call),
      target: this.target(created.clientId),
      changes: Object.fromEntries(
        Object.entries(metadata).map(([field, value]) => [field, { before: null, after: field === 'jwks' ? (value as { keys: Array<{ kid?: unknown }> }).keys.map((k) => k.kid ?? '(no kid)') : value }]),
      ),
      details: { secretIssued: created.clientSecret !== undefined },
    });
    return created;
  }

  async update(clientId: string, patch: ClientMetadataPatch, call: AdminCall): Promise<UpdatedClient> {
    const updated = await this.clients.update(clientId, patch);
    await this.audit.record({
      type: 'admin.client.updated',
      outcome: 'success',
      ...auditFacts(call),
      target: this.target(clientId),
      changes: updated.changes,
      details: { secretIssued: updated.clientSecret !== undefined, secretRemoved: updated.secretRemoved },
    });
    return updated;
  }

  async rotateSecret(clientId: string, call: AdminCall): Promise<{ clientId: string; clientSecret: string }> {
    const rotated = await this.clients.rotateSecret(clientId);
    await this.audit.record({ type: 'admin.client.secret_rotated', outcome: 'success', ...auditFacts(call), target: this.target(clientId) });
    return rotated;
  }

  async remove(clientId: string, call: AdminCall): Promise<{ revoked: Record<string, number> }> {
    // Before reading it: the built-in client is a 409 (it exists, but not here), not a 404.
    refuseBuiltInClient(clientId);
    const before = await this.clients.show(clientId);
    const result = await this.clients.remove(clientId);
    await this.audit.record({
      type: 'admin.client.deleted',
      outcome: 'success',
      ...auditFacts(call),
      target: this.target(clientId),
      details: { name: before.name, revoked: result.revoked },
    });
    return result;
  }

  async mintRegistrationToken(
    options: { expiresInSeconds?: number; maxUses?: number; description?: string },
    call: AdminCall,
  ): Promise<RegistrationTokenView & { token: string }> {
    const minted = await this.registrationTokens.mint({ ...options, createdBy: call.actor });
    const { token: _secret, ...shown } = minted;
    await this.audit.record({ type: 'admin.registration_token.created', outcome: 'success', ...auditFacts(call), target: { kind: 'registration_token', id: minted.id }, details: shown });
    return minted;
  }

  async revokeRegistrationToken(id: string, call: AdminCall): Promise<RegistrationTokenView> {
    const revoked = await this.registrationTokens.revoke(id);
    await this.audit.record({ type: 'admin.registration_token.revoked', outcome: 'success', ...auditFacts(call), target: { kind: 'registration_token', id }, details: { uses: revoked.uses } });
    return revoked;
  }
}
