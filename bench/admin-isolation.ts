// Admin isolation (issue 16): what 20 clients polling /api/v1/stats cost the data plane.
//
//   node dist/bench/admin-isolation.js [--seconds 10] [--connections 50] [--pollers 20] [--rounds 2]
//
// One bench backend process (bench/backend.ts), one sidecar (`outrigger start`, 1 worker) with
// an HTTP/1.1 listener to it, h2load --h1 as the load (a C client: little client CPU). Each round
// runs the load alone, then the same load with N pollers (a separate Node process, each poller a
// keep-alive loop on /api/v1/stats), and prints req/s and p99 of both and the relative cost.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { firstLine, numOpt } from './lib/script';

const args = process.argv.slice(2);
const opt = (name: string, def: number): number => numOpt(args, name, def);
const SECONDS = opt('seconds', 10);
const CONNS = opt('connections', 50);
const POLLERS = opt('pollers', 20);
const ROUNDS = opt('rounds', 2);
const ROOT = path.join(__dirname, '..');

/** h2load with a per-request log, for p99. */
async function load(port: number): Promise<{ rps: number; p99ms: number }> {
  const log = path.join(os.tmpdir(), `admin-iso-${process.pid}.log`);
  const r = await new Promise<{ rps: number }>((resolve, reject) => {
    const p = spawn('h2load', ['--h1', '-c', String(CONNS), '-t', '1', '-D', String(SECONDS), '--warm-up-time', '1', '--log-file', log, `http://127.0.0.1:${port}/`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', () => {
      const m = /finished in [^,]+, ([\d.]+) req\/s/.exec(out);
      if (!m) return reject(new Error(`h2load output not understood:\n${out}`));
      resolve({ rps: Number(m[1]) });
    });
  });
  const durs: number[] = [];
  for (const line of fs.readFileSync(log, 'utf8').split('\n')) {
    const f = line.split('\t');
    if (f.length >= 3 && f[1] === '200') durs.push(Number(f[2]) / 1000);
  }
  fs.rmSync(log, { force: true });
  durs.sort((a, b) => a - b);
  return { rps: r.rps, p99ms: durs.length > 0 ? durs[Math.floor(durs.length * 0.99)] : Number.NaN };
}

const POLLER_SRC = `
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: ${POLLERS} });
const port = Number(process.argv[1]);
let n = 0;
function loop() {
  http.get({ host: '127.0.0.1', port, path: '/api/v1/stats', agent }, (res) => {
    res.resume();
    res.on('end', () => { n++; loop(); });
  }).on('error', () => setTimeout(loop, 10));
}
for (let i = 0; i < ${POLLERS}; i++) loop();
process.on('SIGTERM', () => { console.log('polls ' + n); process.exit(0); });
`;

async function main(): Promise<void> {
  const backend = spawn(process.execPath, [path.join(ROOT, 'bench', 'backend.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const ports = JSON.parse((await firstLine(backend, /\{.*"http":\d+.*\}/, 20_000))[0]) as { http: number };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'admin-iso-'));
  const cfgPath = path.join(dir, 'config.json');
  fs.writeFileSync(
    cfgPath,
    JSON.stringify({
      servers: [
        {
          default_log_level: 'WARN',
          routers: [{ router_config_name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'b' } }] }] }],
          listeners: [{ name: 'h', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'proxy', config: { downstream_protocol: 'Http1', upstream_protocol: 'Http1', router_config_name: 'r' } }] }] }],
        },
      ],
      cluster_manager: { clusters: [{ name: 'b', type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: [{ address: `127.0.0.1:${ports.http}` }] }] },
      admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    }),
  );
  const sc = spawn(process.execPath, [path.join(ROOT, 'src', 'cli.js'), 'start', '-c', cfgPath, '--workers', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const started = await firstLine(sc, /listener h on [^:]+:(\d+)[\s\S]*admin on http:\/\/[^:]+:(\d+)\//, 20_000);
  const port = Number(started[1]);
  const adminPort = Number(started[2]);
  try {
    console.log(`admin isolation: h2load --h1 -c ${CONNS}, ${SECONDS} s per run, ${POLLERS} admin pollers, ${ROUNDS} rounds, ${os.cpus().length} CPUs`);
    for (let r = 0; r < ROUNDS; r++) {
      const base = await load(port);
      const pollers = spawn(process.execPath, ['-e', POLLER_SRC, String(adminPort)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let polls = '';
      pollers.stdout.on('data', (d: Buffer) => (polls += d.toString()));
      await new Promise((res) => setTimeout(res, 500));
      const withAdmin = await load(port);
      pollers.kill('SIGTERM');
      await new Promise((res) => pollers.once('exit', res));
      const n = Number(/polls (\d+)/.exec(polls)?.[1] ?? 0);
      const cost = (1 - withAdmin.rps / base.rps) * 100;
      console.log(
        `round ${r + 1}: alone ${base.rps.toFixed(0)} req/s p99 ${base.p99ms.toFixed(1)} ms | with pollers ${withAdmin.rps.toFixed(0)} req/s p99 ${withAdmin.p99ms.toFixed(1)} ms ` +
          `(${(n / (SECONDS + 1.5)).toFixed(0)} stats answers/s) | throughput cost ${cost.toFixed(1)} %`,
      );
    }
  } finally {
    sc.kill('SIGTERM');
    backend.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
