/**
 * Traffic through resources that exist only as xDS messages: an Istio-shaped listener (plaintext
 * HTTP chain matched by http_inspector ALPN + its raw TCP sibling, an inline route) and STATIC
 * clusters are decoded (proto.ts), translated, assembled into an OutriggerConfig and served by a
 * real Sidecar: HTTP goes through the route, other bytes through the TCP fallback.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import type { ClusterConfig } from '../../src/config/types';
import { fromJson } from '../../src/xds/proto';
import { translator } from '../../src/xds/translate';
import { TYPE_URL, type TranslatedListener, type TranslationContext } from '../../src/xds/types';
import { Pki } from '../helpers/certs';
import { backend, request } from '../helpers/http';
import { serveTranslated } from '../helpers/xds';

const ctx: TranslationContext = { secret: () => undefined, warn: () => undefined };
const TCP = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

function staticCluster(name: string, port: number): ClusterConfig {
  return translator.cluster(fromJson(TYPE_URL.cluster, {
    name, type: 'STATIC', connectTimeout: '1s',
    loadAssignment: { clusterName: name, endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } }] }] },
  }), ctx).cluster;
}

/** Serves one translated listener (and its inline routes) with these clusters in a real Sidecar; its port. */
async function serve(t: { after(fn: () => unknown): void }, tl: TranslatedListener, clusters: ClusterConfig[]): Promise<number> {
  return (await serveTranslated(t, [tl], clusters))[0];
}

test('HTTP and raw TCP through a listener, route and clusters that arrived as xDS resources', async (t) => {
  const web = await backend('web');
  const echo = net.createServer((s) => s.on('data', (d) => s.write(Buffer.concat([Buffer.from('echo:'), d]))));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  t.after(async () => {
    await web.close();
    echo.close();
  });
  const echoPort = (echo.address() as net.AddressInfo).port;
  const tl = translator.listener(fromJson(TYPE_URL.listener, {
    name: 'inbound_9080',
    address: { socketAddress: { address: '127.0.0.1', portValue: 0 } },
    listenerFilters: [
      { name: 'envoy.filters.listener.tls_inspector', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } },
      { name: 'envoy.filters.listener.http_inspector', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector' } },
    ],
    filterChains: [
      {
        filterChainMatch: { transportProtocol: 'raw_buffer', applicationProtocols: ['http/1.1', 'h2c'] },
        filters: [{
          name: 'envoy.filters.network.http_connection_manager',
          typedConfig: {
            '@type': HCM, statPrefix: 'in',
            routeConfig: { name: 'inbound|9080||', virtualHosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'web', timeout: '5s' }, responseHeadersToAdd: [{ header: { key: 'x-via-xds', value: 'yes' } }] }] }] },
            httpFilters: [
              { name: 'istio.stats', typedConfig: { '@type': 'type.googleapis.com/stats.PluginConfig' } },
              { name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
            ],
          },
        }],
      },
      { filterChainMatch: { transportProtocol: 'raw_buffer' }, filters: [{ name: 'envoy.filters.network.tcp_proxy', typedConfig: { '@type': TCP, statPrefix: 'tcp', cluster: 'echo' } }] },
    ],
  }), ctx);
  const port = await serve(t, tl, [staticCluster('web', web.port), staticCluster('echo', echoPort)]);
  const r = await request(port, '/hello');
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-via-xds'], 'yes');
  assert.match(r.body, /web/);
  // Not HTTP: the http_inspector chain hands the bytes to its TCP sibling (tcp_proxy to echo).
  const got = await new Promise<string>((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(Buffer.from([0x00, 0x01, 0x02, 0x6d, 0x79, 0x73, 0x71, 0x6c])));
    let buf = '';
    c.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('mysql')) {
        c.destroy();
        resolve(buf);
      }
    });
    c.on('error', reject);
    setTimeout(() => reject(new Error(`no echo, got ${JSON.stringify(buf)}`)), 5000).unref();
  });
  assert.match(got, /^echo:/);
});

