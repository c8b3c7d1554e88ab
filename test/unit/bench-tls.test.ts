// Tests of the harness's TLS workloads: certificate generation with the openssl CLI, the
// tls-handshake driver (full handshakes only, against a Node TLS echo server that offers
// tickets), the tls-bulk driver, and the TLS peer configs. 127.0.0.1 only, a few seconds.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { certKeyType, makeCerts, type CertFiles, type CertKind } from '../../bench/lib/certs';
import runTask from '../../bench/load/worker';
import type { LoadSpec } from '../../bench/load/spec';
import { haproxyConfig, nginxConfig, outriggerConfig, proxyLayer, type TlsListener } from '../../bench/peers/configs';
import { workloadByName } from '../../bench/workloads';
import { peerByName } from '../../bench/peers';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-tls-test-'));
let certs: Record<CertKind, CertFiles>;
test.before(() => {
  certs = makeCerts(dir);
});
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

function listen(srv: net.Server): Promise<number> {
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as net.AddressInfo).port)));
}
/** Closes a server; does not wait more than 200 ms for its last connections to go. */
function close(srv: net.Server): Promise<void> {
  return new Promise((resolve) => {
    srv.close(() => resolve());
    setTimeout(resolve, 200);
  });
}

function spec(port: number, over: Partial<LoadSpec>): LoadSpec {
  return {
    kind: 'tls-handshake', host: '127.0.0.1', port, connections: 4, threads: 1, messageSize: 64,
    measureStart: Date.now() + 200, durationMs: 800, proxyPids: [], backendPids: [], ...over,
  };
}

test('openssl makes an ECDSA P-256 and an RSA-2048 certificate with matching keys', () => {
  assert.equal(certKeyType(certs.ecdsa.cert), 'EC prime256v1');
  assert.equal(certKeyType(certs.rsa.cert), 'RSA 2048');
  for (const c of Object.values(certs)) {
    const pem = fs.readFileSync(c.pem, 'utf8');
    assert.match(pem, /BEGIN CERTIFICATE/);
    assert.match(pem, /BEGIN PRIVATE KEY/);
    assert.equal(fs.statSync(c.key).mode & 0o077, 0, 'key not readable by others');
    // Node accepts the pair (the key matches the certificate).
    assert.doesNotThrow(() => tls.createSecureContext({ cert: fs.readFileSync(c.cert), key: fs.readFileSync(c.key) }));
  }
});

for (const kind of ['ecdsa', 'rsa'] as const) {
  test(`tls-handshake driver: full handshakes only against a ticket-issuing Node TLS echo server (${kind})`, async () => {
    let handshakes = 0;
    let reused = 0;
    const srv = tls.createServer({ cert: fs.readFileSync(certs[kind].cert), key: fs.readFileSync(certs[kind].key) }, (s) => {
      handshakes++;
      if (s.isSessionReused()) reused++;
      s.on('error', () => s.destroy());
      s.pipe(s);
    });
    const port = await listen(srv);
    try {
      const r = await runTask({ spec: spec(port, {}), connections: 4 });
      assert.equal(r.errors, 0, r.firstError);
      assert.ok(r.ops >= 20, `only ${r.ops} handshakes in the window`);
      assert.equal(r.bytes, r.ops * 64);
      assert.ok(handshakes >= r.ops);
      assert.equal(reused, 0, 'a session was resumed');
      assert.match(r.note ?? '', /^TLSv1\.3 /);
      assert.match(r.note ?? '', kind === 'ecdsa' ? /cert EC P-256/ : /cert RSA-2048/);
      assert.ok(r.histogram.length > 0);
    } finally {
      await close(srv);
    }
  });
}

test('tls-handshake driver: a plaintext server is an error, not a handshake', async () => {
  const srv = net.createServer((s) => {
    s.on('error', () => s.destroy());
    s.end('not tls\n');
  });
  const port = await listen(srv);
  try {
    const r = await runTask({ spec: spec(port, { durationMs: 300 }), connections: 2 });
    assert.equal(r.ops, 0);
    assert.ok(r.errors > 0);
  } finally {
    await close(srv);
  }
});

