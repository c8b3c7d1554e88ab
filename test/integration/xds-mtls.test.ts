/**
 * Istio auto-mTLS and inbound passthrough through a real Sidecar, from translated xDS resources:
 * one cluster with transport_socket_matches and two endpoints, a sidecar peer (`tlsMode: istio`:
 * mTLS with an SDS certificate, its SAN a SPIFFE id, Istio ALPN) and a plaintext one, both reached
 * over HTTP (curl as the client) and raw TCP (tcp_proxy); upstream_bind_config's source address
 * 127.0.0.6 is what both servers see as the peer address.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { fromJson } from '../../src/xds/proto';
import { translator } from '../../src/xds/translate';
import { TYPE_URL, type TranslationContext } from '../../src/xds/types';
import { Pki } from '../helpers/certs';
import { httpConfig } from '../helpers/http';
import { startSidecar, tcpProxyConfig } from '../helpers/sidecar';
import { serveTranslated } from '../helpers/xds';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const SPIFFE = 'spiffe://cluster.local/ns/default/sa/reviews';

function curl(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-s', '--max-time', '5', '-w', ' %{http_code}', url], (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

interface Seen {
  /** Peer addresses and (TLS) offered ALPN lists, one per connection. */
  readonly peers: string[];
  readonly alpn: string[][];
}

