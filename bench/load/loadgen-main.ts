// Load generator process (started pinned to the client CPU). Usage:
//   node loadgen-main.js '<LoadSpec JSON>'
// Splits the connections over `threads` piscina workers, samples the proxy's and
// backend's CPU (/proc) at the window edges and its own CPU (all threads), and
// prints one LoadResult JSON line on stdout.
import * as path from 'node:path';
import { Piscina } from 'piscina';
import * as hdr from 'hdr-histogram-js';
import { treeCpuSeconds, treeHwmKiB, treeRssKiB } from '../lib/proc';
import type { LoadResult, LoadSpec, WorkerResult } from './spec';
import type { WorkerTask } from './worker';
import { h2loadBin, runH2load } from './h2load';

export async function generate(spec: LoadSpec): Promise<LoadResult> {
  // http1 and h2 through h2load (a C client: the shared client CPU goes to the backend, not the generator).
  const h2load = spec.kind === 'h2' || spec.kind === 'http1' ? h2loadBin() : undefined;
  const threads = h2load ? 0 : Math.max(1, Math.min(spec.threads, spec.connections));
  const pool = new Piscina({
    filename: path.join(__dirname, 'worker.js'),
    minThreads: threads,
    maxThreads: Math.max(1, threads),
    idleTimeout: 1000,
  });
  const tasks: Promise<WorkerResult>[] = h2load ? [runH2load(spec, h2load)] : [];
  for (let i = 0; i < threads; i++) {
    const n = Math.floor(spec.connections / threads) + (i < spec.connections % threads ? 1 : 0);
    const t: WorkerTask = { spec, connections: n };
    tasks.push(pool.run(t));
  }

  let cpu0 = { proxy: 0, backend: 0, gen: 0, at: 0 };
  let cpu1 = cpu0;
  let rssMax = 0;
  const sample = (): typeof cpu0 => {
    const u = process.cpuUsage();
    return {
      proxy: treeCpuSeconds(spec.proxyPids),
      backend: treeCpuSeconds(spec.backendPids),
      // h2load is a child process: count it with this process (all threads) from /proc.
      gen: h2load ? treeCpuSeconds([process.pid]) : (u.user + u.system) / 1e6,
      at: Date.now(),
    };
  };
  const startDelay = Math.max(0, spec.measureStart - Date.now());
  const sampler = new Promise<void>((resolve) => {
    setTimeout(() => {
      cpu0 = sample();
      const rssTimer = setInterval(() => {
        rssMax = Math.max(rssMax, treeRssKiB(spec.proxyPids));
      }, 200);
      setTimeout(() => {
        cpu1 = sample();
        rssMax = Math.max(rssMax, treeRssKiB(spec.proxyPids));
        clearInterval(rssTimer);
        resolve();
      }, spec.durationMs);
    }, startDelay);
  });

  const results = await Promise.all(tasks);
  await sampler;
  const hwm = treeHwmKiB(spec.proxyPids);
  await pool.destroy();

  const merged = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const lag = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const out: LoadResult = {
    ops: 0,
    bytes: 0,
    errors: 0,
    connectFailures: 0,
    windowS: (cpu1.at - cpu0.at) / 1000,
    histogram: '',
    proxyCpuS: cpu1.proxy - cpu0.proxy,
    backendCpuS: cpu1.backend - cpu0.backend,
    generatorCpuS: cpu1.gen - cpu0.gen,
    proxyRssMaxKiB: rssMax,
    proxyHwmKiB: hwm,
  };
  for (const r of results) {
    out.ops += r.ops;
    out.bytes += r.bytes;
    out.errors += r.errors;
    out.connectFailures += r.connectFailures;
    out.firstError ??= r.firstError;
    out.note ??= r.note;
    if (r.histogram) {
      const h = hdr.decodeFromCompressedBase64(r.histogram);
      merged.add(h);
      h.destroy();
    }
    if (r.lagHistogram) {
      const h = hdr.decodeFromCompressedBase64(r.lagHistogram);
      lag.add(h);
      h.destroy();
    }
  }
  out.histogram = merged.totalCount > 0 ? hdr.encodeIntoCompressedBase64(merged) : '';
  if (lag.totalCount > 0) out.lagHistogram = hdr.encodeIntoCompressedBase64(lag);
  merged.destroy();
  lag.destroy();
  return out;
}

if (require.main === module) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
  // Hard stop: never outlive the window by much, whatever happens.
  const guard = setTimeout(() => {
    process.stderr.write('loadgen: timed out\n');
    process.exit(2);
  }, Math.max(0, spec.measureStart - Date.now()) + spec.durationMs + 15_000);
  guard.unref();
  generate(spec).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n', () => process.exit(0));
    },
    (e) => {
      process.stderr.write(`loadgen: ${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}
