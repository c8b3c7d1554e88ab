import { test, describe } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as fs from 'node:fs';
import {
  ConfigError, DEFAULT_CONFIG_PATH, REDACTED, TcpProxyConfig, loadConfigFile, loadDefaultConfig, parseCidr, parseConfig,
  parseGoDurationNs, parseHostPort, parsePortList, parseTcpProxyConfig, redactConfig, registerFilterValidator,
  parseProxyFilterConfig, validateConfigFile,
} from '../../src/config';
import '../../src/extensions'; // filter validators register themselves (the config layer imports no filter)
import { DecodePhase, registerStreamFilterKind } from '../../src/api/stream-filter';

// Compiled to dist/test/unit; fixtures stay in the source tree.
const FIXTURES = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'config');
const fixture = (name: string): string => path.join(FIXTURES, name);

/** A small valid MOSN document; each error case mutates a fresh copy. */
function base(): any {
  return {
    servers: [
      {
        default_log_path: 'stdout',
        default_log_level: 'INFO',
        processor: 1,
        graceful_timeout: '30s',
        routers: [
          {
            router_config_name: 'r0',
            virtual_hosts: [{ name: 'vh', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'c0' } }] }],
          },
        ],
        listeners: [
          {
            name: 'l0',
            address: '127.0.0.1:2045',
            bind_port: true,
            filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'c0' } }] }],
          },
          {
            name: 'l1',
            address: '127.0.0.1:2046',
            bind_port: true,
            filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { routes: [{ cluster: 'c1' }] } }] }],
          },
        ],
      },
    ],
    cluster_manager: {
      clusters: [
        { name: 'c0', hosts: [{ address: '127.0.0.1:8080' }] },
        { name: 'c1', type: 'SIMPLE', lb_type: 'LB_RANDOM', hosts: [{ address: '127.0.0.1:8081', weight: 2 }] },
      ],
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 34901 } } },
  };
}