test('transport_socket_matches: mTLS (SPIFFE SAN, Istio ALPN) to the sidecar endpoint, plaintext to the other, from source 127.0.0.6', async (t) => {
  const pki = new Pki();
  t.after(() => pki.remove());
  const read = (p: string): string => fs.readFileSync(p, 'utf8');
  const peer = pki.issue({ cn: 'reviews-v1', uris: [SPIFFE] });
  const me = pki.issue({ cn: 'productpage', uris: ['spiffe://cluster.local/ns/default/sa/productpage'], usage: 'client' });
  const seenTls: Seen = { peers: [], alpn: [] };
  const seenPlain: Seen = { peers: [], alpn: [] };
  // The sidecar peer: mTLS only (a client certificate from the mesh CA is required).
  const tlsServer = https.createServer({
    cert: read(peer.cert), key: read(peer.key), ca: read(pki.ca.cert), requestCert: true, rejectUnauthorized: true,
    ALPNCallback: ({ protocols }: { protocols: string[] }) => {
      seenTls.alpn.push(protocols);
      return protocols.includes('http/1.1') ? 'http/1.1' : protocols[protocols.length - 1];
    },
  } as https.ServerOptions, (req, res) => res.end(`mtls:${(req.socket as tls.TLSSocket).getPeerCertificate().subject?.CN ?? ''}`));
  tlsServer.on('secureConnection', (s: tls.TLSSocket) => seenTls.peers.push(s.remoteAddress ?? ''));
  // A workload without a sidecar: plaintext only.
  const plainServer = http.createServer((_req, res) => res.end('plain'));
  plainServer.on('connection', (s: net.Socket) => seenPlain.peers.push(s.remoteAddress ?? ''));
  const [tlsPort, plainPort] = await listenAll(t, [tlsServer, plainServer]);

  const ctx: TranslationContext = { secret: () => undefined, warn: () => undefined };
  const secrets = [
    translator.secret(fromJson(TYPE_URL.secret, { name: 'default', tlsCertificate: { certificateChain: { inlineString: read(me.cert) }, privateKey: { inlineString: read(me.key) } } }), ctx),
    translator.secret(fromJson(TYPE_URL.secret, { name: 'ROOTCA', validationContext: { trustedCa: { inlineString: read(pki.ca.cert) } } }), ctx),
  ];
  const sctx: TranslationContext = { secret: (n) => secrets.find((s) => s.name === n), warn: () => undefined };
  const name = 'outbound|9080|v1|reviews.default.svc.cluster.local';
  const ep = (port: number, istio: boolean): Record<string, unknown> => ({
    endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } },
    ...(istio ? { metadata: { filterMetadata: { 'envoy.transport_socket_match': { tlsMode: 'istio' } } } } : {}),
  });
  const tc = translator.cluster(fromJson(TYPE_URL.cluster, {
    name, type: 'STATIC', connectTimeout: '2s', lbPolicy: 'ROUND_ROBIN',
    upstreamBindConfig: { sourceAddress: { address: '127.0.0.6', portValue: 0 } },
    transportSocketMatches: [
      {
        name: 'tlsMode-istio', match: { tlsMode: 'istio' },
        transportSocket: {
          name: 'envoy.transport_sockets.tls',
          typedConfig: {
            '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
            sni: `outbound_.9080_.v1_.reviews.default.svc.cluster.local`,
            commonTlsContext: {
              alpnProtocols: ['istio-peer-exchange', 'istio'],
              tlsCertificateSdsSecretConfigs: [{ name: 'default' }],
              combinedValidationContext: { defaultValidationContext: { matchSubjectAltNames: [{ exact: SPIFFE }] }, validationContextSdsSecretConfig: { name: 'ROOTCA' } },
            },
          },
        },
      },
      { name: 'tlsMode-disabled', match: {}, transportSocket: { name: 'envoy.transport_sockets.raw_buffer' } },
    ],
    loadAssignment: { clusterName: name, endpoints: [{ lbEndpoints: [ep(tlsPort, true), ep(plainPort, false)] }] },
  }), sctx);
  assert.deepEqual([...tc.deps.secrets].sort(), ['ROOTCA', 'default']);
  const httpL = translator.listener(fromJson(TYPE_URL.listener, {
    name: 'out_http', address: { socketAddress: { address: '127.0.0.1', portValue: 0 } },
    filterChains: [{
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typedConfig: {
          '@type': HCM, statPrefix: 'out', codecType: 'HTTP1',
          routeConfig: { name: 'r', virtualHosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: name, timeout: '5s' } }] }] },
          httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
        },
      }],
    }],
  }), ctx);
  const tcpL = translator.listener(fromJson(TYPE_URL.listener, {
    name: 'out_tcp', address: { socketAddress: { address: '127.0.0.1', portValue: 0 } },
    filterChains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typedConfig: { '@type': TCP, statPrefix: 'tcp', cluster: name } }] }],
  }), ctx);
  const ports = await serveTranslated(t, [httpL, tcpL], [tc.cluster]);

  // HTTP: round robin over both hosts, each with its own transport.
  const bodies: string[] = [];
  for (let i = 0; i < 4; i++) bodies.push(await curl(`http://127.0.0.1:${ports[0]}/r`));
  assert.deepEqual(bodies.sort(), ['mtls:productpage 200', 'mtls:productpage 200', 'plain 200', 'plain 200']);
  assert.ok(seenTls.alpn.length > 0);
  assert.deepEqual(seenTls.alpn[0], ['istio-http/1.1', 'istio', 'http/1.1'], 'HTTP over Istio mTLS offers Istio\'s HTTP ALPN');

  // Raw TCP (tcp_proxy, bytes the proxy does not parse): the configured ALPN as is.
  const tcpReplies: string[] = [];
  for (let i = 0; i < 2; i++) tcpReplies.push(bodyOf(await rawExchange(ports[1], 'GET /t HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n')));
  assert.deepEqual(tcpReplies.sort(), ['mtls:productpage', 'plain']);
  assert.deepEqual(seenTls.alpn[seenTls.alpn.length - 1], ['istio-peer-exchange', 'istio']);

  // upstream_bind_config: every upstream connection came from 127.0.0.6.
  assert.ok(seenTls.peers.length >= 2 && seenPlain.peers.length >= 2);
  assert.deepEqual([...new Set([...seenTls.peers, ...seenPlain.peers])], ['127.0.0.6']);
});

