// What delays the slow requests of a fixed Bolt or Dubbo rate (issue #15: p99 and p99.9 at
// 2,000/s at or below HAProxy's). Wall-clock percentiles on a shared machine mix the proxy's own
// stalls with the machine's run queue; this tool splits them, request by request.
//
//   node dist/bench/rpc-tail.js [bolt|dubbo] [--peers outrigger,outrigger-ref,haproxy] [--rate 2000]
//        [--seconds 8] [--warmup 2] [--slow MS] [--rounds N] [--no-sched] [--keep DIR]
//
// A peer `outrigger+--flag+--flag2` (or outrigger-ref+...) runs that Outrigger with V8 flags set at
// its start by the preload (v8.setFlagsFromString: flags V8 reads at run time), for experiments.
// Per peer and round, like a bench window: a fresh proxy (pinned to the proxy CPU), the open-loop
// generator (pinned to the client CPU) with a warm-up, then a window in which
// - the generator records every request's scheduled send time and latency (LoadSpec.trace, on
//   CLOCK_MONOTONIC);
// - an Outrigger proxy (a peer whose name starts with "outrigger") logs its GC pauses with their
//   times (bench/lib/gc-trace-preload.ts, preloaded through NODE_OPTIONS);
// - `perf sched record -k CLOCK_MONOTONIC -a` records who ran on every CPU.
// For the slow requests (latency >= --slow, default: the window's p99), it reports how much of
// their waiting time the proxy's CPU spent on what: the proxy's main thread, the proxy's other
// threads (V8's compiler and GC helpers, libuv's pool), other processes (the machine's load), or
// nothing (idle: the wait was elsewhere, e.g. the generator's or the backend's CPU); the same
// split over all requests for comparison; how many slow requests overlap one of the proxy's GC
// pauses; the GC pauses and the proxy's helper-thread CPU in the window. The share of "other
// processes" is the machine; the shares of the proxy's own threads and GC are the proxy's.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { rpcRateArg, rpcRateLoad, startBackend } from './load/run';
import { peerByName } from './peers';
import { DIST_BENCH } from './lib/paths';

interface Args {
  mode: 'bolt' | 'dubbo';
  peers: string[];
  rate: number;
  seconds: number;
  warmup: number;
  slowMs?: number;
  rounds: number;
  sched: boolean;
  keep?: string;
}

function parse(argv: string[]): Args {
  const a: Args = { mode: 'bolt', peers: ['outrigger', 'haproxy'], rate: 2000, seconds: 8, warmup: 2, rounds: 1, sched: true };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    const shared = rpcRateArg(a, argv, i);
    if (shared >= 0) i = shared;
    else if (v === '--warmup') a.warmup = Number(argv[++i]);
    else if (v === '--slow') a.slowMs = Number(argv[++i]);
    else if (v === '--rounds') a.rounds = Number(argv[++i]);
    else if (v === '--no-sched') a.sched = false;
    else if (v === '--keep') a.keep = argv[++i];
    else throw new Error(`unknown argument ${v}`);
  }
  return a;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One run of a task on a CPU: [start, end) in CLOCK_MONOTONIC ms. */
interface Run {
  start: number;
  end: number;
  /** how long it waited for the CPU after its wakeup, ms (sch delay) */
  delay: number;
  cpu: number;
  tid: number;
  pid: number;
  name: string;
}

/** perf sched timehist: one line per switch-out, "time [cpu] name[tid/pid] wait delay run" (s, ms). */
function parseTimehist(text: string): Run[] {
  const out: Run[] = [];
  const re = /^\s*([\d.]+)\s+\[(\d+)\]\s+(.*?)\[(\d+)(?:\/(\d+))?\]\s+[\d.]+\s+([\d.]+)\s+([\d.]+)/;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (m === null) continue;
    const end = Number(m[1]) * 1000;
    const run = Number(m[7]);
    const tid = Number(m[4]);
    out.push({ start: end - run, end, delay: Number(m[6]), cpu: Number(m[2]), tid, pid: m[5] !== undefined ? Number(m[5]) : tid, name: m[3].trim() });
  }
  return out;
}

