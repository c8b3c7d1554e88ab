/**
 * Issue 15, TLS origination: CPU per upstream TLS handshake of the proxy, native vs Node's TLS.
 * A plaintext client connects to the proxy's TCP listener, sends 64 bytes, reads the echo and
 * closes, in `conns` closed loops; the proxy originates TLS (verifying the backend's self-signed
 * certificate as the CA, SNI localhost) to a Node TLS echo backend. Proxy pinned to CPU 0; backend and client on
 * the other CPU(s). Two cases:
 *   full    the backend issues no tickets and keeps no session cache: every upstream
 *           connection is a full handshake (ECDSA P-256, TLS 1.3)
 *   resume  the backend issues tickets: a proxy that keeps sessions resumes
 * Peers: outrigger (this build: native origination), outrigger-node (this build with
 * OUTRIGGER_NATIVE_TLS=0), outrigger-ref (the checkout named by OUTRIGGER_REF), haproxy
 * (`ssl verify required`), nginx (stream `proxy_ssl on`, `proxy_ssl_verify on`).
 *
 *   node dist/bench/tls-origin.js [--conns 16] [--seconds 5] [--rounds 3] [--peers outrigger,outrigger-node,outrigger-ref,haproxy,nginx]
 *
 * TLS_ORIGIN_CPU_PROF=DIR writes V8 CPU profiles of the Outrigger peers under DIR/<peer>/.
 *
 * Printed: per case and peer, connections/s, proxy CPU µs per connection (user+sys of the proxy
 * process over the run / connections completed), the share of upstream handshakes the backend
 * saw resumed, and the ratio of CPU per connection to outrigger-node's and outrigger-ref's in
 * the same round. Peers take turns, `rounds` times.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { makeCert, type CertFiles } from './lib/certs';
import { freePort, waitForPort } from './lib/net';
import { REPO_ROOT } from './lib/paths';
import { treeCpuSeconds } from './lib/proc';
import { placement, startPinned, stopAll, type Owned } from './lib/proc-spawn';
import { numOpt } from './lib/script';
import { NGINX_STREAM_MODULE_PATHS } from './peers/configs';

type Case = 'full' | 'resume';

/** The backend (run as `tls-origin.js --backend PORT CERT KEY tickets|none`): a TLS echo server printing its counts on SIGUSR2. */
function backendMain(argv: string[]): void {
  const [port, cert, key, mode] = argv;
  let conns = 0;
  let reused = 0;
  // 'none': no tickets (SSL_OP_NO_TICKET) and Node's server keeps no session cache of its own.
  const srv = tls.createServer(
    { cert: fs.readFileSync(cert!), key: fs.readFileSync(key!), ...(mode === 'none' ? { secureOptions: crypto.constants.SSL_OP_NO_TICKET } : {}) },
    (s) => {
      conns++;
      if (s.isSessionReused()) reused++;
      s.on('error', () => {});
      s.pipe(s);
    },
  );
  srv.on('tlsClientError', () => {});
  process.on('SIGUSR2', () => {
    process.stdout.write(`COUNTS ${conns} ${reused}\n`);
    conns = 0;
    reused = 0;
  });
  srv.listen(Number(port), '127.0.0.1', () => process.stdout.write('READY\n'));
}

interface Input {
  dir: string;
  port: number;
  backendPort: number;
  ca: string;
}

function outriggerConfig(c: Input): unknown {
  return {
    servers: [{ default_log_level: 'WARN', processor: 1, listeners: [{ name: 'tcp', address: `127.0.0.1:${c.port}`, bind_port: true, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { stat_prefix: 'o', cluster: 'backend' } }] }] }] }],
    cluster_manager: { clusters: [{ name: 'backend', type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: [{ address: `127.0.0.1:${c.backendPort}` }], tls_context: { status: true, ca_cert: c.ca, server_name: 'localhost' } }] },
  };
}

