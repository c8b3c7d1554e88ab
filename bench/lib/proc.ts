// /proc readers: CPU time (utime+stime) and resident memory of a set of processes
// and all of their descendants (nginx workers, outrigger workers, ...).
import * as fs from 'node:fs';

/** Clock ticks per second used by /proc/<pid>/stat (USER_HZ). 100 on Linux. */
export const CLK_TCK = 100;

function readText(path: string): string | undefined {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Parses /proc/<pid>/stat; returns fields after the `(comm)` part, or undefined. */
function statFields(pid: number): string[] | undefined {
  const s = readText(`/proc/${pid}/stat`);
  if (!s) return undefined;
  const close = s.lastIndexOf(')');
  if (close < 0) return undefined;
  // fields[0] is state (field 3 in proc(5) numbering).
  return s.slice(close + 2).trim().split(/\s+/);
}

/** CPU seconds (user+system) consumed so far by one process (all its threads). */
export function cpuSecondsOf(pid: number): number {
  const f = statFields(pid);
  if (!f) return 0;
  const utime = Number(f[11]); // field 14
  const stime = Number(f[12]); // field 15
  return (utime + stime) / CLK_TCK;
}

/** Direct children of a pid, from /proc/<pid>/task/<tid>/children (needs CONFIG_PROC_CHILDREN) or a scan. */
export function childrenOf(pid: number): number[] {
  const out = new Set<number>();
  const tasks = (() => {
    try {
      return fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      return [] as string[];
    }
  })();
  let viaChildrenFile = false;
  for (const t of tasks) {
    const c = readText(`/proc/${pid}/task/${t}/children`);
    if (c === undefined) continue;
    viaChildrenFile = true;
    for (const x of c.trim().split(/\s+/)) if (x) out.add(Number(x));
  }
  if (!viaChildrenFile) {
    for (const e of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      const f = statFields(Number(e));
      if (f && Number(f[1]) === pid) out.add(Number(e));
    }
  }
  return [...out];
}

/** The pids and all of their live descendants. */
export function processTree(roots: number[]): number[] {
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length) {
    const p = stack.pop()!;
    if (seen.has(p) || !fs.existsSync(`/proc/${p}`)) continue;
    seen.add(p);
    stack.push(...childrenOf(p));
  }
  return [...seen];
}

/** Sum of CPU seconds over the process trees rooted at `roots`. */
export function treeCpuSeconds(roots: number[]): number {
  let sum = 0;
  for (const p of processTree(roots)) sum += cpuSecondsOf(p);
  return sum;
}

function statusKiB(pid: number, key: string): number {
  const s = readText(`/proc/${pid}/status`);
  if (!s) return 0;
  const m = new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm').exec(s);
  return m ? Number(m[1]) : 0;
}

/** Sum of current resident set sizes (KiB) over the trees. */
export function treeRssKiB(roots: number[]): number {
  let sum = 0;
  for (const p of processTree(roots)) sum += statusKiB(p, 'VmRSS');
  return sum;
}

/** Sum of peak resident set sizes (VmHWM, KiB) over the trees. */
export function treeHwmKiB(roots: number[]): number {
  let sum = 0;
  for (const p of processTree(roots)) sum += statusKiB(p, 'VmHWM');
  return sum;
}
