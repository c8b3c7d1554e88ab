/**
 * Issue 15, Bolt/Dubbo p99.9 at 2,000/s: V8's memory reducer collects once in `outrigger start`
 * (src/startup-memory.ts, `--memory-reducer-single-gc`), not twice or three times. The reducer,
 * armed by the start's first mark-compact, fires ~8 s after it while the allocation rate is low,
 * which a proxy at 2,000 requests/s is: each of its collections is a pause for every request in
 * flight. The reducer's own trace (`--trace-gc-verbose`, set by a preload: NODE_OPTIONS takes no
 * V8 flags) says after its first collection whether it will do more.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startSidecar, tcpProxyConfig } from '../helpers/sidecar';
import { until } from '../helpers/wait';

/** An idle sidecar with the reducer traced, until its first collection's verdict (+ 1 s for a second one). */
async function reducerTrace(env: NodeJS.ProcessEnv): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memory-reducer-'));
  const preload = path.join(dir, 'trace.js');
  fs.writeFileSync(preload, "require('node:v8').setFlagsFromString('--trace-gc-verbose');\n");
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [1] }), { env: { NODE_OPTIONS: `--require ${preload}`, ...env } });
  try {
    // 8 s after the start's mark-compact, later on a loaded machine.
    await until('the memory reducer\'s first collection', 40_000, () => /Memory reducer: finished GC #1/.test(sc.output()));
    await new Promise((r) => setTimeout(r, 1000)); // a second collection starts 0.5 s after the first
    return sc.output();
  } finally {
    await sc.terminate();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('outrigger start: the memory reducer collects once', { timeout: 60_000 }, async () => {
  const [single, v8Default] = await Promise.all([reducerTrace({}), reducerTrace({ OUTRIGGER_MEMORY_REDUCER: 'v8' })]);
  assert.match(single, /Memory reducer: finished GC #1 \(done\)/);
  assert.doesNotMatch(single, /Memory reducer: started GC #2/);
  // OUTRIGGER_MEMORY_REDUCER=v8: V8's default, a second collection at least.
  assert.match(v8Default, /Memory reducer: finished GC #1 \(will do more\)/);
});
