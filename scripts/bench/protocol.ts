/**
 * The control channel between the bench (parent) and a target process (child): the parent resets the
 * child's meter before a measured run and reads it afterwards, so every figure is the child's own
 * (CPU of all its threads, its RSS, the database commands its driver sent).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import type { Fixtures } from './fixtures.js';

export type Request =
  | { id: number; type: 'seed'; fixtures: Fixtures }
  | { id: number; type: 'reset' }
  | { id: number; type: 'stats' }
  | { id: number; type: 'profile-start' }
  | { id: number; type: 'profile-stop'; file: string }
  | { id: number; type: 'stop' };

export type Reply = { id: number; ok: true; result?: unknown } | { id: number; ok: false; error: string };

/** What seeding hands back: each account's TOTP secret (base32), by User ID, so the driver can compute codes. */
export interface SeedResult {
  totpSecrets: Record<string, string>;
}

export interface ReadyMessage {
  type: 'ready';
  url: string;
  info: Record<string, unknown>;
}

export interface ChildStats {
  /** Since the last reset. */
  cpuUserMs: number;
  cpuSystemMs: number;
  elapsedMs: number;
  /** Share of the elapsed time the event loop (the main JavaScript thread) was busy, 0..1. */
  eventLoopUtilization: number;
  /** Highest RSS sampled (every 50 ms) since the last reset, and the process's lifetime peak. */
  peakRssBytes: number;
  lifetimeMaxRssBytes: number;
  /** Commands sent to MongoDB since the last reset (one command = one round trip), by "command collection". */
  dbCommands: number;
  dbByCommand: Record<string, number>;
}

function filterOf(name: string, command: Record<string, unknown>): unknown {
  const first = (list: unknown) => (Array.isArray(list) ? (list[0] as Record<string, unknown> | undefined) : undefined);
  switch (name) {
    case 'find':
    case 'count':
    case 'distinct':
      return command.query ?? command.filter;
    case 'update':
      return first(command.updates)?.q;
    case 'delete':
      return first(command.deletes)?.q;
    case 'findAndModify':
      return command.query;
    default:
      return undefined;
  }
}

/** "find oidc_session {_id}": command, collection, and the fields it selects on (how indexes are checked). */
export function commandKey(name: string, command: Record<string, unknown>): string {
  const collection = command[name];
  let key = typeof collection === 'string' ? `${name} ${collection}` : name;
  const filter = filterOf(name, command);
  if (filter && typeof filter === 'object') key += ` {${Object.keys(filter).join(',')}}`;
  return key;
}

export function parseCommandKey(key: string): { command: string; collection?: string; fields?: string[] } {
  const match = /^(\S+)(?: (\S+))?(?: \{([^}]*)\})?$/.exec(key);
  if (!match) return { command: key };
  return { command: match[1]!, ...(match[2] ? { collection: match[2] } : {}), ...(match[3] !== undefined ? { fields: match[3] ? match[3].split(',') : [] } : {}) };
}

/** Child side: what the parent asks for, measured in this process. */
export class Meter {
  private cpu = process.cpuUsage();
  private started = performance.now();
  private elu = performance.eventLoopUtilization();
  private peakRss = process.memoryUsage.rss();
  private commands = new Map<string, number>();
  private commandCount = 0;

  constructor() {
    setInterval(() => {
      const rss = process.memoryUsage.rss();
      if (rss > this.peakRss) this.peakRss = rss;
    }, 50).unref();
  }

  /** Counts one command, keyed by what it is, e.g. `find oidc_interaction {_id}` (the filter's fields). */
  countCommand(name: string, command: Record<string, unknown>): void {
    this.commandCount++;
    const key = commandKey(name, command);
    this.commands.set(key, (this.commands.get(key) ?? 0) + 1);
  }

  reset(): void {
    this.cpu = process.cpuUsage();
    this.started = performance.now();
    this.elu = performance.eventLoopUtilization();
    this.peakRss = process.memoryUsage.rss();
    this.commands.clear();
    this.commandCount = 0;
  }

  stats(): ChildStats {
    const cpu = process.cpuUsage(this.cpu);
    const rss = process.memoryUsage.rss();
    return {
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      elapsedMs: performance.now() - this.started,
      eventLoopUtilization: performance.eventLoopUtilization(this.elu).utilization,
      peakRssBytes: Math.max(this.peakRss, rss),
      lifetimeMaxRssBytes: process.resourceUsage().maxRSS * 1024,
      dbCommands: this.commandCount,
      dbByCommand: Object.fromEntries([...this.commands].sort((a, b) => b[1] - a[1])),
    };
  }
}

/** Child side: a CPU profile of this process's main thread (diagnosis only: profiling slows it down). */
class Profiler {
  private session: Session | undefined;

  async start(): Promise<void> {
    this.session ??= new Session();
    this.session.connect();
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.setSamplingInterval', { interval: 200 });
    await this.session.post('Profiler.start');
  }

  async stop(file: string): Promise<void> {
    if (!this.session) throw new Error('no profile running');
    const { profile } = await this.session.post('Profiler.stop');
    this.session.disconnect();
    writeFileSync(file, JSON.stringify(profile));
  }
}

/** Child side: answers the parent's requests; `handlers` covers what differs between targets. */
export function serveControl(meter: Meter, handlers: { seed?(fixtures: Fixtures): Promise<SeedResult>; stop(): Promise<void> }): void {
  const profiler = new Profiler();
  process.on('message', (message: Request) => {
    const reply = (r: Reply) => process.send?.(r);
    const run = async (): Promise<unknown> => {
      switch (message.type) {
        case 'seed':
          return handlers.seed?.(message.fixtures);
        case 'reset':
          return meter.reset();
        case 'stats':
          return meter.stats();
        case 'profile-start':
          return profiler.start();
        case 'profile-stop':
          return profiler.stop(message.file);
        case 'stop':
          await handlers.stop();
          setImmediate(() => process.exit(0));
          return undefined;
      }
    };
    run().then(
      (result) => reply({ id: message.id, ok: true, result }),
      (err: unknown) => reply({ id: message.id, ok: false, error: (err as Error).stack ?? String(err) }),
    );
  });
  // The bench going away (crash, Ctrl-C) takes its targets with it.
  process.on('disconnect', () => void handlers.stop().finally(() => process.exit(0)));
}

export function announceReady(url: string, info: Record<string, unknown> = {}): void {
  const message: ReadyMessage = { type: 'ready', url, info };
  process.send?.(message);
}
