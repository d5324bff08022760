/**
 * The MongoDB wire-protocol stand-in (scripts/mongo-standin/standin.py): used where no mongod binary
 * can be had. It runs on Debian's python3-mockupdb + python3-mongomock and is good enough for
 * development and tests, never for production data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { projectRoot } from '../config.js';

export const STANDIN_SCRIPT = path.join(projectRoot, 'scripts', 'mongo-standin', 'standin.py');
export const STANDIN_PACKAGES = ['python3-mockupdb', 'python3-mongomock'];

export interface RunningStandin {
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Debian's packages install into the system Python, which may not be the first python3 on PATH. */
export function standinPython(): string {
  return process.env.GATEHOUSE_STANDIN_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
}

export async function startStandin(options: { port: number; dataFile?: string; host?: string }): Promise<RunningStandin> {
  const args = [STANDIN_SCRIPT, '--port', String(options.port), '--host', options.host ?? '127.0.0.1', '--parent-pid', String(process.pid)];
  if (options.dataFile) args.push('--data-file', options.dataFile);
  const child = spawn(standinPython(), args, { stdio: ['ignore', 'pipe', 'pipe'] });

  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });

  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => fail(new Error('the MongoDB stand-in did not start within 20 s')), 20_000);
    function fail(err: Error): void {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\n${stderr.trim()}\nIt needs Debian's ${STANDIN_PACKAGES.join(' and ')} packages.`));
    }
    lines.on('line', (line) => {
      const match = /^STANDIN READY port=(\d+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`the MongoDB stand-in exited with code ${code}`)));
  });
  child.removeAllListeners('exit');

  return {
    port,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}
