/**
 * Summarises a V8 .cpuprofile (written with `npm run bench -- --profile`): main-thread self time grouped by
 * where the code lives (a Gatehouse source file, an npm package, Node's internals, GC), per operation.
 * Run alone: `npx tsx scripts/bench/profile-summary.ts FILE.cpuprofile [OPS]`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileGroup {
  where: string;
  selfMs: number;
  share: number;
  top: string[];
}

function groupOf(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const src = /\/(src|scripts)\/(.+)$/.exec(url);
  if (src) return `${src[1]}/${src[2]!.replace(/\.(js|ts)$/, '')}`;
  return url;
}

export function summarizeProfile(file: string, limit = 12): { totalMs: number; groups: ProfileGroup[] } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

  const groups = new Map<string, { us: number; functions: Map<string, number> }>();
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const where = groupOf(node);
    if (where === '(idle)') continue;
    totalUs += us;
    const group = groups.get(where) ?? { us: 0, functions: new Map<string, number>() };
    group.us += us;
    const fn = `${node.callFrame.functionName || '(anonymous)'}:${node.callFrame.lineNumber + 1}`;
    group.functions.set(fn, (group.functions.get(fn) ?? 0) + us);
    groups.set(where, group);
  }
  return {
    totalMs: totalUs / 1000,
    groups: [...groups]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, limit)
      .map(([where, g]) => ({
        where,
        selfMs: g.us / 1000,
        share: totalUs ? g.us / totalUs : 0,
        top: [...g.functions].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([fn]) => fn),
      })),
  };
}

export function formatProfile(file: string, ops: number, limit = 12): string {
  const { totalMs, groups } = summarizeProfile(file, limit);
  const lines = [`${file}: ${totalMs.toFixed(0)} ms of main-thread samples (idle excluded), ${(totalMs / Math.max(ops, 1)).toFixed(3)} ms per op`];
  for (const g of groups) {
    lines.push(`  ${(g.share * 100).toFixed(1).padStart(5)}%  ${(g.selfMs / Math.max(ops, 1)).toFixed(3).padStart(7)} ms/op  ${g.where.padEnd(36)} ${g.top.join(', ')}`);
  }
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, ops] = process.argv.slice(2);
  if (!file) {
    console.error('usage: profile-summary.ts FILE.cpuprofile [OPS]');
    process.exit(2);
  }
  console.log(formatProfile(file, Number(ops ?? 1)));
}
