/**
 * Upstream TLS origination on both paths (issue 15): the native one (src/tls/origin.ts, default
 * with the addon) and Node's tls.connect (OUTRIGGER_NATIVE_TLS=0), on the same inputs:
 *   - in this process, through dialConnection (the raw pools' one path) with a cluster's
 *     ClientTls: the path taken, echo, SNI and ALPN seen by the server, the same accept/reject
 *     decision and error code as Node's own tls.connect for a wrong CA, a wrong name, SAN
 *     matchers (SPIFFE), insecure_skip; a second connection resumes (the server's
 *     isSessionReused()); openssl s_server -Verify 1 sees the client certificate (mTLS);
 *   - a sidecar's tcp_proxy with a TLS cluster: the announced path, counters, a wrong CA
 *     counted as a verification failure;
 * and the origination suites run again on Node's path here (OUTRIGGER_NATIVE_TLS=0).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type { TlsContextConfig } from '../../src/config/types';
import { parseTlsContext } from '../../src/config/tls-context';
import { IssueCollector } from '../../src/config/reader';
import type { Connection, ConnectionHandler } from '../../src/network/connection';
import { native } from '../../src/native';
import { ClientTls } from '../../src/tls/client';
import { originEngine } from '../../src/tls/origin';
import { C } from '../../src/stats/layout';
import { dialConnection } from '../../src/upstream/connect';
import { Pki, type CertFiles } from '../helpers/certs';
import { rerunWith } from '../helpers/rerun';
import { startSidecar, tcpProxyConfig, type RunningSidecar } from '../helpers/sidecar';

const SPIFFE = 'spiffe://mesh.test/ns/default/sa/backend';
const nodePath = process.env.OUTRIGGER_NATIVE_TLS?.trim() === '0' || native.kind !== 'native';
const path_ = nodePath ? 'node' : 'native';

function tlsConfig(raw: Record<string, unknown>, extra: Partial<TlsContextConfig> = {}): TlsContextConfig {
  const issues = new IssueCollector();
  const c = parseTlsContext(issues, { status: true, ...raw }, 'clusters[0].tls_context', 'cluster');
  assert.ok(c !== undefined, 'tls_context parsed');
  return { ...c, ...extra };
}

interface Backend {
  readonly port: number;
  /** Per accepted connection: SNI, ALPN, whether the session was resumed, the client certificate's subject CN. */
  readonly seen: { sni: string; alpn: string; reused: boolean; clientCn: string }[];
  close(): void;
}

/** A Node TLS echo server (TLS 1.3 tickets on), recording what each connection negotiated. */
async function backend(cert: CertFiles, ca: string): Promise<Backend> {
  const seen: Backend['seen'] = [];
  const sockets = new Set<net.Socket>();
  const srv = tls.createServer({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key), ca: fs.readFileSync(ca), requestCert: true, rejectUnauthorized: false, ALPNProtocols: ['sofa', 'http/1.1'] }, (s) => {
    const pc = s.getPeerCertificate();
    seen.push({ sni: (s as tls.TLSSocket & { servername?: string }).servername ?? '', alpn: s.alpnProtocol || '', reused: s.isSessionReused(), clientCn: pc && pc.subject ? String(pc.subject.CN) : '' });
    s.on('error', () => {});
    s.pipe(s);
  });
  srv.on('tlsClientError', () => {});
  srv.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    seen,
    close: () => {
      for (const s of sockets) s.destroy();
      srv.close();
    },
  };
}

interface Outcome {
  ok: boolean;
  code: string;
  native: boolean;
  echo: string;
}

/** One connection through dialConnection: echo `msg` when it comes up, report how it ended. */
function dial(ct: ClientTls, port: number, msg = 'ping'): Promise<Outcome> {
  return new Promise((resolve) => {
    let echo = '';
    let up = false;
    let nat = false;
    const h: ConnectionHandler = {
      onConnect(c: Connection) {
        up = true;
        nat = c.ntls !== null;
        c.write(Buffer.from(msg), 0, msg.length);
      },
      onData(c: Connection, buf: Buffer, s: number, e: number) {
        echo += buf.toString('latin1', s, e);
        if (echo.length >= msg.length) c.destroy();
      },
      onEnd(c: Connection) {
        c.destroy();
      },
      onClose(_c: Connection, err: Error | undefined) {
        resolve({ ok: up, code: err ? String((err as NodeJS.ErrnoException).code ?? err.message) : '', native: nat, echo });
      },
      onHighWatermark() {},
      onLowWatermark() {},
      onTimeout(c: Connection) {
        c.destroy(new Error('timeout'));
      },
    };
    const conn = dialConnection('127.0.0.1', port, h, 65536, 5000, ct.options('127.0.0.1'));
    ct.track(conn.socket);
  });
}

