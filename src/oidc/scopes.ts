/** Scopes, the claims each releases, and the plain words the consent page uses for them. */
export const SCOPE_CLAIMS = {
  openid: ['sub'],
  profile: ['name', 'preferred_username', 'updated_at'],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
} as const;

export const SCOPE_DESCRIPTIONS: Record<string, string> = {
  openid: 'Confirm who you are (an anonymous, stable identifier)',
  profile: 'See your name and User ID',
  email: 'See your email address',
  phone: 'See your phone number',
  // Read both on the consent page and under "Apps with access" in /account: no pointer to where it is removed.
  offline_access: 'Keep access when you are not using it, also after you sign out, until you remove it',
  admin: 'Administer Gatehouse: applications, accounts and the audit log (full access)',
  'admin:helpdesk': 'Help people with their accounts (unlock, disable, reset two-step verification)',
  'admin:auditor': 'Read Gatehouse’s settings and audit log',
};

export const CLAIM_DESCRIPTIONS: Record<string, string> = {
  name: 'your name',
  preferred_username: 'your User ID',
  email: 'your email address',
  email_verified: 'whether your email address is verified',
  phone_number: 'your phone number',
  phone_number_verified: 'whether your phone number is verified',
  updated_at: 'when your profile last changed',
};

/** Authentication context class references: what an ID token's `acr` can say. */
export const ACR = {
  password: 'urn:gatehouse:acr:pwd',
  multiFactor: 'urn:gatehouse:acr:mfa',
} as const;
