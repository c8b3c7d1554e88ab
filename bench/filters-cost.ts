// What the authorization and rate-limit filters cost per request (issue 13).
//
//   node dist/bench/filters-cost.js [--seconds 5] [--rounds 3] [--connections 50] [--http-rate 8000] [--bolt-rate 20000]
//
// One bench backend process (bench/backend.ts: HTTP/1.1 and Bolt listeners), two sidecars
// (`outrigger start`, 1 worker each) started side by side: "none" without stream filters,
// "filters" with an `rbac` stream filter of 10 ALLOW policies (9 that do not match, each an
// and_rules of a :method header and a path prefix with a source_ip principal; the 10th matches
// by source IP: every request walks all ten) and a `local_ratelimit` whose bucket never empties.
// Loads at a fixed rate, the same for every sidecar (CPU per request depends on the load: at a
// lower rate fewer requests share a read and a writev): http1 = h2load --h1 --rps; bolt = an
// open-loop Bolt v1 client in this process (1 KiB requests, every 10 ms each connection writes
// its share). A run whose answered rate falls short of 95% of the asked one is flagged. Each round runs every
// (workload, sidecar) pair in turn, so both sidecars see the same machine state; the sidecar's
// CPU time (user + system, /proc) divided by the requests answered is the figure. A third
// sidecar, "pipeline", runs one stream filter that does nothing (payload_limit 0): the stream
// pipeline's own cost per request, which any stream filter brings.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { firstLine, h2loadHttp1, numOpt } from './lib/script';
import { BOLT_ID_OFFSET, BoltFrameReader, boltRequestTemplate } from './load/bolt';
import { cpuSecondsOf } from './lib/proc';

const args = process.argv.slice(2);
const opt = (name: string, def: number): number => numOpt(args, name, def);
const SECONDS = opt('seconds', 5);
const ROUNDS = opt('rounds', 3);
const CONNS = opt('connections', 50);
const HTTP_RATE = opt('http-rate', 8000);
const BOLT_RATE = opt('bolt-rate', 20000);
const ROOT = path.join(__dirname, '..');
const VARIANTS: readonly Variant[] = ['none', 'pipeline', 'filters'];

/** The two filters under test: RBAC with 10 policies (the last matches) and a rate limit that never rejects. */
export function benchFilters(): unknown[] {
  const policies: Record<string, unknown> = {};
  for (let i = 0; i < 9; i++) {
    policies[`deny-like-${i}`] = {
      permissions: [{ and_rules: { rules: [{ header: { name: ':method', exact_match: 'DELETE' } }, { url_path: { path: { prefix: `/admin/${i}/` } } }] } }],
      principals: [{ source_ip: { address_prefix: `10.${i}.0.0`, prefix_len: 16 } }],
    };
  }
  policies['zz-local'] = { permissions: [{ any: true }], principals: [{ direct_remote_ip: { address_prefix: '127.0.0.0', prefix_len: 8 } }] };
  const all = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
  return [
    { type: 'rbac', config: { rules: { action: 'ALLOW', policies } } },
    {
      type: 'local_ratelimit',
      config: { stat_prefix: 'bench', token_bucket: { max_tokens: 1_000_000_000, tokens_per_fill: 1_000_000_000, fill_interval: '1s' }, filter_enabled: all, filter_enforced: all },
    },
  ];
}

/** none: no stream filter; pipeline: one filter that does nothing (the stream pipeline's own cost); filters: benchFilters(). */
type Variant = 'none' | 'pipeline' | 'filters';

function sidecarConfig(ports: { http: number; bolt: number }, v: Variant): unknown {
  const sf = v === 'filters' ? benchFilters() : v === 'pipeline' ? [{ type: 'payload_limit', config: { max_entity_size: 0 } }] : [];
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
  };
}

interface Sidecar {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly http: number;
  readonly bolt: number;
}

