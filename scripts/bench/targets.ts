/**
 * Starting and talking to the two targets (gatehouse-child.ts, baseline-child.ts). Each runs in its own
 * Node process, forked with tsx for the bench's own TypeScript; Gatehouse's code is the compiled build.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import type { Fixtures } from './fixtures.js';
import type { ChildStats, ReadyMessage, Reply, Request, SeedResult } from './protocol.js';

export type TargetName = 'gatehouse' | 'baseline';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type RequestBody = DistributiveOmit<Request, 'id'>;

export class Target {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  private exited = false;

  private constructor(
    readonly name: TargetName,
    readonly url: string,
    readonly info: Record<string, unknown>,
    private readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    child.on('message', (message: Reply) => {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.ok) waiter.resolve(message.result);
      else waiter.reject(new Error(`${name}: ${message.error}`));
    });
    child.on('exit', (code, signal) => {
      this.exited = true;
      for (const waiter of this.pending.values()) waiter.reject(new Error(`${name} exited (${signal ?? code}); see ${logFile}`));
      this.pending.clear();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  static async start(name: TargetName, script: URL, options: { env: NodeJS.ProcessEnv; cwd: string; logFile: string; timeoutMs?: number }): Promise<Target> {
    const { env, cwd, logFile, timeoutMs = 90_000 } = options;
    const log = openSync(logFile, 'a');
    const child = fork(script, [], {
      execArgv: ['--import', 'tsx'],
      cwd,
      env,
      stdio: ['ignore', log, log, 'ipc'],
    });
    closeSync(log);
    const ready = await new Promise<ReadyMessage>((resolve, reject) => {
      const timer = setTimeout(() => fail(`did not start within ${timeoutMs / 1000} s`), timeoutMs);
      function fail(reason: string): void {
        clearTimeout(timer);
        child.kill('SIGKILL');
        const tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-15).join('\n');
        reject(new Error(`${name} ${reason}. Last lines of ${logFile}:\n${tail}`));
      }
      child.on('message', (message: ReadyMessage) => {
        if (message.type !== 'ready') return;
        clearTimeout(timer);
        resolve(message);
      });
      child.once('exit', (code, signal) => fail(`exited during start-up (${signal ?? `code ${code}`})`));
      child.once('error', (err) => fail(err.message));
    });
    child.removeAllListeners('exit');
    return new Target(name, ready.url, ready.info, child, logFile);
  }

  private call<T>(request: RequestBody, timeoutMs = 120_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} is not running; see ${this.logFile}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name} did not answer "${request.type}" within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.child.send({ ...request, id } as Request);
    });
  }

  seed(fixtures: Fixtures): Promise<SeedResult> {
    return this.call({ type: 'seed', fixtures });
  }

  reset(): Promise<void> {
    return this.call({ type: 'reset' });
  }

  stats(): Promise<ChildStats> {
    return this.call({ type: 'stats' });
  }

  profileStart(): Promise<void> {
    return this.call({ type: 'profile-start' });
  }

  profileStop(file: string): Promise<void> {
    return this.call({ type: 'profile-stop', file });
  }

  /** Asks the process to close its server and database connection and exit; kills it if it does not. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.call({ type: 'stop' }, 10_000).catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
