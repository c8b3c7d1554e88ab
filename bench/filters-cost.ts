// What the filters of issue 13 cost per request, exactly its performance clause: CPU per request
// on the http1 and bolt workloads with RBAC (10 policies), a local rate limit and tracing at 1%
// sampling enabled together ("all"), against none of them ("none"), in one run.
//
//   node dist/bench/filters-cost.js [--seconds 5] [--rounds 5] [--connections 50] [--http-rate 8000]
//        [--bolt-rate 20000] [--ratio 0.01] [--batch-interval 1] [--base /other/tree/dist] [--cpu-prof DIR [--cpu-prof-interval US]]
//        [--workloads http1,bolt] [--variants none,all] [--no-pin]
//
// Placement as in bench/cli.ts (taskset): every sidecar on CPU 0, this process (generator, h2load)
// and the backend on the other CPUs; --no-pin lets the scheduler place them. Unpinned, a sidecar's
// loopback writev wakes the generator or backend onto the sidecar's own CPU (sync wake-up) and is
// preempted by it on the way out of the syscall; those switches are charged to the sidecar, and
// more of them to a sidecar that ran longer since it last slept: on bolt the "all" sidecar took
// ~45 involuntary context switches per 1,000 requests against ~10-35 for "none" (2 pinned), which
// showed in the profiles as flushWritev self time with the same writes (bytes, iovecs, calls).
// Each run prints the sidecar's context switches per 1,000 requests (voluntary, involuntary).
// One bench backend process (bench/backend.ts: HTTP/1.1 and Bolt listeners) and, side by side,
// one sidecar (`outrigger start`, 1 worker) per variant: "none" (no stream filter, no tracing)
// and "all": an `rbac` stream filter of 10 ALLOW policies (9 that do not match, each an
// and_rules of a :method header and a path prefix with a source_ip principal; the 10th matches
// by source IP: every request walks all ten), a `local_ratelimit` whose bucket never empties, and
// the top-level `tracing` section at --ratio sampling exporting OTLP protobuf to a collector in
// this process. With --base, the same two variants also run from another build (e.g. a checkout
// of main: `--base /work/wt/fp-base/dist`), so before and after come from one run on one machine.
//
// Load at a fixed rate, the same for every sidecar (CPU per request depends on the load):
// http1 = h2load --h1 --rps; bolt = an open-loop Bolt v1 client in this process (1 KiB requests,
// every 10 ms each connection writes its share). Round 0 is a warm-up (JIT); then each round runs
// every sidecar once per workload, the order alternating round by round (forward, reversed, and
// rotated), so that variants see the same machine state on a shared machine. Per run: the
// sidecar's CPU time (user + system of the whole process, /proc) over the requests answered.
// The summary gives the median over rounds with the spread (min..max), and the median of the
// per-round ratios all/none (paired: both ran within seconds of each other).
//
// Bottleneck: a run at a fixed rate is not saturated when the answers reach the asked rate; each
// run also reports how busy the sidecar (its one worker is one thread: near 100% of a CPU means it
// limits), the generator (h2load: this process's waited-for children CPU; bolt: this process) and
// the backend were. A run whose answered rate falls short of 95% of the asked one is flagged.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startOtlpSink } from './lib/otlp-sink';
import { firstLine, h2loadHttp1, numOpt, strOpt } from './lib/script';
import { BOLT_ID_OFFSET, BoltFrameReader, boltRequestTemplate } from './load/bolt';
import { benchFilters, benchTracing } from './lib/bench-filters';
import { cpuSecondsOf } from './lib/proc';
import { placement } from './lib/proc-spawn';

const args = process.argv.slice(2);
const opt = (name: string, def: number): number => numOpt(args, name, def);
const SECONDS = opt('seconds', 5);
const ROUNDS = opt('rounds', 5);
const CONNS = opt('connections', 50);
const HTTP_RATE = opt('http-rate', 8000);
const BOLT_RATE = opt('bolt-rate', 20000);
const RATIO = opt('ratio', 0.01);
/** tracing's batch_interval in seconds (spans per export batch; the export runs on the data plane's thread). */
const BATCH_INTERVAL = opt('batch-interval', 1);
const BASE = strOpt(args, 'base');
const CPU_PROF = strOpt(args, 'cpu-prof');
/** Sampling interval of --cpu-prof in µs (node's default 1000 is coarse for a few µs per request). */
const CPU_PROF_INTERVAL = opt('cpu-prof-interval', 1000);
/**
 * Placement as in bench/cli.ts: the sidecars on CPU 0, this process (the Bolt generator, h2load)
 * and the backend on the others. Unpinned (--no-pin), a loopback write's wake-up of the
 * generator or backend puts it on the sidecar's CPU and preempts the sidecar at the end of that
 * writev: those context switches are charged to the sidecar, more of them the more CPU the
 * sidecar used since it last slept (the "all" sidecar's flushWritev self time in the profiles).
 */
