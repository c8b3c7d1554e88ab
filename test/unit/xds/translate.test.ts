/**
 * The xDS translator on hand-written Istio-shaped resources (test/fixtures/xds) and on bad
 * resources: every fixture is ACKed or refused for its documented reason; errors name the
 * resource and the field path.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { registerStreamFilterKind, FilterStatus, DecodePhase } from '../../../src/api/stream-filter';
import { IssueCollector, ConfigObject } from '../../../src/config/reader';
import { parseRouters } from '../../../src/config/routers';
import type { TranslatedListener, TranslatedSecret, XdsMessage, XdsTranslator } from '../../../src/xds/types';
import { TYPE_URL, XdsResourceError } from '../../../src/xds/types';
import { fromJson } from '../../../src/xds/proto';
import { translator } from '../../../src/xds/translate';
import { compileHttpRouter } from '../../../src/router/http-routes';
import { Pki } from '../../helpers/certs';
import type { TlsContextConfig } from '../../../src/config/types';
import { offeredAlpn, selectTransport } from '../../../src/upstream/transport-match';
import { loadFixtures, readFixture, recordingContext, substitute, type Fixtures } from './fixtures';

const pki = new Pki();
const leaf = pki.issue({ cn: 'reviews', uris: ['spiffe://cluster.local/ns/default/sa/reviews'], dns: ['reviews'] });
const PEM = { cert: fs.readFileSync(leaf.cert, 'utf8'), key: fs.readFileSync(leaf.key, 'utf8'), ca: fs.readFileSync(pki.ca.cert, 'utf8') };
const fx: Fixtures = loadFixtures(PEM);
const secrets: TranslatedSecret[] = fx.secrets.map((s) => translator.secret(s, recordingContext()));

function nameOf(m: XdsMessage): string {
  return String(m.name ?? m.clusterName);
}

function byName(list: readonly XdsMessage[], name: string): XdsMessage {
  const m = list.find((x) => nameOf(x) === name);
  assert.ok(m, `fixture ${name}`);
  return m;
}

/** Each fixture resource: ACK, or the documented reason of its NACK (src/xds/README.md). */
const EXPECTED: Record<keyof XdsTranslator, Record<string, true | RegExp>> = {
  listener: {
    virtualOutbound: true,
    virtualInbound: true,
    '0.0.0.0_8080': true,
    '10.96.0.20_3306': true,
    '0.0.0.0_12200': true,
  },
  route: { 8080: true, bolt_12200: true, '9090-query': /^9090-query: virtualHosts\[0\]\.routes\[0\]\.match\.queryParameters: query parameter matching is not supported/ },
  cluster: {
    'outbound|8080|v1|reviews.default.svc.cluster.local': true,
    'outbound|8080|v2|reviews.default.svc.cluster.local': true,
    'outbound|8080|v3|reviews.default.svc.cluster.local': true,
    'outbound|3306||mysql.default.svc.cluster.local': true,
    'outbound|443||api.example.com': true,
    'outbound|9080||details.default.svc.cluster.local': true,
    PassthroughCluster: true,
    BlackHoleCluster: true,
    InboundPassthroughClusterIpv4: true,
    'inbound|9080||': true,
    'outbound|9080||productpage.default.svc.cluster.local': true,
    'outbound|9080||ratings.default.svc.cluster.local': /: ringHashLbConfig: consistent hashing \(RING_HASH\) is not supported/,
  },
  endpoints: {
    'outbound|8080|v1|reviews.default.svc.cluster.local': true,
    'outbound|8080|v2|reviews.default.svc.cluster.local': true,
    'outbound|3306||mysql.default.svc.cluster.local': true,
    'outbound|8080|v3|reviews.default.svc.cluster.local': true,
  },
  secret: { default: true, ROOTCA: true },
};

test('every Istio-shaped fixture is ACKed or refused for its documented reason', () => {
  const kinds: [keyof typeof EXPECTED, readonly XdsMessage[]][] = [
    ['listener', fx.listeners], ['route', fx.routes], ['cluster', fx.clusters], ['endpoints', fx.endpoints], ['secret', fx.secrets],
  ];
  for (const [kind, list] of kinds) {
    assert.deepEqual(list.map(nameOf).sort(), Object.keys(EXPECTED[kind]).sort(), `${kind}: every fixture has an expected outcome`);
    for (const m of list) {
      const want = EXPECTED[kind][nameOf(m)];
      const run = (): unknown => (translator[kind] as (m: XdsMessage, c: ReturnType<typeof recordingContext>) => unknown)(m, recordingContext(secrets));
      if (want === true) assert.doesNotThrow(run, `${kind} ${nameOf(m)} is ACKed`);
      else assert.throws(run, (e: unknown) => e instanceof XdsResourceError && e.resource === nameOf(m) && want.test(e.message), `${kind} ${nameOf(m)}`);
    }
  }
});

