// User-space instructions per Bolt request of a sidecar with the filters of bench/filters-cost.ts
// (the same configs: none / all / rbac / ratelimit / tracing / pipeline), counted by callgrind:
// a figure a loaded machine does not change, for before/after comparisons of the filters' work.
//
//   node dist/bench/filters-instructions.js [--variants none,all] [--ratio 0.01] [--n 20000]
//        [--warm 20000] [--connections 20] [--depth 4] [--base /other/tree/dist] [--keep DIR] [--gc]
//        (--ratio and --batch-interval: the tracing settings of bench/filters-cost.ts)
//
// --gc: no callgrind; the sidecar runs with --trace-gc and the tool prints the young-generation
// collections (scavenges) and full collections per 100,000 counted requests (what the filtered
// path allocates per request, seen as GC work).
//
// Per tree and variant: the sidecar (1 worker) under valgrind --tool=callgrind, a closed-loop
// Bolt client in this process (`connections` connections, `depth` requests in flight on each),
// `warm` requests of warm-up (JIT tiers settle), counters zeroed, `n` requests counted. The
// OTLP collector is an HTTP server in this process. Two figures: the main thread's (the data
// plane runs there: one-isolate mode) and all threads' (GC helpers, libuv's pool and V8's
// compiler threads too; their share moves with the machine's load and JIT timing, the main
// thread's less). ~2-4 minutes per sidecar. Kernel time is
// not counted; the export's work (timer-driven, off the request path) is, as it runs on the
// sidecar's thread. At a sampling ratio of 1%, `n` = 20,000 gives ~200 sampled requests.
//
// Export cadence: a batch leaves when batch_size (512) spans are queued or batch_interval (1 s
// here) has passed. Under callgrind the sidecar serves ~1,000 requests per second, so the 1-s
// timer sends a batch of ~10-20 spans every ~1,000-2,000 requests, 30-50 times as often per
// request as at 60,000 requests/s (a full batch of 512 about every 51,000 requests), and how
// often depends on the machine's load. `--batch-interval 60` leaves only the batch size: the
// cadence of a busy sidecar, and a count that no longer depends on the load (use an `n` of
// 51,200 or more, so that the window holds at least one export).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startOtlpSink } from './lib/otlp-sink';
import { firstLine, numOpt, strOpt } from './lib/script';
import { BOLT_ID_OFFSET, BoltFrameReader, boltRequestTemplate } from './load/bolt';
import { sidecarConfig, VARIANT_NAMES, type Variant } from './filters-cost';

const args = process.argv.slice(2);
const N = numOpt(args, 'n', 20000);
const WARM = numOpt(args, 'warm', 20000);
const CONNS = numOpt(args, 'connections', 20);
const DEPTH = numOpt(args, 'depth', 4);
const BASE = strOpt(args, 'base');
/** Keep the callgrind files in this directory (callgrind_annotate them; the sidecar writes /tmp/perf-PID.map for its JIT code). */
const KEEP = strOpt(args, 'keep');
/** Count GC cycles (node --trace-gc) instead of instructions. */
const GC = args.includes('--gc');
const VARIANTS = (strOpt(args, 'variants') ?? 'none,all').split(',') as Variant[];
for (const v of VARIANTS) if (!VARIANT_NAMES.includes(v)) throw new Error(`--variants: ${v} is not one of ${VARIANT_NAMES.join(', ')}`);
const ROOT = path.join(__dirname, '..');

/** `count` Bolt requests over CONNS connections, DEPTH in flight on each; resolves when all are answered. */
async function closedLoop(port: number, count: number): Promise<void> {
  const tmpl = boltRequestTemplate();
  let sent = 0;
  let done = 0;
  let id = 1;
  const socks: net.Socket[] = [];
  await new Promise<void>((resolve, reject) => {
    const send = (s: net.Socket): void => {
      if (sent >= count) return;
      sent++;
      const b = Buffer.from(tmpl);
      b.writeUInt32BE(id++ >>> 0, BOLT_ID_OFFSET);
      s.write(b);
    };
    for (let c = 0; c < CONNS; c++) {
      const s = net.connect(port, '127.0.0.1', () => {
        s.setNoDelay(true);
        for (let k = 0; k < DEPTH; k++) send(s);
      });
      const reader = new BoltFrameReader(() => {
        done++;
        if (done === count) resolve();
        else send(s);
      });
      s.on('data', (d: Buffer) => {
        if (!reader.push(d)) reject(new Error('bad bolt frame'));
      });
      s.on('error', reject);
      socks.push(s);
    }
  });
  for (const s of socks) s.destroy();
}

