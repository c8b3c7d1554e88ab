/**
 * An upstream HTTP/2 GOAWAY loses no request (issue 11, item 4): h2load sends 2,000 requests
 * over 4 connections x 16 streams through an Http2 listener to nginx, which sends GOAWAY after
 * 1,000 requests per connection (keepalive_requests). Streams above the GOAWAY's last-stream-id
 * were never processed: they must be sent again on a new connection, and no new stream may go
 * on a session that received GOAWAY. Three runs in a row, 0 failures each.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { httpConfig, run } from '../helpers/http';
import { startSidecar } from '../helpers/sidecar';

function has(cmd: string, arg: string): boolean {
  return spawnSync(cmd, [arg], { stdio: 'ignore' }).status === 0;
}

const missing = !has('nginx', '-v') ? 'nginx is not installed' : !has('h2load', '--version') ? 'h2load (nghttp2-client) is not installed' : '';
if (missing) console.log(`# skipping the nginx GOAWAY test: ${missing}`);

async function freePort(): Promise<number> {
  const s = net.createServer();
  const p = await new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port)));
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return p;
}

async function waitPort(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** nginx serving h2c with GOAWAY after 1,000 requests per connection; its own config and temp dirs. */
async function startNginx(dir: string): Promise<{ proc: ChildProcess; port: number }> {
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000;
  server {
    listen 127.0.0.1:${port} http2;
    location / { return 200 "ok\\n"; }
  }
}
`,
  );
  const proc = spawn('nginx', ['-p', dir, '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitPort(port, 10_000);
  return { proc, port };
}

test('h2load 2,000 requests through nginx GOAWAYs: 0 failures, three runs in a row', { skip: missing !== '' ? missing : false, timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-nginx-'));
  const ng = await startNginx(dir);
  const cfg = httpConfig(
    [{ name: 'h2', downstream: 'Http2', upstream: 'Http2', router: 'r' }],
    [{ router_config_name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'ng', timeout: '10s' } }] }] }],
    { ng: [ng.port] },
  );
  const sc = await startSidecar(cfg, { workers: 1 });
  try {
    const port = sc.ports.get('h2')!;
    for (let i = 0; i < 3; i++) {
      const r = await run('h2load', ['-n', '2000', '-c', '4', '-m', '16', `http://127.0.0.1:${port}/`], 60_000);
      const m = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(r.stdout);
      assert.ok(m, r.stdout + r.stderr);
      const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(r.stdout);
      assert.ok(codes, r.stdout);
      assert.equal(Number(m[4]) + Number(m[5]), 0, `run ${i + 1}: ${r.stdout}`);
      assert.equal(Number(codes[1]), 2000, `run ${i + 1}: every request answered 2xx\n${r.stdout}`);
    }
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    ng.proc.kill('SIGTERM');
    await new Promise((r) => ng.proc.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