function inbound(ctx = recordingContext(secrets)): TranslatedListener {
  return translator.listener(byName(fx.listeners, 'virtualInbound'), ctx);
}

test('virtualInbound: chains matched on port, transport and ALPN; mTLS from SDS; http_inspector chains merged with their TCP sibling', () => {
  const ctx = recordingContext(secrets);
  const t = inbound(ctx);
  const chains = t.listener.filterChains;
  // 8 chains in, 6 out: the two plaintext HTTP chains (ALPN http/1.1, h2c) took their raw TCP siblings as fallback.
  assert.equal(chains.length, 6);
  const mtls = chains[1];
  assert.equal(mtls.match?.destinationPort, 9080);
  assert.equal(mtls.match?.transportProtocol, 'tls');
  assert.deepEqual(mtls.match?.applicationProtocols, ['istio-http/1.0', 'istio-http/1.1', 'istio-h2']);
  const tls = mtls.tlsContexts?.[0];
  assert.ok(tls);
  assert.equal(tls.requireClientCert, true);
  assert.equal(tls.verifyClient, true);
  assert.deepEqual(tls.caCert, { kind: 'inline', pem: PEM.ca });
  assert.deepEqual(tls.certChain, { kind: 'inline', pem: PEM.cert });
  assert.deepEqual(tls.alpn, ['h2', 'http/1.1']);
  assert.equal(tls.minVersion, 'TLSv1.2');
  const plain = chains[2];
  assert.equal(plain.match?.transportProtocol, 'raw_buffer');
  assert.deepEqual(plain.match?.applicationProtocols, []);
  assert.deepEqual(plain.filters.map((f) => f.type), ['proxy', 'tcp_proxy']);
  assert.equal(plain.filters[0].config.fallbackForUnknownProtocol, true);
  assert.equal(plain.filters[0].config.downstream, 'auto');
  assert.equal(plain.filters[1].config.cluster, 'inbound|9080||');
  // The TCP mTLS chain: telemetry filters skipped, tcp_proxy kept.
  assert.deepEqual(chains[3].filters.map((f) => f.type), ['tcp_proxy']);
  assert.ok(chains[3].tlsContexts);
  assert.deepEqual([...t.deps.secrets].sort(), ['ROOTCA', 'default']);
  assert.deepEqual(t.deps.routes, []);
  assert.deepEqual(t.routers.map((r) => r.name).sort(), ['InboundPassthroughClusterIpv4', 'inbound|9080||']);
  assert.deepEqual(t.listener.streamFilters, []);
  assert.equal(t.listener.inspector, false);
  assert.equal(t.listener.connectionIdleTimeoutMs, 0);
  assert.equal(t.listener.originalDst, 'redirect');
  assert.equal(t.listener.useOriginalDst, undefined);
  assert.ok(ctx.warnings.some((w) => /httpFilters\[4\]: "istio\.stats" is a telemetry-only filter; skipped/.test(w)));
});

test('a listener whose SDS secrets have not arrived lists them and does not throw (it waits)', () => {
  const t = inbound(recordingContext([]));
  assert.deepEqual([...t.deps.secrets].sort(), ['ROOTCA', 'default']);
  assert.equal(t.listener.filterChains[1].tlsContexts?.[0].certChain, undefined);
});

test('outbound HTTP listener: RDS dependency, codec AUTO, the passthrough chain as fallback for non-HTTP bytes', () => {
  const t = translator.listener(byName(fx.listeners, '0.0.0.0_8080'), recordingContext());
  assert.deepEqual(t.deps.routes, ['8080']);
  assert.equal(t.listener.bindPort, false);
  const [http, dflt] = t.listener.filterChains;
  assert.equal(http.filters[0].config.routerConfigName, '8080');
  assert.equal(http.filters[0].config.family, 'http');
  assert.equal(http.filters[1].config.cluster, 'PassthroughCluster');
  assert.equal(dflt.match, undefined);
  assert.equal(dflt.filters[0].config.cluster, 'PassthroughCluster');
});

