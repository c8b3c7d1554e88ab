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

/**
 * The fixed-rate RPC load of issue 15's low-rate figures (bench/rpc-wakeups.ts, bench/rpc-tail.ts):
 * Bolt or Dubbo, open loop at `rate` requests/s over 200 connections, one generator thread,
 * 1 KiB requests; `trace` as LoadSpec.trace.
 */
export function rpcRateLoad(
  o: { mode: 'bolt' | 'dubbo'; port: number; rate: number; durationMs: number; proxyPids: number[]; backendPid: number; trace?: string },
  warmupMs: number,
): Promise<LoadResult> {
  return runLoad(
    {
      kind: o.mode === 'bolt' ? 'bolt-rate' : 'dubbo-rate',
      host: '127.0.0.1',
      port: o.port,
      connections: 200,
      threads: 1,
      messageSize: 1024,
      rate: o.rate,
      durationMs: o.durationMs,
      proxyPids: o.proxyPids,
      backendPids: [o.backendPid],
      trace: o.trace,
    },
    warmupMs,
  );
}

/** The arguments rpcRateLoad's tools share: `argv[i]` read into `a` if it is one; the index of its last word, or -1. */
export function rpcRateArg(a: { mode: 'bolt' | 'dubbo'; peers: string[]; rate: number; seconds: number }, argv: string[], i: number): number {
  const v = argv[i];
  if (v === 'bolt' || v === 'dubbo') a.mode = v;
  else if (v === '--peers') a.peers = argv[++i].split(',');
  else if (v === '--rate') a.rate = Number(argv[++i]);
  else if (v === '--seconds') a.seconds = Number(argv[++i]);
  else return -1;
  return i;
}
