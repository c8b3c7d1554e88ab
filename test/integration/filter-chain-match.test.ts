/**
 * filter_chain_match (Envoy semantics) chooses among several filter chains of one listener:
 * by SNI (TLS passed through to the chosen cluster), by transport protocol (TLS terminated on
 * one chain, plaintext on another, one port), by source range; a connection no chain matches
 * is closed and counted (downstream_cx_no_filter_chain_match).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as fs from 'node:fs';
import { startSidecar } from '../helpers/sidecar';
import { close, listen } from '../helpers/net';
import { Pki } from '../helpers/certs';

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