test('virtualOutbound: use_original_dst hands connections over; the blackhole chain and the passthrough default chain', () => {
  const t = translator.listener(byName(fx.listeners, 'virtualOutbound'), recordingContext());
  assert.equal(t.listener.useOriginalDst, true);
  assert.equal(t.listener.originalDst, 'redirect');
  assert.deepEqual(t.listener.filterChains.map((c) => [c.match?.destinationPort, c.filters[0].config.cluster]), [[15001, 'BlackHoleCluster'], [undefined, 'PassthroughCluster']]);
  const pt = translator.cluster(byName(fx.clusters, 'PassthroughCluster'), recordingContext());
  assert.equal(pt.cluster.type, 'ORIGINAL_DST');
  assert.equal(pt.cluster.lbType, 'LB_ORIGINAL_DST');
  assert.deepEqual(pt.deps.endpoints, []);
  const tp = translator.listener(fromJson(TYPE_URL.listener, {
    name: 'tp', address: { socketAddress: { address: '0.0.0.0', portValue: 15006 } }, transparent: true,
    listenerFilters: [{ name: 'envoy.filters.listener.original_dst' }],
    filterChains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', statPrefix: 's', cluster: 'c' } }] }],
  }), recordingContext());
  assert.equal(tp.listener.transparent, true);
  assert.equal(tp.listener.originalDst, 'tproxy');
});

test('outbound TCP listener and Bolt by MOSN\'s proxy filter', () => {
  const tcp = translator.listener(byName(fx.listeners, '10.96.0.20_3306'), recordingContext());
  assert.deepEqual(tcp.listener.filterChains[0].filters, [{
    type: 'tcp_proxy',
    config: { statPrefix: 'outbound|3306||mysql.default.svc.cluster.local', cluster: 'outbound|3306||mysql.default.svc.cluster.local', routes: [], idleTimeoutMs: 7_200_000, maxConnectAttempts: 3 },
  }]);
  const bolt = translator.listener(byName(fx.listeners, '0.0.0.0_12200'), recordingContext());
  assert.deepEqual(bolt.deps.routes, ['bolt_12200']);
  assert.deepEqual(bolt.listener.filterChains[0].filters[0].config.downstreamProtocols, ['bolt']);
});

test('routes: the same RouterConfig as the MOSN JSON path for the same routes', () => {
  const t = translator.route(byName(fx.routes, '8080'), recordingContext());
  const mosnVh = {
    name: 'reviews.default.svc.cluster.local:8080',
    domains: ['reviews.default.svc.cluster.local', 'reviews', 'reviews.default.svc', 'reviews.default', '10.96.0.10'],
    routers: [
      { name: 'jason', match: { headers: [{ name: 'end-user', value: 'jason', regex: false }] }, route: { cluster_name: 'outbound|8080|v2|reviews.default.svc.cluster.local', retry_policy: { retry_on: 'connect-failure,reset', num_retries: 2 } } },
      {
        name: 'api',
        match: { safe_regex: { regex: '/api/v[0-9]+/.*' }, headers: [{ name: ':method', value: 'GET', regex: false }] },
        route: {
          cluster_name: 'outbound|8080|v3|reviews.default.svc.cluster.local', prefix_rewrite: '/', host_rewrite: 'reviews.internal', timeout: '3000ms',
          request_headers_to_add: [{ header: { key: 'x-route', value: 'api' }, append: false }], response_headers_to_remove: ['x-envoy-upstream-service-time'],
        },
      },
      {
        name: 'default', match: {},
        route: {
          weighted_clusters: [{ cluster: { name: 'outbound|8080|v2|reviews.default.svc.cluster.local', weight: 90 } }, { cluster: { name: 'outbound|8080|v3|reviews.default.svc.cluster.local', weight: 10 } }],
          retry_policy: { retry_on: 'connect-failure,reset', num_retries: 2 },
        },
      },
    ],
  };
  const issues = new IssueCollector();
  const parsed = parseRouters({ issues, clusterNames: new Map() }, new ConfigObject(issues, 'servers[0]', { routers: [{ router_config_name: '8080', virtual_hosts: [mosnVh] }] }));
  assert.deepEqual(issues.errors, []);
  assert.deepEqual(t.router.virtualHosts[0], parsed[0].virtualHosts[0]);
  // And it routes as Envoy would.
  const r = compileHttpRouter(t.router);
  const req = (path: string, h: Record<string, string>) => ({ path, header: (n: string) => h[n] });
  assert.equal(r.virtualHost('reviews:8080')?.match(req('/x', { 'end-user': 'jason' }))?.pickCluster(req('/x', {})), 'outbound|8080|v2|reviews.default.svc.cluster.local');
  assert.equal(r.virtualHost('reviews')?.match(req('/api/v2/a', { ':method': 'GET' }))?.name, 'api');
  assert.equal(r.virtualHost('other.example.com')?.match(req('/', {}))?.clusterName, 'PassthroughCluster');
});

