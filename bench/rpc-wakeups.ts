// Per-request syscalls and CPU of each peer at a fixed Bolt or Dubbo rate (issue #15):
// where the cost is per wakeup, not per byte, the syscall set per request is the first
// thing to compare with HAProxy's (epoll_wait, recv, send on each side).
//
//   node dist/bench/rpc-wakeups.js [bolt|dubbo] [--peers outrigger,outrigger-ref,haproxy]
//        [--rate 2000] [--seconds 5] [--no-strace]
//
// For every peer: starts it pinned to the proxy CPU, runs the open-loop generator for
// warm-up + 2 windows; in the first window counts CPU (utime/stime from /proc) without
// a tracer, in the second attaches `strace -c -f` and counts syscalls. Prints per-request
// figures. strace slows the traced process: its window's CPU is not used.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { runLoad, startBackend } from './load/run';
import { peerByName } from './peers';
import { processTree } from './lib/proc';

interface Args {
  mode: 'bolt' | 'dubbo';
  peers: string[];
  rate: number;
  seconds: number;
  strace: boolean;
  /** perf record -g output file (run with NODE_OPTIONS=--perf-basic-prof for JS frames) */
  perf?: string;
}

function parse(argv: string[]): Args {
  const a: Args = { mode: 'bolt', peers: ['outrigger', 'haproxy'], rate: 2000, seconds: 5, strace: true };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === 'bolt' || v === 'dubbo') a.mode = v;
    else if (v === '--peers') a.peers = argv[++i].split(',');
    else if (v === '--rate') a.rate = Number(argv[++i]);
    else if (v === '--seconds') a.seconds = Number(argv[++i]);
    else if (v === '--no-strace') a.strace = false;
    else if (v === '--perf') a.perf = argv[++i];
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
        const load = runLoad(
          {
            kind: a.mode === 'bolt' ? 'bolt-rate' : 'dubbo-rate',
            host: '127.0.0.1',
            port: rp.port,
            connections: 200,
            threads: 1,
            messageSize: 1024,
            rate: a.rate,
            durationMs: (a.strace ? 2 : 1) * winMs + (a.perf ? winMs : 0) + 500,
            proxyPids: rp.pids,
            backendPids: [backend.pid],
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
        const r = await load;
        report += `  load: ${r.ops} ops, ${r.errors} errors in ${r.windowS.toFixed(1)} s\n`;
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

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
