/** The CLI run inside the test process (fast: no tsx start-up per command), with its output captured. */
import { PassThrough, Readable } from 'node:stream';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type CliRunner = (args: string[], input?: string) => Promise<CliResult>;

/** The CLI reads its configuration from the environment once, on its first command: `env` is applied first. */
export async function inProcessCli(env: Record<string, string>): Promise<CliRunner> {
  Object.assign(process.env, env);
  const { run } = (await import('../../scripts/cli/program.js')) as unknown as { run: (argv: string[], io: never) => Promise<number> };
  return async (args, input = '') => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const code = await run(args, { stdin: Readable.from([input]), stdout, stderr } as never);
    return { code, stdout: out, stderr: err };
  };
}