test('endpoints: locality weight x endpoint weight, unhealthy/draining/timeout dropped, failover priorities left out, weights scaled into 1..128', () => {
  const ctx = recordingContext();
  const v2 = translator.endpoints(byName(fx.endpoints, 'outbound|8080|v2|reviews.default.svc.cluster.local'), ctx);
  assert.deepEqual(v2.hosts, [
    { address: { host: '10.244.1.7', port: 9080 }, weight: 6 },
    { address: { host: '10.244.2.3', port: 9080 }, weight: 1, hostname: 'reviews-v2-b' },
  ]);
  assert.ok(ctx.warnings.some((w) => /priority levels above 0/.test(w)));
  const v3 = translator.endpoints(byName(fx.endpoints, 'outbound|8080|v3|reviews.default.svc.cluster.local'), ctx);
  assert.deepEqual(v3.hosts.map((h) => h.weight), [128, 32]);
});

test('clusters: EDS name and dependency, breakers, HttpProtocolOptions, upstream TLS from SDS', () => {
  const v2 = translator.cluster(byName(fx.clusters, 'outbound|8080|v2|reviews.default.svc.cluster.local'), recordingContext());
  assert.equal(v2.edsName, 'outbound|8080|v2|reviews.default.svc.cluster.local');
  assert.deepEqual(v2.deps.endpoints, [v2.edsName]);
  assert.equal(v2.cluster.lbType, 'LB_LEAST_REQUEST');
  assert.equal(v2.cluster.maxRequestPerConn, 1000);
  assert.equal(v2.cluster.connectTimeoutMs, 10_000);
  assert.deepEqual(v2.cluster.circuitBreakers, { maxConnections: 4294967295, maxPendingRequests: 4294967295, maxRequests: 4294967295, maxRetries: 4294967295 });
  assert.deepEqual(v2.cluster.hosts, []);
  const v3 = translator.cluster(byName(fx.clusters, 'outbound|8080|v3|reviews.default.svc.cluster.local'), recordingContext());
  assert.equal(v3.edsName, 'outbound|8080|v3|reviews.default.svc.cluster.local'); // no service_name: the cluster name
  assert.equal(v3.cluster.connectTimeoutMs, 2500);
  assert.equal(v3.cluster.maxRequestPerConn, 100);
  const ext = translator.cluster(byName(fx.clusters, 'outbound|443||api.example.com'), recordingContext(secrets));
  assert.deepEqual([...ext.deps.secrets].sort(), ['ROOTCA', 'default']);
  assert.equal(ext.cluster.tlsContext?.serverName, 'api.example.com');
  assert.deepEqual(ext.cluster.tlsContext?.caCert, { kind: 'inline', pem: PEM.ca });
  const details = translator.cluster(byName(fx.clusters, 'outbound|9080||details.default.svc.cluster.local'), recordingContext(secrets));
  assert.deepEqual(details.cluster.tlsContext?.matchSubjectAltNames, [{ kind: 'exact', value: 'spiffe://cluster.local/ns/default/sa/bookinfo-details' }]);
  assert.equal(details.cluster.tlsContext?.serverName, 'outbound_.9080_._.details.default.svc.cluster.local');
  assert.deepEqual(details.cluster.tlsContext?.alpn, ['istio-peer-exchange', 'istio']); // Istio's ALPN offered upstream
  // Envoy's defaults where the resource says nothing: 5 s connect timeout, round robin.
  const bare = translator.cluster(fromJson(TYPE_URL.cluster, { name: 'bare', type: 'EDS' }), recordingContext());
  assert.equal(bare.cluster.connectTimeoutMs, 5000);
  assert.equal(bare.cluster.lbType, 'LB_WEIGHTED_ROUNDROBIN');
  const inb = translator.cluster(byName(fx.clusters, 'inbound|9080||'), recordingContext());
  assert.deepEqual(inb.cluster.hosts, [{ address: { host: '127.0.0.1', port: 9080 }, weight: 1 }]);
  assert.equal(inb.edsName, undefined);
});