const PLACE = args.includes('--no-pin') ? { proxy: 'any', client: 'any', pinned: false } : placement();
const ROOT = path.join(__dirname, '..');
const WORKLOAD_NAMES = ['http1', 'bolt'] as const;
type Workload = (typeof WORKLOAD_NAMES)[number];
const WORKLOADS = (strOpt(args, 'workloads') ?? 'http1,bolt').split(',') as Workload[];
for (const w of WORKLOADS) if (!WORKLOAD_NAMES.includes(w)) throw new Error(`--workloads: ${w} is not one of ${WORKLOAD_NAMES.join(', ')}`);

/**
 * none and all: the clause's pair. For finding where the cost goes (--variants none,pipeline,rbac,...):
 * pipeline = one stream filter that does nothing (payload_limit 0), rbac / ratelimit / tracing alone.
 */
export const VARIANT_NAMES = ['none', 'all', 'pipeline', 'rbac', 'ratelimit', 'tracing'] as const;
export type Variant = (typeof VARIANT_NAMES)[number];
const VARIANTS = (strOpt(args, 'variants') ?? 'none,all').split(',') as Variant[];
for (const v of VARIANTS) if (!VARIANT_NAMES.includes(v)) throw new Error(`--variants: ${v} is not one of ${VARIANT_NAMES.join(', ')}`);

export function sidecarConfig(ports: { http: number; bolt: number }, v: Variant, collector: string): unknown {
  const [rbac, rl] = benchFilters();
  const sf = v === 'all' ? [rbac, rl] : v === 'rbac' ? [rbac] : v === 'ratelimit' ? [rl] : v === 'pipeline' ? [{ type: 'payload_limit', config: { max_entity_size: 0 } }] : [];
  return {
    servers: [
      {
        default_log_level: 'WARN',
        processor: 1,
        routers: [
          { router_config_name: 'h', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'web' } }] }] },
          { router_config_name: 'b', virtual_hosts: [{ name: 'sofa', domains: ['*'], routers: [{ match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: 'sofa' } }] }] },
        ],
        listeners: [
          { name: 'http1', address: '127.0.0.1:0', bind_port: true, stream_filters: sf, filter_chains: [{ filters: [{ type: 'proxy', config: { downstream_protocol: 'Http1', upstream_protocol: 'Http1', router_config_name: 'h' } }] }] },
          { name: 'bolt', address: '127.0.0.1:0', bind_port: true, stream_filters: sf, filter_chains: [{ filters: [{ type: 'proxy', config: { downstream_protocol: 'bolt', router_config_name: 'b' } }] }] },
        ],
      },
    ],
    cluster_manager: {
      clusters: [
        { name: 'web', type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: [{ address: `127.0.0.1:${ports.http}` }] },
        { name: 'sofa', type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: [{ address: `127.0.0.1:${ports.bolt}` }] },
      ],
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    ...(v === 'all' || v === 'tracing' ? { tracing: benchTracing(collector, RATIO, BATCH_INTERVAL) } : {}),
  };
}

interface Sidecar {
  /** "none" / "all", with the tree's label when two trees run. */
  readonly name: string;
  readonly tree: string;
  readonly variant: Variant;
  readonly proc: ChildProcess;
  readonly http: number;
  readonly bolt: number;
  readonly admin: number;
}