/** The same options through Node's own tls.connect: the reference decision. */
function nodeDecision(ct: ClientTls, port: number): Promise<{ ok: boolean; code: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ ...ct.options('127.0.0.1'), host: '127.0.0.1', port });
    s.once('secureConnect', () => {
      s.destroy();
      resolve({ ok: true, code: '' });
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, code: String(e.code ?? e.message) }));
  });
}

test(`${path_} origination: path, echo, SNI/ALPN, verification decisions as Node's, resumption`, { timeout: 60_000 }, async () => {
  const pki = new Pki();
  const other = new Pki();
  const server = pki.issue({ cn: 'backend.mesh', dns: ['backend.mesh'], uris: [SPIFFE] });
  const client = pki.issue({ cn: 'frontend', usage: 'client' });
  const b = await backend(server, pki.ca.cert);
  const counters = new Float64Array(64);
  const made: ClientTls[] = [];
  const mk = (raw: Record<string, unknown>, extra: Partial<TlsContextConfig> = {}): ClientTls => {
    const ct = new ClientTls('c', tlsConfig(raw, extra), counters, 0);
    made.push(ct);
    return ct;
  };
  try {
    const good = mk({ ca_cert: pki.ca.cert, server_name: 'backend.mesh', cert_chain: client.cert, private_key: client.key, alpn: 'sofa' });
    const r1 = await dial(good, b.port);
    assert.deepEqual({ ok: r1.ok, echo: r1.echo, code: r1.code }, { ok: true, echo: 'ping', code: '' });
    assert.equal(r1.native, !nodePath, `the ${path_} path carried the connection`);
    assert.equal(originEngine !== null, !nodePath);
    assert.deepEqual(b.seen[0], { sni: 'backend.mesh', alpn: 'sofa', reused: false, clientCn: 'frontend' });
    // The session (TLS 1.3 ticket) arrives after the handshake; the next connection offers it.
    const r2 = await dial(good, b.port);
    assert.equal(r2.echo, 'ping');
    assert.equal(b.seen[1].reused, true, 'the second connection resumed');
    assert.equal(counters[C.TLS_HANDSHAKE], 2);
    assert.equal(counters[C.TLS_V1_3], 2);
    // Same cluster and name, another certificate (one for other.mesh from the same CA): checked again, refused.
    const b2 = await backend(pki.issue({ cn: 'other.mesh', dns: ['other.mesh'] }), pki.ca.cert);
    try {
      const r3 = await dial(good, b2.port);
      assert.deepEqual({ ok: r3.ok, code: r3.code }, { ok: false, code: (await nodeDecision(good, b2.port)).code });
      assert.equal(r3.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    } finally {
      b2.close();
    }

    // Same inputs, same decisions (and error codes) as Node's tls.connect.
    const cases: [string, ClientTls, boolean][] = [
      ['wrong CA', mk({ ca_cert: other.ca.cert, server_name: 'backend.mesh' }), false],
      ['wrong name', mk({ ca_cert: pki.ca.cert, server_name: 'other.mesh' }), false],
      ['no server_name: the IP is checked', mk({ ca_cert: pki.ca.cert }), false],
      ['SAN matcher (SPIFFE) matches', mk({ ca_cert: pki.ca.cert }, { matchSubjectAltNames: [{ kind: 'exact', value: SPIFFE, sanType: 'URI' }] }), true],
      ['SAN matcher does not match', mk({ ca_cert: pki.ca.cert, server_name: 'backend.mesh' }, { matchSubjectAltNames: [{ kind: 'prefix', value: 'spiffe://other/' }] }), false],
      ['insecure_skip accepts a wrong CA', mk({ ca_cert: other.ca.cert, server_name: 'other.mesh', insecure_skip: true }), true],
    ];
    for (const [name, ct, want] of cases) {
      const before = counters[C.TLS_FAIL_VERIFY];
      const got = await dial(ct, b.port);
      const ref = await nodeDecision(ct, b.port);
      assert.equal(got.ok, want, `${name}: ${JSON.stringify(got)}`);
      assert.equal(ref.ok, want, `${name} (Node): ${JSON.stringify(ref)}`);
      assert.equal(got.code, ref.code, `${name}: same error as Node's`);
      if (!want) assert.equal(counters[C.TLS_FAIL_VERIFY], before + 1, `${name}: counted as a verification failure`);
      else assert.equal(got.echo, 'ping');
    }
  } finally {
    for (const ct of made) ct.close();
    b.close();
  }
});

// On both paths: Node's TLSSocket reports the bad record without closing by itself (a bare
// tls.connect client on Node 20 stays open); the Connection closes it.
test(`${path_} origination: a record from the upstream that does not decrypt closes only that connection`, { timeout: 30_000 }, async () => {
  const pki = new Pki();
  const server = pki.issue({ cn: 'backend.mesh', dns: ['backend.mesh'] });
  const opts = { isServer: true, cert: fs.readFileSync(server.cert), key: fs.readFileSync(server.key) };
  const raws = new Set<net.Socket>();
  let n = 0;
  // Connection 1 echoes; connection 2 gets an application-data record of garbage after its handshake.
  const srv = net.createServer((raw) => {
    raws.add(raw);
    raw.on('error', () => {});
    const mine = ++n;
    const t = new tls.TLSSocket(raw, opts);
    t.on('error', () => {});
    t.once('secure', () => {
      if (mine === 2) raw.write(Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20, ...Buffer.alloc(32, 0x5a)]));
      else t.pipe(t);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const ct = new ClientTls('c', tlsConfig({ ca_cert: pki.ca.cert, server_name: 'backend.mesh' }), new Float64Array(64), 0);
  try {
    const events: string[] = [];
    let good: Connection | undefined;
    const handler = (name: string): ConnectionHandler => ({
      onConnect(c: Connection) {
        events.push(`${name} up`);
        if (name === 'good') good = c;
      },
      onData(_c: Connection, buf: Buffer, s: number, e: number) {
        events.push(`${name} data ${buf.toString('latin1', s, e)}`);
      },
      onEnd() {},
      onClose(_c: Connection, err: Error | undefined) {
        events.push(`${name} closed${err ? ' with an error' : ''}`);
      },
      onHighWatermark() {},
      onLowWatermark() {},
    });
    dialConnection('127.0.0.1', port, handler('good'), 65536, 5000, ct.options('127.0.0.1'));
    while (good === undefined) await new Promise((r) => setTimeout(r, 20));
    dialConnection('127.0.0.1', port, handler('bad'), 65536, 5000, ct.options('127.0.0.1'));
    for (let i = 0; i < 100 && !events.includes('bad closed with an error'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(events.includes('bad closed with an error'), events.join('; '));
    good.write(Buffer.from('still here'), 0, 10);
    for (let i = 0; i < 100 && !events.some((e) => e.startsWith('good data')); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(events.includes('good data still here'), events.join('; '));
    assert.ok(!events.includes('good closed') && !events.includes('good closed with an error'), events.join('; '));
    good.destroy();
  } finally {
    ct.close();
    for (const r of raws) r.destroy();
    srv.close();
  }
});

/** A free port (openssl s_server needs one given). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

test(`${path_} origination: openssl s_server -Verify 1 gets the client certificate and the bytes`, { timeout: 30_000 }, async () => {
  const pki = new Pki();
  const server = pki.issue({ cn: 'backend.mesh', dns: ['backend.mesh'] });
  const client = pki.issue({ cn: 'frontend-mtls', usage: 'client' });
  const port = await freePort();
  const p = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', server.cert, '-key', server.key, '-CAfile', pki.ca.cert, '-Verify', '1', '-verify_return_error'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const ct = new ClientTls('c', tlsConfig({ ca_cert: pki.ca.cert, server_name: 'backend.mesh', cert_chain: client.cert, private_key: client.key }), new Float64Array(64), 0);
  try {
    for (let i = 0; i < 50 && !/ACCEPT/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
    const done = new Promise<string>((resolve) => {
      const h: ConnectionHandler = {
        onConnect(c: Connection) {
          c.write(Buffer.from('hello-from-outrigger\n'), 0, 21);
          setTimeout(() => c.destroy(), 500);
        },
        onData() {},
        onEnd(c: Connection) {
          c.destroy();
        },
        onClose(c: Connection, err: Error | undefined) {
          resolve(err ? `error ${err.message}` : c.tlsInfo?.version ?? 'none');
        },
        onHighWatermark() {},
        onLowWatermark() {},
      };
      dialConnection('127.0.0.1', port, h, 65536, 5000, ct.options('127.0.0.1'));
    });
    assert.equal(await done, 'TLSv1.3');
    for (let i = 0; i < 30 && !/hello-from-outrigger/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /CN\s*=\s*frontend-mtls/, out);
    assert.match(out, /hello-from-outrigger/, out);
  } finally {
    ct.close();
    p.kill();
  }
});

async function originPath(sc: RunningSidecar): Promise<string> {
  for (let i = 0; i < 20; i++) {
    if (/"path":"native","msg":"TLS origination/.test(sc.output())) return 'native';
    await new Promise((r) => setTimeout(r, 100));
  }
  return 'node';
}

test(`${path_} origination through a sidecar's tcp_proxy: announced path, counters, wrong CA refused`, { timeout: 60_000 }, async () => {
  const pki = new Pki();
  const other = new Pki();
  const server = pki.issue({ cn: 'backend.mesh', dns: ['backend.mesh'] });
  const b = await backend(server, pki.ca.cert);
  let sc: RunningSidecar | undefined;
  try {
    const cfg = tcpProxyConfig({ upstreams: [b.port] }) as any;
    cfg.cluster_manager.clusters[0].tls_context = { status: true, ca_cert: pki.ca.cert, server_name: 'backend.mesh' };
    const bad = JSON.parse(JSON.stringify(cfg.cluster_manager.clusters[0]));
    bad.name = 'bad';
    bad.tls_context.ca_cert = other.ca.cert;
    cfg.cluster_manager.clusters.push(bad);
    const l2 = JSON.parse(JSON.stringify(cfg.servers[0].listeners[0]));
    l2.name = 'tcp_bad';
    l2.filter_chains[0].filters[0].config.cluster = 'bad';
    cfg.servers[0].listeners.push(l2);
    sc = await startSidecar(cfg, { args: ['--log-level', 'info'], env: nodePath ? { OUTRIGGER_NATIVE_TLS: '0' } : {} });
    const echo = async (port: number): Promise<string> => {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.write('through the mesh');
      await new Promise<void>((res) => {
        const t = setTimeout(res, 3000);
        s.on('data', () => got.length >= 16 && (clearTimeout(t), res()));
        s.on('close', () => (clearTimeout(t), res()));
      });
      s.destroy();
      return got;
    };
    assert.equal(await echo(sc.ports.get('tcp')!), 'through the mesh');
    assert.equal(await echo(sc.ports.get('tcp')!), 'through the mesh');
    assert.equal(await echo(sc.ports.get('tcp_bad')!), '', 'a wrong CA: nothing reaches the client');
    assert.equal(await originPath(sc), path_);
    const st = await sc.stats();
    assert.ok(st.clusters.backend.upstream_tls_handshake >= 2, JSON.stringify(st.clusters.backend));
    assert.ok(st.clusters.bad.upstream_tls_fail_verify >= 1, JSON.stringify(st.clusters.bad));
    assert.ok(b.seen.some((x) => x.reused), 'a connection resumed');
    assert.equal(sc.proc.exitCode, null);
  } finally {
    await sc?.terminate();
    b.close();
  }
});

// Origination suites run again on Node's path (this file included: its cases then take Node's path).
const SUITES = ['tls-origin-paths.test.js', 'xds-mtls.test.js'];

test('the origination suites pass on Node\'s TLS path (OUTRIGGER_NATIVE_TLS=0)', { skip: nodePath ? 'already on Node\'s path' : false, timeout: 300_000 }, async () => {
  await rerunWith(SUITES.map((f) => path.join(__dirname, f)), { OUTRIGGER_NATIVE_TLS: '0' });
});