async function startSidecar(name: string, cfg: unknown, dir: string): Promise<Sidecar> {
  const cfgPath = path.join(dir, `${name}.json`);
  fs.writeFileSync(cfgPath, JSON.stringify(cfg));
  const proc = spawn(process.execPath, [path.join(ROOT, 'src', 'cli.js'), 'start', '-c', cfgPath, '--workers', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const m = await firstLine(proc, /listener http1 on [^:]+:(\d+)[\s\S]*listener bolt on [^:]+:(\d+)/);
  return { name, proc, http: Number(m[1]), bolt: Number(m[2]) };
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
  await new Promise((r) => setTimeout(r, 300)); // the last answers
  const n = done;
  for (const s of socks) s.destroy();
  return n;
}

async function measure(sc: Sidecar, workload: 'http1' | 'bolt'): Promise<{ rps: number; cpuUsPerRq: number; short: boolean }> {
  const pid = sc.proc.pid as number;
  const c0 = cpuSecondsOf(pid);
  const t0 = performance.now();
  const n = workload === 'http1' ? await http1Load(sc.http) : await boltLoad(sc.bolt);
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuSecondsOf(pid) - c0;
  return { rps: n / secs, cpuUsPerRq: (cpu * 1e6) / n, short: n < 0.95 * SECONDS * (workload === 'http1' ? HTTP_RATE : BOLT_RATE) };
}

async function main(): Promise<void> {
  const backend = spawn(process.execPath, [path.join(ROOT, 'bench', 'backend.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const ports = JSON.parse((await firstLine(backend, /\{.*"bolt":\d+.*\}/))[0]) as { http: number; bolt: number };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'filters-cost-'));
  const sidecars: Sidecar[] = [];
  try {
    for (const v of VARIANTS) sidecars.push(await startSidecar(v, sidecarConfig(ports, v), dir));
    console.log(`filters cost: ${SECONDS} s per run, ${ROUNDS} rounds, ${CONNS} connections, http1 ${HTTP_RATE}/s, bolt ${BOLT_RATE}/s, 1 worker per sidecar, ${os.cpus().length} CPUs`);
    const sums: Record<string, { n: number; cpu: number; rps: number }> = {};
    for (let r = 0; r < ROUNDS; r++) {
      for (const w of ['http1', 'bolt'] as const) {
        // Warm-up of both sidecars on this workload (JIT), then the measured runs.
        // The order rotates each round: no sidecar always runs first.
        const order = [...sidecars.slice(r % sidecars.length), ...sidecars.slice(0, r % sidecars.length)];
        for (const sc of order) {
          const m = await measure(sc, w);
          const k = `${w}/${sc.name}`;
          if (r > 0 || ROUNDS === 1) {
            const s = (sums[k] ??= { n: 0, cpu: 0, rps: 0 });
            s.n++;
            s.cpu += m.cpuUsPerRq;
            s.rps += m.rps;
          }
          console.log(`round ${r + 1} ${w.padEnd(5)} ${sc.name.padEnd(8)} ${m.rps.toFixed(0).padStart(6)} req/s  ${m.cpuUsPerRq.toFixed(1).padStart(6)} µs CPU/request${m.short ? ' (answered < 95% of the asked rate)' : ''}${r === 0 && ROUNDS > 1 ? ' (warm-up, not counted)' : ''}`);
        }
      }
    }
    console.log('\n| workload | sidecar | req/s | CPU µs/request | vs none |\n|---|---|---|---|---|');
    for (const w of ['http1', 'bolt']) {
      const none = sums[`${w}/none`];
      for (const name of VARIANTS) {
        const s = sums[`${w}/${name}`];
        const cpu = s.cpu / s.n;
        const rel = name === 'none' ? '' : `${(((cpu / (none.cpu / none.n)) - 1) * 100).toFixed(1)} %`;
        console.log(`| ${w} | ${name} | ${(s.rps / s.n).toFixed(0)} | ${cpu.toFixed(1)} | ${rel} |`);
      }
    }
  } finally {
    for (const sc of sidecars) sc.proc.kill('SIGTERM');
    backend.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
