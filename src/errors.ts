/** Errors that carry a message meant for the person or program that sent the input. */
import type { ZodError } from 'zod';

export class InputError extends Error {
  readonly status = 400;
  constructor(
    message: string,
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'InputError';
  }

  static fromZod(err: ZodError, message = 'invalid input'): InputError {
    const fields: Record<string, string> = {};
    for (const issue of err.issues) {
      const key = issue.path.join('.') || '(input)';
      fields[key] ??= issue.message;
    }
    const detail = Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join('; ');
    return new InputError(`${message}: ${detail}`, fields);
  }
}

export class ConflictError extends Error {
  readonly status = 409;
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ConflictError';
  }
}

export class NotFoundError extends Error {
  readonly status = 404;
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

/** MongoDB's duplicate-key error, with the index's first field when the server reports it. */
export function duplicateKeyField(err: unknown): string | undefined | false {
  const e = err as { code?: number; keyPattern?: Record<string, unknown>; message?: string };
  if (e?.code !== 11000) return false;
  const fromPattern = e.keyPattern ? Object.keys(e.keyPattern)[0] : undefined;
  return fromPattern ?? /index: (\w+?)_/.exec(e.message ?? '')?.[1];
}
