/**
 * Getting a new password into the CLI without it ever appearing in argv, the shell history or on
 * screen: either the whole of stdin (`--password-stdin`), or typed twice on the terminal, echo off.
 */
import { Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { CliError, type CliIO } from './output.js';

/** Far above any acceptable password; stops a mistaken pipe from filling memory. */
const MAX_STDIN_BYTES = 64 * 1024;

/** Reads all of stdin and strips one trailing newline (\n or \r\n). */
export async function readPasswordFromStdin(io: CliIO): Promise<string> {
  if (io.stdin.isTTY) io.stderr.write('Reading the password from stdin; end it with Ctrl-D.\n');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of io.stdin) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > MAX_STDIN_BYTES) throw new CliError(`--password-stdin: input is longer than ${MAX_STDIN_BYTES} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** A stream the readline interface echoes into; muted while the password is typed. */
class MutableOutput extends Writable {
  muted = false;
  constructor(private readonly target: NodeJS.WritableStream) {
    super();
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.muted) this.target.write(chunk);
    callback();
  }
}

/** Asks once on the terminal with echo off. Ctrl-C or Ctrl-D cancels. */
export function askHidden(io: CliIO, prompt: string): Promise<string> {
  const output = new MutableOutput(io.stderr);
  const rl = createInterface({ input: io.stdin, output, terminal: true, historySize: 0 });
  return new Promise<string>((resolve, reject) => {
    let answered = false;
    rl.on('SIGINT', () => rl.close());
    rl.on('close', () => {
      output.muted = false;
      if (!answered) {
        io.stderr.write('\n');
        reject(new CliError('cancelled: no password entered'));
      }
    });
    rl.question(prompt, (answer) => {
      answered = true;
      output.muted = false;
      io.stderr.write('\n');
      rl.close();
      resolve(answer);
    });
    // The prompt has been written; from here on nothing typed is echoed.
    output.muted = true;
  });
}

/**
 * Prompts twice for a new password on the terminal. `check` runs on the first answer, so a weak
 * password is refused before the person types it again.
 */
export async function promptNewPassword(io: CliIO, check: (password: string) => void = () => undefined): Promise<string> {
  if (!io.stdin.isTTY) {
    throw new CliError('no terminal to ask for the password on: pipe it in and pass --password-stdin');
  }
  const password = await askHidden(io, 'Password: ');
  check(password);
  const again = await askHidden(io, 'Repeat the password: ');
  if (again !== password) throw new CliError('the passwords did not match; nothing was created');
  return password;
}
