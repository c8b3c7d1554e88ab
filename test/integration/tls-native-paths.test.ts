/**
 * Both TLS termination paths (src/tls/native.ts): the native one (default with the addon) and
 * Node's TLSSocket (OUTRIGGER_NATIVE_TLS=0), on the same inputs through a tcp_proxy listener:
 *   - the sidecar says which path it runs;
 *   - openssl s_client with TLS 1.3 and 1.2: ALPN chosen from the listener's list, echo;
 *   - a client certificate is required: none -> refused and counted; one from the CA -> echo;
 *   - garbage and a corrupted record close only their connection, counted, while an
 *     established TLS connection keeps echoing;
 * and the existing TLS suites (s_client, SNI sets, mTLS and SPIFFE, rotation under load,
 * inspector, curl and sofa-rpc-node over mTLS with RBAC, tickets, upstream TLS) run again on
 * Node's path here (they run on the native path in their own files).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { native } from '../../src/native';
import { Pki, sClient } from '../helpers/certs';
import { echoServer } from '../helpers/net';
import { rerunWith } from '../helpers/rerun';
import { startSidecar, tcpProxyConfig, type RunningSidecar } from '../helpers/sidecar';

const SPIFFE = 'spiffe://mesh.test/ns/default/sa/frontend';
const nativeSkip = native.kind !== 'native' ? 'native addon not loaded' : false;

/** Waits (up to 3 s: logs flush asynchronously) for the line saying which TLS path runs. */
async function tlsPath(sc: RunningSidecar): Promise<string> {
  for (let i = 0; i < 30; i++) {
    const m = /"path":"(native|node)","msg":"TLS termination/.exec(sc.output());
    if (m) return m[1];
    await new Promise((r) => setTimeout(r, 100));
  }
  return 'none';
}

/** A Node TLS client that stays connected; echo(msg) round-trips through it. */
async function openClient(port: number, opts: tls.ConnectionOptions): Promise<{ echo(msg: string): Promise<string>; close(): void }> {
  const s = tls.connect({ host: '127.0.0.1', port, ...opts });
  s.on('error', () => {});
  await new Promise<void>((res, rej) => s.once('secureConnect', res).once('error', rej));
  return {
    echo: (msg) =>
      new Promise((res) => {
        let got = '';
        const onData = (d: Buffer): void => {
          got += d.toString();
          if (got.length >= msg.length) {
            s.off('data', onData);
            res(got);
          }
        };
        s.on('data', onData);
        s.write(msg);
      }),
    close: () => s.end(),
  };
}

for (const p of ['native', 'node'] as const) {
  test(`${p} TLS path: ALPN, TLS 1.3/1.2, required client certificate, malformed input closes only its connection`, { skip: p === 'native' ? nativeSkip : false, timeout: 60_000 }, async () => {
    const pki = new Pki();
    const server = pki.issue({ cn: 'a.test', dns: ['a.test'] });
    const client = pki.issue({ cn: 'frontend', uris: [SPIFFE], usage: 'client' });
    const echo = await echoServer();
    const cfg = tcpProxyConfig({ upstreams: [echo.port] }) as any;
    cfg.servers[0].listeners[0].filter_chains[0].tls_context = {
      status: true, cert_chain: server.cert, private_key: server.key, ca_cert: pki.ca.cert,
      verify_client: true, require_client_cert: true, alpn: 'sofa,http/1.1',
    };
    let sc: RunningSidecar | undefined;
    try {
      sc = await startSidecar(cfg, { args: ['--log-level', 'info'], env: p === 'node' ? { OUTRIGGER_NATIVE_TLS: '0' } : {} });
      const port = sc.ports.get('tcp')!;
      assert.equal(await tlsPath(sc), p);
      const certArgs = ['-cert', client.cert, '-key', client.key, '-CAfile', pki.ca.cert, '-servername', 'a.test'];

      for (const v of ['-tls1_3', '-tls1_2']) {
        const r = await sClient(port, [...certArgs, v, '-alpn', 'h2,http/1.1'], 'ping\n');
        assert.match(r.out, v === '-tls1_3' ? /New, TLSv1\.3/ : /New, TLSv1\/SSLv3|New, TLSv1\.2/, r.out);
        assert.match(r.out, /ALPN protocol: http\/1\.1/, r.out);
        assert.match(r.out, /^ping$/m, `echo over ${v}`);
      }
      const none = await sClient(port, ['-CAfile', pki.ca.cert, '-servername', 'a.test'], 'ping\n');
      assert.doesNotMatch(none.out, /^ping$/m, 'no echo without a client certificate');

      const ca = fs.readFileSync(pki.ca.cert);
      const good = await openClient(port, { ca, servername: 'a.test', cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key) });
      assert.equal(await good.echo('one'), 'one');
      // Garbage instead of a ClientHello.
      const garbage = net.connect(port, '127.0.0.1', () => garbage.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(20)));
      garbage.on('error', () => {});
      await new Promise((res) => garbage.on('close', res));
      // A finished handshake, then an application-data record that does not decrypt.
      const raw = net.connect(port, '127.0.0.1');
      const bad = tls.connect({ socket: raw, ca, servername: 'a.test', cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key) });
      bad.on('error', () => {});
      await new Promise<void>((res) => bad.once('secureConnect', res));
      raw.write(Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20, ...Buffer.alloc(32, 0x5a)]));
      await new Promise((res) => raw.on('close', res));
      assert.equal(await good.echo('still here'), 'still here');
      good.close();

      const st = (await sc.stats()).listeners.tcp;
      assert.ok(st.downstream_tls_fail_other >= 1, JSON.stringify(st));
      assert.ok(st.downstream_tls_fail_no_certificate + st.downstream_tls_fail_other >= 2, JSON.stringify(st));
      assert.ok(st.downstream_tls_handshake >= 3, JSON.stringify(st));
      assert.equal(sc.proc.exitCode, null, 'the sidecar is still running');
    } finally {
      await sc?.terminate();
      echo.server.close();
    }
  });
}

// upgrade-tls (hot upgrade of a TLS listener, timing-sensitive under load) is run on Node's path by
// hand instead: OUTRIGGER_NATIVE_TLS=0 node scripts/run-tests.js upgrade-tls.
const SUITES = ['tls.test.js', 'rbac-mtls.test.js', 'bolt-tls.test.js', 'tls-resumption.test.js', 'upstream-tls.test.js'];

test('the existing TLS suites pass on Node\'s TLS path (OUTRIGGER_NATIVE_TLS=0)', { skip: nativeSkip, timeout: 400_000 }, async () => {
  await rerunWith(SUITES.map((f) => path.join(__dirname, f)), { OUTRIGGER_NATIVE_TLS: '0' });
});