test('Istio auto-mTLS: transport_socket_matches ACKed, each endpoint gets TLS or plaintext by its tlsMode metadata', () => {
  const v1 = translator.cluster(byName(fx.clusters, 'outbound|8080|v1|reviews.default.svc.cluster.local'), recordingContext(secrets));
  assert.deepEqual([...v1.deps.secrets].sort(), ['ROOTCA', 'default']);
  assert.equal(v1.cluster.tlsContext, undefined); // no default transport socket: plaintext
  const ms = v1.cluster.tlsMatches ?? [];
  assert.deepEqual(ms.map((m) => [m.name, m.match, m.tlsContext !== undefined]), [['tlsMode-istio', { tlsMode: 'istio' }, true], ['tlsMode-disabled', {}, false]]);
  const mtls = ms[0].tlsContext;
  assert.deepEqual(mtls?.alpn, ['istio-peer-exchange', 'istio']); // offered as Istio sends them
  assert.deepEqual(mtls?.matchSubjectAltNames, [{ kind: 'exact', value: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' }]);
  assert.equal(mtls?.serverName, 'outbound_.8080_.v1_.reviews.default.svc.cluster.local');
  assert.deepEqual(mtls?.caCert, { kind: 'inline', pem: PEM.ca });
  const eps = translator.endpoints(byName(fx.endpoints, 'outbound|8080|v1|reviews.default.svc.cluster.local'), recordingContext());
  assert.deepEqual(eps.hosts.map((h) => [h.address.host, h.tlsMatch]), [['10.244.1.5', { tlsMode: 'istio' }], ['10.244.1.6', undefined]]);
  const cfg = { ...v1.cluster, hosts: eps.hosts };
  assert.deepEqual(eps.hosts.map((h) => selectTransport(cfg, h)), [0, 1]); // sidecar: mTLS entry; legacy: the plaintext entry
  // Without a catch-all entry, an endpoint that matches nothing uses the cluster's transport_socket.
  assert.equal(selectTransport({ tlsMatches: [ms[0]] }, eps.hosts[1]), -1);
  assert.equal(selectTransport({ tlsMatches: [ms[0]] }, { ...eps.hosts[0], tlsDisable: true }), -2);
  // HTTP over Istio mTLS offers Istio's HTTP names first; plain TLS offers the protocol only.
  assert.deepEqual(offeredAlpn(mtls as TlsContextConfig, ['http/1.1']), ['istio-http/1.1', 'istio', 'http/1.1']);
  assert.deepEqual(offeredAlpn(mtls as TlsContextConfig, ['h2']), ['istio-h2', 'istio', 'h2']);
  assert.deepEqual(offeredAlpn({ ...(mtls as TlsContextConfig), alpn: ['h2'] }, ['h2']), ['h2']);
});

test('InboundPassthroughClusterIpv4: upstream_bind_config gives the source address; fixed ports and several addresses NACK', () => {
  const ib = translator.cluster(byName(fx.clusters, 'InboundPassthroughClusterIpv4'), recordingContext());
  assert.deepEqual(ib.cluster.upstreamBind, { sourceAddress: '127.0.0.6' });
  const bind = (b: unknown): unknown => translator.cluster(fromJson(TYPE_URL.cluster, { name: 'b', type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED', upstreamBindConfig: b }), recordingContext());
  assert.throws(() => bind({ sourceAddress: { address: '127.0.0.6', portValue: 5000 } }), /b: upstreamBindConfig\.sourceAddress\.portValue: 5000: a fixed source port/);
  assert.throws(() => bind({ sourceAddress: { address: 'localhost' } }), /upstreamBindConfig\.sourceAddress\.address: "localhost" is not an IP address/);
  assert.throws(() => bind({ sourceAddress: { address: '127.0.0.6' }, extraSourceAddresses: [{ address: { address: '::1' } }] }), /extraSourceAddresses: several source addresses/);
  const bad = fromJson(TYPE_URL.cluster, { name: 'm', type: 'EDS', transportSocketMatches: [{ name: 'x', match: { tlsMode: 1 } }] });
  assert.throws(() => translator.cluster(bad, recordingContext()), /m: transportSocketMatches\[0\]\.match\.tlsMode: only string match values/);
});

// ---- error paths -----------------------------------------------------------------------

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER_F = { name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

function httpListener(httpFilters: unknown[], extra: Record<string, unknown> = {}): XdsMessage {
  return fromJson(TYPE_URL.listener, {
    name: 'l1',
    address: { socketAddress: { address: '127.0.0.1', portValue: 0 } },
    filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: { '@type': HCM, statPrefix: 's', rds: { routeConfigName: 'r1', configSource: { ads: {} } }, httpFilters, ...extra } }] }],
  });
}

function nack(fn: () => unknown, resource: string, path: string, reason: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof XdsResourceError, String(e));
    assert.equal(e.resource, resource);
    assert.equal(e.path, path);
    assert.match(e.reason, reason);
    return true;
  });
}