/** --gc: scavenges and mark-compacts of the sidecar (node --trace-gc) while N requests are counted. */
async function gcRun(name: string, dist: string, cfgPath: string, upgradeDir: string, dir: string): Promise<void> {
  const p = spawn(process.execPath, ['--trace-gc', path.join(dist, 'src', 'cli.js'), 'start', '-c', cfgPath, '--workers', '1', '--upgrade-dir', upgradeDir], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let scav = 0;
  let full = 0;
  p.stderr.resume();
  p.stdout.on('data', (d: Buffer) => {
    const t = d.toString();
    scav += t.split('Scavenge').length - 1;
    full += t.split('Mark-Compact').length - 1;
  });
  try {
    const m = await firstLine(p, /listener bolt on [^:]+:(\d+)/, 60_000);
    await closedLoop(Number(m[1]), WARM);
    await new Promise((r) => setTimeout(r, 200));
    const s0 = scav;
    const f0 = full;
    await closedLoop(Number(m[1]), N);
    await new Promise((r) => setTimeout(r, 200));
    const per = 100_000 / N;
    console.log(`${name.padEnd(16)} ratio ${strOpt(args, 'ratio') ?? '0.01'}: ${N} requests, per 100k requests: scavenges ${((scav - s0) * per).toFixed(1)}, mark-compacts ${((full - f0) * per).toFixed(1)}`);
  } finally {
    p.kill('SIGTERM');
    await new Promise((r) => (p.exitCode !== null ? r(undefined) : p.once('exit', r)));
  }
}

function run(cmd: string, argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { stdio: 'ignore' });
    p.on('error', reject);
    p.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`${cmd} ${argv.join(' ')} exited ${c}`))));
  });
}

async function main(): Promise<void> {
  const { server: collector, url: curl } = await startOtlpSink();
  const backend = spawn(process.execPath, [path.join(ROOT, 'bench', 'backend.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const ports = JSON.parse((await firstLine(backend, /\{.*"bolt":\d+.*\}/))[0]) as { http: number; bolt: number };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'filters-instr-'));
  const trees: [string, string][] = BASE === undefined ? [['this', ROOT]] : [['this', ROOT], ['base', path.resolve(BASE)]];
  try {
    for (const v of VARIANTS) {
      for (const [tree, dist] of trees) {
        const name = `${v}@${tree}`;
        const cfgPath = path.join(dir, `${name}.json`);
        fs.writeFileSync(cfgPath, JSON.stringify(sidecarConfig(ports, v, curl)));
        const upgradeDir = path.join(dir, `upgrade-${name}`);
        fs.mkdirSync(upgradeDir);
        const out = path.join(dir, `cg-${name}`);
        if (GC) {
          await gcRun(name, dist, cfgPath, upgradeDir, dir);
          continue;
        }
        const vg = spawn('valgrind', ['--tool=callgrind', '--smc-check=all-non-file', '--separate-threads=yes', `--callgrind-out-file=${out}.%p`, process.execPath, ...(KEEP !== undefined ? ['--perf-basic-prof'] : []), path.join(dist, 'src', 'cli.js'), 'start', '-c', cfgPath, '--workers', '1', '--upgrade-dir', upgradeDir], {
          // Its own directory as cwd: --perf-basic-prof leaves a V8 log there.
          cwd: dir,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        try {
          const m = await firstLine(vg, /listener bolt on [^:]+:(\d+)/, 300_000);
          await closedLoop(Number(m[1]), WARM);
          await run('callgrind_control', ['--zero', String(vg.pid)]);
          await closedLoop(Number(m[1]), N);
          await run('callgrind_control', [`--dump=counted`, String(vg.pid)]);
          await new Promise((r) => setTimeout(r, 1000));
          // One file per thread of the "counted" dump (--separate-threads): <out>.<pid>.<part>-<thread>, thread 01 the main one.
          let ir = 0;
          let main = 0;
          for (const f of fs.readdirSync(dir)) {
            if (!f.startsWith(`cg-${name}.${vg.pid}`)) continue;
            const t = fs.readFileSync(path.join(dir, f), 'utf8');
            if (!/^desc: Trigger: .*counted/m.test(t)) continue;
            const s = /^summary: (\d+)/m.exec(t);
            if (s !== null) {
              ir += Number(s[1]);
              if (f.endsWith('-01')) main = Number(s[1]);
            }
            if (KEEP !== undefined) fs.copyFileSync(path.join(dir, f), path.join(KEEP, f));
          }
          console.log(`${name.padEnd(16)} ratio ${strOpt(args, 'ratio') ?? '0.01'}: ${N} requests, instructions per request (user space): main thread ${Math.round(main / N)}, all threads ${Math.round(ir / N)}`);
        } finally {
          vg.kill('SIGTERM');
          await new Promise((r) => (vg.exitCode !== null ? r(undefined) : vg.once('exit', r)));
        }
      }
    }
  } finally {
    backend.kill('SIGTERM');
    collector.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
