/**
 * Cluster TLS origination on every upstream path (issue 11, item 1): the backend speaks only
 * TLS (node https / http2 secure servers; a plaintext client makes them report a
 * tlsClientError), and the cluster has a tls_context verifying it against the test CA.
 * Requests through the HTTP/2 upstream, both HTTP/1.1 upstream engines (raw, undici) and the
 * WebSocket / CONNECT tunnels of both HTTP/1.1 downstream engines (raw, node:http) must reach
 * it over TLS, with the right SNI, and no plaintext byte may arrive.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { Pki } from '../helpers/certs';
import { httpConfig, request } from '../helpers/http';
import { startSidecar } from '../helpers/sidecar';

const ROUTER = {
  router_config_name: 'r',
  virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'secure', timeout: '5s' } }] }],
};

interface TlsOnly {
  readonly port: number;
  /** Handshakes that failed (a plaintext client, a wrong name). */
  clientErrors: number;
  /** SNI of every served request or tunnel. */
  readonly sni: string[];
  /** ALPN protocol of the connection of every served request or tunnel. */
  readonly alpn: string[];
  close(): Promise<void>;
}

function seen(out: TlsOnly, sock: unknown): void {
  const t = sock as tls.TLSSocket;
  out.sni.push(t.servername || '');
  out.alpn.push(t.alpnProtocol || '');
}

function echoTunnel(out: TlsOnly, sock: net.Socket, head: Buffer, status: string): void {
  seen(out, sock);
  sock.write(`${status}\r\n\r\n`);
  if (head.length > 0) sock.write(head);
  sock.pipe(sock);
}

async function tlsOnlyServer(pki: Pki, h2: boolean): Promise<TlsOnly> {
  const cert = pki.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const opts = { cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) };
  const sockets = new Set<net.Socket>();
  const out: TlsOnly = {
    port: 0,
    clientErrors: 0,
    sni: [],
    alpn: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  let server: net.Server;
  if (h2) {
    const s = http2.createSecureServer(opts);
    s.on('stream', (st, h) => {
      seen(out, st.session?.socket);
      st.respond({ ':status': 200, 'content-type': 'text/plain' });
      st.end(`h2 ${String(h[':path'])}`);
    });
    server = s;
  } else {
    // Offers h2 first: an HTTP/1.1 client must not offer it (it would get h2 and speak HTTP/1.1).
    const s = https.createServer({ ...opts, ALPNProtocols: ['h2', 'http/1.1'] }, (req, res) => {
      seen(out, req.socket);
      res.end(`h1 ${req.url}`);
    });
    s.on('upgrade', (_req, sock: net.Socket, head: Buffer) => echoTunnel(out, sock, head, 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade'));
    s.on('connect', (_req, sock: net.Socket, head: Buffer) => echoTunnel(out, sock, head, 'HTTP/1.1 200 Connection Established'));
    server = s;
  }
  server.on('tlsClientError', () => out.clientErrors++);
  server.on('secureConnection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  (out as { port: number }).port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
  return out;
}

/** Sends `data` on a new connection; resolves with what came back once it matches `until` (or after 3 s). */
function exchange(port: number, data: string, until: RegExp): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (): void => {
      clearTimeout(t);
      s.destroy();
      resolve(got);
    };
    const t = setTimeout(done, 3000);
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (until.test(got)) done();
    });
    s.on('error', done);
    s.on('close', done);
    s.write(data);
  });
}

async function withSidecar(upstream: 'Http1' | 'Http2', env: NodeJS.ProcessEnv, fn: (port: number, be: TlsOnly) => Promise<void>): Promise<void> {
  const pki = new Pki();
  const be = await tlsOnlyServer(pki, upstream === 'Http2');
  const cfg = httpConfig([{ name: 'h', downstream: 'Http1', upstream, router: 'r' }], [ROUTER], { secure: [be.port] }, {
    // The cluster offers both: each upstream picks what it speaks.
    secure: { tls_context: { status: true, ca_cert: pki.ca.cert, server_name: 'localhost', alpn: 'h2,http/1.1' } },
  });
  let sc: Awaited<ReturnType<typeof startSidecar>> | null = null;
  try {
    sc = await startSidecar(cfg, { workers: 1, env });
    await fn(sc.ports.get('h')!, be);
    assert.equal(be.clientErrors, 0, 'no plaintext (or unverified) connection reached the TLS-only backend');
    assert.ok(be.sni.length > 0 && be.sni.every((n) => n === 'localhost'), `SNI sent: ${be.sni.join(',')}`);
    const want = upstream === 'Http2' ? 'h2' : 'http/1.1';
    assert.ok(be.alpn.every((p) => p === want), `ALPN negotiated: ${be.alpn.join(',')}`);
  } finally {
    await be.close();
    if (sc !== null) assert.equal(await sc.terminate(), 0, sc.output());
    pki.remove();
  }
}

async function plainRequests(port: number, tag: string): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const r = await request(port, `/r${i}`);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body, `${tag} /r${i}`);
  }
}

async function tunnels(port: number): Promise<void> {
  const ws = await exchange(port, 'GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframe-bytes', /frame-bytes$/);
  assert.match(ws, /^HTTP\/1\.1 101 /);
  assert.match(ws, /\r\n\r\nframe-bytes$/, 'bytes after the upgrade flow both ways over TLS');
  const ct = await exchange(port, 'CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\ntunnelled', /tunnelled$/);
  assert.match(ct, /^HTTP\/1\.1 200 /);
  assert.match(ct, /\r\n\r\ntunnelled$/);
}

test('HTTP/1.1 upstream, raw engine, and the raw downstream tunnels originate TLS', { timeout: 30_000 }, () =>
  withSidecar('Http1', {}, async (port) => {
    await plainRequests(port, 'h1');
    await tunnels(port);
  }),
);

test('HTTP/1.1 upstream, undici engine, and the node:http downstream tunnels originate TLS', { timeout: 30_000 }, () =>
  withSidecar('Http1', { OUTRIGGER_H1_DOWNSTREAM: 'node', OUTRIGGER_H1_UPSTREAM: 'undici' }, async (port) => {
    await plainRequests(port, 'h1');
    await tunnels(port);
  }),
);

test('HTTP/2 upstream originates TLS with ALPN h2', { timeout: 30_000 }, () =>
  withSidecar('Http2', {}, async (port) => {
    await plainRequests(port, 'h2');
  }),
);