test('NACK: an unknown HTTP filter, a missing router, a filter after the router; is_optional skips', () => {
  nack(() => translator.listener(httpListener([{ name: 'envoy.filters.http.ext_authz', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz' } }, ROUTER_F]), recordingContext()),
    'l1', 'filterChains[0].filters[0].typedConfig.httpFilters[0]', /HTTP filter "envoy\.filters\.http\.ext_authz" .* is not supported/);
  nack(() => translator.listener(httpListener([]), recordingContext()), 'l1', 'filterChains[0].filters[0].typedConfig.httpFilters', /has no router filter/);
  nack(() => translator.listener(httpListener([ROUTER_F, { name: 'istio.stats' }]), recordingContext()), 'l1', 'filterChains[0].filters[0].typedConfig.httpFilters[1]', /comes after the router/);
  const ctx = recordingContext();
  const t = translator.listener(httpListener([{ name: 'acme.thing', isOptional: true, typedConfig: { '@type': 'type.googleapis.com/acme.Thing' } }, ROUTER_F]), ctx);
  assert.deepEqual(t.listener.streamFilters, []);
  assert.ok(ctx.warnings.some((w) => /"acme\.thing" is not supported and marked is_optional; skipped/.test(w)));
  // A fault filter that does something goes to the registered Envoy-shaped kind (http_fault).
  const faulty = translator.listener(httpListener([{ name: 'envoy.filters.http.fault', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault', abort: { httpStatus: 503, percentage: { numerator: 100 } } } }, ROUTER_F]), recordingContext());
  assert.deepEqual(faulty.listener.streamFilters.map((x) => x.type), ['http_fault']);
  nack(() => translator.listener(httpListener([ROUTER_F], { scopedRoutes: { name: 'x' } }), recordingContext()), 'l1', 'filterChains[0].filters[0].typedConfig.scopedRoutes', /scoped routes/);
});

test('a registered stream filter is passed through with its typed config minus @type', () => {
  registerStreamFilterKind<Record<string, unknown>>({
    type: 'xds_test_rbac',
    validate: (raw, path, ctx) => {
      if (typeof raw !== 'object' || raw === null || !('rules' in raw)) ctx.error(`${path}.rules`, 'is required');
      return raw as Record<string, unknown>;
    },
    create: () => ({ phase: DecodePhase.BeforeRoute, decode: () => FilterStatus.Continue }),
  });
  const rbac = { name: 'envoy.filters.http.xds_test_rbac', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC', rules: { action: 'DENY' } } };
  const t = translator.listener(httpListener([rbac, ROUTER_F]), recordingContext());
  assert.deepEqual(t.listener.streamFilters, [{ type: 'xds_test_rbac', config: { value: { rules: { action: 'DENY' } } } }]);
  // Where both a MOSN-shaped kind X and an Envoy-shaped http_X exist (fault / http_fault), http_X reads Envoy's config.
  registerStreamFilterKind({ type: 'xds_test_f', validate: () => ({ mosn: true }), create: () => ({ phase: DecodePhase.BeforeRoute }) });
  registerStreamFilterKind({ type: 'http_xds_test_f', validate: (raw) => raw, create: () => ({ phase: DecodePhase.BeforeRoute }) });
  const f = translator.listener(httpListener([{ name: 'envoy.filters.http.xds_test_f', typedConfig: { '@type': 'type.googleapis.com/x.F' } }, ROUTER_F]), recordingContext());
  assert.deepEqual(f.listener.streamFilters.map((x) => x.type), ['http_xds_test_f']);
  // The filter's own validator runs: its error is a NACK.
  const bad = { name: 'envoy.filters.http.xds_test_rbac', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC' } };
  assert.throws(() => translator.listener(httpListener([bad, ROUTER_F]), recordingContext()), /l1: \(as MOSN config\) listener\.stream_filters\[0\]\.config\.rules: is required/);
});

test('NACK: tcp_proxy weighted clusters, require_client_certificate without a CA, an unknown network filter, differing HTTP filters', () => {
  const base = { name: 'l2', address: { socketAddress: { address: '0.0.0.0', portValue: 9000 } } };
  const tcp = (cfg: Record<string, unknown>) => ({ name: 'envoy.filters.network.tcp_proxy', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', statPrefix: 's', ...cfg } });
  nack(() => translator.listener(fromJson(TYPE_URL.listener, { ...base, filterChains: [{ filters: [tcp({ weightedClusters: { clusters: [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }] } })] }] }), recordingContext()),
    'l2', 'filterChains[0].filters[0].typedConfig.weightedClusters', /weighted clusters in tcp_proxy are not supported/);
  const ts = { name: 'envoy.transport_sockets.tls', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', requireClientCertificate: true, commonTlsContext: { tlsCertificateSdsSecretConfigs: [{ name: 'default' }] } } };
  nack(() => translator.listener(fromJson(TYPE_URL.listener, { ...base, filterChains: [{ transportSocket: ts, filters: [tcp({ cluster: 'a' })] }] }), recordingContext(secrets)),
    'l2', 'filterChains[0].transportSocket.typedConfig.requireClientCertificate', /without a validation context/);
  nack(() => translator.listener(fromJson(TYPE_URL.listener, { ...base, filterChains: [{ filters: [{ name: 'envoy.filters.network.redis_proxy', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy' } }] }] }), recordingContext()),
    'l2', 'filterChains[0].filters[0]', /network filter "envoy\.filters\.network\.redis_proxy" .* is not supported/);
  const hcm = (filters: unknown[]) => ({ name: 'envoy.filters.network.http_connection_manager', typedConfig: { '@type': HCM, statPrefix: 's', rds: { routeConfigName: 'r' }, httpFilters: filters } });
  registerStreamFilterKind({ type: 'xds_test_other', validate: (raw) => raw, create: () => ({ phase: DecodePhase.BeforeRoute }) });
  nack(() => translator.listener(fromJson(TYPE_URL.listener, {
    ...base,
    filterChains: [
      { filterChainMatch: { destinationPort: 1 }, filters: [hcm([ROUTER_F])] },
      { filterChainMatch: { destinationPort: 2 }, filters: [hcm([{ name: 'envoy.filters.http.xds_test_other', typedConfig: { '@type': 'type.googleapis.com/x.Y' } }, ROUTER_F])] },
    ],
  }), recordingContext()), 'l2', 'filterChains[1].filters[0].typedConfig.httpFilters', /differs from filterChains\[0\]/);
  nack(() => translator.listener(fromJson(TYPE_URL.listener, { ...base, filterChains: [{ filterChainMatch: { sourceType: 'EXTERNAL' }, filters: [tcp({ cluster: 'a' })] }] }), recordingContext()),
    'l2', '(as MOSN config) listener.filter_chains[0].filter_chain_match.source_type', /is not supported/);
});

test('SAN matchers: typed ones on clusters; refused on listeners and in SDS validation contexts', () => {
  const up = (vc: Record<string, unknown>) => fromJson(TYPE_URL.cluster, {
    name: 'c9', type: 'EDS',
    transportSocket: { name: 'tls', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', commonTlsContext: { validationContext: vc } } },
  });
  const ca = { trustedCa: { inlineString: PEM.ca } };
  const c = translator.cluster(up({ ...ca, matchTypedSubjectAltNames: [{ sanType: 'URI', matcher: { prefix: 'spiffe://cluster.local/' } }] }), recordingContext());
  assert.deepEqual(c.cluster.tlsContext?.matchSubjectAltNames, [{ kind: 'prefix', value: 'spiffe://cluster.local/', sanType: 'URI' }]);
  nack(() => translator.cluster(up({ ...ca, matchSubjectAltNames: [{ safeRegex: { regex: '.*' } }] }), recordingContext()),
    'c9', 'transportSocket.typedConfig.commonTlsContext.validationContext.matchSubjectAltNames[0].safeRegex', /regex SAN matching/);
  nack(() => translator.cluster(up({ matchSubjectAltNames: [{ exact: 'x' }] }), recordingContext()),
    'c9', 'transportSocket.typedConfig.commonTlsContext.validationContext.matchSubjectAltNames', /without a trusted CA/);
  nack(() => translator.listener(fromJson(TYPE_URL.listener, {
    name: 'l9', address: { socketAddress: { address: '0.0.0.0', portValue: 9 } },
    filterChains: [{
      transportSocket: { name: 'tls', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', commonTlsContext: { tlsCertificateSdsSecretConfigs: [{ name: 'default' }], validationContext: { ...ca, matchSubjectAltNames: [{ exact: 'x' }] } } } },
      filters: [{ name: 'envoy.filters.network.tcp_proxy', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', statPrefix: 's', cluster: 'c' } }],
    }],
  }), recordingContext(secrets)), 'l9', 'filterChains[0].transportSocket.typedConfig.commonTlsContext.validationContext.matchSubjectAltNames', /subject alt name matching .* is not supported/);
});

test('NACK: clusters and routes with features that change routing', () => {
  nack(() => translator.cluster(fromJson(TYPE_URL.cluster, { name: 'c1', type: 'EDS', lbPolicy: 'MAGLEV' }), recordingContext()), 'c1', 'lbPolicy', /MAGLEV is not supported/);
  nack(() => translator.cluster(fromJson(TYPE_URL.cluster, { name: 'c1', type: 'STRICT_DNS' }), recordingContext()), 'c1', 'type', /STRICT_DNS clusters are not supported/);
  nack(() => translator.cluster(fromJson(TYPE_URL.cluster, { name: 'c1', type: 'STATIC', loadAssignment: { endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: 'db.local', portValue: 1 } } } }] }] } }), recordingContext()),
    'c1', 'endpoints[0].lbEndpoints[0].endpoint.address.socketAddress.address', /"db\.local" is not an IP address/);
  const rc = (route: Record<string, unknown>) => fromJson(TYPE_URL.route, { name: 'r1', virtualHosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/a' }, route }] }] });
  nack(() => translator.route(rc({ cluster: 'x', regexRewrite: { pattern: { regex: 'a' }, substitution: 'b' } }), recordingContext()), 'r1', 'virtualHosts[0].routes[0].route.regexRewrite', /regex path rewriting/);
  nack(() => translator.route(rc({ cluster: 'x', metadataMatch: { filterMetadata: { 'envoy.lb': { v: 1 } } } }), recordingContext()), 'r1', 'virtualHosts[0].routes[0].route.metadataMatch.filterMetadata.envoy.lb.v', /only string match values/);
  nack(() => translator.route(fromJson(TYPE_URL.route, { name: 'r1', virtualHosts: [{ name: 'v', domains: ['*'], routes: [{ match: { safeRegex: { regex: '(a)\\1' } }, route: { cluster: 'x' } }] }] }), recordingContext()),
    'r1', 'virtualHosts', /refused by the router/);
  nack(() => translator.route(fromJson(TYPE_URL.route, { name: 'r1', virtualHosts: [{ name: 'v', domains: ['*'], requireTls: 'ALL', routes: [] }] }), recordingContext()), 'r1', 'virtualHosts[0].requireTls', /not supported/);
});

test('secrets: inline bytes and strings, files; bad PEM and unsupported validation NACK with the path', () => {
  const s = translator.secret(fromJson(TYPE_URL.secret, { name: 's1', tlsCertificate: { certificateChain: { inlineString: PEM.cert }, privateKey: { filename: leaf.key } } }), recordingContext());
  assert.deepEqual(s, { name: 's1', certChain: { kind: 'inline', pem: PEM.cert }, privateKey: { kind: 'file', path: leaf.key } });
  nack(() => translator.secret(fromJson(TYPE_URL.secret, { name: 's2', tlsCertificate: { certificateChain: { inlineString: 'junk' }, privateKey: { inlineString: PEM.key } } }), recordingContext()),
    's2', 'tlsCertificate.certificateChain', /is not a PEM certificate/);
  nack(() => translator.secret(fromJson(TYPE_URL.secret, { name: 's3', validationContext: { trustedCa: { inlineString: PEM.ca }, matchSubjectAltNames: [{ exact: 'spiffe://x' }] } }), recordingContext()),
    's3', 'validationContext.matchSubjectAltNames', /subject alt name matching/);
  nack(() => translator.secret(fromJson(TYPE_URL.secret, { name: 's4', tlsCertificate: { certificateChain: { inlineString: PEM.cert }, privateKey: { inlineString: PEM.key }, password: { inlineString: 'x' } } }), recordingContext()),
    's4', 'tlsCertificate.password', /encrypted private keys/);
});

test('fixture placeholders are all resolved (no "@NAME@" left)', () => {
  const l = readFixture('listeners.json');
  const json = JSON.stringify(substitute(l.resources, { INBOUND_CHAINS: l.inboundChains, OUTBOUND_HTTP_FILTERS: [], INBOUND_HTTP_FILTERS: [], INBOUND_MTLS: {}, INBOUND_HCM_9080: {}, INBOUND_HCM_PASSTHROUGH: {} }));
  assert.doesNotMatch(json, /"@[A-Z0-9_]+@"/);
});