test('Istio-style inbound mTLS from SDS secrets (default, ROOTCA): a client certificate is required and verified', async (t) => {
  const pki = new Pki();
  t.after(() => pki.remove());
  const server = pki.issue({ cn: 'reviews', dns: ['reviews.default.svc'], uris: ['spiffe://cluster.local/ns/default/sa/reviews'] });
  const client = pki.issue({ cn: 'productpage', uris: ['spiffe://cluster.local/ns/default/sa/productpage'], usage: 'client' });
  const other = new Pki();
  t.after(() => other.remove());
  const stranger = other.issue({ cn: 'stranger', usage: 'client' });
  const read = (p: string): string => fs.readFileSync(p, 'utf8');
  const secrets = [
    translator.secret(fromJson(TYPE_URL.secret, { name: 'default', tlsCertificate: { certificateChain: { inlineBytes: Buffer.from(read(server.cert)).toString('base64') }, privateKey: { inlineBytes: Buffer.from(read(server.key)).toString('base64') } } }), ctx),
    translator.secret(fromJson(TYPE_URL.secret, { name: 'ROOTCA', validationContext: { trustedCa: { inlineBytes: Buffer.from(read(pki.ca.cert)).toString('base64') } } }), ctx),
  ];
  const sctx: TranslationContext = { secret: (n) => secrets.find((s) => s.name === n), warn: () => undefined };
  const web = await backend('reviews');
  t.after(() => web.close());
  const tl = translator.listener(fromJson(TYPE_URL.listener, {
    name: 'mtls',
    address: { socketAddress: { address: '127.0.0.1', portValue: 0 } },
    filterChains: [{
      filterChainMatch: { transportProtocol: 'tls' },
      transportSocket: {
        name: 'envoy.transport_sockets.tls',
        typedConfig: {
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
          requireClientCertificate: true,
          commonTlsContext: {
            alpnProtocols: ['h2', 'http/1.1'],
            tlsCertificateSdsSecretConfigs: [{ name: 'default', sdsConfig: { ads: {} } }],
            combinedValidationContext: { defaultValidationContext: {}, validationContextSdsSecretConfig: { name: 'ROOTCA', sdsConfig: { ads: {} } } },
          },
        },
      },
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typedConfig: {
          '@type': HCM, statPrefix: 'in', codecType: 'HTTP1',
          routeConfig: { name: 'inbound|9080||', virtualHosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'web' } }] }] },
          httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
        },
      }],
    }],
  }), sctx);
  assert.deepEqual([...tl.deps.secrets].sort(), ['ROOTCA', 'default']);
  const port = await serve(t, tl, [staticCluster('web', web.port)]);
  const get = (cert?: { cert: string; key: string }): Promise<number> => new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, path: '/r', servername: 'reviews.default.svc', ca: read(pki.ca.cert),
      ...(cert ? { cert: read(cert.cert), key: read(cert.key) } : {}),
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(await get(client), 200);
  await assert.rejects(get(), 'no client certificate: refused');
  await assert.rejects(get(stranger), 'a certificate from another CA: refused');
});

test('upstream mTLS with Istio secure naming: the SAN matcher from CDS decides, not the host name', async (t) => {
  const pki = new Pki();
  t.after(() => pki.remove());
  const read = (p: string): string => fs.readFileSync(p, 'utf8');
  const peer = pki.issue({ cn: 'details', uris: ['spiffe://cluster.local/ns/default/sa/details'] });
  const me = pki.issue({ cn: 'productpage', uris: ['spiffe://cluster.local/ns/default/sa/productpage'], usage: 'client' });
  const up = https.createServer({ cert: read(peer.cert), key: read(peer.key), ca: read(pki.ca.cert), requestCert: true, rejectUnauthorized: true }, (req, res) => {
    res.end(`hello ${(req.socket as import('node:tls').TLSSocket).getPeerCertificate().subject?.CN ?? ''}`);
  });
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
  t.after(() => up.close());
  const upPort = (up.address() as net.AddressInfo).port;
  const secrets = [
    translator.secret(fromJson(TYPE_URL.secret, { name: 'default', tlsCertificate: { certificateChain: { inlineString: read(me.cert) }, privateKey: { inlineString: read(me.key) } } }), ctx),
    translator.secret(fromJson(TYPE_URL.secret, { name: 'ROOTCA', validationContext: { trustedCa: { inlineString: read(pki.ca.cert) } } }), ctx),
  ];
  const sctx: TranslationContext = { secret: (n) => secrets.find((s) => s.name === n), warn: () => undefined };
  const mtlsCluster = (name: string, san: string): ClusterConfig => translator.cluster(fromJson(TYPE_URL.cluster, {
    name, type: 'STATIC', connectTimeout: '1s',
    loadAssignment: { clusterName: name, endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: upPort } } } }] }] },
    transportSocket: {
      name: 'envoy.transport_sockets.tls',
      typedConfig: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        sni: 'outbound_.9080_._.details.default.svc.cluster.local',
        commonTlsContext: {
          tlsCertificateSdsSecretConfigs: [{ name: 'default' }],
          combinedValidationContext: { defaultValidationContext: { matchSubjectAltNames: [{ exact: san }] }, validationContextSdsSecretConfig: { name: 'ROOTCA' } },
        },
      },
    },
  }), sctx).cluster;
  const tl = translator.listener(fromJson(TYPE_URL.listener, {
    name: 'out',
    address: { socketAddress: { address: '127.0.0.1', portValue: 0 } },
    filterChains: [{
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typedConfig: {
          '@type': HCM, statPrefix: 'out', codecType: 'HTTP1',
          routeConfig: {
            name: 'r', virtualHosts: [{
              name: 'all', domains: ['*'], routes: [
                { match: { prefix: '/good' }, route: { cluster: 'details-good', timeout: '5s' } },
                { match: { prefix: '/bad' }, route: { cluster: 'details-bad', timeout: '5s' } },
              ],
            }],
          },
          httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
        },
      }],
    }],
  }), ctx);
  const port = await serve(t, tl, [
    mtlsCluster('details-good', 'spiffe://cluster.local/ns/default/sa/details'),
    mtlsCluster('details-bad', 'spiffe://cluster.local/ns/default/sa/ratings'),
  ]);
  const good = await request(port, '/good');
  assert.equal(good.status, 200);
  assert.equal(good.body, 'hello productpage'); // our workload certificate from SDS reached the peer
  const bad = await request(port, '/bad');
  assert.equal(bad.status, 503, 'a peer whose SAN does not match is refused');
});