async function startSidecar(tree: string, dist: string, variant: Variant, cfg: unknown, dir: string): Promise<Sidecar> {
  const name = tree === '' ? variant : `${variant}@${tree}`;
  const cfgPath = path.join(dir, `${name}.json`);
  fs.writeFileSync(cfgPath, JSON.stringify(cfg));
  const prof = CPU_PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', path.join(CPU_PROF, name), '--cpu-prof-interval', String(CPU_PROF_INTERVAL)];
  // Its own upgrade socket: with the shared default, other Outriggers on the machine (the other
  // sidecars of this run, tests) find it and try hand-overs, which cost it CPU in the middle of a run.
  const upgradeDir = path.join(dir, `upgrade-${name}`);
  fs.mkdirSync(upgradeDir);
  const argv = [...prof, path.join(dist, 'src', 'cli.js'), 'start', '-c', cfgPath, '--workers', '1', '--upgrade-dir', upgradeDir];
  const proc = PLACE.pinned ? spawn('taskset', ['-c', PLACE.proxy, process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const m = await firstLine(proc, /listener http1 on [^:]+:(\d+)[\s\S]*listener bolt on [^:]+:(\d+)[\s\S]*admin on http:\/\/[^/]*:(\d+)\//);
  return { name, tree, variant, proc, http: Number(m[1]), bolt: Number(m[2]), admin: Number(m[3]) };
}

/** CPU seconds of this process's waited-for children (h2load after it exited): /proc/self/stat cutime + cstime. */
function childrenCpuSeconds(): number {
  const s = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

/** Context switches of all of a process's threads so far: [voluntary, involuntary] (/proc/PID/task/TID/status). */
function ctxSwitches(pid: number): [number, number] {
  let vol = 0;
  let inv = 0;
  const read = (f: string): string | null => {
    try {
      return fs.readFileSync(f, 'utf8');
    } catch {
      return null; // the process or thread ended
    }
  };
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [0, 0];
  }
  for (const t of tids) {
    const st = read(`/proc/${pid}/task/${t}/status`);
    if (st === null) continue;
    const v = /^voluntary_ctxt_switches:\s+(\d+)/m.exec(st);
    const n = /^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st);
    if (v !== null) vol += Number(v[1]);
    if (n !== null) inv += Number(n[1]);
  }
  return [vol, inv];
}

/** The sidecar's writev calls so far (admin stats; the worker publishes them every few hundred ms). */
async function writevCalls(sc: Sidecar): Promise<number> {
  const body = await new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: sc.admin, path: '/stats/prometheus' }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (b += d));
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });
  let n = 0;
  for (const m of body.matchAll(/^outrigger_worker_writev_calls_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

/** h2load --h1 at HTTP_RATE: requests answered with 2xx (an error answer fails the run). */
async function http1Load(port: number): Promise<number> {
  const r = await h2loadHttp1(port, CONNS, HTTP_RATE, SECONDS);
  if (r.errors > 0) throw new Error(`h2load saw errors:\n${r.output}`);
  return r.ok;
}

/** Open-loop Bolt client at BOLT_RATE over CONNS connections; responses counted. */
async function boltLoad(port: number): Promise<number> {
  const tmpl = boltRequestTemplate();
  const perTick = Math.max(1, Math.round(BOLT_RATE / 100 / CONNS));
  let done = 0;
  const socks: net.Socket[] = [];
  await Promise.all(
    Array.from({ length: CONNS }, () =>
      new Promise<void>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.setNoDelay(true);
          resolve();
        });
        const reader = new BoltFrameReader(() => void done++);
        s.on('data', (d: Buffer) => {
          if (!reader.push(d)) s.destroy(new Error('bad bolt frame'));
        });
        s.on('error', reject);
        socks.push(s);
      }),
    ),
  );
  let id = 1;
  // One buffer per connection and tick (the load generator's cost, not the sidecar's).
  const tick = (): void => {
    for (const s of socks) {
      const b = Buffer.allocUnsafe(tmpl.length * perTick);
      for (let k = 0; k < perTick; k++) {
        tmpl.copy(b, k * tmpl.length);
        b.writeUInt32BE(id++ >>> 0, k * tmpl.length + BOLT_ID_OFFSET);
      }
      s.write(b);
    }
  };
  const t0 = performance.now();
  let ticks = 0;
  await new Promise<void>((resolve) => {
    const step = (): void => {
      const due = Math.floor((performance.now() - t0) / 10);
      while (ticks <= due && ticks < SECONDS * 100) {
        tick();
        ticks++;
      }
      if (ticks >= SECONDS * 100) resolve();
      else setTimeout(step, 10 - ((performance.now() - t0) % 10));
    };
    step();
  });
  // The last answers: wait until the count stops moving (at most 1 s), not a fixed sleep.
  const asked = SECONDS * 100 * perTick * CONNS;
  for (let i = 0, last = -1; i < 20 && done < asked && done !== last; i++) {
    last = done;
    await new Promise((r) => setTimeout(r, 50));
  }
  const n = done;
  for (const s of socks) s.destroy();
  return n;
}

