// Per-request syscalls and CPU of each peer at a fixed Bolt or Dubbo rate (issue #15):
// where the cost is per wakeup, not per byte, the syscall set per request is the first
// thing to compare with HAProxy's (epoll_wait, recv, send on each side).
//
//   node dist/bench/rpc-wakeups.js [bolt|dubbo] [--peers outrigger,outrigger-ref,haproxy]
//        [--rate 2000] [--seconds 5] [--no-strace] [--sched]
//
// For every peer: starts it pinned to the proxy CPU, runs the open-loop generator for
// warm-up + 2 windows; in the first window counts CPU (utime/stime from /proc) without
// a tracer, in the second attaches `strace -c -f` and counts syscalls. Prints per-request
// figures. strace slows the traced process: its window's CPU is not used. The latency line
// (from each request's scheduled send time, as the bench's) covers the whole load, strace
// window included: use --no-strace for latencies.
// --sched: one more window under `perf sched record -a` (scheduler events, all CPUs): for the
// proxy's main thread and the backend's, how long each wakeup waited for its CPU (sch delay:
// woken -> running) and how long it then ran, as percentiles: whether a latency tail is the
// proxy's own work or the machine's run queue.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { rpcRateArg, rpcRateLoad, startBackend } from './load/run';
import { peerByName } from './peers';
import { processTree } from './lib/proc';
import { summariseLatency } from './aggregate';

interface Args {
  mode: 'bolt' | 'dubbo';
  peers: string[];
  rate: number;
  seconds: number;
  strace: boolean;
  /** perf record -g output file (run with NODE_OPTIONS=--perf-basic-prof for JS frames) */
  perf?: string;
  /** perf sched record window: wakeup delays and run times of the proxy and the backend */
  sched: boolean;
}

function parse(argv: string[]): Args {
  const a: Args = { mode: 'bolt', peers: ['outrigger', 'haproxy'], rate: 2000, seconds: 5, strace: true, sched: false };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    const shared = rpcRateArg(a, argv, i);
    if (shared >= 0) i = shared;
    else if (v === '--no-strace') a.strace = false;
    else if (v === '--perf') a.perf = argv[++i];
    else if (v === '--sched') a.sched = true;
    else throw new Error(`unknown argument ${v}`);
  }
  return a;
}

/** utime+stime of the pids and their descendants, in clock ticks, plus context switches. */
function cpuTicks(pids: number[]): { user: number; sys: number; vcsw: number; ivcsw: number; minflt: number; mainUser: number; mainSys: number } {
  const out = { user: 0, sys: 0, vcsw: 0, ivcsw: 0, minflt: 0, mainUser: 0, mainSys: 0 };
  {
    for (const pid of processTree(pids)) {
      let tasks: string[];
      try {
        tasks = fs.readdirSync(`/proc/${pid}/task`);
      } catch {
        continue;
      }
      for (const tid of tasks) {
        try {
          const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
          const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          out.user += Number(f[11]);
          out.sys += Number(f[12]);
          out.minflt += Number(f[7]);
          if (tid === String(pid)) {
            out.mainUser += Number(f[11]);
            out.mainSys += Number(f[12]);
          }
          const st = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
          out.vcsw += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0);
          out.ivcsw += Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0);
        } catch {
          /* thread gone */
        }
      }
    }
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function traceWindow(cmd: string, args: string[], ms: number): Promise<string> {
  const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await sleep(ms);
  p.kill('SIGINT');
  await new Promise<void>((r) => p.on('exit', () => r()));
  return err;
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  const backend = await startBackend();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rpc-wakeups-'));
  const hz = 100; // USER_HZ on Linux
  try {
    for (const name of a.peers) {
      const def = peerByName(name);
      if (!def) throw new Error(`unknown peer ${name}`);
      const dir = fs.mkdtempSync(path.join(scratch, `${name}-`));
      const rp = await def.start({ mode: a.mode, backendPort: backend.ports[a.mode], dir });
      try {
        const warmMs = 2000;
        const winMs = a.seconds * 1000;
        const load = rpcRateLoad(
          {
            mode: a.mode,
            port: rp.port,
            rate: a.rate,
            durationMs: (a.strace ? 2 : 1) * winMs + (a.perf ? winMs : 0) + (a.sched ? winMs + 1500 : 0) + 500,
            proxyPids: rp.pids,
            backendPid: backend.pid,
          },
          warmMs,
        );
        await sleep(warmMs + 600);
        const c0 = cpuTicks(rp.pids);
        await sleep(winMs);
        const c1 = cpuTicks(rp.pids);
        const reqs = (a.rate * winMs) / 1000;
        const us = (t: number): string => ((t / hz / reqs) * 1e6).toFixed(1);
        let report =
          `${name} ${a.mode} ${a.rate}/s: CPU per request ${us(c1.user - c0.user + c1.sys - c0.sys)} µs ` +
          `(user ${us(c1.user - c0.user)}, sys ${us(c1.sys - c0.sys)}); context switches per request ` +
          `voluntary ${((c1.vcsw - c0.vcsw) / reqs).toFixed(2)}, involuntary ${((c1.ivcsw - c0.ivcsw) / reqs).toFixed(2)}; ` +
          `main thread user ${us(c1.mainUser - c0.mainUser)} sys ${us(c1.mainSys - c0.mainSys)} µs; minor faults per request ${((c1.minflt - c0.minflt) / reqs).toFixed(3)}\n`;
        if (a.strace) {
          const text = await traceWindow('strace', ['-c', '-f', '-p', String(rp.pids[0])], winMs);
          report += `syscalls per request (strace -c -f, ${a.seconds} s, ${reqs} requests):\n`;
          for (const line of text.split('\n')) {
            const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)\s*$/.exec(line);
            if (m) report += `  ${m[3].padEnd(16)} ${(Number(m[1]) / reqs).toFixed(2).padStart(6)}${m[2] ? `  (errors ${(Number(m[2]) / reqs).toFixed(2)})` : ''}\n`;
            else if (/total/.test(line)) {
              const t = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)/.exec(line);
              if (t) report += `  ${'total'.padEnd(16)} ${(Number(t[1]) / reqs).toFixed(2).padStart(6)}\n`;
            }
          }
        }
        if (a.perf) {
          const out = `${a.perf}.${name}.${a.mode}`;
          await traceWindow('perf', ['record', '-g', '-o', out, '-p', String(rp.pids[0])], winMs);
          report += `  perf data: ${out}\n`;
        }
        if (a.sched) report += await schedWindow(scratch, winMs, (a.rate * winMs) / 1000, [['proxy', rp.pids[0]], ['backend', backend.pid]]);
        const r = await load;
        report += `  load: ${r.ops} ops, ${r.errors} errors in ${r.windowS.toFixed(1)} s\n`;
        const lat = summariseLatency([r.histogram]);
        const lag = r.lagHistogram !== undefined ? summariseLatency([r.lagHistogram]) : undefined;
        const ms = (v: number): string => (v / 1000).toFixed(2);
        if (lat !== undefined) {
          report += `  latency ms p50 ${ms(lat.p50Us)} p90 ${ms(lat.p90Us)} p99 ${ms(lat.p99Us)} p99.9 ${ms(lat.p999Us)}`;
          report += lag !== undefined ? `; generator lateness p50 ${ms(lag.p50Us)} p99 ${ms(lag.p99Us)}\n` : '\n';
        }
        process.stdout.write(report);
      } finally {
        await rp.stop();
      }
    }
  } finally {
    await backend.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * `perf sched record -a` for winMs, then per thread id in `tids` (a process's main thread has
 * its pid): percentiles of the scheduling delay of each wakeup (woken -> on its CPU) and of the
 * run time that followed, from `perf sched timehist`; and the thread's whole run time (user and
 * kernel, to the ns: no tick sampling) per request sent in the window.
 */
