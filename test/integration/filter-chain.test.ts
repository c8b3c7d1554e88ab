/**
 * A listener's filter chain runs in order, with MOSN's own example configs (kept as MOSN ships
 * them in test/fixtures/mosn; only addresses, ports and certificate paths are changed here):
 *
 * - proxy-fallback-example: a `proxy` filter (Auto, fallback_for_unknown_protocol) then a
 *   `tcp_proxy`: HTTP reaches the HTTP cluster, bytes of no known protocol the TCP cluster.
 * - protocol-auto-sample/tls_server_config.json: an Auto proxy behind TLS (mTLS): HTTP/2 chosen
 *   by ALPN is served by the HTTP/2 proxy with the listener's routers; HTTP/1.1 still works.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as path from 'node:path';
import { startSidecar } from '../helpers/sidecar';
import { backend } from '../helpers/http';
import { close, echoServer } from '../helpers/net';
import { Pki } from '../helpers/certs';

const FIXTURES = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'mosn');

function fixture(name: string): any {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8'));
}

function curl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-s', '--max-time', '5', ...args], (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout, err: stderr }),
    );
  });
}

/** Writes `bytes` on a fresh connection and resolves with what comes back within `ms`. */
function exchange(port: number, bytes: Buffer, ms = 1500): Promise<Buffer> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    const s = net.connect({ port, host: '127.0.0.1' }, () => s.write(bytes));
    s.on('data', (d) => got.push(d));
    s.on('error', () => {});
    const done = (): void => {
      s.destroy();
      resolve(Buffer.concat(got));
    };
    const t = setTimeout(done, ms);
    s.on('close', () => {
      clearTimeout(t);
      resolve(Buffer.concat(got));
    });
  });
}

test('MOSN proxy-fallback-example: HTTP goes to the HTTP cluster, unknown bytes to the tcp_proxy', async () => {
  const web = await backend('http-server');
  const echo = await echoServer();
  const cfg = fixture('proxy-fallback-example.json');
  const listener = cfg.servers[0].listeners[0];
  listener.address = '127.0.0.1:0';
  listener.name = 'fallback';
  for (const c of cfg.cluster_manager.clusters) c.hosts[0].address = `127.0.0.1:${c.name === 'server_http_cluster' ? web.port : echo.port}`;
  const sc = await startSidecar(cfg, { args: ['--admin-port', '0'] });
  try {
    const port = sc.ports.get('fallback') as number;
    const r = await curl([`http://127.0.0.1:${port}/hello`]);
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out).backend, 'http-server', r.out);
    assert.equal(web.seen.length, 1);
    // h2c prior knowledge is HTTP too
    const r2 = await curl(['--http2-prior-knowledge', `http://127.0.0.1:${port}/h2`]);
    assert.equal(r2.code, 0, r2.err);
    assert.equal(JSON.parse(r2.out).url, '/h2');
    // bytes of no known protocol: echoed by the TCP server behind tcp_proxy
    const junk = Buffer.from('\x00\x07hello, tcp\r\n', 'latin1');
    const back = await exchange(port, junk);
    assert.deepEqual(back, junk);
    assert.equal(web.seen.length, 2, 'the unknown bytes never reached the HTTP backend');
  } finally {
    await sc.terminate();
    await web.close();
    for (const s of echo.sockets) s.destroy();
    await close(echo.server);
  }
});

