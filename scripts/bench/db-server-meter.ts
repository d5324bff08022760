/**
 * CPU time of the database server process, when it is a local process the bench started (the stand-in or
 * an embedded mongod): read from /proc (Linux). It tells whether the database, rather than Gatehouse, is
 * what limits a run's throughput. Not available for an external MONGODB_URI / --db-uri, or off Linux.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

/** utime + stime of `pid` in ms, from /proc/PID/stat (fields 14 and 15, after the command in parentheses). */
function cpuMs(pid: number, ticks: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks;
}

export class DbServerMeter {
  private startCpu = 0;
  private startedAt = 0;

  private constructor(
    readonly pid: number,
    readonly label: string,
    private readonly ticks: number,
  ) {}

  /** Finds a child process of this one that runs the stand-in or mongod. */
  static find(): DbServerMeter | undefined {
    try {
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        try {
          const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
          const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
          if (ppid !== process.pid) continue;
          const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
          const label = /standin\.py/.test(cmdline) ? 'stand-in' : /mongod/.test(cmdline) ? 'mongod' : undefined;
          if (label) return new DbServerMeter(Number(entry), label, clockTicksPerSecond());
        } catch {
          // the process went away while we looked
        }
      }
    } catch {
      // no /proc
    }
    return undefined;
  }

  reset(): void {
    this.startCpu = cpuMs(this.pid, this.ticks);
    this.startedAt = performance.now();
  }

  /** CPU ms used since reset, and the average number of cores that was. */
  read(): { cpuMs: number; cores: number } {
    const used = cpuMs(this.pid, this.ticks) - this.startCpu;
    return { cpuMs: used, cores: used / Math.max(1, performance.now() - this.startedAt) };
  }
}
