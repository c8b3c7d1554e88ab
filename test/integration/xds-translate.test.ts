/**
 * Traffic through resources that exist only as xDS messages: an Istio-shaped listener (plaintext
 * HTTP chain matched by http_inspector ALPN + its raw TCP sibling, an inline route) and STATIC
 * clusters are decoded (proto.ts), translated, assembled into an OutriggerConfig and served by a
 * real Sidecar: HTTP goes through the route, other bytes through the TCP fallback.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { Sidecar } from '../../src/server';
import type { ClusterConfig, OutriggerConfig } from '../../src/config/types';
import { fromJson } from '../../src/xds/proto';
import { translator } from '../../src/xds/translate';
import { TYPE_URL, type TranslationContext } from '../../src/xds/types';
import { backend, request } from '../helpers/http';

const ctx: TranslationContext = { secret: () => undefined, warn: () => undefined };
const TCP = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

function staticCluster(name: string, port: number): ClusterConfig {
  return translator.cluster(fromJson(TYPE_URL.cluster, {
    name, type: 'STATIC', connectTimeout: '1s',
    loadAssignment: { clusterName: name, endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } }] }] },
  }), ctx).cluster;
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
  const config: OutriggerConfig = {
    servers: [{ defaultLogPath: 'stderr', defaultLogLevel: 'error', processor: 1, gracefulTimeoutMs: 1000, listeners: [tl.listener], routers: [...tl.routers] }],
    clusters: [staticCluster('web', web.port), staticCluster('echo', echoPort)],
    admin: { address: { host: '127.0.0.1', port: 0 } },
    raw: {},
  };
  const sc = new Sidecar({ config, workers: 1, adminPort: 0, logLevel: 'error' });
  await sc.start();
  t.after(() => sc.stop());
  const port = sc.listeners()[0].port;
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