function runCmd(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', () => resolve(out));
    p.on('error', () => resolve(''));
  });
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

interface Gc {
  start: number;
  dur: number;
  kind: string;
}

type Part = 'main' | 'helpers' | 'others' | 'idle';

/**
 * For each interval [s, e): the time the proxy's CPU spent per part. `runs` are that CPU's runs
 * sorted by start; the intervals are visited in start order with a moving cursor.
 */
function split(intervals: [number, number][], runs: Run[], proxyPid: number): Record<Part, number> {
  const tot: Record<Part, number> = { main: 0, helpers: 0, others: 0, idle: 0 };
  const order = intervals.map((_, i) => i).sort((x, y) => intervals[x][0] - intervals[y][0]);
  let lo = 0;
  for (const i of order) {
    const [s, e] = intervals[i];
    while (lo < runs.length && runs[lo].end <= s) lo++;
    let busy = 0;
    for (let j = lo; j < runs.length && runs[j].start < e; j++) {
      const r = runs[j];
      const ov = Math.min(e, r.end) - Math.max(s, r.start);
      if (ov <= 0) continue;
      busy += ov;
      if (r.pid === proxyPid) tot[r.tid === proxyPid ? 'main' : 'helpers'] += ov;
      else tot.others += ov;
    }
    tot.idle += Math.max(0, e - s - busy);
  }
  return tot;
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  const backend = await startBackend();
  const scratch = a.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'rpc-tail-'));
  fs.mkdirSync(scratch, { recursive: true });
  const preload = path.join(DIST_BENCH, 'lib', 'gc-trace-preload.js');
  try {
    for (let round = 1; round <= a.rounds; round++) {
      for (const name of a.peers) {
        // "outrigger+--flag+--flag2": that peer with V8 flags set by the preload at its start.
        const [peer, ...flags] = name.split('+');
        const def = peerByName(peer);
        if (!def) throw new Error(`unknown peer ${peer}`);
        const tag = `${name}-r${round}`;
        const dir = fs.mkdtempSync(path.join(scratch, `${tag}-`));
        const gcFile = path.join(dir, 'gc.txt');
        const saved = { opts: process.env.NODE_OPTIONS, gc: process.env.OUTRIGGER_BENCH_GC_TRACE, flags: process.env.OUTRIGGER_BENCH_V8_FLAGS };
        if (peer.startsWith('outrigger')) {
          process.env.NODE_OPTIONS = `${saved.opts ?? ''} -r ${preload}`.trim();
          process.env.OUTRIGGER_BENCH_GC_TRACE = gcFile;
          if (flags.length > 0) process.env.OUTRIGGER_BENCH_V8_FLAGS = flags.join(' ');
        }
        let rp;
        try {
          rp = await def.start({ mode: a.mode, backendPort: backend.ports[a.mode], dir });
        } finally {
          if (saved.opts === undefined) delete process.env.NODE_OPTIONS;
          else process.env.NODE_OPTIONS = saved.opts;
          for (const [k, v] of [['OUTRIGGER_BENCH_GC_TRACE', saved.gc], ['OUTRIGGER_BENCH_V8_FLAGS', saved.flags]] as const) {
            if (v === undefined) delete process.env[k];
            else process.env[k] = v;
          }
        }
        const started = Number(process.hrtime.bigint()) / 1e6;
        try {
          const warmMs = a.warmup * 1000;
          const winMs = a.seconds * 1000;
          const trace = path.join(dir, 'lat');
          const load = rpcRateLoad(
            { mode: a.mode, port: rp.port, rate: a.rate, durationMs: winMs, proxyPids: rp.pids, backendPid: backend.pid, trace },
            warmMs,
          );
          const schedFile = path.join(dir, 'sched.data');
          let sched: Promise<string> = Promise.resolve('');
          if (a.sched) {
            // runLoad's window starts ~300 ms + warm-up after it is called.
            await sleep(warmMs + 200);
            sched = new Promise<void>((resolve) => {
              const p = spawn('perf', ['sched', 'record', '-k', 'CLOCK_MONOTONIC', '-a', '-o', schedFile, '--', 'sleep', String((winMs + 300) / 1000)], { stdio: 'ignore' });
              p.on('close', () => resolve());
              p.on('error', () => resolve());
            }).then(() => runCmd('perf', ['sched', 'timehist', '-i', schedFile]));
          }
          const r = await load;
          const timehist = await sched;
          if (a.keep === undefined) fs.rmSync(schedFile, { force: true });
          process.stdout.write(report(tag, a, r.ops, r.errors, trace, gcFile, parseTimehist(timehist), rp.pids[0], started));
        } finally {
          await rp.stop();
        }
      }
    }
  } finally {
    await backend.stop();
    if (a.keep === undefined) fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function report(tag: string, a: Args, ops: number, errors: number, trace: string, gcFile: string, runs: Run[], proxyPid: number, started: number): string {
  const parts: Float64Array[] = [];
  for (const f of fs.readdirSync(path.dirname(trace))) {
    if (f.startsWith(`${path.basename(trace)}.`)) {
      const b = fs.readFileSync(path.join(path.dirname(trace), f));
      parts.push(new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8));
    }
  }
  const n = parts.reduce((x, p) => x + p.length / 2, 0);
  const sends = new Float64Array(n);
  const lats = new Float64Array(n);
  let k = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i += 2) {
      sends[k] = p[i];
      lats[k++] = p[i + 1];
    }
  }
  const sorted = Float64Array.from(lats).sort();
  const ms = (v: number): string => v.toFixed(2);
  let out = `${tag} ${a.mode} ${a.rate}/s: ${ops} ops, ${errors} errors; latency ms p50 ${ms(percentile(sorted, 50))} p90 ${ms(percentile(sorted, 90))} p99 ${ms(percentile(sorted, 99))} p99.9 ${ms(percentile(sorted, 99.9))} max ${ms(percentile(sorted, 100))}\n`;
  const slowMs = a.slowMs ?? percentile(sorted, 99);
  const slow: [number, number][] = [];
  const all: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    all.push([sends[i], sends[i] + lats[i]]);
    if (lats[i] >= slowMs) slow.push([sends[i], sends[i] + lats[i]]);
  }
  const winStart = n > 0 ? sends.reduce((x, y) => Math.min(x, y)) : 0;
  const winEnd = n > 0 ? all.reduce((x, v) => Math.max(x, v[1]), 0) : 0;
  // GC pauses of the proxy (Outrigger peers only) in the window.
  const gcs: Gc[] = [];
  if (fs.existsSync(gcFile)) {
    for (const line of fs.readFileSync(gcFile, 'utf8').split('\n')) {
      const [s, d, kind] = line.split(' ');
      if (kind !== undefined) gcs.push({ start: Number(s), dur: Number(d), kind });
    }
  }
  const inWin = gcs.filter((g) => g.start + g.dur >= winStart && g.start <= winEnd);
  if (fs.existsSync(gcFile)) {
    const byKind = new Map<string, number[]>();
    for (const g of inWin) byKind.set(g.kind, [...(byKind.get(g.kind) ?? []), g.dur]);
    const kinds = [...byKind].map(([kd, ds]) => `${kd} ${ds.length} (longest ${ms(Math.max(...ds))} ms, sum ${ms(ds.reduce((x, y) => x + y, 0))})`).join(', ');
    const at = inWin.filter((g) => g.kind !== 'minor').map((g) => `${((g.start - started) / 1000).toFixed(1)}s:${ms(g.dur)}`).join(' ');
    out += `  GC pauses in the window: ${inWin.length === 0 ? 'none' : kinds}${at ? `; non-scavenge at (s after the proxy started) ${at}` : ''}\n`;
    let hit = 0;
    let gi = 0;
    const sortedGc = [...inWin].sort((x, y) => x.start - y.start);
    for (const [s, e] of [...slow].sort((x, y) => x[0] - y[0])) {
      while (gi < sortedGc.length && sortedGc[gi].start + sortedGc[gi].dur < s) gi++;
      if (gi < sortedGc.length && sortedGc[gi].start < e) hit++;
    }
    out += `  slow requests (>= ${ms(slowMs)} ms): ${slow.length}, of which ${hit} overlap a GC pause of the proxy\n`;
  } else {
    out += `  slow requests (>= ${ms(slowMs)} ms): ${slow.length}\n`;
  }
  if (runs.length > 0) {
    // The proxy's CPU: where its main thread ran most.
    const perCpu = new Map<number, number>();
    for (const r of runs) if (r.tid === proxyPid) perCpu.set(r.cpu, (perCpu.get(r.cpu) ?? 0) + r.end - r.start);
    const cpu = [...perCpu].sort((x, y) => y[1] - x[1])[0]?.[0] ?? 0;
    const onCpu = runs.filter((r) => r.cpu === cpu && r.tid !== 0).sort((x, y) => x.start - y.start);
    const pct = (t: Record<Part, number>): string => {
      const sum = t.main + t.helpers + t.others + t.idle;
      const p = (v: number): string => `${((100 * v) / Math.max(sum, 1e-9)).toFixed(1)} %`;
      return `proxy main ${p(t.main)}, proxy helpers ${p(t.helpers)}, other processes ${p(t.others)}, idle ${p(t.idle)}`;
    };
    out += `  CPU ${cpu} during the slow requests: ${pct(split(slow, onCpu, proxyPid))}\n`;
    out += `  CPU ${cpu} during all requests:      ${pct(split(all, onCpu, proxyPid))}\n`;
    // The proxy's threads in the window, by thread.
    const byTid = new Map<number, { name: string; ms: number; runs: number; long: number }>();
    const others = new Map<string, number>();
    for (const r of runs) {
      if (r.end < winStart || r.start > winEnd) continue;
      if (r.pid === proxyPid) {
        const t = byTid.get(r.tid) ?? { name: r.name, ms: 0, runs: 0, long: 0 };
        t.ms += r.end - r.start;
        t.runs++;
        if (r.end - r.start > 1) t.long++;
        byTid.set(r.tid, t);
      } else if (r.cpu === cpu && r.tid !== 0) {
        const nm = r.name.replace(/\d+$/, '');
        others.set(nm, (others.get(nm) ?? 0) + r.end - r.start);
      }
    }
    const threads = [...byTid].sort((x, y) => y[1].ms - x[1].ms).map(([tid, t]) => `${tid === proxyPid ? 'main' : t.name}: ${ms(t.ms)} ms in ${t.runs} runs (${t.long} over 1 ms)`).join('; ');
    out += `  proxy threads in the window: ${threads}\n`;
    const delays = Float64Array.from(runs.filter((r) => r.tid === proxyPid && r.end >= winStart && r.start <= winEnd).map((r) => r.delay * 1000)).sort();
    const us = (p: number): string => percentile(delays, p).toFixed(0);
    out += `  proxy main thread, wait for the CPU after a wakeup (µs): p50 ${us(50)} p90 ${us(90)} p99 ${us(99)} p99.9 ${us(99.9)} max ${us(100)}; over 1 ms ${delays.filter((d) => d > 1000).length} of ${delays.length}\n`;
    const top = [...others].sort((x, y) => y[1] - x[1]).slice(0, 5).map(([nm, v]) => `${nm} ${v.toFixed(0)} ms`).join(', ');
    out += `  other processes on CPU ${cpu} in the window: ${top || 'none'}\n`;
  }
  return out;
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
