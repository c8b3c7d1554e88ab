import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { decodeResource, discoveryTypes, encodeJson, fromJson, packAny, protoLoaded } from '../../../src/xds/proto';
import { TYPE_URL } from '../../../src/xds/types';

test('importing proto.ts does not load the Root', () => {
  assert.equal(protoLoaded(), false);
});

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

test('fromJson: canonical proto3 JSON in, decoded shape out (Any expanded, wrappers, durations, enums)', () => {
  const m = fromJson(TYPE_URL.listener, {
    name: 'l',
    address: { socket_address: { address: '0.0.0.0', port_value: 15001 } },
    use_original_dst: true,
    traffic_direction: 'OUTBOUND',
    filter_chains: [{
      filter_chain_match: { destination_port: 8080 },
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: {
          '@type': HCM, stat_prefix: 's', codec_type: 'HTTP2', stream_idle_timeout: '1.5s',
          http_filters: [{ name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/stats.PluginConfig' } }],
        },
      }],
    }],
    metadata: { filter_metadata: { istio: { a: ['x', 1, true, null] } } },
  });
  assert.equal(protoLoaded(), true);
  assert.deepEqual(m.address, { socketAddress: { address: '0.0.0.0', portValue: 15001 } });
  assert.deepEqual(m.useOriginalDst, { value: true });
  assert.equal(m.trafficDirection, 'OUTBOUND');
  const fc = (m.filterChains as Record<string, unknown>[])[0];
  assert.deepEqual(fc.filterChainMatch, { destinationPort: { value: 8080 } });
  const tc = (fc.filters as Record<string, unknown>[])[0].typedConfig as Record<string, unknown>;
  assert.equal(tc['@type'], HCM);
  assert.equal(tc.codecType, 'HTTP2');
  assert.deepEqual(tc.streamIdleTimeout, { seconds: '1', nanos: 500000000 });
  // An Any of a type the Root does not know keeps its type URL.
  assert.deepEqual((tc.httpFilters as Record<string, unknown>[])[0].typedConfig, { '@type': 'type.googleapis.com/stats.PluginConfig' });
});

test('decodeResource and packAny agree; 64-bit integers come out as strings', () => {
  const json = { name: 'c', type: 'EDS', connect_timeout: '10s', max_requests_per_connection: 5, lb_policy: 'LEAST_REQUEST' };
  const any = packAny(TYPE_URL.cluster, json);
  assert.equal(any.type_url, TYPE_URL.cluster);
  assert.ok(Buffer.isBuffer(any.value));
  const m = decodeResource(TYPE_URL.cluster, any.value);
  assert.deepEqual(m, {
    name: 'c', type: 'EDS', connectTimeout: { seconds: '10' }, maxRequestsPerConnection: { value: 5 }, lbPolicy: 'LEAST_REQUEST',
  });
  assert.deepEqual(fromJson(TYPE_URL.cluster, json), m);
});

test('fromJson refuses unknown fields and bad durations with the JSON path', () => {
  assert.throws(() => encodeJson(TYPE_URL.cluster, { name: 'c', nope: 1 }), /Cluster\.nope: no such field/);
  assert.throws(() => encodeJson(TYPE_URL.cluster, { connect_timeout: '10' }), /Cluster\.connect_timeout: bad Duration/);
  assert.throws(() => decodeResource('type.googleapis.com/nope.Nope', new Uint8Array(0)), /unknown xDS type/);
});

test('discoveryTypes exposes the ADS request and response types', () => {
  const d = discoveryTypes();
  const req = d.DeltaDiscoveryRequest.fromObject({ typeUrl: TYPE_URL.endpoints, resourceNamesSubscribe: ['a'] });
  const back = d.DeltaDiscoveryRequest.decode(d.DeltaDiscoveryRequest.encode(req).finish()) as unknown as Record<string, unknown>;
  assert.deepEqual(back.resourceNamesSubscribe, ['a']);
  assert.ok(d.AggregatedDiscoveryService.methods.StreamAggregatedResources);
  assert.ok(d.AggregatedDiscoveryService.methods.DeltaAggregatedResources);
});
