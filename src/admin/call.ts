/**
 * Who is performing an administrative operation, and from where: what the audit entry records.
 * The HTTP API builds one from the authenticated token; the CLI, which works on the database
 * directly (it is how the first administrator is created), acts as `system` with every permission.
 */
import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import type { Context } from 'koa';
import type { AuditEvent } from '../audit/audit.js';
import type { AdminPrincipal } from './bearer.js';
import { PERMISSIONS, type Permission } from './permissions.js';

export interface AdminCall {
  actor: { kind: 'account' | 'client' | 'system'; id: string };
  /** The client a person's token was issued to (or the machine client itself). */
  clientId?: string;
  ip?: string;
  userAgent?: string;
  requestId?: string;
  permissions: ReadonlySet<Permission>;
}

export function httpCall(ctx: Context, principal: AdminPrincipal): AdminCall {
  const userAgent = ctx.get('user-agent').slice(0, 256);
  return {
    actor: principal.actor,
    clientId: principal.clientId,
    ip: ctx.ip,
    ...(userAgent ? { userAgent } : {}),
    ...(typeof ctx.state.requestId === 'string' ? { requestId: ctx.state.requestId } : {}),
    permissions: principal.permissions,
  };
}

function operatorName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

export function cliCall(): AdminCall {
  return { actor: { kind: 'system', id: `cli:${operatorName()}` }, userAgent: 'gatehouse-cli', requestId: randomUUID(), permissions: new Set(PERMISSIONS) };
}

/** The parts of an audit entry that say who acted, how and from where. */
export function auditFacts(call: AdminCall): Pick<AuditEvent, 'actor' | 'clientId' | 'ip' | 'userAgent' | 'requestId'> {
  return {
    actor: call.actor,
    ...(call.clientId ? { clientId: call.clientId } : {}),
    ...(call.ip ? { ip: call.ip } : {}),
    ...(call.userAgent ? { userAgent: call.userAgent } : {}),
    ...(call.requestId ? { requestId: call.requestId } : {}),
  };
}