test('tls-bulk driver counts decrypted bytes streamed by the server', async () => {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const srv = tls.createServer({ cert: fs.readFileSync(certs.ecdsa.cert), key: fs.readFileSync(certs.ecdsa.key) }, (s) => {
    s.on('error', () => s.destroy());
    const pump = (): void => {
      while (!s.destroyed && s.write(chunk));
    };
    s.on('drain', pump);
    pump();
  });
  const port = await listen(srv);
  try {
    const r = await runTask({ spec: spec(port, { kind: 'tls-bulk', connections: 2, messageSize: 0 }), connections: 2 });
    assert.equal(r.errors, 0, r.firstError);
    assert.ok(r.bytes > 1024 * 1024, `only ${r.bytes} bytes`);
    assert.match(r.note ?? '', /cert EC P-256/);
  } finally {
    await close(srv);
  }
});

test('TLS peer configs: every proxy terminates with the generated files, tickets and caches off', () => {
  const tlsL: TlsListener[] = [
    { name: 'ecdsa', port: 41001, cert: certs.ecdsa },
    { name: 'rsa', port: 41002, cert: certs.rsa },
  ];
  const c = { mode: 'tls' as const, port: 41001, backendPort: 41000, dir, tls: tlsL };
  const h = haproxyConfig(c);
  assert.match(h, /ssl-default-bind-options ssl-min-ver TLSv1\.2 no-tls-tickets/);
  assert.match(h, /tune\.ssl\.cachesize 0/);
  assert.ok(h.includes(`bind 127.0.0.1:41001 ssl crt ${certs.ecdsa.pem}`));
  assert.ok(h.includes(`bind 127.0.0.1:41002 ssl crt ${certs.rsa.pem}`));
  assert.match(h, /mode tcp/);
  const n = nginxConfig(c, '/usr/lib/nginx/modules/ngx_stream_module.so');
  assert.match(n, /load_module/);
  assert.match(n, /ssl_session_tickets off;/);
  assert.match(n, /ssl_session_cache off;/);
  assert.ok(n.includes(`listen 127.0.0.1:41002 ssl; ssl_certificate ${certs.rsa.cert}; ssl_certificate_key ${certs.rsa.key}; proxy_pass 127.0.0.1:41000;`));
  const o = outriggerConfig(c) as any;
  const ls = o.servers[0].listeners;
  assert.equal(ls.length, 2);
  assert.deepEqual(ls[0].filter_chains[0].tls_context, {
    status: true, cert_chain: certs.ecdsa.cert, private_key: certs.ecdsa.key, min_version: 'tlsv1_2', max_version: 'tlsv1_3',
  });
  assert.equal(ls[1].address, '127.0.0.1:41002');
  assert.equal(ls[0].filter_chains[0].filters[0].type, 'tcp_proxy');
  assert.equal(proxyLayer('haproxy', 'tls'), 'L4');
  assert.throws(() => haproxyConfig({ ...c, tls: undefined }), /needs certificates/);
});

test('TLS workloads: cases per certificate, direct is n/a, node-tls is TLS only', () => {
  const hs = workloadByName('tls-handshake')!;
  assert.equal(hs.pending, undefined);
  const cases = hs.cases({});
  assert.deepEqual(cases.map((c) => [c.listener, c.unit, c.cert]), [['ecdsa', 'handshakes/s', 'ECDSA P-256'], ['rsa', 'handshakes/s', 'RSA-2048']]);
  const bulk = workloadByName('tls-bulk')!.cases({});
  assert.deepEqual(bulk.map((c) => [c.connections, c.unit, c.listener]), [[1, 'B/s', 'ecdsa'], [16, 'B/s', 'ecdsa']]);
  assert.match(peerByName('direct')!.unsupported('tls') ?? '', /no TLS terminator/);
  assert.equal(peerByName('direct')!.unsupported('tcp'), undefined);
  assert.equal(peerByName('node-tls')!.unsupported('tls'), undefined);
  assert.ok(peerByName('node-tls')!.unsupported('tcp'));
});
