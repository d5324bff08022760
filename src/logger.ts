import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Field paths that must never reach the logs, whatever a caller passes in. */
const redactPaths = [
  'password', '*.password', 'client_secret', '*.client_secret', 'secret', '*.secret',
  'code', '*.code', 'token', '*.token', 'req.headers.authorization', 'req.headers.cookie',
];

/** Logs to stdout unless given a destination (the CLI passes `pino.destination(2)`: stdout is for its output). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: redactPaths, censor: '[redacted]' }, base: { service: 'gatehouse' } };
  return destination ? pino(options, destination) : pino(options);
}
