/**
 * Where the encryption key for secrets at rest comes from: config/env always wins. In development and
 * test a key is generated once and kept in the data folder (mode 0600); production refuses to start
 * without one (enforced in config.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { SecretBox } from './secret-box.js';

export function loadSecretBox(config: Config, log: Logger): SecretBox {
  const previous = config.secrets.previousKeys.map((k) => SecretBox.parseKey(k));
  if (config.secrets.key) return new SecretBox(SecretBox.parseKey(config.secrets.key), previous);

  const file = path.join(config.dataDir, 'secrets.key');
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true });
    try {
      writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another process (the CLI beside the server) created it first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    log.warn({ file }, 'generated a development encryption key for secrets at rest; set GATEHOUSE_SECRETS_KEY in production');
  }
  return new SecretBox(SecretBox.parseKey(readFileSync(file, 'utf8')), previous);
}
