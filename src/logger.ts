import { pino, type Logger } from 'pino';

export type { Logger };

/** Field paths that must never reach the logs, whatever a caller passes in. */
const redactPaths = [
  'password', '*.password', 'client_secret', '*.client_secret', 'secret', '*.secret',
  'code', '*.code', 'token', '*.token', 'req.headers.authorization', 'req.headers.cookie',
];

export function createLogger(level: string): Logger {
  return pino({ level, redact: { paths: redactPaths, censor: '[redacted]' }, base: { service: 'gatehouse' } });
}
