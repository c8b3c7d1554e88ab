/**
 * The CPUs this process may run on (its affinity mask, e.g. from taskset or a cpuset), so that
 * worker i is pinned to the i-th allowed CPU, not to CPU number i.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

/** Parses a Linux CPU list ("0-3,8,10-11") into ascending CPU numbers; [] when malformed. */
export function parseCpuList(s: string): number[] {
  const out: number[] = [];
  for (const part of s.trim().split(',')) {
    if (part === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (m === null) return [];
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b - a > 4096) return [];
    for (let c = a; c <= b; c++) out.push(c);
  }
  return [...new Set(out)].sort((x, y) => x - y);
}

/** Allowed CPUs from /proc/self/status (Linux); else 0..availableParallelism-1. */
export function allowedCpus(status?: string): number[] {
  let text = status;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/status', 'utf8');
    } catch {
      text = '';
    }
  }
  const m = /^Cpus_allowed_list:\s*(.+)$/m.exec(text);
  const list = m === null ? [] : parseCpuList(m[1]);
  if (list.length > 0) return list;
  return Array.from({ length: os.availableParallelism() }, (_, i) => i);
}
