/**
 * TLS end to end: the real CLI in a child process, real peers (OpenSSL's s_client, Node TLS
 * clients and servers), certificates made at test time with the openssl CLI.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { keyBody, Pki, replaceFile, sClient, serialOf, type CertFiles } from '../helpers/certs';
import { close, drainHash, echoServer, listen, pump } from '../helpers/net';
import { startSidecar } from '../helpers/sidecar';

const SPIFFE = 'spiffe://outrigger.test/ns/default/sa/client';
const MiB = 1024 * 1024;

let pki: Pki;
let alpha: CertFiles; // ECDSA, alpha.test
let beta: CertFiles; // RSA-2048, beta.test + *.beta.test
let client: CertFiles; // client cert with a SPIFFE URI SAN
let rogueCa: CertFiles;
let rogueClient: CertFiles; // client cert from a CA the listener does not trust

before(() => {
  pki = new Pki();
  alpha = pki.issue({ cn: 'alpha.test', dns: ['alpha.test'], ips: ['127.0.0.1'] });
  beta = pki.issue({ cn: 'beta.test', dns: ['beta.test', '*.beta.test'], kind: 'rsa' });
  client = pki.issue({ cn: 'client', uris: [SPIFFE], usage: 'client' });
  rogueCa = pki.makeCa('Rogue CA');
  rogueClient = pki.issue({ cn: 'rogue', uris: ['spiffe://evil/x'], usage: 'client', ca: rogueCa });
});

after(() => pki.remove());

interface ListenerOpts {
  tls?: Record<string, unknown>;
  tlsSet?: Record<string, unknown>[];
  inspector?: boolean;
  accessLog?: { path: string; format: string };
  upstreamTls?: Record<string, unknown>;
}

function config(upstreamPort: number, o: ListenerOpts): Record<string, unknown> {
  const chain: Record<string, unknown> = { filters: [{ type: 'tcp_proxy', config: { cluster: 'backend' } }] };
  if (o.tls) chain.tls_context = o.tls;
  if (o.tlsSet) chain.tls_context_set = o.tlsSet;
  const listener: Record<string, unknown> = { name: 'tls', address: '127.0.0.1:0', bind_port: true, filter_chains: [chain] };
  if (o.inspector) listener.inspector = true;
  if (o.accessLog) listener.access_logs = [{ log_path: o.accessLog.path, log_format: o.accessLog.format }];
  const cluster: Record<string, unknown> = { name: 'backend', type: 'SIMPLE', hosts: [{ address: `127.0.0.1:${upstreamPort}` }] };
  if (o.upstreamTls) cluster.tls_context = o.upstreamTls;
  return {
    servers: [{ default_log_level: 'WARN', processor: 1, listeners: [listener] }],
    cluster_manager: { clusters: [cluster] },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
  };
}

function serverTls(c: CertFiles, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { status: true, cert_chain: c.cert, private_key: c.key, ...extra };
}

/** A Node TLS client round trip: connect, send, read the echo, close. Rejects on any failure. */
function tlsEcho(port: number, opts: tls.ConnectionOptions, msg: string): Promise<{ echoed: string; serial: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(pki.ca.cert), servername: 'alpha.test', ...opts }, () => {
      const serial = s.getPeerX509Certificate()!.serialNumber.replace(/^0+/, '').toUpperCase();
      let got = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        got += d;
        if (got.length >= msg.length) {
          s.end();
          resolve({ echoed: got, serial });
        }
      });
      s.write(msg);
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error('closed before the echo came back'))); // no-op once resolved
    s.setTimeout(10_000, () => s.destroy(new Error('timeout')));
  });
}

