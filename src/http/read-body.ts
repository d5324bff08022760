/** Request bodies for our own routes (oidc-provider parses its own). */
import type { Context, Middleware } from 'koa';

/** Parses a request body with `parser`; an undecodable body (bad gzip, bad charset) is a 4xx, never a 500. */
export async function readBody(ctx: Context, parser: Middleware): Promise<void> {
  try {
    await parser(ctx, async () => undefined);
  } catch (err) {
    const status = (err as { status?: number }).status;
    ctx.throw(status && status < 500 ? status : 400, 'The form could not be read. Go back and try again.');
  }
}
