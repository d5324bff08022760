/** The administrator CLI as operators run it: a child process (`node --import tsx scripts/cli.ts …`). */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../../src/config.js';
import { TEST_SECRETS_KEY } from './gatehouse.js';

export const CLI = path.join(projectRoot, 'scripts', 'cli.ts');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI with a minimal environment (no MONGODB_URI unless `env` gives one) and the tests' secrets key.
 * stdin is a pipe holding `input` (empty unless given), so never a terminal. Killed after `timeoutMs`.
 */
export function runCli(args: string[], options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      cwd: projectRoot,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
        NODE_ENV: 'test',
        GATEHOUSE_SECRETS_KEY: TEST_SECRETS_KEY,
        ...options.env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.on('error', () => undefined); // the CLI may exit before reading it
    child.stdin.end(options.input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