describe('downstream TLS with openssl s_client', () => {
  test('SNI picks the certificate (ECDSA default, RSA by name and wildcard); TLS 1.0 is refused', { timeout: 60_000 }, async () => {
    const echo = await echoServer();
    const sc = await startSidecar(config(echo.port, { tlsSet: [serverTls(alpha), serverTls(beta)] }));
    try {
      const port = sc.ports.get('tls')!;
      const byName = await sClient(port, ['-servername', 'beta.test', '-CAfile', pki.ca.cert], 'hello\n');
      assert.ok(byName.serverCert, byName.out);
      assert.equal(serialOf(byName.serverCert!), beta.serial, 'SNI beta.test -> the RSA certificate');
      assert.match(byName.out, /Server public key is 2048 bit/);
      assert.match(byName.out, /Verify return code: 0 \(ok\)/);
      assert.match(byName.out, /hello/, 'bytes went through TLS termination to the plain echo backend and back');

      const wild = await sClient(port, ['-servername', 'api.beta.test', '-CAfile', pki.ca.cert]);
      assert.equal(serialOf(wild.serverCert!), beta.serial, 'SNI api.beta.test -> *.beta.test');

      const other = await sClient(port, ['-servername', 'alpha.test', '-CAfile', pki.ca.cert]);
      assert.equal(serialOf(other.serverCert!), alpha.serial);
      const none = await sClient(port, ['-noservername', '-CAfile', pki.ca.cert]);
      assert.equal(serialOf(none.serverCert!), alpha.serial, 'no SNI -> the first context');
      assert.match(none.out, /Protocol *: TLSv1\.3|TLSv1\.3/);

      const old = await sClient(port, ['-tls1', '-cipher', 'DEFAULT@SECLEVEL=0', '-servername', 'alpha.test']);
      assert.equal(old.serverCert, null, 'no certificate is sent to a TLS 1.0 client');
      assert.match(old.out, /alert protocol version|unsupported protocol|no protocols available/i, old.out);

      const st = await sc.stats();
      const l = st.listeners.tls;
      assert.ok(l.downstream_tls_handshake >= 4, JSON.stringify(l));
      assert.ok(l.downstream_tls_version_tlsv1_3 >= 4);
      assert.ok(l.downstream_tls_fail_version >= 1, 'the TLS 1.0 client is counted as a version failure');
      assert.ok(l.downstream_tls_cipher_aes_256_gcm + l.downstream_tls_cipher_aes_128_gcm + l.downstream_tls_cipher_chacha20_poly1305 >= 4);
    } finally {
      await sc.terminate();
      await close(echo.server);
    }
  });

  test('mTLS: a client certificate from the CA passes, and its SPIFFE id reaches the access log; none or an untrusted one fails', { timeout: 60_000 }, async () => {
    const echo = await echoServer();
    const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-tls-log-'));
    const logPath = path.join(logDir, 'access.log');
    const mtls = serverTls(alpha, { ca_cert: pki.ca.cert, verify_client: true, require_client_cert: true, min_version: 'tlsv1_2' });
    const format = '%downstream_peer_uri_san% %downstream_peer_subject% %downstream_tls_version% %requested_server_name% %bytes_received%';
    const sc = await startSidecar(config(echo.port, { tls: mtls, accessLog: { path: logPath, format } }));
    try {
      const port = sc.ports.get('tls')!;
      const ok = await sClient(port, ['-servername', 'alpha.test', '-CAfile', pki.ca.cert, '-cert', client.cert, '-key', client.key], 'mutual\n');
      assert.match(ok.out, /mutual/, ok.out);

      const noCert = await sClient(port, ['-servername', 'alpha.test', '-CAfile', pki.ca.cert], 'nope\n');
      assert.doesNotMatch(noCert.out, /nope/, 'no bytes came back (s_client prints only what it receives)');
      assert.match(noCert.out, /alert certificate required|handshake failure|peer did not return/i, noCert.out);

      const rogue = await sClient(port, ['-servername', 'alpha.test', '-CAfile', pki.ca.cert, '-cert', rogueClient.cert, '-key', rogueClient.key], 'evil\n');
      assert.doesNotMatch(rogue.out, /evil/, 'an untrusted client certificate gets nothing through');
      // Node TLS client with the untrusted certificate: the server closes without echoing.
      await assert.rejects(tlsEcho(port, { cert: fs.readFileSync(rogueClient.cert), key: fs.readFileSync(rogueClient.key) }, 'evil'));

      const st = await sc.stats();
      const l = st.listeners.tls;
      assert.ok(l.downstream_tls_fail_no_certificate >= 1, JSON.stringify(l));
      assert.ok(l.downstream_tls_fail_verify >= 2, JSON.stringify(l));
      assert.ok(echo.sockets.size === 0);

      await sc.terminate();
      const log = fs.readFileSync(logPath, 'utf8');
      assert.match(log, new RegExp(`^${SPIFFE.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} CN=client TLSv1\\.3 alpha\\.test 7$`, 'm'), log);
    } finally {
      await sc.terminate();
      await close(echo.server);
      fs.rmSync(logDir, { recursive: true, force: true });
    }
  });
});