test('MOSN host tls_disable: plaintext to that host while the cluster\'s tls_context applies to the others', async (t) => {
  const pki = new Pki();
  t.after(() => pki.remove());
  const read = (p: string): string => fs.readFileSync(p, 'utf8');
  const leaf = pki.issue({ cn: 'reviews', dns: ['reviews'] });
  const tlsServer = https.createServer({ cert: read(leaf.cert), key: read(leaf.key) }, (_req, res) => res.end('tls'));
  const plainServer = http.createServer((_req, res) => res.end('plain'));
  const cfg = tcpProxyConfig({ upstreams: await listenAll(t, [tlsServer, plainServer]) }) as {
    cluster_manager: { clusters: { hosts: Record<string, unknown>[]; tls_context?: unknown }[] };
  };
  const cluster = cfg.cluster_manager.clusters[0];
  cluster.tls_context = { status: true, ca_cert: pki.ca.cert, server_name: 'reviews' };
  cluster.hosts[1].tls_disable = true;
  const sc = await startSidecar(cfg);
  t.after(() => sc.terminate());
  const port = sc.ports.get('tcp');
  assert.ok(port !== undefined);
  const replies: string[] = [];
  for (let i = 0; i < 2; i++) replies.push(bodyOf(await rawExchange(port, 'GET / HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n')));
  assert.deepEqual(replies.sort(), ['plain', 'tls']);
});

test('HTTP/2 upstream: the :scheme follows each host\'s transport (https over TLS, http to a tls_disable host)', async (t) => {
  const pki = new Pki();
  t.after(() => pki.remove());
  const read = (p: string): string => fs.readFileSync(p, 'utf8');
  const leaf = pki.issue({ cn: 'reviews', dns: ['reviews'] });
  const reply = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
    res.end(`${req.headers[':scheme'] ?? ''}`);
  };
  const secure = http2.createSecureServer({ cert: read(leaf.cert), key: read(leaf.key), ALPNProtocols: ['h2'] }, reply);
  const clear = http2.createServer(reply);
  const ports: number[] = [];
  for (const s of [secure, clear]) {
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    ports.push((s.address() as net.AddressInfo).port);
  }
  const router = { router_config_name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'c' } }] }] };
  const cfg = httpConfig([{ name: 'http', downstream: 'Http1', upstream: 'Http2', router: 'r' }], [router], { c: ports }, {
    c: { tls_context: { status: true, ca_cert: pki.ca.cert, server_name: 'reviews' } },
  }) as { cluster_manager: { clusters: { hosts: Record<string, unknown>[] }[] } };
  cfg.cluster_manager.clusters[0].hosts[1].tls_disable = true;
  const sc = await startSidecar(cfg);
  t.after(async () => {
    await sc.terminate();
    secure.close();
    clear.close();
  });
  const port = sc.ports.get('http');
  assert.ok(port !== undefined);
  const got: string[] = [];
  for (let i = 0; i < 2; i++) got.push(await curl(`http://127.0.0.1:${port}/s`));
  assert.deepEqual(got.sort(), ['http 200', 'https 200']);
});

function bodyOf(resp: string): string {
  return resp.slice(resp.indexOf('\r\n\r\n') + 4);
}

/** Writes `data` to 127.0.0.1:port and reads until the peer closes. */
function rawExchange(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(data));
    let buf = '';
    c.on('data', (d) => {
      buf += d.toString('latin1');
    });
    c.on('end', () => resolve(buf));
    c.on('error', reject);
    setTimeout(() => reject(new Error(`no reply, got ${JSON.stringify(buf)}`)), 5000).unref();
  });
}

/** Listens on 127.0.0.1:0 with each server, closed (connections too) after the test; their ports. */
async function listenAll(t: { after(fn: () => unknown): void }, servers: http.Server[]): Promise<number[]> {
  for (const s of servers) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });
  return servers.map((s) => (s.address() as net.AddressInfo).port);
}
