// What tracing costs per request (issue 13): CPU per request on the http1 workload with the
// top-level `tracing` section enabled at 1% sampling (OTLP protobuf export to a local collector
// in this process) vs without it.
//
//   node dist/bench/tracing-cost.js [--seconds 5] [--rounds 3] [--connections 50] [--http-rate 8000] [--ratio 0.01]
//
// One bench backend process (bench/backend.ts), two sidecars (1 worker each) side by side, loaded
// in turn by h2load --h1 at a fixed rate; the sidecar's CPU time (/proc) over the requests
// answered is the figure. Round 0 is a warm-up; the order of the sidecars rotates each round.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { cpuSecondsOf } from './lib/proc';
import { firstLine, h2loadHttp1, numOpt } from './lib/script';

const args = process.argv.slice(2);
const opt = (name: string, def: number): number => numOpt(args, name, def);
const SECONDS = opt('seconds', 5);
const ROUNDS = opt('rounds', 3);
const CONNS = opt('connections', 50);
const HTTP_RATE = opt('http-rate', 8000);
const RATIO = opt('ratio', 0.01);
const ROOT = path.join(__dirname, '..');

function config(httpPort: number, collector: string | null): unknown {
  return {
    servers: [
      {
        default_log_level: 'WARN',
        processor: 1,
        routers: [{ router_config_name: 'h', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'web' } }] }] }],
        listeners: [{ name: 'http1', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'proxy', config: { downstream_protocol: 'Http1', upstream_protocol: 'Http1', router_config_name: 'h' } }] }] }],
      },
    ],
    cluster_manager: { clusters: [{ name: 'web', type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: [{ address: `127.0.0.1:${httpPort}` }] }] },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    ...(collector !== null ? { tracing: { enable: true, driver: 'SOFATracer', config: { collector, encoding: 'protobuf', sampling_ratio: RATIO, batch_interval: '1s' } } } : {}),
  };
}

/** h2load --h1 at HTTP_RATE: requests answered with 2xx. */
async function http1Load(port: number): Promise<number> {
  return (await h2loadHttp1(port, CONNS, HTTP_RATE, SECONDS)).ok;
}

async function main(): Promise<void> {
  let exported = 0;
  const collector = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      exported++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end();
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', () => r()));
  const curl = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`;
  const backend = spawn(process.execPath, [path.join(ROOT, 'bench', 'backend.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const ports = JSON.parse((await firstLine(backend, /\{.*"http":\d+.*\}/))[0]) as { http: number };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tracing-cost-'));
  const sidecars: { name: string; proc: ChildProcess; port: number }[] = [];
  try {
    for (const [name, c] of [['none', null], [`tracing ${RATIO * 100}%`, curl]] as const) {
      const f = path.join(dir, `${sidecars.length}.json`);
      fs.writeFileSync(f, JSON.stringify(config(ports.http, c)));
      const proc = spawn(process.execPath, [path.join(ROOT, 'src', 'cli.js'), 'start', '-c', f, '--workers', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const m = await firstLine(proc, /listener http1 on [^:]+:(\d+)/);
      sidecars.push({ name, proc, port: Number(m[1]) });
    }
    console.log(`tracing cost: http1 ${HTTP_RATE}/s, ${CONNS} connections, ${SECONDS} s per run, ${ROUNDS} rounds (+1 warm-up), 1 worker, ${os.cpus().length} CPUs`);
    const sums = new Map<string, { cpu: number; n: number }>();
    for (let r = 0; r <= ROUNDS; r++) {
      const order = r % 2 === 0 ? sidecars : [...sidecars].reverse();
      for (const sc of order) {
        const c0 = cpuSecondsOf(sc.proc.pid as number);
        const n = await http1Load(sc.port);
        const cpu = cpuSecondsOf(sc.proc.pid as number) - c0;
        if (r === 0) continue;
        const s = sums.get(sc.name) ?? { cpu: 0, n: 0 };
        s.cpu += cpu;
        s.n += n;
        sums.set(sc.name, s);
      }
    }
    const base = sums.get('none') as { cpu: number; n: number };
    for (const [name, s] of sums) {
      const us = (s.cpu * 1e6) / s.n;
      console.log(`${name.padEnd(14)} ${us.toFixed(1).padStart(7)} µs CPU/request  (${s.n} requests)  ${name === 'none' ? '' : `${(((us / ((base.cpu * 1e6) / base.n)) - 1) * 100).toFixed(1)}% vs none`}`);
    }
    console.log(`collector received ${exported} OTLP exports`);
  } finally {
    for (const sc of sidecars) sc.proc.kill('SIGTERM');
    backend.kill('SIGTERM');
    collector.close();
  }
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
