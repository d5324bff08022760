/**
 * Random identifiers people will type or paste as command arguments (client ids, account ids, token
 * ids): URL-safe base64 that never starts with "-", which a command line would read as an option.
 */
import { randomBytes } from 'node:crypto';

export function randomId(bytes = 16): string {
  for (;;) {
    const id = randomBytes(bytes).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}
