/**
 * The two long-lived cookies the sign-in pages use, both HttpOnly, SameSite=Strict (only our own forms
 * post to /interaction/), Secure with an https issuer, and scoped to /interaction/:
 *   - a trusted-device token per account: the name is a keyed hash of the account id, so several people
 *     sharing a browser each keep their own trust and the name says nothing about whose it is;
 *   - a random browser id, used only to notice sign-ins from a new browser.
 */
import { createHmac } from 'node:crypto';
import type { Context } from 'koa';
import { KnownBrowsers } from '../accounts/known-browsers.js';

const PATH = '/interaction/';
const BROWSER_COOKIE = 'gh_browser';
const BROWSER_LIFETIME_MS = 400 * 24 * 60 * 60 * 1000;

export class DeviceCookies {
  constructor(
    private readonly nameKey: Buffer | string,
    private readonly secure: boolean,
  ) {}

  private options(expires: Date) {
    return { httpOnly: true, secure: this.secure, sameSite: 'strict' as const, path: PATH, expires, overwrite: true, signed: false };
  }

  trustCookieName(accountId: string): string {
    return `gh_device_${createHmac('sha256', this.nameKey).update(accountId).digest('base64url').slice(0, 16)}`;
  }

  readTrust(ctx: Context, accountId: string): string | undefined {
    return ctx.cookies.get(this.trustCookieName(accountId), { signed: false }) || undefined;
  }

  writeTrust(ctx: Context, accountId: string, token: string, expiresAt: Date): void {
    ctx.cookies.set(this.trustCookieName(accountId), token, this.options(expiresAt));
  }

  /** This browser's id, issuing one (and its cookie) the first time. */
  browserId(ctx: Context): string {
    const current = ctx.cookies.get(BROWSER_COOKIE, { signed: false });
    const id = KnownBrowsers.browserId(current);
    if (id !== current) ctx.cookies.set(BROWSER_COOKIE, id, this.options(new Date(Date.now() + BROWSER_LIFETIME_MS)));
    return id;
  }
}
