/**
 * The audit trail: one append-only document per security-relevant event. Callers pass only
 * non-secret facts; `details` is for identifiers and outcomes, `changes` for the before/after of
 * changed fields, and both are scrubbed of anything named like a secret before they are written.
 * Entries expire after the configured retention (a TTL index on `at`); nothing else removes them.
 */
import { Schema, Types, type Connection, type Model } from 'mongoose';
import { failedBulkIndexes, GroupCommit, type BatchOutcome } from '../db/group-commit.js';
import type { Logger } from '../logger.js';
import { scrubSecrets } from './scrub.js';

export type ActorKind = 'account' | 'client' | 'anonymous' | 'system';

export interface AuditEvent {
  type: string;
  outcome: 'success' | 'failure';
  actor?: { kind: ActorKind; id?: string };
  target?: { kind: string; id: string };
  clientId?: string;
  ip?: string;
  userAgent?: string;
  requestId?: string;
  details?: Record<string, unknown>;
  /** Changed fields only: `{ field: { before, after } }`. Secrets are never recorded, only that they changed. */
  changes?: Record<string, { before: unknown; after: unknown }>;
  at: Date;
}

export type StoredAuditEvent = AuditEvent & { _id: Types.ObjectId };

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
    changes: { type: Schema.Types.Mixed },
    at: { type: Date, required: true },
  },
  { collection: 'audit_events', versionKey: false },
);
// Queries page newest first by (at, _id); the TTL index on `at` is created with the configured retention.
auditSchema.index({ at: -1, _id: -1 });
auditSchema.index({ type: 1, at: -1 });
auditSchema.index({ 'actor.id': 1, at: -1 });
auditSchema.index({ 'target.id': 1, at: -1 });
auditSchema.index({ requestId: 1 }, { sparse: true });

// Append-only: the application never rewrites or deletes an entry (retention is the TTL index's job).
const REFUSED = ['updateOne', 'updateMany', 'findOneAndUpdate', 'findOneAndReplace', 'replaceOne', 'deleteOne', 'deleteMany', 'findOneAndDelete'] as const;
for (const operation of REFUSED) {
  auditSchema.pre(operation, () => {
    throw new Error(`the audit log is append-only: ${operation} is not allowed`);
  });
}

const OPTIONAL_TEXT = ['clientId', 'ip', 'userAgent', 'requestId'] as const;
const PARTIES = ['actor', 'target'] as const;
const FREE_FORM = ['details', 'changes'] as const;

/**
 * A value for a text field as the schema stores it: text as is, numbers, booleans and ObjectIds as their
 * text, null as null, nothing for undefined; `invalid` for anything else (which mongoose would refuse to cast).
 */
function asText(value: unknown): string | null | undefined | 'invalid' {
  if (value === undefined || value === null) return value;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof Types.ObjectId) return value.toHexString();
  return 'invalid';
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date) && Object.keys(value).length === 0;
}

/**
 * The entry as the schema stores it, without building a mongoose document for it (that cost more than the
 * insert): the schema's fields only, text fields cast to text, empty objects left out, a new `_id`; or,
 * when the schema would refuse the entry, what is wrong with it.
 */
export function storedEntry(entry: AuditEvent): { doc: AuditEvent & { _id: Types.ObjectId } } | { problem: string } {
  if (typeof entry.type !== 'string' || entry.type === '') return { problem: 'type is required' };
  if (entry.outcome !== 'success' && entry.outcome !== 'failure') return { problem: 'outcome must be success or failure' };
  if (!(entry.at instanceof Date) || Number.isNaN(entry.at.getTime())) return { problem: 'at must be a date' };
  const doc: Record<string, unknown> = { _id: new Types.ObjectId(), type: entry.type, outcome: entry.outcome, at: entry.at };
  for (const key of OPTIONAL_TEXT) {
    const text = asText(entry[key]);
    if (text === 'invalid') return { problem: `${key} must be text` };
    if (text !== undefined) doc[key] = text;
  }
  for (const key of PARTIES) {
    const party: unknown = entry[key];
    if (party === undefined || party === null) continue;
    if (typeof party !== 'object' || Array.isArray(party)) return { problem: `${key} must be an object` };
    const stored: Record<string, string | null> = {};
    for (const field of ['kind', 'id'] as const) {
      const text = asText((party as Record<string, unknown>)[field]);
      if (text === 'invalid') return { problem: `${key}.${field} must be text` };
      if (text !== undefined) stored[field] = text;
    }
    if (!isEmptyObject(stored)) doc[key] = stored;
  }
  for (const key of FREE_FORM) {
    const value = entry[key];
    if (value !== undefined && value !== null && !isEmptyObject(value)) doc[key] = value;
  }
  return { doc: doc as unknown as AuditEvent & { _id: Types.ObjectId } };
}

export function auditModel(connection: Connection): Model<AuditEvent> {
  return (connection.models.AuditEvent as Model<AuditEvent> | undefined) ?? connection.model<AuditEvent>('AuditEvent', auditSchema);
}

export const RETENTION_INDEX = 'at_ttl';

export interface AuditOptions {
  /** Days an entry is kept; null keeps entries for ever. */
  retentionDays?: number | null;
}

export interface AuditQuery {
  actor?: string;
  target?: string;
  /** An exact type, or a prefix ending in `*` (e.g. `admin.account.*`). */
  type?: string;
  outcome?: 'success' | 'failure';
  requestId?: string;
  since?: Date;
  until?: Date;
  /** Continue after this entry (newest first). */
  after?: { at: Date; id: string };
  limit: number;
}

