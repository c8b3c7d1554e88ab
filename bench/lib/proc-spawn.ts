// Starting and stopping the processes the bench owns (peers, backend, load generator).
// Every process started here is tracked by PID and stopped by that PID only.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import { processTree } from './proc';

let tasksetChecked: boolean | undefined;
/** True when `taskset` (util-linux) can be used for CPU pinning. */
export function hasTaskset(): boolean {
  if (tasksetChecked === undefined) {
    const r = spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
    tasksetChecked = r.status === 0;
  }
  return tasksetChecked;
}

/** Number of online CPUs, from the affinity the bench itself may use. */
export function cpuCount(): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node:os').availableParallelism?.() ?? require('node:os').cpus().length;
}

/** The CPU list for the proxy and for the client side (backend + generator). */
export function placement(): { proxy: string; client: string; pinned: boolean } {
  const n = cpuCount();
  if (!hasTaskset() || n < 2) return { proxy: 'any', client: 'any', pinned: false };
  return { proxy: '0', client: n > 2 ? `1-${n - 1}` : '1', pinned: true };
}

export interface Owned {
  child: ChildProcess;
  pid: number;
  /** Collected stdout+stderr tail, for error messages. */
  output(): string;
  /** undefined while running, else a message describing how it exited. */
  exited(): string | undefined;
  stop(): Promise<void>;
}

const live = new Set<Owned>();

/** Spawns `cmd args` pinned to `cpus` (taskset -c; exec'd, so the PID is the program's own). */
export function startPinned(cpus: string, cmd: string, args: string[], opts: SpawnOptions = {}): Owned {
  const pin = cpus !== 'any' && hasTaskset();
  const child = pin
    ? spawn('taskset', ['-c', cpus, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
    : spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let buf = '';
  const keep = (d: Buffer): void => {
    buf += d.toString('utf8');
    if (buf.length > 8192) buf = buf.slice(-8192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exit: string | undefined;
  let spawnError: string | undefined;
  child.on('error', (e) => {
    spawnError = `${cmd}: ${e.message}`;
  });
  const exitedP = new Promise<void>((resolve) => {
    child.on('exit', (code, sig) => {
      exit = `${cmd} exited (${sig ? `signal ${sig}` : `code ${code}`})`;
      resolve();
    });
    child.on('error', () => resolve());
  });
  // 'close' comes after 'exit' once stdout/stderr are drained: wait for it (briefly)
  // so that error output is complete when reported.
  const closedP = new Promise<void>((resolve) => {
    child.on('close', () => resolve());
    child.on('error', () => resolve());
  });
  const drained = (): Promise<void> => Promise.race([closedP, new Promise<void>((r) => setTimeout(r, 500).unref())]);
  const owned: Owned = {
    child,
    pid: child.pid ?? -1,
    output: () => buf.trim(),
    exited: () => spawnError ?? exit,
    stop: async () => {
      live.delete(owned);
      if (exit || spawnError || child.pid === undefined) return drained();
      // Descendants we started indirectly (nginx workers, proxy workers).
      const tree = processTree([child.pid]).filter((p) => p !== child.pid);
      try {
        process.kill(child.pid, 'SIGTERM');
      } catch {
        return;
      }
      const t = setTimeout(() => {
        try {
          if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, 3000);
      await exitedP;
      clearTimeout(t);
      for (const p of tree) {
        if (!fs.existsSync(`/proc/${p}`)) continue;
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    },
  };
  live.add(owned);
  return owned;
}

/** Stops everything still running that this module started (on exit / Ctrl-C). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((o) => o.stop()));
}

/** Synchronous best-effort kill of every owned PID (for process 'exit' handlers). */
export function killAllSync(): void {
  for (const o of live) {
    try {
      if (!o.exited()) process.kill(o.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  live.clear();
}
