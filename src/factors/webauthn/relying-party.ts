/**
 * The WebAuthn relying party: the RP ID passkeys are bound to and the origins allowed to run the
 * ceremonies. By default both come from the issuer (its host and its origin). Resolved from the
 * issuer the server actually serves (a test server on port 0 learns its port only after binding),
 * and checked once more by loadConfig so a bad setting stops Gatehouse at start.
 *
 * Pure: no I/O, no imports, so config.ts can use it.
 */

/** `webauthn` in config/default.json. */
export interface WebAuthnSettings {
  /** null → the issuer's host. Changing it later orphans every registered passkey. */
  rpId: string | null;
  rpName: string;
  /** Empty → the issuer's origin only. */
  origins: string[];
  challengeTtlSeconds: number;
}

export interface RelyingParty {
  id: string;
  name: string;
  /** Serialised origins (scheme://host[:port], lower case, no path), as browsers put them in clientDataJSON. */
  origins: string[];
  challengeTtlSeconds: number;
}

export type RelyingPartyResolution = { ok: true; relyingParty: RelyingParty } | { ok: false; problems: string[] };

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A host name browsers accept as an RP ID: no IP address (WebAuthn refuses those), no bare top-level
 * domain. We have no public-suffix list, so "co.uk" would pass here; the browser still refuses it.
 */
function isRpIdCandidate(id: string): boolean {
  if (id.length > 253) return false;
  const labels = id.split('.');
  if (!labels.every((label) => LABEL.test(label))) return false;
  if (/^\d+$/.test(labels[labels.length - 1]!)) return false; // an IPv4 address, or parsed as one
  return labels.length > 1 || id === 'localhost';
}

/** The origin's serialisation, or why it cannot be one of ours. */
function parseOrigin(raw: string): { ok: true; origin: string; host: string } | { ok: false; why: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, why: 'is not a URL' };
  }
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
    return { ok: false, why: 'must be an origin only (scheme, host and port; no path, query or credentials)' };
  }
  // Browsers treat http://localhost as a secure context, so it is allowed for development.
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && url.hostname === 'localhost')) {
    return { ok: false, why: 'must be https (or http://localhost for development)' };
  }
  return { ok: true, origin: url.origin, host: url.hostname };
}

export function resolveRelyingPartySettings(settings: WebAuthnSettings, issuer: string): RelyingPartyResolution {
  const problems: string[] = [];
  const issuerUrl = new URL(issuer);
  const id = (settings.rpId ?? issuerUrl.hostname).toLowerCase();
  const idSource = settings.rpId === null ? ' (the issuer\'s host; set webauthn.rpId)' : '';
  if (!isRpIdCandidate(id)) {
    problems.push(
      `webauthn.rpId: "${id}"${idSource} must be a domain name such as login.example.com or localhost, not an IP address or a top-level domain`,
    );
  }

  const originsSource = settings.origins.length === 0 ? ' (the issuer\'s origin; set webauthn.origins)' : '';
  const origins = new Set<string>();
  for (const raw of settings.origins.length > 0 ? settings.origins : [issuerUrl.origin]) {
    const parsed = parseOrigin(raw);
    if (!parsed.ok) {
      problems.push(`webauthn.origins: "${raw}"${originsSource} ${parsed.why}`);
      continue;
    }
    // The RP ID must be the origin's host or a parent domain of it, or browsers refuse the ceremony.
    if (parsed.host !== id && !parsed.host.endsWith(`.${id}`)) {
      problems.push(`webauthn.origins: "${parsed.origin}"${originsSource} is not on the RP ID "${id}" or a subdomain of it`);
      continue;
    }
    origins.add(parsed.origin);
  }

  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, relyingParty: { id, name: settings.rpName, origins: [...origins], challengeTtlSeconds: settings.challengeTtlSeconds } };
}

/** The problems loadConfig reports (none when the settings are usable with this issuer). */
export function relyingPartyProblems(settings: WebAuthnSettings, issuer: string): string[] {
  const resolution = resolveRelyingPartySettings(settings, issuer);
  return resolution.ok ? [] : resolution.problems;
}

/** For createFactors' caller: the relying party for the issuer actually served. Throws on a bad setting. */
export function resolveRelyingParty(settings: WebAuthnSettings, issuer: string): RelyingParty {
  const resolution = resolveRelyingPartySettings(settings, issuer);
  if (!resolution.ok) throw new Error(`Invalid WebAuthn configuration:\n${resolution.problems.map((p) => `  - ${p}`).join('\n')}`);
  return resolution.relyingParty;
}