/**
 * A party filter takes the bare id (`cli:root`) or the `kind:id` form that listings show (`system:cli:root`,
 * `account:<id>`; `anonymous:-` for a party without id). An id that itself looks like `kind:id` still
 * matches as a bare id, so no existing filter changes meaning.
 */
function partyFilter(party: 'actor' | 'target', value: string): Record<string, unknown> {
  const byId = { [`${party}.id`]: value };
  const qualified = /^([a-z_-]+):(.+)$/.exec(value);
  if (!qualified) return byId;
  const [, kind, id] = qualified as unknown as [string, string, string];
  const byKind = { [`${party}.kind`]: kind, [`${party}.id`]: id === '-' ? { $exists: false } : id };
  return { $or: [byKind, byId] };
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class AuditLog {
  readonly model: Model<AuditEvent>;
  private readonly retentionDays: number | null;
  /** Entries recorded while an insert is on its way go in the next insert together (group commit). */
  private readonly inserts = new GroupCommit<AuditEvent, void>((entries) => this.insert(entries));

  constructor(
    connection: Connection,
    private readonly log: Logger,
    options: AuditOptions = {},
  ) {
    this.model = auditModel(connection);
    this.retentionDays = options.retentionDays ?? null;
  }

  /** Creates the indexes, and sets the retention TTL (changing it when the configuration changed). */
  async init(): Promise<void> {
    await this.model.init();
    const collection = this.model.collection;
    if (this.retentionDays === null) {
      await collection.dropIndex(RETENTION_INDEX).catch(() => undefined);
      return;
    }
    const expireAfterSeconds = this.retentionDays * 86_400;
    try {
      await collection.createIndex({ at: 1 }, { name: RETENTION_INDEX, expireAfterSeconds });
    } catch (err) {
      // 85/86: the index exists with another retention. collMod changes it in place; where the
      // server ignores collMod (the development stand-in), the index is rebuilt.
      if (![85, 86].includes((err as { code?: number }).code ?? 0)) throw err;
      await this.model.db.db!.command({ collMod: collection.collectionName, index: { name: RETENTION_INDEX, expireAfterSeconds } }).catch(() => undefined);
      const indexes = await collection.indexes();
      if (indexes.find((i) => i.name === RETENTION_INDEX)?.expireAfterSeconds !== expireAfterSeconds) {
        await collection.dropIndex(RETENTION_INDEX);
        await collection.createIndex({ at: 1 }, { name: RETENTION_INDEX, expireAfterSeconds });
      }
    }
  }

  /** Records an event. An audit write failure is logged loudly but does not fail the user's request. */
  async record(event: Omit<AuditEvent, 'at'>): Promise<void> {
    const entry: AuditEvent = { ...event, at: new Date() };
    if (entry.details) entry.details = scrubSecrets(entry.details) as Record<string, unknown>;
    if (entry.changes) entry.changes = scrubSecrets(entry.changes) as AuditEvent['changes'];
    this.log.info(
      { audit: { type: entry.type, outcome: entry.outcome, actor: entry.actor?.id, target: entry.target?.id, clientId: entry.clientId }, requestId: entry.requestId },
      'audit',
    );
    try {
      await this.inserts.submit(entry);
    } catch (err) {
      this.log.error({ err, type: event.type, requestId: event.requestId }, 'failed to write audit event');
    }
  }

  /**
   * One insert for a batch of entries, each checked first (an invalid entry fails alone). Unordered: the
   * database tries every entry and reports each failure.
   */
  private async insert(entries: AuditEvent[]): Promise<BatchOutcome<void>[]> {
    const outcomes: BatchOutcome<void>[] = [];
    const valid: { doc: AuditEvent & { _id: Types.ObjectId }; index: number }[] = [];
    entries.forEach((entry, index) => {
      const stored = storedEntry(entry);
      if ('problem' in stored) {
        outcomes.push({ ok: false, error: new Error(`invalid audit entry: ${stored.problem}`) });
      } else {
        outcomes.push({ ok: true, value: undefined });
        valid.push({ doc: stored.doc, index });
      }
    });
    if (valid.length === 0) return outcomes;
    try {
      await this.model.collection.insertMany(valid.map((v) => v.doc), { ordered: false });
    } catch (err) {
      const failed = failedBulkIndexes(err);
      if (!failed || [...failed].some((index) => valid[index] === undefined)) throw err;
      for (const index of failed) outcomes[valid[index]!.index] = { ok: false, error: err };
    }
    return outcomes;
  }

  /** One page of entries, newest first, in a stable order: `at` then `_id`. */
  async query(q: AuditQuery): Promise<{ items: StoredAuditEvent[]; more: boolean }> {
    const and: Record<string, unknown>[] = [];
    if (q.actor) and.push(partyFilter('actor', q.actor));
    if (q.target) and.push(partyFilter('target', q.target));
    if (q.type) and.push({ type: q.type.endsWith('*') ? { $regex: `^${escapeRegex(q.type.slice(0, -1))}` } : q.type });
    if (q.outcome) and.push({ outcome: q.outcome });
    if (q.requestId) and.push({ requestId: q.requestId });
    if (q.since) and.push({ at: { $gte: q.since } });
    if (q.until) and.push({ at: { $lt: q.until } });
    if (q.after) {
      const id = new Types.ObjectId(q.after.id);
      and.push({ $or: [{ at: { $lt: q.after.at } }, { at: q.after.at, _id: { $lt: id } }] });
    }
    const docs = await this.model.collection
      .find(and.length ? { $and: and } : {})
      .sort({ at: -1, _id: -1 })
      .limit(q.limit + 1)
      .toArray();
    return { items: docs.slice(0, q.limit) as unknown as StoredAuditEvent[], more: docs.length > q.limit };
  }
}