test('MOSN proxy-fallback-example: the TCP fallback goes through the cluster manager (the cluster\'s tls_context and max_connections apply)', async () => {
  const pki = new Pki();
  const cert = pki.issue({ cn: 'localhost', dns: ['localhost'] });
  const web = await backend('http-server');
  // A TCP server that speaks only TLS: a plaintext fallback would get nothing back.
  const tlsSockets = new Set<tls.TLSSocket>();
  const tlsEcho = tls.createServer({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) }, (s) => {
    tlsSockets.add(s);
    s.on('error', () => {});
    s.on('close', () => tlsSockets.delete(s));
    s.pipe(s);
  });
  const tlsPort = await new Promise<number>((resolve) => tlsEcho.listen(0, '127.0.0.1', () => resolve((tlsEcho.address() as net.AddressInfo).port)));
  const cfg = fixture('proxy-fallback-example.json');
  const listener = cfg.servers[0].listeners[0];
  listener.address = '127.0.0.1:0';
  listener.name = 'fallback';
  for (const c of cfg.cluster_manager.clusters) {
    c.hosts[0].address = `127.0.0.1:${c.name === 'server_http_cluster' ? web.port : tlsPort}`;
    if (c.name === 'server_tcp_cluster') {
      c.tls_context = { status: true, ca_cert: pki.ca.cert, server_name: 'localhost' };
      c.circuit_breakers = [{ max_connections: 1 }];
    }
  }
  const sc = await startSidecar(cfg, { args: ['--admin-port', '0'] });
  const held = new net.Socket();
  try {
    const port = sc.ports.get('fallback') as number;
    const junk = Buffer.from('\x00\x07hello, tls\r\n', 'latin1');
    assert.deepEqual(await exchange(port, junk), junk, 'echoed by the TLS-only server: the fallback originated TLS');
    // The first connection's slot is given back once its upstream connection closed.
    for (let i = 0; i < 100 && (await sc.stats()).clusters.server_tcp_cluster.upstream_cx_active !== 0; i++) await new Promise((r) => setTimeout(r, 50));
    // One fallback connection held open takes the cluster's only connection slot.
    const got: Buffer[] = [];
    await new Promise<void>((resolve) => held.connect(port, '127.0.0.1', () => resolve()));
    held.on('data', (d) => got.push(d));
    held.on('error', () => {});
    held.write(junk);
    for (let i = 0; i < 250 && Buffer.concat(got).length < junk.length; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(Buffer.concat(got), junk);
    assert.deepEqual(await exchange(port, junk, 1000), Buffer.alloc(0), 'over max_connections: closed without an answer');
    const st = await sc.stats();
    assert.ok(st.clusters.server_tcp_cluster.upstream_cx_overflow >= 1, JSON.stringify(st.clusters.server_tcp_cluster));
    // HTTP on the same listener still goes to the HTTP cluster.
    const r = await curl([`http://127.0.0.1:${port}/hello`]);
    assert.equal(JSON.parse(r.out).backend, 'http-server', r.out);
  } finally {
    held.destroy();
    await sc.terminate();
    await web.close();
    for (const s of tlsSockets) s.destroy();
    tlsEcho.close();
    pki.remove();
  }
});

/** MOSN's protocol-auto-sample TLS server config, on a backend that speaks `h2` (h2c) or HTTP/1.1. */
async function autoTlsRun(h2: boolean, run: (port: number, args: string[]) => Promise<void>): Promise<void> {
  const pki = new Pki();
  const server = pki.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const client = pki.issue({ cn: 'client', usage: 'client' });
  // upstream_protocol Auto: requests go upstream in the protocol they came in (as in MOSN).
  const web = await backend('server', undefined, h2);
  const cfg = fixture('protocol-auto-tls_server_config.json');
  const listener = cfg.servers[0].listeners[0];
  listener.address = '127.0.0.1:0';
  const tlsCtx = listener.filter_chains[0].tls_context;
  tlsCtx.ca_cert = pki.ca.cert;
  tlsCtx.cert_chain = server.cert;
  tlsCtx.private_key = server.key;
  cfg.cluster_manager.clusters[0].hosts[0].address = `127.0.0.1:${web.port}`;
  cfg.admin.address.socket_address = { address: '127.0.0.1', port_value: 0 };
  const sc = await startSidecar(cfg);
  try {
    await run(sc.ports.get('serverListener') as number, ['-k', '--cert', client.cert, '--key', client.key, '-o', '-', '-w', '\n%{http_version} %{http_code}']);
    assert.doesNotMatch(sc.output(), /not served by this proxy listener/);
  } finally {
    await sc.terminate();
    await web.close();
    pki.remove();
  }
}

test('MOSN protocol-auto-sample TLS config: h2 chosen by ALPN is served by the HTTP/2 proxy', async () => {
  await autoTlsRun(true, async (port, common) => {
    const h2 = await curl([...common, '--http2', `https://127.0.0.1:${port}/two`]);
    assert.equal(h2.code, 0, h2.err);
    const [body, status] = h2.out.split('\n');
    assert.equal(status, '2 200');
    assert.equal(JSON.parse(body).url, '/two');
  });
});

test('MOSN protocol-auto-sample TLS config: HTTP/1.1 inside TLS still works', async () => {
  await autoTlsRun(false, async (port, common) => {
    const h1 = await curl([...common, '--http1.1', `https://127.0.0.1:${port}/one`]);
    assert.equal(h1.code, 0, h1.err);
    const [body, status] = h1.out.split('\n');
    assert.equal(status, '1.1 200');
    assert.equal(JSON.parse(body).url, '/one');
  });
});
