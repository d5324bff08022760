/**
 * CSRF tokens for our forms: an HMAC of the interaction id under a server key. The interaction id is
 * random, bound to the browser by oidc-provider's signed interaction cookie, and never seen by other
 * sites, so a forged cross-site post can't carry a valid token; the SameSite=Lax cookies and the
 * Origin check are a second and third line.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export class CsrfTokens {
  constructor(private readonly key: string) {}

  issue(interactionId: string): string {
    return createHmac('sha256', this.key).update(`csrf:${interactionId}`).digest('base64url');
  }

  verify(interactionId: string, token: unknown): boolean {
    if (typeof token !== 'string' || token.length > 128) return false;
    const expected = Buffer.from(this.issue(interactionId));
    const given = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
