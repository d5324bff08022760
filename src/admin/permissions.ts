/**
 * Who may do what in the admin API. A person's power comes from the roles on their account, a
 * machine's from the scopes its client is registered with; either way it reaches the API only as
 * admin scopes on an access token, and each admin scope maps to one role and a fixed set of
 * permissions. The API intersects the token's scopes with what the caller holds *now*, so removing
 * a role or a client scope takes effect on the next request.
 */

export const ROLES = ['admin', 'helpdesk', 'auditor'] as const;
export type AdminRole = (typeof ROLES)[number];

/** The admin scopes: `admin` for everything, `admin:<role>` for the narrower roles. */
export const ADMIN_SCOPE = {
  admin: 'admin',
  helpdesk: 'admin:helpdesk',
  auditor: 'admin:auditor',
} as const satisfies Record<AdminRole, string>;

export type AdminScope = (typeof ADMIN_SCOPE)[AdminRole];
export const ADMIN_SCOPES: readonly AdminScope[] = Object.values(ADMIN_SCOPE);

export const PERMISSIONS = [
  'accounts:read',
  'accounts:write', // create, update (incl. roles), invitations, revoke sessions and grants
  'accounts:support', // disable, enable, unlock, reset the second factor, password reset
  'clients:read',
  'clients:write',
  'registration-tokens:read',
  'registration-tokens:write',
  'audit:read',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const SCOPE_PERMISSIONS: Record<AdminScope, readonly Permission[]> = {
  admin: PERMISSIONS,
  'admin:helpdesk': ['accounts:read', 'accounts:support', 'clients:read'],
  'admin:auditor': ['accounts:read', 'clients:read', 'registration-tokens:read', 'audit:read'],
};

const SCOPE_ROLE: Record<AdminScope, AdminRole> = { admin: 'admin', 'admin:helpdesk': 'helpdesk', 'admin:auditor': 'auditor' };

export function isAdminScope(scope: string): scope is AdminScope {
  return (ADMIN_SCOPES as readonly string[]).includes(scope);
}

/** An account may hold an admin scope with the matching role; `admin` may hold any admin scope. */
export function accountMayHoldScope(roles: readonly string[], scope: AdminScope): boolean {
  return roles.includes('admin') || roles.includes(SCOPE_ROLE[scope]);
}

/**
 * Splits requested scopes into those an account may be granted and the admin scopes it may not.
 * Non-admin scopes always pass: this only gates the admin ones.
 */
export function partitionScopesForAccount(requested: Iterable<string>, roles: readonly string[]): { granted: string[]; rejected: string[] } {
  const granted: string[] = [];
  const rejected: string[] = [];
  for (const scope of requested) {
    if (isAdminScope(scope) && !accountMayHoldScope(roles, scope)) rejected.push(scope);
    else granted.push(scope);
  }
  return { granted, rejected };
}

export function permissionsOf(scopes: Iterable<AdminScope>): Set<Permission> {
  const out = new Set<Permission>();
  for (const scope of scopes) for (const permission of SCOPE_PERMISSIONS[scope]) out.add(permission);
  return out;
}

/** The scopes that carry a permission: what a 403 names in its `scope` attribute (RFC 6750). */
export function scopesGranting(permission: Permission): AdminScope[] {
  return ADMIN_SCOPES.filter((scope) => SCOPE_PERMISSIONS[scope].includes(permission));
}

/** Accounts holding any of these roles are managed by admins only, never by the helpdesk. */
export function isPrivilegedAccount(roles: readonly string[]): boolean {
  return roles.some((role) => (ROLES as readonly string[]).includes(role));
}