function errorsOf(doc: unknown): ConfigError {
  try {
    parseConfig(doc, 'test.json');
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

const L0 = 'servers[0].listeners[0]';
const F0 = `${L0}.filter_chains[0].filters[0]`;
const C0 = 'cluster_manager.clusters[0]';

type Case = [name: string, mutate: (d: any) => void, expected: string];

const ERROR_CASES: Case[] = [
  ['address without port', (d) => { d.servers[0].listeners[1].address = 'abc'; }, 'servers[0].listeners[1].address: "abc" is not host:port'],
  ['address port out of range', (d) => { d.servers[0].listeners[0].address = '127.0.0.1:70000'; }, `${L0}.address: "127.0.0.1:70000" is not host:port (port out of range)`],
  ['address bad host', (d) => { d.servers[0].listeners[0].address = 'bad host!:80'; }, `${L0}.address: "bad host!:80" is not host:port (invalid host)`],
  ['address broken ipv4', (d) => { d.servers[0].listeners[0].address = '300.1.1.1:80'; }, `${L0}.address: "300.1.1.1:80" is not host:port (invalid host)`],
  ['address unbracketed ipv6', (d) => { d.servers[0].listeners[0].address = '::1:80'; }, `${L0}.address: "::1:80" is not host:port (IPv6 addresses must be written in brackets`],
  ['address missing', (d) => { delete d.servers[0].listeners[0].address; }, `${L0}.address: is required`],
  ['address not a string', (d) => { d.servers[0].listeners[0].address = 2045; }, `${L0}.address: 2045 must be a string`],
  ['duplicate listener name', (d) => { d.servers[0].listeners[1].name = 'l0'; }, 'servers[0].listeners[1].name: "l0" is a duplicate listener name (also servers[0].listeners[0].name)'],
  ['duplicate listener address', (d) => { d.servers[0].listeners[1].address = '127.0.0.1:2045'; }, 'servers[0].listeners[1].address: "127.0.0.1:2045" is already used by servers[0].listeners[0].address'],
  ['wildcard overlaps listener address', (d) => { d.servers[0].listeners[1].address = '0.0.0.0:2045'; }, 'servers[0].listeners[1].address: "0.0.0.0:2045" is already used by servers[0].listeners[0].address'],
  ['bind_port not a boolean', (d) => { d.servers[0].listeners[0].bind_port = 'yes'; }, `${L0}.bind_port: "yes" must be true or false`],
  ['network udp', (d) => { d.servers[0].listeners[0].network = 'udp'; }, `${L0}.network: "udp" listeners are not supported yet`],
  ['use_original_dst', (d) => { d.servers[0].listeners[0].use_original_dst = 'nat'; }, `${L0}.use_original_dst: "nat" must be "redirect" or "tproxy"`],
  ['listener filter unknown', (d) => { d.servers[0].listeners[0].listener_filters = [{ type: 'proxy_protocol' }]; }, `${L0}.listener_filters[0].type: "proxy_protocol" listener filter is not supported yet`],
  ['original_dst filter type', (d) => { d.servers[0].listeners[0].listener_filters = [{ type: 'original_dst', config: { type: 'dnat' } }]; }, `${L0}.listener_filters[0].config.type: "dnat" must be "redirect" or "tproxy"`],
  ['connection_idle_timeout bad', (d) => { d.servers[0].listeners[0].connection_idle_timeout = '1x'; }, `${L0}.connection_idle_timeout: "1x" is not a duration`],
  ['per_connection_buffer_limit_bytes small', (d) => { d.servers[0].listeners[0].per_connection_buffer_limit_bytes = 10; }, `${L0}.per_connection_buffer_limit_bytes: 10 is out of range 1024..`],
  ['access log without path', (d) => { d.servers[0].listeners[0].access_logs = [{ log_format: '%start_time%' }]; }, `${L0}.access_logs[0].log_path: is required`],
  ['no filter chain', (d) => { d.servers[0].listeners[0].filter_chains = []; }, `${L0}.filter_chains: at least one filter chain is required`],
  ['filter_chain_match transport_protocol unknown', (d) => { d.servers[0].listeners[0].filter_chains[0].filter_chain_match = { transport_protocol: 'quic' }; }, `${L0}.filter_chains[0].filter_chain_match.transport_protocol: "quic" must be "raw_buffer" or "tls"`],
  ['filter_chain_match source_type refused', (d) => { d.servers[0].listeners[0].filter_chains[0].filter_chain_match = { source_type: 'LOCAL' }; }, `${L0}.filter_chains[0].filter_chain_match.source_type: is not supported`],
  ['filter_chain_match bad source range', (d) => { d.servers[0].listeners[0].filter_chains[0].filter_chain_match = { source_prefix_ranges: [{ address_prefix: '10.0.0.300', prefix_len: 8 }] }; }, `${L0}.filter_chains[0].filter_chain_match.source_prefix_ranges[0]: "10.0.0.300/8" is not a CIDR range`],
  ['filter_chain_match destination_port out of range', (d) => { d.servers[0].listeners[0].filter_chains[0].filter_chain_match = { destination_port: 70000 }; }, `${L0}.filter_chains[0].filter_chain_match.destination_port: 70000 is out of range 1..65535`],
  ['filter_chain_match server name wildcard inside', (d) => { d.servers[0].listeners[0].filter_chains[0].filter_chain_match = { server_names: ['a.*.example'] }; }, `${L0}.filter_chains[0].filter_chain_match.server_names[0]: "a.*.example": a wildcard is allowed only as the first label`],
  ['two filter chains with the same match', (d) => { d.servers[0].listeners[0].filter_chains.push({ filters: [] }); }, `${L0}.filter_chains[1]: filter_chain_match (none) is the same as filter_chains[0]'s`],
  ['no filters', (d) => { d.servers[0].listeners[0].filter_chains[0].filters = []; }, `${L0}.filter_chains[0].filters: at least one network filter is required`],
  ['filter without type', (d) => { delete d.servers[0].listeners[0].filter_chains[0].filters[0].type; }, `${F0}.type: is required`],
  ['filter config not object', (d) => { d.servers[0].listeners[0].filter_chains[0].filters[0].config = 'x'; }, `${F0}.config: "x" must be an object`],
  ['unknown network filter', (d) => { d.servers[0].listeners[0].filter_chains[0].filters[0].type = 'echo'; }, `${F0}.type: "echo" is not a known network filter type (supported: proxy, rbac, tcp_proxy)`],
  ['known unsupported network filter', (d) => { d.servers[0].listeners[0].filter_chains[0].filters[0].type = 'udp_proxy'; }, `${F0}.type: "udp_proxy" network filter is not supported yet`],
  ['proxy filter with a protocol no family serves', (d) => {
    d.servers[0].listeners[0].filter_chains[0].filters[0] = { type: 'proxy', config: { downstream_protocol: 'Thrift', router_config_name: 'r0' } };
  }, `${F0}.config.downstream_protocol: "Thrift" is not a supported proxy protocol yet`],
  ['proxy filter unknown router', (d) => {
    d.servers[0].listeners[0].filter_chains[0].filters[0] = { type: 'proxy', config: { downstream_protocol: 'bolt', router_config_name: 'nope' } };
  }, `${F0}.config.router_config_name: "nope" is not a router defined in servers[].routers`],
  ['proxy filter without protocol', (d) => {
    d.servers[0].listeners[0].filter_chains[0].filters[0] = { type: 'proxy', config: { router_config_name: 'r0' } };
  }, `${F0}.config.downstream_protocol: is required`],
  ['tcp_proxy unknown cluster', (d) => { d.servers[0].listeners[0].filter_chains[0].filters[0].config.cluster = 'missing'; }, `${F0}.config.cluster: "missing" is not a cluster defined in cluster_manager.clusters`],
  ['tcp_proxy route unknown cluster', (d) => { d.servers[0].listeners[0].filter_chains[0].filters[0].config = { routes: [{ cluster: 'ghost' }] }; }, `${F0}.config.routes[0].cluster: "ghost" is not a cluster defined`],
  ['tcp_proxy without cluster or routes', (d) => { d.servers[0].listeners[0].filter_chains[0].filters[0].config = {}; }, `${F0}.config.cluster: is required (or give routes)`],
  ['tcp_proxy idle_timeout words', (d) => { d.servers[0].listeners[0].filter_chains[0].filters[0].config.idle_timeout = '30 seconds'; }, `${F0}.config.idle_timeout: "30 seconds" is not a duration`],
  ['tcp_proxy max_connect_attempts negative', (d) => { d.servers[0].listeners[0].filter_chains[0].filters[0].config.max_connect_attempts = -1; }, `${F0}.config.max_connect_attempts: -1 is out of range 1..100`],
  ['tcp_proxy bad cidr string', (d) => {
    d.servers[0].listeners[0].filter_chains[0].filters[0].config = { routes: [{ cluster: 'c0', source_addrs: ['10.0.0.0/33'] }] };
  }, `${F0}.config.routes[0].source_addrs[0]: "10.0.0.0/33" is not a CIDR range`],
  ['tcp_proxy cidr object without length', (d) => {
    d.servers[0].listeners[0].filter_chains[0].filters[0].config = { routes: [{ cluster: 'c0', SourceAddrs: [{ address: '10.0.0.1' }] }] };
  }, `${F0}.config.routes[0].sourceaddrs[0].length: is required`],
  ['tcp_proxy cidr object bad address', (d) => {
    d.servers[0].listeners[0].filter_chains[0].filters[0].config = { routes: [{ cluster: 'c0', DestinationAddrs: [{ address: 'host', length: 8 }] }] };
  }, `${F0}.config.routes[0].destinationaddrs[0]: "host/8" is not a CIDR range`],
  ['tcp_proxy both address spellings', (d) => {
    d.servers[0].listeners[0].filter_chains[0].filters[0].config = { routes: [{ cluster: 'c0', SourceAddrs: [], source_addrs: [] }] };
  }, `${F0}.config.routes[0].source_addrs: conflicts with SourceAddrs`],
  ['tcp_proxy bad port range', (d) => {
    d.servers[0].listeners[0].filter_chains[0].filters[0].config = { routes: [{ cluster: 'c0', DestinationPort: '80-70' }] };
  }, `${F0}.config.routes[0].destinationport: "80-70" is not a port list`],
  ['stream filter security relevant', (d) => { d.servers[0].listeners[0].stream_filters = [{ type: 'jwt_authn', config: {} }]; }, `${L0}.stream_filters[0].type: "jwt_authn" stream filter is not supported; refusing to run without it`],
  ['stream filter unknown', (d) => { d.servers[0].listeners[0].stream_filters = [{ type: 'my_auth' }]; }, `${L0}.stream_filters[0].type: "my_auth" stream filter is not supported`],
  ['listener TLS without a certificate', (d) => { d.servers[0].listeners[0].filter_chains[0].tls_context = { status: true }; }, `${L0}.filter_chains[0].tls_context.cert_chain: is required when status is true`],
  ['listener TLS set entry without a key', (d) => { d.servers[0].listeners[0].filter_chains[0].tls_context_set = [{ status: false }, { status: true, cert_chain: '/nonexistent/c.pem' }]; }, `${L0}.filter_chains[0].tls_context_set[1].private_key: is required when status is true`],
  ['listener TLS and TLS set', (d) => {
    d.servers[0].listeners[0].filter_chains[0].tls_context = {};
    d.servers[0].listeners[0].filter_chains[0].tls_context_set = [{}];
  }, `${L0}.filter_chains[0].tls_context_set: give either tls_context or tls_context_set`],
  ['cluster TLS client cert without key', (d) => { d.cluster_manager.clusters[0].tls_context = { status: true, cert_chain: '/x.pem' }; }, `${C0}.tls_context.private_key: is required with cert_chain`],
  ['cluster manager TLS with SDS', (d) => { d.cluster_manager.tls_context = { Status: true, sds_source: { certificate_config: {} } }; }, 'cluster_manager.tls_context.sds_source: SDS (certificates from a secret discovery service) is not supported yet'],
  ['graceful_timeout number', (d) => { d.servers[0].graceful_timeout = 30; }, 'servers[0].graceful_timeout: 30 is not a duration: write it with a unit'],
  ['graceful_timeout negative', (d) => { d.servers[0].graceful_timeout = '-5s'; }, 'servers[0].graceful_timeout: "-5s" must not be negative'],
  ['graceful_timeout huge', (d) => { d.servers[0].graceful_timeout = '1000h'; }, 'servers[0].graceful_timeout: "1000h" is too large'],
  ['log level unknown', (d) => { d.servers[0].default_log_level = 'LOUD'; }, 'servers[0].default_log_level: "LOUD" is not a log level'],
  ['processor negative', (d) => { d.servers[0].processor = -1; }, 'servers[0].processor: -1 is out of range 0..1024'],
  ['processor words', (d) => { d.servers[0].processor = 'many'; }, 'servers[0].processor: "many" must be a number of workers or "auto"'],
  ['no servers', (d) => { d.servers = []; }, 'servers: exactly one server is required'],
  ['two servers', (d) => { d.servers.push({ listeners: [] }); }, 'servers[1]: only one server is supported'],
  ['server not an object', (d) => { d.servers[0] = 'x'; }, 'servers[0]: "x" must be an object'],
  ['duplicate router name', (d) => { d.servers[0].routers.push({ router_config_name: 'r0' }); }, 'servers[0].routers[1].router_config_name: "r0" is a duplicate router name'],
  ['router from directory', (d) => { d.servers[0].routers[0].router_configs = '/etc/routers'; }, 'servers[0].routers[0].router_configs: loading routers from a directory is not supported yet'],
  ['cluster without name', (d) => { delete d.cluster_manager.clusters[0].name; }, `${C0}.name: is required`],
  ['duplicate cluster name', (d) => { d.cluster_manager.clusters[1].name = 'c0'; }, 'cluster_manager.clusters[1].name: "c0" is a duplicate cluster name (also cluster_manager.clusters[0].name)'],
  ['duplicate cluster name across case of key', (d) => { d.cluster_manager.clusters[1] = { Name: 'c0', hosts: [] }; }, 'cluster_manager.clusters[1].name: "c0" is a duplicate cluster name'],
  ['cluster type unsupported', (d) => { d.cluster_manager.clusters[0].type = 'STRICT_DNS'; }, `${C0}.type: "STRICT_DNS" cluster type is not supported yet (only SIMPLE and ORIGINAL_DST)`],
  ['cluster type unknown', (d) => { d.cluster_manager.clusters[0].type = 'BOGUS'; }, `${C0}.type: "BOGUS" is not a cluster type`],
  ['lb type known to MOSN', (d) => { d.cluster_manager.clusters[0].lb_type = 'LB_MAGLEV'; }, `${C0}.lb_type: "LB_MAGLEV" is not supported yet`],
  ['lb type unknown', (d) => { d.cluster_manager.clusters[0].lb_type = 'LB_FASTEST'; }, `${C0}.lb_type: "LB_FASTEST" is not a load balancer type`],
  ['host without port', (d) => { d.cluster_manager.clusters[0].hosts[0].address = '127.0.0.1'; }, `${C0}.hosts[0].address: "127.0.0.1" is not host:port (missing port)`],
  ['host port zero', (d) => { d.cluster_manager.clusters[0].hosts[0].address = '127.0.0.1:0'; }, `${C0}.hosts[0].address: "127.0.0.1:0" is not host:port (port 0 is not allowed here)`],
  ['host unix socket', (d) => { d.cluster_manager.clusters[0].hosts[0].address = 'unix:/tmp/s.sock'; }, `${C0}.hosts[0].address: "unix:/tmp/s.sock": unix socket upstreams are not supported yet`],
  ['host weight negative', (d) => { d.cluster_manager.clusters[0].hosts[0].weight = -3; }, `${C0}.hosts[0].weight: -3 is out of range`],
  ['host weight fractional', (d) => { d.cluster_manager.clusters[0].hosts[0].weight = 1.5; }, `${C0}.hosts[0].weight: 1.5 must be an integer`],
  ['hosts not an array', (d) => { d.cluster_manager.clusters[0].hosts = { address: '127.0.0.1:1' }; }, `${C0}.hosts: {"address":"127.0.0.1:1"} must be an array`],
  ['connect_timeout zero', (d) => { d.cluster_manager.clusters[0].connect_timeout = '0s'; }, `${C0}.connect_timeout: "0s" must be greater than 0`],
  ['connect_timeout bare number', (d) => { d.cluster_manager.clusters[0].connect_timeout = 5; }, `${C0}.connect_timeout: 5 is not a duration`],
  ['circuit breakers as object', (d) => { d.cluster_manager.clusters[0].circuit_breakers = { max_connections: 1 }; }, `${C0}.circuit_breakers: {"max_connections":1} must be an array`],
  ['circuit breaker negative', (d) => { d.cluster_manager.clusters[0].circuit_breakers = [{ max_connections: -1 }]; }, `${C0}.circuit_breakers[0].max_connections: -1 is out of range`],
  ['conn_buffer_limit_bytes string', (d) => { d.cluster_manager.clusters[0].conn_buffer_limit_bytes = 'big'; }, `${C0}.conn_buffer_limit_bytes: "big" must be an integer`],
  ['max_request_per_conn fractional', (d) => { d.cluster_manager.clusters[0].max_request_per_conn = 2.5; }, `${C0}.max_request_per_conn: 2.5 must be an integer`],
  ['clusters from a directory', (d) => { d.cluster_manager.clusters_configs = '/etc/clusters'; }, 'cluster_manager.clusters_configs: loading clusters from a directory is not supported yet'],
  ['admin port out of range', (d) => { d.admin.address.socket_address.port_value = 70000; }, 'admin.address.socket_address.port_value: 70000 is out of range 0..65535'],
  ['admin bad address', (d) => { d.admin.address.socket_address.address = 'not an ip!'; }, 'admin.address.socket_address.address: "not an ip!" is not an IP address or host name'],
  ['keys differing only in case', (d) => { d.servers[0].listeners[0].Name = 'other'; }, `${L0}.name: keys "name" and "Name" differ only in case`],
  ['xds dynamic resources without an ADS service', (d) => { d.dynamic_resources = { ads_config: {} }; }, 'dynamic_resources.ads_config.grpc_services: an ADS gRPC service is required'],
  ['wasm plugins', (d) => { d.wasm_global_plugins = [{ plugin_name: 'auth' }]; }, 'wasm_global_plugins: WebAssembly plugins are not supported'],
];

describe('config: errors name the path and the bad value', () => {
  for (const [name, mutate, expected] of ERROR_CASES) {
    test(name, () => {
      const d = base();
      mutate(d);
      const e = errorsOf(d);
      const lines = e.errors.map((x) => `${x.path}: ${x.message}`);
      assert.ok(lines.some((l) => l.includes(expected)), `expected an error containing\n  ${expected}\ngot\n  ${lines.join('\n  ')}`);
      assert.ok(e.message.includes(expected), 'the thrown message lists it too');
    });
  }

  test('the base document itself is valid', () => {
    const cfg = parseConfig(base());
    assert.deepEqual(cfg.warnings, []);
  });

  test('all errors are collected into one ConfigError, one per line', () => {
    const d = base();
    d.servers[0].listeners[1].address = 'abc';
    d.servers[0].default_log_level = 'LOUD';
    d.cluster_manager.clusters[0].hosts[0].address = 'nope';
    d.servers[0].listeners[0].filter_chains[0].filters[0].config.cluster = 'missing';
    const e = errorsOf(d);
    assert.equal(e.errors.length, 4);
    assert.equal(e.name, 'ConfigError');
    const msgLines = e.message.split('\n');
    assert.match(msgLines[0]!, /^invalid config \(test\.json\): 4 errors$/);
    assert.equal(msgLines.length, 5);
    for (const err of e.errors) assert.ok(msgLines.includes(`  ${err.path}: ${err.message}`));
  });

  test('a non-object document is rejected', () => {
    assert.match(errorsOf([]).message, /must be a JSON object/);
    assert.match(errorsOf(null).message, /must be a JSON object/);
  });
});

describe('config: warnings for harmless unsupported settings and unknown keys', () => {
  test('fixture with tracing, metrics, pprof, log roller, health check and unknown keys', () => {
    const cfg = loadConfigFile(fixture('harmless_unsupported.json'));
    const w = cfg.warnings ?? [];
    const expectWarning = (prefix: string): void => {
      assert.ok(w.some((x) => x.startsWith(prefix)), `expected a warning starting with ${prefix}\ngot\n  ${w.join('\n  ')}`);
    };
    expectWarning('tracing.enable: tracing without config.collector'); // tracing is implemented now (src/config/tracing.ts)
    expectWarning('metrics: metrics sinks/settings are not supported yet');
    expectWarning('pprof.debug: pprof is not applicable');
    expectWarning('servers[0].global_log_roller: log rotation is not supported yet');
    // health_check is supported now (src/config/health-check.ts): parsed, not warned about.
    assert.ok(!w.some((x) => x.startsWith('cluster_manager.clusters[0].health_check')), w.join('\n'));
    assert.deepEqual(cfg.clusters[0]!.healthCheck, { kind: 'tcp', protocol: 'tcp', timeoutMs: 1000, intervalMs: 5000, intervalJitterMs: 5, initialDelayMs: 1000, healthyThreshold: 2, unhealthyThreshold: 1 });
    expectWarning('cluster_manager.clusters[0].favourite_colour: unknown key (ignored)');
    expectWarning('servers[0].listeners[0].stream_filters[0].type: "gzip" stream filter is not supported yet; ignored');
    expectWarning('servers[0].listeners[0].reuseport: SO_REUSEPORT is not supported yet');
    expectWarning('servers[0].listeners[0].log_path: listener-level log_path is a legacy MOSN key');
    assert.equal(cfg.servers[0]!.listeners[0]!.streamFilters.length, 0, 'ignored stream filters are not passed on');
  });

  test('unknown keys anywhere are warnings naming the path as spelled', () => {
    const d = base();
    d.cluster_manager.clusters[0].hosts[0].Colour = 'red';
    d.servers[0].listeners[0].filter_chains[0].filters[0].config.Extra = 1;
    d.admin.address.socket_address.Zone = 'a';
    const w = parseConfig(d).warnings ?? [];
    assert.ok(w.includes(`${C0}.hosts[0].Colour: unknown key (ignored)`), w.join('\n'));
    assert.ok(w.includes(`${F0}.config.Extra: unknown key (ignored)`), w.join('\n'));
    assert.ok(w.includes('admin.address.socket_address.Zone: unknown key (ignored)'), w.join('\n'));
  });

  test('host weight is clamped into MOSN bounds with a warning; 0 and absent mean 1', () => {
    const d = base();
    d.cluster_manager.clusters[0].hosts = [
      { address: '127.0.0.1:1', weight: 500 }, { address: '127.0.0.1:2', weight: 0 }, { address: '127.0.0.1:3' },
    ];
    const cfg = parseConfig(d);
    assert.deepEqual(cfg.clusters[0]!.hosts.map((h) => h.weight), [128, 1, 1]);
    assert.ok(cfg.warnings!.some((x) => x.startsWith(`${C0}.hosts[0].weight: 500 clamped to 128`)));
  });

  test('bind_port false (MOSN default) warns; admin on all interfaces warns', () => {
    const d = base();
    delete d.servers[0].listeners[0].bind_port;
    d.admin.address.socket_address.address = '0.0.0.0';
    const cfg = parseConfig(d);
    assert.equal(cfg.servers[0]!.listeners[0]!.bindPort, false);
    assert.ok(cfg.warnings!.some((x) => x.startsWith(`${L0}.bind_port: false (the MOSN default)`)));
    assert.ok(cfg.warnings!.some((x) => x.startsWith('admin.address.socket_address.address: "0.0.0.0" exposes the admin API')));
    assert.equal(cfg.admin.address.host, '0.0.0.0', 'the configured address is kept');
  });

  test('client-cert verification with TLS off warns; STATIC cluster treated as SIMPLE', () => {
    const d = base();
    d.servers[0].listeners[0].filter_chains[0].tls_context = { status: false, verify_client: true };
    d.cluster_manager.clusters[0].type = 'STATIC';
    const cfg = parseConfig(d);
    assert.ok(cfg.warnings!.some((x) => x.startsWith(`${L0}.filter_chains[0].tls_context.verify_client: has no effect`)));
    assert.ok(cfg.warnings!.some((x) => x.startsWith(`${C0}.type: "STATIC" is treated as SIMPLE`)));
    assert.equal(cfg.servers[0]!.listeners[0]!.filterChains[0]!.tlsContexts, undefined);
  });

  test('tcp_proxy routes shadowed by cluster warn', () => {
    const d = base();
    d.servers[0].listeners[0].filter_chains[0].filters[0].config.routes = [{ cluster: 'c1', source_addrs: ['10.0.0.0/8'] }];
    const cfg = parseConfig(d);
    assert.ok(cfg.warnings!.some((x) => x.startsWith(`${F0}.config.routes: ignored because cluster "c0" is set`)));
  });
});

describe('config: MOSN-shaped fixtures', () => {
  test('tcp proxy client: capitalized "Name", durations, breakers, hosts', () => {
    const cfg = loadConfigFile(fixture('tcpproxy_client.json'));
    assert.deepEqual(cfg.warnings, []);
    const s = cfg.servers[0]!;
    assert.equal(s.defaultLogLevel, 'debug');
    assert.equal(s.defaultLogPath, 'stdout');
    assert.equal(s.processor, 0, '"auto" means one worker per CPU');
    assert.equal(s.gracefulTimeoutMs, 90_000);
    const l = s.listeners[0]!;
    assert.equal(l.name, 'clientTcpListener');
    assert.deepEqual(l.address, { host: '127.0.0.1', port: 12045 });
    assert.equal(l.bindPort, true);
    assert.equal(l.connectionIdleTimeoutMs, 120_000);
    assert.equal(l.perConnBufferLimitBytes, 32_768);
    assert.equal(l.inspector, false);
    assert.deepEqual(l.accessLogs, [{ path: 'stdout', format: '%start_time% %upstream_host% %bytes_received%' }]);
    assert.equal(l.filterChains.length, 1);
    assert.equal(l.filterChains[0]!.tlsContexts, undefined, 'an empty tls_context means plaintext');
    const f = l.filterChains[0]!.filters[0]!;
    assert.equal(f.type, 'tcp_proxy');
    const tp = f.config as unknown as TcpProxyConfig;
    assert.deepEqual(tp, { statPrefix: 'client_tcp', cluster: 'serverCluster', routes: [], idleTimeoutMs: 45_000, maxConnectAttempts: 2 });
    const c = cfg.clusters[0]!;
    assert.equal(c.name, 'serverCluster');
    assert.equal(c.type, 'SIMPLE');
    assert.equal(c.lbType, 'LB_RANDOM');
    assert.equal(c.connectTimeoutMs, 1500);
    assert.equal(c.maxRequestPerConn, 512);
    assert.equal(c.connBufferLimitBytes, 65_536);
    assert.deepEqual(c.circuitBreakers, { maxConnections: 200, maxPendingRequests: 50, maxRequests: 1000, maxRetries: 2 });
    assert.deepEqual(c.hosts, [
      { address: { host: '127.0.0.1', port: 12046 }, weight: 10 },
      { address: { host: 'localhost', port: 12047 }, weight: 1, hostname: 'backup' },
    ]);
    assert.deepEqual(cfg.admin, { address: { host: '127.0.0.1', port: 34902 } });
  });

  test('tcp proxy server: IPv6 listener, nanosecond idle_timeout, MOSN and snake_case route keys', () => {
    const cfg = loadConfigFile(fixture('tcpproxy_server.json'));
    assert.deepEqual(cfg.warnings, []);
    const s = cfg.servers[0]!;
    assert.equal(s.defaultLogLevel, 'warn');
    assert.equal(s.processor, 2);
    assert.equal(s.gracefulTimeoutMs, 30_000);
    const l = s.listeners[0]!;
    assert.deepEqual(l.address, { host: '::1', port: 12046 });
    assert.equal(l.connectionIdleTimeoutMs, 90_000, 'MOSN default when absent');
    const tp = l.filterChains[0]!.filters[0]!.config as unknown as TcpProxyConfig;
    assert.equal(tp.cluster, '');
    assert.equal(tp.idleTimeoutMs, 30_000, 'a number is a Go time.Duration in nanoseconds');
    assert.equal(tp.maxConnectAttempts, 3);
    assert.deepEqual(tp.routes, [
      {
        cluster: 'internalApps',
        sourceAddrs: [{ address: '10.0.0.0', length: 8 }],
        destinationAddrs: [{ address: '::1', length: 128 }],
        sourcePort: '1024-65535',
        destinationPort: '12046',
      },
      {
        cluster: 'publicApps',
        sourceAddrs: [{ address: '192.168.0.0', length: 16 }, { address: '172.16.0.1', length: 32 }],
        destinationAddrs: [],
      },
    ]);
    assert.deepEqual(cfg.clusters.map((c) => [c.name, c.type, c.lbType]), [
      ['internalApps', 'SIMPLE', 'LB_WEIGHTED_ROUNDROBIN'],
      ['publicApps', 'SIMPLE', 'LB_LEAST_REQUEST'],
    ]);
    assert.deepEqual(cfg.clusters[0]!.hosts.map((h) => h.weight), [3, 1]);
    const c1 = cfg.clusters[1]!;
    assert.equal(c1.connectTimeoutMs, 10_000, 'MOSN DefaultConnectTimeout');
    assert.equal(c1.maxRequestPerConn, 1024, 'MOSN DefaultMaxRequestPerConn');
    assert.equal(c1.connBufferLimitBytes, 16_384, 'MOSN DefaultConnBufferLimitBytes');
    assert.deepEqual(c1.circuitBreakers, { maxConnections: 0, maxPendingRequests: 0, maxRequests: 0, maxRetries: 0 });
    assert.deepEqual(cfg.admin, { address: { host: '127.0.0.1', port: 34901 } }, 'admin defaults to loopback');
  });

  test('keys in any case, enum values in any case', () => {
    const cfg = loadConfigFile(fixture('mixed_case.json'));
    assert.deepEqual(cfg.warnings, []);
    const s = cfg.servers[0]!;
    assert.equal(s.defaultLogPath, '/var/log/outrigger/default.log');
    assert.equal(s.defaultLogLevel, 'error');
    assert.equal(s.processor, 4);
    assert.equal(s.gracefulTimeoutMs, 500);
    const l = s.listeners[0]!;
    assert.equal(l.name, 'upperListener');
    assert.deepEqual(l.address, { host: '0.0.0.0', port: 12050 });
    assert.equal(l.connectionIdleTimeoutMs, 0, '"0s" disables the idle timeout');
    const tp = l.filterChains[0]!.filters[0]!.config as unknown as TcpProxyConfig;
    assert.equal(tp.statPrefix, 'mixed');
    assert.equal(tp.cluster, 'mixedCluster');
    assert.equal(tp.idleTimeoutMs, 3_600_000);
    const c = cfg.clusters[0]!;
    assert.equal(c.type, 'SIMPLE');
    assert.equal(c.lbType, 'LB_ROUNDROBIN');
    assert.equal(c.connectTimeoutMs, 250);
    assert.deepEqual(c.hosts[0]!.address, { host: '127.0.0.1', port: 18090 });
    assert.equal(cfg.admin.address.port, 34903);
  });

  test('TLS with a certificate that does not parse is an error naming the field, never a silent downgrade', () => {
    const r = validateConfigFile(fixture('tls_enabled.json'));
    assert.equal(r.ok, false);
    const paths = r.errors.map((e) => e.path);
    assert.ok(paths.includes('servers[0].listeners[0].filter_chains[0].tls_context.cert_chain'), paths.join('\n'));
    assert.ok(!r.errors.some((e) => e.message.includes('MIIEfakekey')), 'the private key never appears in an error');
    assert.throws(() => loadConfigFile(fixture('tls_enabled.json')), (e: unknown) => e instanceof ConfigError && e.source === fixture('tls_enabled.json'));
  });

  test('invalid JSON is reported with a position', () => {
    const r = validateConfigFile(fixture('invalid_json.json'));
    assert.equal(r.ok, false);
    assert.equal(r.errors.length, 1);
    assert.match(r.errors[0]!.message, /^invalid JSON: .*line \d+/);
  });

  test('a missing file is a ConfigError too', () => {
    const r = validateConfigFile(fixture('does_not_exist.json'));
    assert.equal(r.ok, false);
    assert.match(r.errors[0]!.message, /cannot read config file/);
  });

  test('validateConfigFile on a good file', () => {
    const r = validateConfigFile(fixture('harmless_unsupported.json'));
    assert.equal(r.ok, true);
    assert.deepEqual(r.errors, []);
    assert.ok(r.warnings.length > 0);
  });
});

describe('config: result is deep-frozen', () => {
  test('nested objects and arrays cannot be modified', () => {
    const cfg = loadConfigFile(fixture('tcpproxy_client.json'));
    const l = cfg.servers[0]!.listeners[0]! as any;
    assert.ok(Object.isFrozen(cfg));
    assert.ok(Object.isFrozen(l.address));
    assert.ok(Object.isFrozen(cfg.clusters[0]!.hosts));
    assert.ok(Object.isFrozen(l.filterChains[0].filters[0].config));
    assert.ok(Object.isFrozen(cfg.raw));
    assert.ok(Object.isFrozen(cfg.warnings));
    assert.throws(() => { l.address.port = 1; }, TypeError);
    assert.throws(() => { (cfg.clusters as any).push({}); }, TypeError);
    assert.throws(() => { (cfg.raw as any).servers = []; }, TypeError);
  });

  test('parsing does not modify or freeze the input', () => {
    const d = base();
    const before = JSON.stringify(d);
    parseConfig(d);
    assert.equal(JSON.stringify(d), before);
    assert.ok(!Object.isFrozen(d.servers[0]));
  });
});

describe('config: redaction', () => {
  const doc = JSON.parse(fs.readFileSync(fixture('secrets.json'), 'utf8'));

  test('private keys, tickets, passwords and tokens are redacted in any case', () => {
    const r = redactConfig(doc) as any;
    const tls = r.servers[0].listeners[0].filter_chains[0].tls_context;
    assert.equal(tls.PrivateKey, REDACTED);
    assert.equal(tls.ticket, REDACTED);
    assert.match(tls.cert_chain, /BEGIN CERTIFICATE/, 'certificates are public');
    assert.equal(r.cluster_manager.tls_context.private_key, REDACTED);
    assert.equal(r.cluster_manager.clusters[0].tls_context.Private_Key, REDACTED);
    assert.equal(r.cluster_manager.clusters[0].tls_context.cert_chain, '/etc/outrigger/client.crt');
    assert.equal(r.cluster_manager.clusters[0].name, 'keyedBackend');
    const other = redactConfig({
      a: { Password: 'p', db_password: 'q', AUTH_TOKEN: 't', token: 'u', name: 'keep' },
      b: [{ note: '-----BEGIN EC PRIVATE KEY-----\nabc\n-----END EC PRIVATE KEY-----' }],
      c: { client_secret: 's', api_key: 'k', hash_key: 'not a secret outside TLS' },
    }) as any;
    assert.deepEqual(other.a, { Password: REDACTED, db_password: REDACTED, AUTH_TOKEN: REDACTED, token: REDACTED, name: 'keep' });
    assert.equal(other.b[0].note, REDACTED, 'an inline PEM private key is redacted wherever it is');
    assert.equal(other.c.client_secret, REDACTED);
    assert.equal(other.c.api_key, REDACTED);
    assert.equal(other.c.hash_key, 'not a secret outside TLS');
  });

  test('the input is untouched and redaction is idempotent', () => {
    const before = JSON.stringify(doc);
    const once = redactConfig(doc);
    assert.equal(JSON.stringify(doc), before);
    assert.deepEqual(redactConfig(once), once);
  });

  test('config.raw never carries secrets', () => {
    const cfg = loadConfigFile(fixture('secrets.json'));
    const raw = JSON.stringify(cfg.raw);
    assert.ok(!raw.includes('MIIEsecretsecret'));
    assert.ok(!raw.includes('inline-secret'));
    assert.ok(!raw.includes('session-ticket-key-material'));
    assert.ok(raw.includes('keyedBackend'));
  });
});

describe('config: filter validator registry', () => {
  test('a registered proxy validator makes the proxy filter acceptable', () => {
    const d = base();
    d.servers[0].listeners[0].filter_chains[0].filters[0] = { type: 'proxy', config: { Downstream_Protocol: 'bolt', router_config_name: 'r0' } };
    parseConfig(d); // the built-in RPC proxy validator (src/proxy/config.ts) accepts bolt
    const seen: string[] = [];
    const unregister = registerFilterValidator('proxy', (config, p, ctx) => {
      seen.push(p);
      const shape = parseProxyFilterConfig(config, p, ctx);
      for (const proto of shape.downstreamProtocols) {
        if (proto !== 'bolt') ctx.error(`${p}.downstream_protocol`, `${JSON.stringify(proto)} is not a protocol we proxy`);
      }
      return shape as unknown as Record<string, unknown>;
    });
    try {
      const cfg = parseConfig(d);
      assert.deepEqual(seen, [`${F0}.config`]);
      const f = cfg.servers[0]!.listeners[0]!.filterChains[0]!.filters[0]!;
      assert.equal(f.type, 'proxy');
      assert.deepEqual((f.config as any).downstreamProtocols, ['bolt']);
      assert.equal((f.config as any).routerConfigName, 'r0');
      d.servers[0].listeners[0].filter_chains[0].filters[0].config.Downstream_Protocol = 'Thrift';
      assert.throws(() => parseConfig(d), new RegExp(`${F0.replace(/[[\].]/g, '\\$&')}\\.config\\.downstream_protocol: "Thrift" is not a protocol we proxy`));
    } finally {
      unregister();
    }
    assert.throws(() => parseConfig(d), /downstream_protocol: "Thrift" is not a supported proxy protocol yet/, 'unregistering restores the built-in validator');
  });

  test('a registered stream filter kind validates its config (the one registry, src/api/stream-filter.ts)', () => {
    const d = base();
    d.servers[0].listeners[0].stream_filters = [{ type: 'acme_guard', config: { allow: ['10.0.0.0/8'] } }];
    assert.throws(() => parseConfig(d), /"acme_guard" stream filter is not supported; refusing to run without it/, 'refused before the kind exists');
    const unregister = registerStreamFilterKind<{ checked: boolean; config: unknown }>({
      type: 'acme_guard',
      validate: (config, path, ctx) => {
        if ((config as { allow?: unknown }).allow === undefined) {
          ctx.error(`${path}.allow`, 'is required');
          return undefined;
        }
        return { checked: true, config };
      },
      create: () => ({ phase: DecodePhase.BeforeRoute }),
    });
    try {
      const cfg = parseConfig(d);
      assert.deepEqual(cfg.servers[0]!.listeners[0]!.streamFilters[0], { type: 'acme_guard', config: { value: { checked: true, config: { allow: ['10.0.0.0/8'] } } } });
      d.servers[0].listeners[0].stream_filters = [{ type: 'acme_guard', config: {} }];
      assert.throws(() => parseConfig(d), /stream_filters\[0\]\.config\.allow: is required/, 'the kind\'s errors carry the JSON path');
    } finally {
      unregister();
    }
    d.servers[0].listeners[0].stream_filters = [{ type: 'acme_guard', config: { allow: [] } }];
    assert.throws(() => parseConfig(d), /"acme_guard" stream filter is not supported/, 'unregistering removes the kind');
  });
});

describe('config: value helpers', () => {
  test('Go durations', () => {
    const ok: [string, number][] = [
      ['30s', 30e9], ['500ms', 500e6], ['1m', 60e9], ['1h', 3600e9], ['1.5s', 1.5e9], ['1h30m', 5400e9], ['2us', 2000],
      ['2µs', 2000], ['.5s', 0.5e9], ['0', 0], ['10ns', 10], ['1m30.5s', 90.5e9],
    ];
    for (const [s, ns] of ok) assert.equal(parseGoDurationNs(s), ns, s);
    for (const bad of ['', '30', 's', '1.5', '1d', '--1s', '1 s', 'abc', '5sec']) assert.equal(parseGoDurationNs(bad), undefined, bad);
    assert.equal(parseGoDurationNs('-2s'), -2e9);
  });

  test('sub-millisecond durations round up instead of turning into 0 (= disabled)', () => {
    const d = base();
    d.servers[0].listeners[0].connection_idle_timeout = '10us';
    assert.equal(parseConfig(d).servers[0]!.listeners[0]!.connectionIdleTimeoutMs, 1);
  });

  test('host:port', () => {
    assert.deepEqual(parseHostPort('[::1]:80'), { host: '::1', port: 80 });
    assert.deepEqual(parseHostPort('[0:0:0:0:0:0:0:1]:80'), { host: '::1', port: 80 });
    assert.deepEqual(parseHostPort('LocalHost:8080'), { host: 'localhost', port: 8080 });
    assert.deepEqual(parseHostPort('svc-a.ns.svc.cluster.local:9000'), { host: 'svc-a.ns.svc.cluster.local', port: 9000 });
    assert.deepEqual(parseHostPort(':2045', { allowEmptyHost: true }), { host: '0.0.0.0', port: 2045 });
    assert.equal(parseHostPort(':2045'), 'missing host');
    assert.equal(parseHostPort('1.2.3:80'), 'invalid host');
    assert.equal(parseHostPort('[::1]80'), 'missing port');
    assert.equal(parseHostPort('[zz]:80'), 'bracketed host is not an IPv6 address');
    assert.equal(parseHostPort('h:http'), 'invalid port');
    assert.deepEqual(parseHostPort('127.0.0.1:0', { allowPortZero: true }), { host: '127.0.0.1', port: 0 });
  });

  test('CIDR and port lists', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', length: 8 });
    assert.deepEqual(parseCidr('2001:DB8::/32'), { address: '2001:db8::', length: 32 });
    assert.deepEqual(parseCidr('1.2.3.4'), { address: '1.2.3.4', length: 32 });
    assert.equal(typeof parseCidr('1.2.3.4/40'), 'string');
    assert.equal(typeof parseCidr('nope/8'), 'string');
    assert.equal(parsePortList('80, 443,8000-8100'), '80,443,8000-8100');
    assert.equal(parsePortList(8080), '8080');
    assert.equal(typeof parsePortList('70000'), 'object');
    assert.equal(typeof parsePortList('a-b'), 'object');
  });

  test('parseTcpProxyConfig standalone throws a ConfigError naming the path', () => {
    assert.deepEqual(parseTcpProxyConfig({ cluster: 'x' }, 'tcp'), { statPrefix: 'tcp_proxy', cluster: 'x', routes: [], idleTimeoutMs: 90_000, maxConnectAttempts: 3 });
    assert.throws(() => parseTcpProxyConfig({ cluster: 'x', idle_timeout: 'soon' }, 'tcp'), /tcp\.idle_timeout: "soon" is not a duration/);
    assert.throws(() => parseTcpProxyConfig('x', 'tcp'), /tcp: "x" must be an object/);
  });
});

describe('config: embedded default.json', () => {
  test('loads without warnings, loopback only, MOSN spelling', () => {
    for (const cfg of [loadDefaultConfig(), loadConfigFile(DEFAULT_CONFIG_PATH), loadConfigFile(path.join(FIXTURES, '..', '..', '..', 'src', 'config', 'default.json'))]) {
      assert.deepEqual(cfg.warnings, []);
      const s = cfg.servers[0]!;
      assert.equal(s.processor, 1);
      assert.equal(s.defaultLogLevel, 'info');
      const l = s.listeners[0]!;
      assert.deepEqual(l.address, { host: '127.0.0.1', port: 2045 });
      assert.equal(l.bindPort, true);
      const tp = l.filterChains[0]!.filters[0]!.config as unknown as TcpProxyConfig;
      assert.equal(tp.cluster, 'local_service');
      const c = cfg.clusters.find((x) => x.name === 'local_service')!;
      assert.deepEqual(c.hosts.map((h) => h.address), [{ host: '127.0.0.1', port: 8080 }]);
      assert.deepEqual(cfg.admin.address, { host: '127.0.0.1', port: 34901 });
      const hosts = [...s.listeners.map((x) => x.address.host), cfg.admin.address.host];
      assert.ok(hosts.every((h) => h === '127.0.0.1'), 'our defaults never bind a wildcard address');
    }
    const text = fs.readFileSync(DEFAULT_CONFIG_PATH, 'utf8');
    assert.ok(text.includes('"cluster_manager"') && text.includes('"filter_chains"') && text.includes('"socket_address"'));
  });
});

describe('config: issues print well', () => {
  test('an issue stringifies as "path: message"', () => {
    const r = validateConfigFile(path.join(FIXTURES, 'tls_enabled.json'));
    assert.ok(r.errors.length > 0);
    for (const e of r.errors) assert.equal(`${e}`, `${e.path}: ${e.message}`);
  });
});
