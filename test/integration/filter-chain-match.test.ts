/**
 * filter_chain_match (Envoy semantics) chooses among several filter chains of one listener:
 * by SNI (TLS passed through to the chosen cluster), by transport protocol (TLS terminated on
 * one chain, plaintext on another, one port), by source range; a connection no chain matches
 * is closed and counted (downstream_cx_no_filter_chain_match).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as fs from 'node:fs';
import { startSidecar } from '../helpers/sidecar';
import { close, listen } from '../helpers/net';
import { Pki, sClient } from '../helpers/certs';
import { run } from '../helpers/http';

/** A TCP server that writes its name to every connection (plain, or TLS with `cert`). */
async function namedServer(name: string, cert?: { cert: string; key: string }): Promise<{ port: number; stop(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const onConn = (s: net.Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.end(name);
  };
  const server = cert
    ? tls.createServer({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) }, onConn)
    : net.createServer(onConn);
  const port = await listen(server);
  return {
    port,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await close(server);
    },
  };
}

function chain(match: Record<string, unknown> | undefined, cluster: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...(match ? { filter_chain_match: match } : {}), ...extra, filters: [{ type: 'tcp_proxy', config: { cluster } }] };
}

function config(chains: unknown[], clusters: Record<string, number>): Record<string, unknown> {
  return {
    servers: [{ default_log_level: 'WARN', processor: 1, listeners: [{ name: 'l', address: '127.0.0.1:0', bind_port: true, filter_chains: chains }] }],
    cluster_manager: {
      clusters: Object.entries(clusters).map(([name, port]) => ({ name, type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: [{ address: `127.0.0.1:${port}` }] })),
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
  };
}

/** First bytes read on a socket (or '' when it closes first). */
function firstRead(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    s.once('data', (d: Buffer) => {
      resolve(d.toString());
      s.destroy();
    });
    s.once('close', () => resolve(''));
    s.on('error', () => {});
  });
}

/** A plaintext client that speaks first (the TLS inspector needs a first byte to tell). */
function plain(port: number, localAddress = '127.0.0.1'): Promise<string> {
  const s = net.connect({ port, host: '127.0.0.1', localAddress }, () => s.write('hi'));
  return firstRead(s);
}

function overTls(port: number, servername: string): Promise<string> {
  return firstRead(tls.connect({ port, host: '127.0.0.1', servername, rejectUnauthorized: false }));
}

test('filter_chain_match: server_names picks the chain (TLS passed through by SNI)', async () => {
  const pki = new Pki();
  const a = await namedServer('A', pki.issue({ cn: 'a.example', dns: ['a.example'] }));
  const b = await namedServer('B', pki.issue({ cn: 'b.example', dns: ['*.b.example'] }));
  const sc = await startSidecar(config([chain({ server_names: ['a.example'] }, 'a'), chain({ server_names: ['*.b.example'] }, 'b')], { a: a.port, b: b.port }));
  try {
    const port = sc.ports.get('l') as number;
    assert.equal(await overTls(port, 'a.example'), 'A');
    assert.equal(await overTls(port, 'x.b.example'), 'B');
    // no chain for this name: closed, counted
    assert.equal(await overTls(port, 'c.example'), '');
    const st = await sc.stats();
    assert.equal(st.listeners.l.downstream_cx_no_filter_chain_match, 1);
  } finally {
    await sc.terminate();
    await a.stop();
    await b.stop();
    pki.remove();
  }
});

test('filter_chain_match: transport_protocol tls (terminated) and raw_buffer on one port', async () => {
  const pki = new Pki();
  const srv = pki.issue({ cn: 'localhost', dns: ['localhost'] });
  const t = await namedServer('T');
  const p = await namedServer('P');
  const tlsCtx = { status: true, cert_chain: srv.cert, private_key: srv.key };
  const sc = await startSidecar(config([chain({ transport_protocol: 'tls' }, 't', { tls_context: tlsCtx }), chain({ transport_protocol: 'raw_buffer' }, 'p')], { t: t.port, p: p.port }));
  try {
    const port = sc.ports.get('l') as number;
    assert.equal(await plain(port), 'P');
    assert.equal(await overTls(port, 'localhost'), 'T');
    assert.equal(await plain(port), 'P');
  } finally {
    await sc.terminate();
    await t.stop();
    await p.stop();
    pki.remove();
  }
});