describe('TLS data path', () => {
  test('32 MiB each way arrive intact through TLS termination to a plain backend; half-close works', { timeout: 120_000 }, async () => {
    let backendResult: Promise<[string, { hash: string; bytes: number }]> | undefined;
    const backend = net.createServer({ allowHalfOpen: true }, (s) => {
      backendResult = Promise.all([pump(s, 32 * MiB, 2), drainHash(s)]);
    });
    const bport = await listen(backend);
    const sc = await startSidecar(config(bport, { tls: serverTls(alpha) }));
    try {
      const c = tls.connect({ host: '127.0.0.1', port: sc.ports.get('tls')!, ca: fs.readFileSync(pki.ca.cert), servername: 'alpha.test', allowHalfOpen: true } as tls.ConnectionOptions);
      await new Promise<void>((r, j) => c.once('secureConnect', r).once('error', j));
      const [sent, received] = await Promise.all([pump(c, 32 * MiB, 1), drainHash(c)]);
      const [backendSent, backendReceived] = await backendResult!;
      assert.equal(backendReceived.bytes, 32 * MiB);
      assert.equal(backendReceived.hash, sent, 'client -> backend intact');
      assert.equal(received.bytes, 32 * MiB);
      assert.equal(received.hash, backendSent, 'backend -> client intact');
      c.destroy();
    } finally {
      await sc.terminate();
      await close(backend);
    }
  });

  test('upstream TLS: Outrigger originates mTLS to a TLS server that requires a client certificate', { timeout: 60_000 }, async () => {
    const upstreamCert = pki.issue({ cn: 'upstream.test', dns: ['upstream.test'] });
    const seen: string[] = [];
    const up = tls.createServer(
      { cert: fs.readFileSync(upstreamCert.cert), key: fs.readFileSync(upstreamCert.key), ca: fs.readFileSync(pki.ca.cert), requestCert: true, rejectUnauthorized: true, allowHalfOpen: true },
      (s) => {
        const id = s.getPeerX509Certificate();
        seen.push(`${s.servername} ${id?.subjectAltName ?? '-'}`);
        s.on('error', () => {});
        s.pipe(s);
      },
    );
    up.on('tlsClientError', () => {});
    const upSockets = new Set<net.Socket>();
    up.on('connection', (s: net.Socket) => {
      upSockets.add(s);
      s.on('close', () => upSockets.delete(s));
    });
    const upPort = await listen(up as unknown as net.Server);
    const good = { status: true, server_name: 'upstream.test', ca_cert: pki.ca.cert, cert_chain: client.cert, private_key: client.key };
    const sc = await startSidecar(config(upPort, { upstreamTls: good }));
    try {
      const port = sc.ports.get('tls')!;
      for (let i = 0; i < 3; i++) {
        const s = net.connect(port, '127.0.0.1');
        const got = drainHash(s);
        s.end(Buffer.alloc(100_000, i));
        assert.equal((await got).bytes, 100_000, 'bytes went through the TLS upstream and back');
      }
      assert.equal(seen.length, 3);
      assert.equal(seen[0], `upstream.test URI:${SPIFFE}`, 'SNI sent and the client certificate presented');
      const st = await sc.stats();
      assert.equal(st.clusters.backend.upstream_tls_handshake, 3);
      assert.equal(st.clusters.backend.upstream_tls_version_tlsv1_3, 3);
    } finally {
      await sc.terminate();
    }
    // A wrong server name fails verification: the downstream is closed, nothing reaches the upstream.
    const bad = { ...good, server_name: 'other.test' };
    const sc2 = await startSidecar(config(upPort, { upstreamTls: bad }));
    try {
      const s = net.connect(sc2.ports.get('tls')!, '127.0.0.1');
      s.on('error', () => {});
      const got = drainHash(s).catch(() => ({ bytes: 0, hash: '' }));
      s.write('x');
      assert.equal((await got).bytes, 0);
      const st = await sc2.stats();
      assert.ok(st.clusters.backend.upstream_tls_fail_verify >= 1, JSON.stringify(st.clusters.backend));
      assert.equal(seen.length, 3, 'no new session reached the upstream application');
    } finally {
      await sc2.terminate();
      for (const s of upSockets) s.destroy(); // handshakes the proxy aborted may linger server-side
      await close(up as unknown as net.Server);
    }
  });

  test('TLS inspector: plaintext and TLS clients on the same port', { timeout: 60_000 }, async () => {
    const echo = await echoServer();
    const sc = await startSidecar(config(echo.port, { tls: serverTls(alpha), inspector: true }));
    try {
      const port = sc.ports.get('tls')!;
      for (let i = 0; i < 3; i++) {
        const plain = net.connect(port, '127.0.0.1');
        const got = drainHash(plain);
        plain.end('plaintext hello');
        assert.equal((await got).bytes, 15);
        const viaTls = await tlsEcho(port, {}, 'tls hello');
        assert.equal(viaTls.echoed, 'tls hello');
        const viaOpenssl = await sClient(port, ['-servername', 'alpha.test', '-CAfile', pki.ca.cert], 'openssl hello\n');
        assert.match(viaOpenssl.out, /openssl hello/);
      }
      const st = await sc.stats();
      assert.equal(st.listeners.tls.downstream_tls_inspector_plaintext, 3);
      assert.ok(st.listeners.tls.downstream_tls_handshake >= 6);
    } finally {
      await sc.terminate();
      await close(echo.server);
    }
  });
});

