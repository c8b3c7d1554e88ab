/**
 * Issue 15, Bolt/Dubbo p99.9 at 2,000/s: in `outrigger start` V8's memory reducer is deferred
 * for good and each thread that runs JS collects when it is idle instead (src/startup-memory.ts,
 * 5.). V8's reducer, armed by the start's first mark-compact, would collect ~8 s after it while
 * the allocation rate is low, which a proxy at 2,000 requests/s is: each of its collections is a
 * pause for every request in flight. The traces (`--trace-gc-verbose`, `--trace-gc`, set by a
 * preload: NODE_OPTIONS takes no V8 flags) show the reducer's collections ("Memory reducer:
 * started GC") and the idle collector's (V8's "low memory notification").
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startSidecar, tcpProxyConfig } from '../helpers/sidecar';
import { until } from '../helpers/wait';
import { IDLE_CPU_MS, idleStep, type IdleWindow } from '../../src/startup-memory';

const LOW_MEMORY = /low memory notification/;

/** The isolates (trace prefix `[pid:0xaddr]`) that ran the idle collector's collection. */
function collectingIsolates(out: string): Set<string> {
  const s = new Set<string>();
  for (const line of out.split('\n')) if (LOW_MEMORY.test(line)) s.add(/^\[(\d+:0x[0-9a-f]+)\]/.exec(line)?.[1] ?? line);
  return s;
}

/** An idle sidecar with V8's GC traced until `done(output)` (or the timeout). */
async function gcTrace(opts: { env?: NodeJS.ProcessEnv; workers?: number }, what: string, done: (out: string) => boolean): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memory-reducer-'));
  const preload = path.join(dir, 'trace.js');
  fs.writeFileSync(preload, "require('node:v8').setFlagsFromString('--trace-gc-verbose');\nrequire('node:v8').setFlagsFromString('--trace-gc');\n");
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [1] }), { workers: opts.workers, env: { NODE_OPTIONS: `--require ${preload}`, ...opts.env } });
  try {
    // The first idle 10-s window ends 10-20 s after the start (later on a loaded machine).
    await until(what, 50_000, () => done(sc.output()));
    return sc.output();
  } finally {
    await sc.terminate();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('outrigger start: no memory-reducer collection; an idle sidecar collects once per thread, main and each worker thread', { timeout: 90_000 }, async () => {
  const [inline, threads, v8Default] = await Promise.all([
    gcTrace({}, 'the idle collection', (o) => collectingIsolates(o).size >= 1),
    gcTrace({ workers: 2 }, 'the idle collection of the main thread and both worker threads', (o) => collectingIsolates(o).size >= 3),
    gcTrace({ env: { OUTRIGGER_MEMORY_REDUCER: 'v8' } }, "the memory reducer's first collection", (o) => /Memory reducer: finished GC #1/.test(o)),
  ]);
  // 10 s or more after the start: V8's reducer would have collected at ~8 s.
  assert.doesNotMatch(inline, /Memory reducer: started GC/);
  assert.doesNotMatch(threads, /Memory reducer: started GC/);
  assert.equal(collectingIsolates(threads).size, 3);
  // OUTRIGGER_MEMORY_REDUCER=v8: V8's reducer as it is, no idle collector.
  assert.match(v8Default, /Memory reducer: started GC #1/);
  assert.doesNotMatch(v8Default, LOW_MEMORY);
});

test('idle collector: one collection per idle period, a busy window arms the next', () => {
  const w: IdleWindow = { collected: false };
  const seq = [IDLE_CPU_MS * 5, 1, 0, 2, IDLE_CPU_MS, 3, IDLE_CPU_MS - 1, IDLE_CPU_MS * 100, IDLE_CPU_MS * 100, 0];
  assert.deepEqual(seq.map((ms) => idleStep(w, ms)), [false, true, false, false, false, true, false, false, false, true]);
});
