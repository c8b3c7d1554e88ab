/**
 * HTTPS and h2 over TLS through Outrigger with curl as the real client: a listener with a
 * MOSN tls_context in front of the HTTP proxy (Auto: HTTP/1.1, or h2 negotiated by ALPN).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Pki } from '../helpers/certs';
import { backend, httpConfig, run } from '../helpers/http';
import { startSidecar } from '../helpers/sidecar';

test('curl --cacert: HTTPS/1.1 and h2 over TLS through TLS termination to a plain HTTP backend', { timeout: 30_000 }, async () => {
  const pki = new Pki();
  const cert = pki.issue({ cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const be = await backend('plain');
  const cfg = httpConfig(
    [{ name: 'https', downstream: 'Auto', upstream: 'Http1', router: 'r' }],
    [{ router_config_name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'web' } }] }] }],
    { web: [be.port] },
  ) as any;
  cfg.servers[0].listeners[0].filter_chains[0].tls_context = { status: true, cert_chain: cert.cert, private_key: cert.key };
  const sc = await startSidecar(cfg);
  try {
    const port = sc.ports.get('https')!;
    const h1 = await run('curl', ['-sS', '--cacert', pki.ca.cert, '--http1.1', '-w', '\\n%{http_version} %{http_code}', `https://localhost:${port}/hello?x=1`]);
    assert.equal(h1.code, 0, h1.stderr);
    assert.match(h1.stdout, /\n1\.1 200$/);
    assert.equal(JSON.parse(h1.stdout.split('\n')[0]).url, '/hello?x=1');

    const h2 = await run('curl', ['-sS', '--cacert', pki.ca.cert, '--http2', '-w', '\\n%{http_version} %{http_code}', `https://localhost:${port}/two`]);
    assert.equal(h2.code, 0, h2.stderr);
    assert.match(h2.stdout, /\n2 200$/, 'h2 negotiated by ALPN');
    assert.equal(JSON.parse(h2.stdout.split('\n')[0]).url, '/two');

    // Without the CA, curl refuses the certificate: verification is real.
    const bad = await run('curl', ['-sS', `https://localhost:${port}/`]);
    assert.notEqual(bad.code, 0);
    const st = await sc.stats();
    assert.ok(st.listeners.https.downstream_tls_handshake >= 2);
  } finally {
    await sc.terminate();
    await be.close();
    pki.remove();
  }
});
