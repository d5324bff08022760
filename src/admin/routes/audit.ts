/** `GET /admin/api/audit`: the audit log, newest first, filtered, with cursor pagination. */
import type { Router } from '@koa/router';
import { z } from 'zod';
import type { AuditLog, StoredAuditEvent } from '../../audit/audit.js';
import type { Guard } from '../guard.js';
import { InputError } from '../../errors.js';
import { cursorParam, decodeCursor, DEFAULT_PAGE, encodeCursor, limitParam, parseQuery } from '../http-input.js';

const id = z.string().min(1).max(200);
const instant = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time, e.g. 2025-01-31T12:00:00Z' }).transform((s) => new Date(s));

const auditQuery = z
  .object({
    actor: id.optional(),
    target: id.optional(),
    type: z.string().regex(/^[a-z0-9_.]+\*?$/, 'must be an event type, or a prefix ending in *').max(100).optional(),
    outcome: z.enum(['success', 'failure']).optional(),
    requestId: id.optional(),
    since: instant.optional(),
    until: instant.optional(),
    limit: limitParam,
    cursor: cursorParam,
  })
  .strict();

export function auditEntryJson(e: StoredAuditEvent): Record<string, unknown> {
  return {
    id: e._id.toHexString(),
    at: e.at.toISOString(),
    type: e.type,
    outcome: e.outcome,
    actor: e.actor ?? null,
    target: e.target ?? null,
    clientId: e.clientId ?? null,
    ip: e.ip ?? null,
    userAgent: e.userAgent ?? null,
    requestId: e.requestId ?? null,
    details: e.details ?? null,
    changes: e.changes ?? null,
  };
}

/** The filters the API and the CLI share (AuditQuery without its internal cursor form). */
export interface AuditFilters {
  actor?: string | undefined;
  target?: string | undefined;
  type?: string | undefined;
  outcome?: 'success' | 'failure' | undefined;
  requestId?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
}

/** One page of the audit log, newest first, with the opaque cursor of the next page (or null). */
export async function auditPage(audit: AuditLog, filters: AuditFilters, limit: number, cursor?: string): Promise<{ items: Record<string, unknown>[]; nextCursor: string | null }> {
  // An empty window is a mistake (usually the two swapped), not a question whose answer is "nothing".
  if (filters.since && filters.until && filters.since.getTime() > filters.until.getTime()) {
    throw new InputError('invalid query: since: must not be later than until', { since: 'must not be later than until' });
  }
  const after = cursor ? decodeCursor('audit', cursor, z.tuple([z.iso.datetime(), z.string().regex(/^[0-9a-f]{24}$/)])) : undefined;
  const defined = Object.fromEntries(Object.entries(filters).filter(([, value]) => value !== undefined && value !== ''));
  const page = await audit.query({ limit, ...defined, ...(after ? { after: { at: new Date(after[0]), id: after[1] } } : {}) });
  const last = page.items[page.items.length - 1];
  return {
    items: page.items.map(auditEntryJson),
    nextCursor: page.more && last ? encodeCursor('audit', [last.at.toISOString(), last._id.toHexString()]) : null,
  };
}

export function auditRoutes(router: Router, audit: AuditLog, guard: Guard): void {
  router.get('/audit', guard('audit:read'), async (ctx) => {
    const { limit, cursor, ...filters } = parseQuery(ctx, auditQuery);
    ctx.body = await auditPage(audit, filters, limit ?? DEFAULT_PAGE, cursor);
  });
}
