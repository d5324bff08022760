/**
 * What the CLI prints: tables and key/value blocks for people, one JSON value for programs, and
 * errors as a single `error: …` line on stderr. stdout carries the command's result and nothing else.
 */
import { ConfigError } from '../../src/config.js';
import { ConflictError, InputError, NotFoundError } from '../../src/errors.js';

export interface CliIO {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export const processIO: CliIO = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };

/** An error whose message is meant for the operator as it stands. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * Libraries write to the console on their own: oidc-provider's runtime notices, mongodb-memory-server's
 * failed download when it is offline (the embedded database then falls back to the stand-in). None of
 * it may reach stdout, where it would corrupt `--json` output; it goes to stderr when LOG_LEVEL is
 * debug or trace, and is dropped otherwise. console.error always reaches stderr.
 * Gatehouse's own log lines go through pino to stderr at LOG_LEVEL (default warn).
 */
export function tameConsole(logLevel: string | undefined): void {
  const verbose = logLevel === 'debug' || logLevel === 'trace';
  const sink = verbose ? (...args: unknown[]) => console.error(...args) : () => undefined;
  console.log = sink;
  console.info = sink;
  console.debug = sink;
  console.warn = sink;
}

/** Errors raised for bad input or state: their message is the whole story, no stack trace wanted. */
export function isUserError(err: unknown): boolean {
  return err instanceof CliError || err instanceof InputError || err instanceof ConflictError || err instanceof NotFoundError || err instanceof ConfigError;
}

/** One line describing the error, with field-level detail the message does not already carry. */
export function describeError(err: unknown): string {
  if (err instanceof ConfigError) return `invalid configuration: ${err.problems.join('; ')}`;
  if (err instanceof InputError) {
    const missing = Object.entries(err.fields).filter(([, message]) => !err.message.includes(message));
    const detail = missing.map(([field, message]) => `${field}: ${message}`).join('; ');
    return oneLine(detail ? `${err.message} (${detail})` : err.message);
  }
  if (err instanceof Error && err.name === 'DatabaseUnavailableError' && err.cause instanceof Error) {
    return oneLine(`the database became unavailable: ${err.cause.message}`);
  }
  if (err instanceof Error) return oneLine(err.message || err.name);
  return oneLine(String(err));
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, '; ').trim();
}

/** Control characters in stored values must not reach the terminal as escape sequences. */
export function printable(value: unknown): string {
  if (value === undefined || value === null || value === '') return '-';
  if (Array.isArray(value)) return value.length ? value.map(printable).join(', ') : '-';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value).replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function table(headers: string[], rows: unknown[][]): string {
  const cells = rows.map((row) => row.map(printable));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n';
}

export function keyValues(pairs: Array<[label: string, value: unknown]>, indent = '  '): string {
  const width = Math.max(...pairs.map(([label]) => label.length));
  return pairs.map(([label, value]) => `${indent}${label.padEnd(width)}  ${printable(value)}`).join('\n') + '\n';
}

export class Printer {
  constructor(
    private readonly io: CliIO,
    readonly json: boolean,
  ) {}

  /** Prints `data` as one line of JSON with --json, otherwise the text from `human()`. */
  result(data: unknown, human: () => string): void {
    this.io.stdout.write(this.json ? `${JSON.stringify(data)}\n` : human());
  }
}