interface Run {
  readonly rps: number;
  readonly cpuUsPerRq: number;
  /** CPU / wall time: sidecar, generator, backend (1.0 = one CPU busy). */
  readonly busy: readonly [number, number, number];
  readonly short: boolean;
  /** writev calls per request (approximate: the worker publishes its counters periodically). */
  readonly writevPerRq: number;
  /** The sidecar's context switches per 1,000 requests: voluntary (it slept), involuntary (preempted). */
  readonly ctxPerKRq: readonly [number, number];
}

async function measure(sc: Sidecar, backendPid: number, workload: Workload): Promise<Run> {
  const pid = sc.proc.pid as number;
  const w0 = await writevCalls(sc);
  const x0 = ctxSwitches(pid);
  const c0 = cpuSecondsOf(pid);
  const b0 = cpuSecondsOf(backendPid);
  const g0 = workload === 'http1' ? childrenCpuSeconds() : cpuSecondsOf(process.pid);
  const t0 = performance.now();
  const n = workload === 'http1' ? await http1Load(sc.http) : await boltLoad(sc.bolt);
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuSecondsOf(pid) - c0;
  const x1 = ctxSwitches(pid);
  const gen = (workload === 'http1' ? childrenCpuSeconds() : cpuSecondsOf(process.pid)) - g0;
  const back = cpuSecondsOf(backendPid) - b0;
  const wv = (await writevCalls(sc)) - w0;
  const rate = workload === 'http1' ? HTTP_RATE : BOLT_RATE;
  return { rps: n / secs, cpuUsPerRq: (cpu * 1e6) / n, busy: [cpu / secs, gen / secs, back / secs], short: n < 0.95 * SECONDS * rate, writevPerRq: wv / n,
    ctxPerKRq: [((x1[0] - x0[0]) * 1000) / n, ((x1[1] - x0[1]) * 1000) / n],
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const pct = (x: number): string => `${(x * 100).toFixed(0)}%`;

async function main(): Promise<void> {
  // This process (Bolt generator, h2load) and the backend, which it spawns, on the client CPUs.
  if (PLACE.pinned && spawnSync('taskset', ['-a', '-p', '-c', PLACE.client, String(process.pid)], { stdio: 'ignore' }).status !== 0) {
    throw new Error(`taskset could not pin this process to CPUs ${PLACE.client} (run with --no-pin)`);
  }
  const { server: collector, url: curl } = await startOtlpSink();
  const backend = spawn(process.execPath, [path.join(ROOT, 'bench', 'backend.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const ports = JSON.parse((await firstLine(backend, /\{.*"bolt":\d+.*\}/))[0]) as { http: number; bolt: number };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'filters-cost-'));
  const sidecars: Sidecar[] = [];
  const trees: [string, string][] = BASE === undefined ? [['', ROOT]] : [['this', ROOT], ['base', path.resolve(BASE)]];
  try {
    for (const [tree, dist] of trees) for (const v of VARIANTS) sidecars.push(await startSidecar(tree, dist, v, sidecarConfig(ports, v, curl), dir));
    console.log(
      `filters cost (RBAC 10 policies + local_ratelimit + tracing ${RATIO * 100}% vs none): ${SECONDS} s per run, ${ROUNDS} rounds (+1 warm-up), ` +
        `${CONNS} connections, http1 ${HTTP_RATE}/s, bolt ${BOLT_RATE}/s, 1 worker per sidecar, ${os.cpus().length} CPUs, ${PLACE.pinned ? `sidecars on CPU ${PLACE.proxy}, generator + backend on CPU ${PLACE.client}` : 'not pinned'}, load average ${os.loadavg()[0].toFixed(1)}`,
    );
    const runs = new Map<string, Run[]>();
    for (let r = 0; r <= ROUNDS; r++) {
      for (const w of WORKLOADS) {
        // Alternating order: reversed every other round, rotated by the round number.
        const rot = [...sidecars.slice(r % sidecars.length), ...sidecars.slice(0, r % sidecars.length)];
        const order = r % 2 === 1 ? rot.reverse() : rot;
        for (const sc of order) {
          const m = await measure(sc, backend.pid as number, w);
          if (r > 0) {
            const k = `${w}/${sc.name}`;
            if (!runs.has(k)) runs.set(k, []);
            (runs.get(k) as Run[]).push(m);
          }
          console.log(
            `round ${r} ${w.padEnd(5)} ${sc.name.padEnd(9)} ${m.rps.toFixed(0).padStart(6)} req/s ${m.cpuUsPerRq.toFixed(1).padStart(6)} µs CPU/request ${m.writevPerRq.toFixed(2)} writev/request  ctx switches/1k req ${m.ctxPerKRq[0].toFixed(0)} vol ${m.ctxPerKRq[1].toFixed(0)} invol  busy: sidecar ${pct(m.busy[0])}, generator ${pct(m.busy[1])}, backend ${pct(m.busy[2])}` +
              `${m.short ? '  (answered < 95% of the asked rate)' : ''}${r === 0 ? '  (warm-up, not counted)' : ''}`,
          );
        }
      }
    }
    console.log(`\nload average at the end ${os.loadavg()[0].toFixed(1)}`);
    console.log('\n| workload | sidecar | req/s | CPU µs/request median (min..max) | vs none: median of per-round ratios (min..max) | busy sidecar / generator / backend (median) | short runs |\n|---|---|---|---|---|---|---|');
    for (const w of WORKLOADS) {
      for (const sc of sidecars) {
        const rs = runs.get(`${w}/${sc.name}`) as Run[];
        if (rs === undefined) continue;
        const cpu = rs.map((x) => x.cpuUsPerRq);
        let rel = '';
        const none = runs.get(`${w}/${sc.tree === '' ? 'none' : `none@${sc.tree}`}`);
        if (sc.variant !== 'none' && none !== undefined) {
          const ratios = rs.map((x, i) => x.cpuUsPerRq / none[i].cpuUsPerRq - 1);
          const f = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
          rel = `${f(median(ratios))} (${f(Math.min(...ratios))}..${f(Math.max(...ratios))})`;
        }
        const busy = [0, 1, 2].map((i) => pct(median(rs.map((x) => x.busy[i])))).join(' / ');
        console.log(
          `| ${w} | ${sc.name} | ${median(rs.map((x) => x.rps)).toFixed(0)} | ${median(cpu).toFixed(1)} (${Math.min(...cpu).toFixed(1)}..${Math.max(...cpu).toFixed(1)}) | ${rel} | ${busy} | ${rs.filter((x) => x.short).length}/${rs.length} |`,
        );
      }
    }
    const all = [...runs.values()].flat();
    const shortRuns = all.filter((x) => x.short).length;
    const maxSidecar = Math.max(...all.map((x) => x.busy[0]));
    const maxGen = Math.max(...all.map((x) => x.busy[1]));
    console.log(
      shortRuns === 0
        ? `\nBottleneck: none of the ${all.length} runs fell short of the asked rate; the sidecar was at most ${pct(maxSidecar)} busy, the generator at most ${pct(maxGen)}: the rate, not a process, set the load.`
        : `\nBottleneck: ${shortRuns} of ${all.length} runs fell short of the asked rate; busiest sidecar ${pct(maxSidecar)}, generator ${pct(maxGen)} of a CPU: ` +
            (Math.max(maxSidecar, maxGen) >= 0.8
              ? `${maxSidecar >= maxGen ? 'the sidecar' : 'the generator'} was saturated.`
              : 'neither was saturated: the shared machine (other processes on its CPUs) held them back; CPU per request still counts only the sidecar\'s own time.'),
    );
  } finally {
    for (const sc of sidecars) sc.proc.kill('SIGTERM');
    backend.kill('SIGTERM');
    collector.close();
    // Profiles are written at exit: wait for the sidecars before removing their configs.
    await Promise.all(sidecars.map((sc) => (sc.proc.exitCode !== null ? undefined : new Promise((r) => sc.proc.once('exit', r)))));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