test('filter_chain_match: source_prefix_ranges, the most specific chain wins; no match closes and counts', async () => {
  const a = await namedServer('A');
  const b = await namedServer('B');
  const sc = await startSidecar(
    config(
      [
        chain({ source_prefix_ranges: [{ address_prefix: '127.0.0.0', prefix_len: 8 }] }, 'a'),
        chain({ source_prefix_ranges: [{ address_prefix: '127.0.0.2', prefix_len: 32 }] }, 'b'),
      ],
      { a: a.port, b: b.port },
    ),
  );
  try {
    const port = sc.ports.get('l') as number;
    assert.equal(await plain(port, '127.0.0.1'), 'A');
    assert.equal(await plain(port, '127.0.0.2'), 'B');
    assert.equal(await plain(port, '127.0.0.3'), 'A');
  } finally {
    await sc.terminate();
  }
  const sc2 = await startSidecar(config([chain({ source_prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: 8 }] }, 'a')], { a: a.port }));
  try {
    const port = sc2.ports.get('l') as number;
    assert.equal(await plain(port), '');
    const st = await sc2.stats();
    assert.equal(st.listeners.l.downstream_cx_no_filter_chain_match, 1);
  } finally {
    await sc2.terminate();
    await a.stop();
    await b.stop();
  }
});

/** An HTTPS server (h2 and HTTP/1.1 by ALPN) answering "<name> <HTTP version>". */
async function httpsServer(name: string, cert: { cert: string; key: string }): Promise<{ port: number; stop(): Promise<void> }> {
  const server = http2.createSecureServer({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key), allowHTTP1: true }, (req, res) => {
    res.end(`${name} ${req.httpVersion}`);
  });
  const sockets = new Set<net.Socket>();
  server.on('secureConnection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server as unknown as net.Server);
  return {
    port,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await close(server as unknown as net.Server);
    },
  };
}

test('filter_chain_match: application_protocols (ALPN offered) picks the chain, curl --http2 / --http1.1 and openssl s_client -alpn; an unmatched ALPN is closed and counted', async () => {
  const pki = new Pki();
  const h2 = await httpsServer('H2', pki.issue({ cn: 'h2.backend', dns: ['localhost'] }));
  const h1 = await httpsServer('H1', pki.issue({ cn: 'h1.backend', dns: ['localhost'] }));
  const sc = await startSidecar(config([chain({ application_protocols: ['h2'] }, 'h2'), chain({ application_protocols: ['http/1.1'] }, 'h1')], { h2: h2.port, h1: h1.port }));
  try {
    const port = sc.ports.get('l') as number;
    const curl = async (v: string): Promise<string> => (await run('curl', ['-s', '-k', '--max-time', '5', v, `https://localhost:${port}/`])).stdout;
    assert.equal(await curl('--http2'), 'H2 2.0', 'curl offers h2 first: the h2 chain, TLS passed through');
    assert.equal(await curl('--http1.1'), 'H1 1.1', 'curl offers only http/1.1: the http/1.1 chain');
    const a = await sClient(port, ['-alpn', 'h2', '-servername', 'localhost'], '', 200);
    assert.match(a.out, /subject=.*CN\s*=\s*h2\.backend/);
    assert.match(a.out, /ALPN protocol: h2/);
    const b = await sClient(port, ['-alpn', 'http/1.1', '-servername', 'localhost'], '', 200);
    assert.match(b.out, /subject=.*CN\s*=\s*h1\.backend/);
    const st0 = await sc.stats();
    assert.equal(st0.listeners.l.downstream_cx_no_filter_chain_match, 0);
    const c = await sClient(port, ['-alpn', 'spdy/3.1', '-servername', 'localhost'], '', 200);
    assert.equal(c.serverCert, null, 'no chain offers spdy/3.1: closed before any certificate');
    const st = await sc.stats();
    assert.equal(st.listeners.l.downstream_cx_no_filter_chain_match, 1);
  } finally {
    await sc.terminate();
    await h2.stop();
    await h1.stop();
    pki.remove();
  }
});

test('filter_chain_match: destination_port picks the chain of the port the connection was accepted on; no match closes and counts', async () => {
  const a = await namedServer('A');
  const b = await namedServer('B');
  // A known port for the listener (destination_port needs it in the config).
  const probe = net.createServer();
  const port = await listen(probe);
  await close(probe);
  const cfg = (chains: unknown[]): Record<string, unknown> => {
    const c = config(chains, { a: a.port, b: b.port });
    ((c.servers as Record<string, unknown>[])[0].listeners as Record<string, unknown>[])[0].address = `127.0.0.1:${port}`;
    return c;
  };
  const other = port === 65535 ? port - 1 : port + 1;
  const sc = await startSidecar(cfg([chain({ destination_port: other }, 'b'), chain({ destination_port: port }, 'a')]));
  try {
    assert.equal(await plain(port), 'A');
    assert.equal(await plain(port), 'A');
  } finally {
    await sc.terminate();
  }
  const sc2 = await startSidecar(cfg([chain({ destination_port: other }, 'b')]));
  try {
    assert.equal(await plain(port), '');
    const st = await sc2.stats();
    assert.equal(st.listeners.l.downstream_cx_no_filter_chain_match, 1);
  } finally {
    await sc2.terminate();
    await a.stop();
    await b.stop();
  }
});
