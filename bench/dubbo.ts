// The `dubbo` workload (standalone for now): Dubbo 2.x requests with 1 KiB bodies over 200
// connections, closed loop (1 request in flight per connection), through Outrigger's Dubbo
// L7 proxy (routing on the service path) and through HAProxy in TCP mode (nbthread 1, the
// same placement as the bolt workload), against a fast Dubbo responder. Prints req/s and the
// ratio. Skips HAProxy when it is not installed.
//
//   node dist/bench/dubbo.js [seconds=5] [connections=200]
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const SECONDS = Number(process.argv[2] ?? 5);
const CONNS = Number(process.argv[3] ?? 200);
const BODY = 1024;
const SERVICE = 'com.example.BenchService';

/** A Dubbo request: the leading hessian2 strings, then 1 KiB of opaque bytes. */
function requestTemplate(): Buffer {
  const str = (s: string): Buffer => Buffer.concat([Buffer.from([s.length]), Buffer.from(s, 'latin1')]);
  const head = Buffer.concat([str('2.0.2'), str(SERVICE), str('1.0.0'), str('echo'), str('[B')]);
  const body = Buffer.concat([head, Buffer.alloc(BODY - head.length, 0x41)]);
  const h = Buffer.alloc(16);
  h.writeUInt16BE(0xdabb, 0);
  h[2] = 0xc2;
  h.writeUInt32BE(body.length, 12);
  return Buffer.concat([h, body]);
}

function responseTemplate(): Buffer {
  const h = Buffer.alloc(16 + BODY);
  h.writeUInt16BE(0xdabb, 0);
  h[2] = 0x02;
  h[3] = 20;
  h.writeUInt32BE(BODY, 12);
  return h;
}

/** Calls fn for each whole frame in the stream (16-byte header + body length). */
function frames(onFrame: (buf: Buffer, off: number) => void): (d: Buffer) => void {
  let pending: Buffer | null = null;
  return (d) => {
    const buf = pending === null ? d : Buffer.concat([pending, d]);
    let off = 0;
    while (buf.length - off >= 16) {
      const len = 16 + buf.readUInt32BE(off + 12);
      if (buf.length - off < len) break;
      onFrame(buf, off);
      off += len;
    }
    pending = off === buf.length ? null : buf.subarray(off);
  };
}

function backend(): Promise<number> {
  const resp = responseTemplate();
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => s.destroy());
    const ids: Buffer[] = [];
    const feed = frames((buf, off) => {
      if ((buf[off + 2] & 0x80) === 0) return;
      ids.push(Buffer.from(buf.subarray(off + 4, off + 12)));
    });
    s.on('data', (d: Buffer) => {
      feed(d);
      if (ids.length === 0) return;
      const out = Buffer.allocUnsafe(resp.length * ids.length);
      ids.forEach((id, i) => {
        resp.copy(out, i * resp.length);
        id.copy(out, i * resp.length + 4);
      });
      ids.length = 0;
      s.write(out);
    });
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
}

async function drive(port: number): Promise<{ rps: number; errors: number }> {
  const tpl = requestTemplate();
  let done = 0;
  let errors = 0;
  let running = true;
  const socks: net.Socket[] = [];
  await Promise.all(
    Array.from({ length: CONNS }, (_, i) =>
      new Promise<void>((resolve) => {
        const s = net.connect({ port, host: '127.0.0.1' }, () => resolve());
        s.setNoDelay(true);
        socks.push(s);
        let id = i * 1_000_000;
        const send = (): void => {
          const b = Buffer.from(tpl);
          b.writeUInt32BE(++id, 8);
          s.write(b);
        };
        s.on('data', frames((buf, off) => {
          if (buf[off + 3] !== 20) errors++;
          else done++;
          if (running) send();
        }));
        s.on('error', () => errors++);
        s.once('connect', send);
      }),
    ),
  );
  const t0 = Date.now();
  const d0 = done;
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const rps = ((done - d0) * 1000) / (Date.now() - t0);
  running = false;
  for (const s of socks) s.destroy();
  return { rps, errors };
}

function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => r(p));
    });
  });
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`port ${port} never opened`);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-dubbo-bench-'));
  const bport = await backend();
  const oport = await freePort();
  const cfg = {
    servers: [{
      default_log_level: 'WARN', processor: 1,
      routers: [{ router_config_name: 'r', virtual_hosts: [{ name: 'b', domains: ['*'], routers: [{ match: { headers: [{ name: 'service', value: SERVICE }] }, route: { cluster_name: 'backend' } }] }] }],
      listeners: [{ name: 'dubbo', address: `127.0.0.1:${oport}`, bind_port: true, filter_chains: [{ filters: [{ type: 'proxy', config: { downstream_protocol: 'dubbo', router_config_name: 'r' } }] }] }],
    }],
    cluster_manager: { clusters: [{ name: 'backend', type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: [{ address: `127.0.0.1:${bport}` }] }] },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
  };
  fs.writeFileSync(path.join(dir, 'o.json'), JSON.stringify(cfg));
  const procs: ChildProcess[] = [];
  const cli = path.join(__dirname, '..', 'src', 'cli.js');
  procs.push(spawn(process.execPath, [cli, 'start', '-c', path.join(dir, 'o.json'), '--workers', '1'], { stdio: 'ignore' }));
  await waitPort(oport);
  const results: Record<string, { rps: number; errors: number }> = {};
  let hport = 0;
  const haproxy = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => fs.existsSync(p));
  if (haproxy) {
    hport = await freePort();
    fs.writeFileSync(path.join(dir, 'h.cfg'), ['global', '  nbthread 1', '  maxconn 4096', 'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s', 'listen bench', `  bind 127.0.0.1:${hport}`, `  server backend 127.0.0.1:${bport}`, ''].join('\n'));
    procs.push(spawn(haproxy, ['-f', path.join(dir, 'h.cfg'), '-db'], { stdio: 'ignore' }));
    await waitPort(hport);
  }
  try {
    // interleaved: outrigger, haproxy, outrigger, haproxy (best of two each)
    for (let round = 0; round < 2; round++) {
      for (const [name, port] of [['outrigger', oport], ['haproxy', hport]] as const) {
        if (port === 0) continue;
        const r = await drive(port);
        const prev = results[name];
        if (prev === undefined || r.rps > prev.rps) results[name] = r;
        console.log(`round ${round + 1} ${name}: ${r.rps.toFixed(0)} req/s (${r.errors} errors)`);
      }
    }
    const o = results.outrigger;
    const h = results.haproxy;
    console.log(`\ndubbo max c=${CONNS}, 1 KiB: outrigger ${o.rps.toFixed(0)} req/s` + (h ? `, haproxy tcp ${h.rps.toFixed(0)} req/s, ratio ${(o.rps / h.rps).toFixed(2)}` : ', haproxy not installed'));
  } finally {
    for (const p of procs) p.kill('SIGTERM');
  }
  process.exit(0);
}

void main();
