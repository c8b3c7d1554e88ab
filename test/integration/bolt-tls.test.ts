/**
 * SOFARPC over mTLS between two sidecars, with real sofa-rpc-node peers at both ends:
 *   client -> [A: plain bolt listener, cluster with tls_context] ==mTLS==> [B: bolt listener
 *   with tls_context, requires a client cert] -> server
 * Shows upstream TLS origination from the Bolt pool and TLS termination on a Bolt listener.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Pki } from '../helpers/certs';
import { startSidecar } from '../helpers/sidecar';
import { boltProxyConfig, sofaClient, startSofaServer } from '../helpers/sofa';

const SVC = 'com.example.TlsService';

test('sofa-rpc-node client -> Outrigger A ==mTLS==> Outrigger B -> sofa-rpc-node server', { timeout: 60_000 }, async () => {
  const pki = new Pki();
  const serverCert = pki.issue({ cn: 'bolt-b.mesh', dns: ['bolt-b.mesh'] });
  const clientCert = pki.issue({ cn: 'bolt-a', uris: ['spiffe://mesh.test/ns/default/sa/bolt-a'], usage: 'client' });
  const server = await startSofaServer({
    [SVC]: {
      async hello(name: string) {
        return `hello ${name}`;
      },
    },
  });
  const cfgB = boltProxyConfig({ clusters: { backend: [server.port] } }) as any;
  cfgB.servers[0].listeners[0].filter_chains[0].tls_context = {
    status: true,
    cert_chain: serverCert.cert,
    private_key: serverCert.key,
    ca_cert: pki.ca.cert,
    verify_client: true,
    require_client_cert: true,
  };
  const b = await startSidecar(cfgB);
  let a;
  const client = { close: () => {} } as { close(): void };
  try {
    const cfgA = boltProxyConfig({ clusters: { mesh_b: [b.ports.get('bolt')!] } }) as any;
    cfgA.cluster_manager.clusters[0].tls_context = {
      status: true,
      server_name: 'bolt-b.mesh',
      ca_cert: pki.ca.cert,
      cert_chain: clientCert.cert,
      private_key: clientCert.key,
    };
    a = await startSidecar(cfgA);
    const c = sofaClient(a.ports.get('bolt')!);
    client.close = () => c.close();
    const consumer = await c.consumer(SVC);
    for (let i = 0; i < 20; i++) {
      assert.equal(await consumer.invoke('hello', [{ $class: 'java.lang.String', $: `n${i}` }], { responseTimeout: 3000 }), `hello n${i}`);
    }
    const sa = await a.stats();
    const sb = await b.stats();
    assert.ok(sa.clusters.mesh_b.upstream_tls_handshake >= 1, `A originated TLS: ${JSON.stringify(sa.clusters.mesh_b)}`);
    assert.ok(sb.listeners.bolt.downstream_tls_handshake >= 1, 'B terminated TLS');
    assert.ok(sb.listeners.bolt.downstream_rq_total >= 20, 'B proxied the requests at L7');
  } finally {
    client.close();
    if (a) await a.terminate();
    await b.terminate();
    await server.close();
    pki.remove();
  }
});