function start(peer: string, c: Input): Owned | string {
  const cfg = path.join(c.dir, `config-${peer}`);
  const cpu = placement().proxy;
  switch (peer) {
    case 'outrigger':
    case 'outrigger-node':
    case 'outrigger-ref': {
      const root = peer === 'outrigger-ref' ? process.env.OUTRIGGER_REF : REPO_ROOT;
      if (root === undefined) return 'set OUTRIGGER_REF to a built checkout';
      fs.writeFileSync(cfg, JSON.stringify(outriggerConfig(c)));
      const env = { ...process.env, ...(peer === 'outrigger-node' ? { OUTRIGGER_NATIVE_TLS: '0' } : {}) };
      const prof = process.env.TLS_ORIGIN_CPU_PROF; // a directory: V8 CPU profiles of the Outrigger peers
      const pre = prof !== undefined && prof !== '' ? ['--cpu-prof', '--cpu-prof-dir', path.join(prof, peer)] : [];
      return startPinned(cpu, process.execPath, [...pre, path.join(root, 'dist', 'src', 'cli.js'), 'start', '-c', cfg, '--workers', '1', '--log-level', 'warn'], { cwd: root, env });
    }
    case 'haproxy':
      fs.writeFileSync(
        cfg,
        [
          'global', '  nbthread 1', '  maxconn 4096', '',
          'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s', '',
          'listen origin', `  bind 127.0.0.1:${c.port}`,
          `  server backend 127.0.0.1:${c.backendPort} ssl verify required ca-file ${c.ca} sni str(localhost) verifyhost localhost`, '',
        ].join('\n'),
      );
      return startPinned(cpu, 'haproxy', ['-db', '-f', cfg]);
    case 'nginx': {
      const mod = NGINX_STREAM_MODULE_PATHS.find((p) => fs.existsSync(p));
      fs.writeFileSync(
        cfg,
        [
          ...(mod !== undefined ? [`load_module ${mod};`] : []),
          'daemon off;', 'worker_processes 1;', `pid ${c.dir}/nginx.pid;`, `error_log ${c.dir}/error.log warn;`,
          'events { worker_connections 20000; multi_accept on; }',
          'stream {',
          `  server { listen 127.0.0.1:${c.port}; proxy_pass 127.0.0.1:${c.backendPort}; proxy_ssl on; proxy_ssl_verify on;`,
          `    proxy_ssl_trusted_certificate ${c.ca}; proxy_ssl_name localhost; proxy_ssl_server_name on; proxy_ssl_session_reuse on; }`,
          '}', '',
        ].join('\n'),
      );
      return startPinned(cpu, 'nginx', ['-c', cfg, '-e', `${c.dir}/error.log`]);
    }
    default:
      return `unknown peer ${peer}`;
  }
}

/** `conns` closed loops of connect, 64-byte echo, close, for `seconds`; returns completed connections and errors. */
async function load(port: number, conns: number, seconds: number): Promise<{ ok: number; errors: number }> {
  const msg = Buffer.alloc(64, 0x61);
  const end = Date.now() + seconds * 1000;
  let ok = 0;
  let errors = 0;
  const one = (): Promise<boolean> =>
    new Promise((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
      let got = 0;
      const t = setTimeout(() => s.destroy(new Error('timeout')), 5000);
      s.once('connect', () => s.write(msg));
      s.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= msg.length) {
          clearTimeout(t);
          s.destroy();
          resolve(true);
        }
      });
      s.once('error', () => undefined);
      s.once('close', () => {
        clearTimeout(t);
        resolve(got >= msg.length);
      });
    });
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (Date.now() < end) {
        if (await one()) ok++;
        else errors++;
      }
    }),
  );
  return { ok, errors };
}

/** The backend's counts since the last call (null: it did not answer within 3 s, e.g. it died). */
function backendCounts(be: Owned): Promise<{ conns: number; reused: number } | null> {
  return new Promise((resolve) => {
    const seen = (be.output().match(/COUNTS/g) ?? []).length;
    if (be.exited() !== undefined) return resolve(null);
    be.child.kill('SIGUSR2');
    const t0 = Date.now();
    const poll = setInterval(() => {
      const all = [...be.output().matchAll(/COUNTS (\d+) (\d+)/g)];
      if (all.length > seen || (all.length > 0 && be.output().length >= 8000)) {
        clearInterval(poll);
        const m = all[all.length - 1]!;
        resolve({ conns: Number(m[1]), reused: Number(m[2]) });
      } else if (Date.now() - t0 > 3000) {
        clearInterval(poll);
        resolve(null);
      }
    }, 20);
  });
}

