/**
 * The audit trail: one append-only document per security-relevant event. Callers pass only
 * non-secret facts; `details` is for identifiers and outcomes, never passwords, codes or tokens.
 */
import { Schema, type Connection, type Model } from 'mongoose';
import type { Logger } from '../logger.js';

export interface AuditEvent {
  type: string;
  outcome: 'success' | 'failure';
  actor?: { kind: 'account' | 'client' | 'anonymous' | 'system'; id?: string };
  target?: { kind: string; id: string };
  clientId?: string;
  ip?: string;
  userAgent?: string;
  requestId?: string;
  details?: Record<string, unknown>;
  at: Date;
}

const auditSchema = new Schema<AuditEvent>(
  {
    type: { type: String, required: true },
    outcome: { type: String, enum: ['success', 'failure'], required: true },
    actor: { kind: String, id: String },
    target: { kind: String, id: String },
    clientId: String,
    ip: String,
    userAgent: String,
    requestId: String,
    details: { type: Schema.Types.Mixed },
    at: { type: Date, required: true },
  },
  { collection: 'audit_events', versionKey: false },
);
auditSchema.index({ at: -1 });
auditSchema.index({ type: 1, at: -1 });
auditSchema.index({ 'actor.id': 1, at: -1 });

export function auditModel(connection: Connection): Model<AuditEvent> {
  return (connection.models.AuditEvent as Model<AuditEvent> | undefined) ?? connection.model<AuditEvent>('AuditEvent', auditSchema);
}

export class AuditLog {
  readonly model: Model<AuditEvent>;

  constructor(
    connection: Connection,
    private readonly log: Logger,
  ) {
    this.model = auditModel(connection);
  }

  /** Records an event. An audit write failure is logged loudly but does not fail the user's request. */
  async record(event: Omit<AuditEvent, 'at'>): Promise<void> {
    const entry = { ...event, at: new Date() };
    this.log.info({ audit: { type: entry.type, outcome: entry.outcome, actor: entry.actor?.id, clientId: entry.clientId, requestId: entry.requestId } }, 'audit');
    try {
      await this.model.create(entry);
    } catch (err) {
      this.log.error({ err, type: event.type }, 'failed to write audit event');
    }
  }
}
