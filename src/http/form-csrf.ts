/**
 * CSRF tokens for forms outside a sign-in interaction (recovery, activation): the browser holds a random
 * nonce in an HttpOnly, SameSite=Strict cookie and each form carries an HMAC of it. Another site can
 * neither read the cookie nor compute the token, and SameSite keeps the cookie off its posts anyway.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';

const COOKIE = 'gh_form';
const NONCE = /^[A-Za-z0-9_-]{22,64}$/;

export class FormCsrf {
  constructor(
    private readonly key: Buffer | string,
    private readonly secure: boolean,
  ) {}

  private token(nonce: string): string {
    return createHmac('sha256', this.key).update(`form-csrf:${nonce}`).digest('base64url');
  }

  /** The token for this browser's forms, setting the nonce cookie the first time. */
  issue(ctx: Context): string {
    let nonce = ctx.cookies.get(COOKIE, { signed: false });
    if (!nonce || !NONCE.test(nonce)) {
      nonce = randomBytes(18).toString('base64url');
      ctx.cookies.set(COOKIE, nonce, { httpOnly: true, secure: this.secure, sameSite: 'strict', path: '/', signed: false, overwrite: true });
    }
    return this.token(nonce);
  }

  verify(ctx: Context, token: unknown): boolean {
    const nonce = ctx.cookies.get(COOKIE, { signed: false });
    if (!nonce || !NONCE.test(nonce) || typeof token !== 'string' || token.length > 128) return false;
    const expected = Buffer.from(this.token(nonce));
    const given = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
