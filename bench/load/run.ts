// Orchestrator side: start the backend process and run one load-generator process
// per measurement, both pinned to the client CPU(s).
import * as path from 'node:path';
import { DIST_BENCH } from '../lib/paths';
import { placement, startPinned, type Owned } from '../lib/proc-spawn';
import type { LoadResult, LoadSpec } from './spec';

export interface BackendHandle {
  ports: { echo: number; source: number; sink: number; http: number; bolt: number; dubbo: number; h2: number; grpc: number };
  pid: number;
  stop(): Promise<void>;
}

export async function startBackend(): Promise<BackendHandle> {
  const proc: Owned = startPinned(placement().client, process.execPath, [path.join(DIST_BENCH, 'backend.js')]);
  const ports = await new Promise<BackendHandle['ports']>((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`backend did not start: ${proc.output()}`)), 10_000);
    proc.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(t);
        try {
          resolve(JSON.parse(buf.slice(0, nl)));
        } catch (e) {
          reject(e as Error);
        }
      }
    });
    proc.child.on('exit', () => {
      clearTimeout(t);
      reject(new Error(`backend exited: ${proc.output()}`));
    });
  });
  return { ports, pid: proc.pid, stop: () => proc.stop() };
}

/**
 * Runs one measurement: connect, warm up for `warmupMs`, measure for `durationMs`.
 * Rejects if the generator process fails; load errors are reported in the result.
 */
export async function runLoad(spec: Omit<LoadSpec, 'measureStart'>, warmupMs: number): Promise<LoadResult> {
  // Process start-up (~100 ms) + connecting happen before the warm-up ends.
  const full: LoadSpec = { ...spec, measureStart: Date.now() + 300 + warmupMs };
  const proc = startPinned(placement().client, process.execPath, [path.join(DIST_BENCH, 'load', 'loadgen-main.js'), JSON.stringify(full)]);
  let out = '';
  proc.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve) => proc.child.on('exit', () => resolve()));
  await proc.stop();
  const line = out.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as LoadResult;
  } catch {
    throw new Error(`load generator failed: ${proc.exited() ?? ''} ${proc.output().slice(-600)}`);
  }
}