async function schedWindow(scratch: string, winMs: number, reqs: number, tids: [string, number][]): Promise<string> {
  const file = path.join(scratch, 'sched.data');
  await new Promise<void>((resolve) => {
    const p = spawn('perf', ['sched', 'record', '-a', '-o', file, '--', 'sleep', String(winMs / 1000)], { stdio: 'ignore' });
    p.on('close', () => resolve());
    p.on('error', () => resolve());
  });
  const text = await new Promise<string>((resolve) => {
    const p = spawn('perf', ['sched', 'timehist', '-i', file], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', () => resolve(out));
    p.on('error', () => resolve(''));
  });
  fs.rmSync(file, { force: true });
  const delays = new Map<number, number[]>();
  const runs = new Map<number, number[]>();
  for (const [, tid] of tids) {
    delays.set(tid, []);
    runs.set(tid, []);
  }
  // "   time [cpu]  name[tid/pid]  wait  sch-delay  run" (ms)
  const re = /^\s*[\d.]+\s+\[\d+\]\s+.*?\[(\d+)(?:\/\d+)?\]\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)/;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (m === null) continue;
    const d = delays.get(Number(m[1]));
    if (d === undefined) continue;
    d.push(Number(m[3]) * 1000);
    (runs.get(Number(m[1])) as number[]).push(Number(m[4]) * 1000);
  }
  const pct = (xs: number[], p: number): string => {
    if (xs.length === 0) return '-';
    const sorted = [...xs].sort((x, y) => x - y);
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))].toFixed(0);
  };
  let out = `scheduler (perf sched, ${winMs / 1000} s, µs):\n`;
  for (const [what, tid] of tids) {
    const d = delays.get(tid) as number[];
    const r = runs.get(tid) as number[];
    out += `  ${what.padEnd(8)} switches in ${d.length}: wakeup delay p50 ${pct(d, 50)} p90 ${pct(d, 90)} p99 ${pct(d, 99)} max ${pct(d, 100)}; run p50 ${pct(r, 50)} p90 ${pct(r, 90)} p99 ${pct(r, 99)} max ${pct(r, 100)}, runs over 0.5 ms ${r.filter((x) => x > 500).length} (over 1 ms ${r.filter((x) => x > 1000).length}); run per request ${(r.reduce((x, y) => x + y, 0) / reqs).toFixed(1)}\n`;
  }
  return out;
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
