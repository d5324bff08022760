/**
 * Gatehouse's own rules for client metadata, on top of oidc-provider's schema validation. They apply
 * to every way a client is registered (CLI, admin API, dynamic registration).
 */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Returns a message for a redirect URI that is not acceptable, or undefined if it is fine. */
export function redirectUriProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${value}" is not an absolute URL`;
  }
  if (value.includes('#')) return `"${value}" must not contain a fragment`;
  if (url.username || url.password) return `"${value}" must not contain credentials`;
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) return undefined;
  return `"${value}" must use https (http is allowed only for localhost and 127.0.0.1)`;
}

export interface GrantShape {
  grant_types?: string[];
  response_types?: string[];
  redirect_uris?: string[];
}

/** Field-level problems with grant types, response types and redirect URIs taken together. */
export function grantShapeProblems(metadata: GrantShape): Record<string, string> {
  const problems: Record<string, string> = {};
  const grants = new Set(metadata.grant_types ?? ['authorization_code']);
  const responses = metadata.response_types ?? (grants.has('authorization_code') ? ['code'] : []);
  if (grants.has('refresh_token') && !grants.has('authorization_code')) {
    problems.grant_types = 'refresh_token requires authorization_code';
  }
  if (grants.has('authorization_code') && !responses.includes('code')) {
    problems.response_types = 'authorization_code requires the "code" response type';
  }
  if (!grants.has('authorization_code') && responses.length > 0) {
    problems.response_types = 'response types need the authorization_code grant type';
  }
  if (grants.has('authorization_code') && !(metadata.redirect_uris?.length)) {
    problems.redirect_uris = 'at least one redirect URI is required for authorization_code';
  }
  for (const uri of metadata.redirect_uris ?? []) {
    const problem = redirectUriProblem(uri);
    if (problem) {
      problems.redirect_uris = problem;
      break;
    }
  }
  return problems;
}

/**
 * A redirect URI no flow of the client can use is a misunderstanding worth saying, not storing. Checked
 * on new clients and on changes to the grant types or redirect URIs, not on unrelated changes to clients
 * stored before the rule.
 */
export function unusedRedirectUrisProblem(metadata: GrantShape): string | undefined {
  const grants = new Set(metadata.grant_types ?? ['authorization_code']);
  if (grants.has('authorization_code') || !metadata.redirect_uris?.length) return undefined;
  return 'redirect URIs are only used by the authorization_code grant type, which this client does not have: leave them out, or add authorization_code';
}
