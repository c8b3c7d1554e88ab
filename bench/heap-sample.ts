// Bytes allocated per request, by the JS function that allocated them (issue #15, docs/rpc-low-rate.md).
//
// As a preload of the process to measure, it runs V8's sampling heap profiler in that process
// (an in-process inspector session) for one window and writes the profile:
//
//   HEAP_SAMPLE_OUT=/tmp/h.json [HEAP_SAMPLE_START=4000] [HEAP_SAMPLE_MS=8000] \
//     node -r ./dist/bench/heap-sample.js dist/src/cli.js start -c CONFIG --workers 1
//
// Objects already collected by scavenges and full GCs are kept in the profile (without those
// flags it holds only what is still alive at the end, and nothing a request makes lives).
// As a program it prints a profile's bytes per request by function and by the last 5 frames:
//
//   node dist/bench/heap-sample.js /tmp/h.json REQUESTS_IN_THE_WINDOW
//
// A function TurboFan inlined into another counts in that other; rerun the measured process with
// --no-turbo-inlining to name the callee (its double arguments are then boxed: more bytes).
import * as fs from 'node:fs';
import * as inspector from 'node:inspector';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

function record(out: string, startMs: number, windowMs: number): void {
  const s = new inspector.Session();
  s.connect();
  const params = { samplingInterval: 128, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true };
  setTimeout(() => {
    s.post('HeapProfiler.enable', () =>
      s.post('HeapProfiler.startSampling', params, () => {
        setTimeout(() => {
          s.post('HeapProfiler.stopSampling', (err, r) => {
            if (err === null) fs.writeFileSync(out, JSON.stringify(r.profile));
            s.disconnect();
          });
        }, windowMs).unref();
      }),
    );
  }, startMs).unref();
}

function report(file: string, requests: number): void {
  const root = (JSON.parse(fs.readFileSync(file, 'utf8')) as { head: ProfileNode }).head;
  const byFn = new Map<string, number>();
  const byStack = new Map<string, number>();
  const walk = (n: ProfileNode, stack: string[]): void => {
    const f = n.callFrame;
    const name = `${f.functionName || '(anonymous)'} ${f.url.replace(/.*\/(dist|lib)\//, '')}:${f.lineNumber + 1}`;
    const here = [...stack, name];
    if (n.selfSize > 0) {
      byFn.set(name, (byFn.get(name) ?? 0) + n.selfSize);
      const k = here.slice(-5).join(' > ');
      byStack.set(k, (byStack.get(k) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, here);
  };
  walk(root, []);
  let total = 0;
  for (const v of byFn.values()) total += v;
  const per = (v: number): string => (v / requests).toFixed(1).padStart(7);
  const top = (m: Map<string, number>): string =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([k, v]) => `${per(v)}  ${k}`).join('\n');
  process.stdout.write(`bytes per request: ${per(total)} (${total} bytes sampled over ${requests} requests)\n${top(byFn)}\n-- by the last 5 frames\n${top(byStack)}\n`);
}

const out = process.env.HEAP_SAMPLE_OUT;
if (require.main === module) {
  const [file, reqs] = process.argv.slice(2);
  if (file === undefined || !(Number(reqs) > 0)) {
    process.stderr.write('usage: node dist/bench/heap-sample.js PROFILE.json REQUESTS\n');
    process.exitCode = 2;
  } else report(file, Number(reqs));
} else if (out !== undefined && out !== '') {
  record(out, Number(process.env.HEAP_SAMPLE_START ?? 4000), Number(process.env.HEAP_SAMPLE_MS ?? 8000));
}
