/**
 * Reading the admin API's input: query strings and JSON bodies checked against zod schemas (a
 * field-level 400 otherwise), and opaque pagination cursors. A cursor is base64url JSON naming the
 * list it belongs to and the position of the last item; anything else is refused as a bad cursor.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import { InputError, NotFoundError } from '../errors.js';

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 200;

export const limitParam = z
  .string()
  .regex(/^\d{1,4}$/, `must be a whole number from 1 to ${MAX_PAGE}`)
  .transform(Number)
  .refine((n) => n >= 1 && n <= MAX_PAGE, `must be a whole number from 1 to ${MAX_PAGE}`)
  .optional();

export const cursorParam = z.string().min(1, 'is not a cursor from this list').max(512, 'is not a cursor from this list').optional();

export function parseQuery<T extends z.ZodType>(ctx: Context, schema: T): z.infer<T> {
  const parsed = schema.safeParse({ ...ctx.query });
  if (!parsed.success) throw InputError.fromZod(parsed.error, 'invalid query');
  return parsed.data;
}

/** Requests that came without a body (or an empty one): the parser stands `{}` in for them. */
const emptyBodies = new WeakSet<Context['request']>();

/** Called by the body parser when a request has no body bytes, labelled or not. */
export function markEmptyBody(ctx: Context): void {
  emptyBodies.add(ctx.request);
}

/**
 * `refuseEmpty` (creates): an empty body is a 400 saying so, since field errors about it ("client_name:
 * expected string, received undefined") hide the real mistake; a create whose every field is optional
 * still takes it as {}. Updates keep their own "nothing to change".
 */
export function parseBody<T extends z.ZodType>(ctx: Context, schema: T, what: string, options: { refuseEmpty?: boolean } = {}): z.infer<T> {
  if (options.refuseEmpty && emptyBodies.has(ctx.request) && !schema.safeParse({}).success) {
    throw new InputError('request body is empty: expected a JSON object', { '(body)': 'is empty: expected a JSON object' });
  }
  const body: unknown = ctx.request.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InputError(`invalid ${what}: the body must be a JSON object`, { '(body)': 'must be a JSON object' });
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw InputError.fromZod(parsed.error, `invalid ${what}`);
  return parsed.data;
}

/** Middleware for endpoints that act without input: any field sent is refused, so a garbled request never acts. */
export async function noFields(ctx: Context, next: () => Promise<unknown>): Promise<void> {
  parseBody(ctx, z.object({}).strict(), 'request');
  await next();
}

export function encodeCursor(list: string, position: unknown[]): string {
  return Buffer.from(JSON.stringify([list, ...position])).toString('base64url');
}

/** Decodes a cursor of `list` whose position matches `shape`, or refuses it with a 400. */
export function decodeCursor<T extends z.ZodType>(list: string, cursor: string, shape: T): z.infer<T> {
  const bad = () => new InputError('invalid query: cursor: is not a cursor from this list', { cursor: 'is not a cursor from this list' });
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad();
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(decoded) || decoded[0] !== list) throw bad();
  const parsed = shape.safeParse(decoded.slice(1));
  if (!parsed.success) throw bad();
  return parsed.data;
}

/** A path parameter that names a stored id. One that no record can have is a 404 without a lookup. */
export function idParam(value: string | undefined, what: string): string {
  if (!value || value.length > 128 || !/^[A-Za-z0-9._~-]+$/.test(value)) throw new NotFoundError(`no ${what} with this id`);
  return value;
}