interface Row {
  rate: number;
  cpuUs: number;
  resumed: number;
  errors: number;
}

async function once(peer: string, kase: Case, cert: CertFiles, dir: string, conns: number, seconds: number): Promise<Row | string> {
  const backendPort = await freePort();
  // The backend prints READY once it listens (a port taken meanwhile by another process fails it).
  const be = startPinned(placement().client, process.execPath, [__filename, '--backend', String(backendPort), cert.cert, cert.key, kase === 'full' ? 'none' : 'tickets']);
  const c: Input = { dir, port: await freePort(), backendPort, ca: cert.cert };
  try {
    await waitForPort(backendPort, { timeoutMs: 10_000, alive: () => be.exited() });
    for (let i = 0; i < 100 && !be.output().includes('READY'); i++) await new Promise((r) => setTimeout(r, 50));
    if (!be.output().includes('READY')) return `the backend did not start: ${be.output().slice(-200)}`;
    const proc = start(peer, c);
    if (typeof proc === 'string') return proc;
    try {
      await waitForPort(c.port, { timeoutMs: 20_000, alive: () => proc.exited() });
      await load(c.port, conns, 1); // warm-up (JIT, pools, the first session)
      await backendCounts(be);
      const cpu0 = treeCpuSeconds([proc.pid]);
      const t0 = Date.now();
      const r = await load(c.port, conns, seconds);
      const cpu = treeCpuSeconds([proc.pid]) - cpu0;
      const secs = (Date.now() - t0) / 1000;
      const bc = await backendCounts(be);
      if (bc === null) return `the backend did not answer (${be.exited() ?? 'running'})`;
      return { rate: r.ok / secs, cpuUs: (cpu * 1e6) / Math.max(1, r.ok), resumed: bc.conns > 0 ? bc.reused / bc.conns : 0, errors: r.errors };
    } finally {
      await proc.stop();
    }
  } finally {
    await be.stop();
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--backend') return backendMain(argv.slice(1));
  const conns = numOpt(argv, 'conns', 16);
  const seconds = numOpt(argv, 'seconds', 5);
  const rounds = numOpt(argv, 'rounds', 3);
  const pi = argv.indexOf('--peers');
  const peers = pi >= 0 ? argv[pi + 1]!.split(',') : ['outrigger', 'outrigger-node', 'outrigger-ref', 'haproxy', 'nginx'];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-origin-'));
  const cert = makeCert(dir, 'ecdsa');
  console.log(`tls-origin: ${conns} loops of plaintext connect + 64-byte echo + close through the proxy, TLS 1.3 ECDSA P-256 upstream verified (SNI localhost); ${seconds} s per run; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  try {
    for (const kase of ['full', 'resume'] as const) {
      for (let r = 0; r < rounds; r++) {
        const rows = new Map<string, Row>();
        for (const peer of peers) {
          const res = await once(peer, kase, cert, dir, conns, seconds);
          if (typeof res === 'string') {
            console.log(`${kase} round ${r + 1} ${peer}: skipped (${res})`);
            continue;
          }
          rows.set(peer, res);
        }
        for (const [peer, x] of rows) {
          const vs = ['outrigger-node', 'outrigger-ref']
            .filter((p) => p !== peer && rows.has(p))
            .map((p) => `${(x.cpuUs / rows.get(p)!.cpuUs).toFixed(2)}× ${p}`)
            .join(', ');
          console.log(
            `${kase} round ${r + 1} ${peer.padEnd(14)} ${x.rate.toFixed(0).padStart(6)} conn/s  ${x.cpuUs.toFixed(0).padStart(5)} µs CPU/conn  resumed ${(x.resumed * 100).toFixed(0)} %  errors ${x.errors}${vs ? `  (${vs})` : ''}`,
          );
        }
      }
    }
    console.log(`load average at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => void stopAll());