describe('certificate rotation', () => {
  test('under a loop of TLS connections: zero failures, new handshakes see the new certificate, a bad one is refused', { timeout: 90_000 }, async () => {
    const echo = await echoServer();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-rotate-'));
    const certPath = path.join(dir, 'tls.crt');
    const keyPath = path.join(dir, 'tls.key');
    fs.copyFileSync(alpha.cert, certPath);
    fs.copyFileSync(alpha.key, keyPath);
    const next = pki.issue({ cn: 'alpha.test', dns: ['alpha.test'], kind: 'rsa' });
    const sc = await startSidecar(config(echo.port, { tls: { status: true, cert_chain: certPath, private_key: keyPath } }), {
      workers: 2,
      env: { OUTRIGGER_TLS_WATCH_MS: '100' },
    });
    try {
      const port = sc.ports.get('tls')!;
      // A connection opened before the rotation must survive it.
      const live = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(pki.ca.cert), servername: 'alpha.test' });
      await new Promise<void>((r, j) => live.once('secureConnect', r).once('error', j));
      live.setEncoding('utf8');

      let stop = false;
      let ok = 0;
      const failures: string[] = [];
      const serials = new Set<string>();
      const loops = Array.from({ length: 4 }, async (_, k) => {
        while (!stop) {
          try {
            const r = await tlsEcho(port, {}, `ping ${k}`);
            assert.equal(r.echoed, `ping ${k}`);
            serials.add(r.serial);
            ok++;
          } catch (e) {
            failures.push(String(e));
          }
        }
      });
      await new Promise((r) => setTimeout(r, 500));
      replaceFile(keyPath, next.key);
      replaceFile(certPath, next.cert);
      const t0 = Date.now();
      while (!serials.has(next.serial) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
      assert.ok(serials.has(next.serial), 'new handshakes present the new certificate');
      // Keep the load on while every worker has switched.
      await new Promise((r) => setTimeout(r, 1000));
      const afterSwap = await Promise.all(Array.from({ length: 8 }, () => tlsEcho(port, {}, 'x')));
      assert.ok(afterSwap.every((r) => r.serial === next.serial), 'all workers use the new certificate');

      // A bad replacement (key of another certificate): refused, the current one stays.
      replaceFile(keyPath, alpha.key);
      await new Promise((r) => setTimeout(r, 1500));
      const afterBad = await Promise.all(Array.from({ length: 8 }, () => tlsEcho(port, {}, 'y')));
      assert.ok(afterBad.every((r) => r.serial === next.serial), 'the bad pair was not used');
      stop = true;
      await Promise.all(loops);
      assert.deepEqual(failures, [], 'no connection failed during the rotation');
      assert.ok(ok > 50, `the loop ran (${ok} connections)`);

      const echoed = new Promise<string>((r) => live.once('data', (d: string) => r(d)));
      live.write('still here');
      assert.equal(await echoed, 'still here', 'the connection from before the rotation still works');
      live.destroy();

      assert.match(sc.output(), /TLS certificate reload refused; keeping the previous certificate/);
      assert.match(sc.output(), /does not match the certificate in cert_chain/);
      const st = await sc.stats();
      assert.ok(st.listeners.tls.downstream_tls_cert_reload >= 2, 'both workers reloaded');
      assert.ok(st.listeners.tls.downstream_tls_cert_reload_fail >= 2, 'both workers refused the bad pair');
    } finally {
      await sc.terminate();
      await close(echo.server);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('secrets stay secret', () => {
  test('config_dump and process output never contain the private key', { timeout: 60_000 }, async () => {
    const echo = await echoServer();
    const inlineKey = fs.readFileSync(beta.key, 'utf8');
    const cfg = config(echo.port, {
      tlsSet: [serverTls(alpha), { status: true, cert_chain: fs.readFileSync(beta.cert, 'utf8'), private_key: inlineKey }],
    });
    (cfg.servers as any)[0].default_log_level = 'DEBUG';
    const sc = await startSidecar(cfg);
    try {
      const port = sc.ports.get('tls')!;
      await tlsEcho(port, {}, 'a');
      const dump = await (await fetch(`http://127.0.0.1:${sc.adminPort}/api/v1/config_dump`)).text();
      assert.match(dump, /BEGIN CERTIFICATE/, 'certificates are shown');
      for (const line of [...keyBody(alpha.key), ...keyBody(beta.key)]) {
        assert.ok(!dump.includes(line), 'config_dump has no key material');
        assert.ok(!sc.output().includes(line), 'logs have no key material');
      }
      assert.ok(!dump.includes(alpha.key), 'the key path is redacted too');
    } finally {
      await sc.terminate();
      await close(echo.server);
    }
  });
});
