// Config generators for every proxy peer. Each produces the same topology:
// one listener on 127.0.0.1:<port> forwarding to one backend 127.0.0.1:<backendPort>,
// one worker/thread, logging off or at warning level.
// Mode `bolt`: Outrigger runs its Bolt L7 proxy (routing on the `service` header);
// HAProxy, nginx and Envoy have no Bolt codec and forward TCP (L4).
// Mode `dubbo`: likewise, Outrigger's Dubbo L7 proxy (routing on the `service` path).
// MOSN gets the Outrigger config (MOSN's format) in every mode: L7 for bolt and dubbo too.
// Mode `tls`: one TLS-terminating listener per certificate kind (ECDSA, RSA), each
// forwarding plaintext TCP to the backend.
// Modes `http2`, `grpc`: h2c listener, HTTP/2 to the backend (nginx: HTTP/1.1 upstream
// for `http2`, grpc_pass for `grpc`).
export type ProxyMode = 'tcp' | 'http1' | 'bolt' | 'dubbo' | 'tls' | 'http2' | 'grpc';

import { BENCH_SERVICE as BOLT_BENCH_SERVICE } from '../load/bolt';
import { DUBBO_BENCH_SERVICE } from '../load/dubbo';
import type { CertFiles, CertKind } from '../lib/certs';

/** One TLS-terminating listener of a `tls` mode config. */
export interface TlsListener {
  name: CertKind;
  port: number;
  cert: CertFiles;
}

/** Whether a peer looks into the protocol (L7) or forwards bytes (L4) in a mode. */
export function proxyLayer(peer: string, mode: ProxyMode): 'L4' | 'L7' | undefined {
  if (peer === 'direct') return undefined;
  if (mode === 'tcp') return 'L4';
  if (mode === 'http1' || mode === 'http2' || mode === 'grpc') return 'L7';
  if (mode === 'tls') return 'L4';
  // bolt, dubbo: Outrigger (every variant) and MOSN decode the protocol; the others forward TCP.
  return peer.startsWith('outrigger') || peer === 'mosn' ? 'L7' : 'L4';
}

/** Modes where Outrigger decodes an RPC protocol while the other proxies forward TCP (layer shown in tables). */
export const rpcMode = (m: ProxyMode): boolean => m === 'bolt' || m === 'dubbo';

export interface ConfigInput {
  mode: ProxyMode;
  port: number;
  backendPort: number;
  /** Directory for pid/log/temp files (nginx) */
  dir: string;
  adminPort?: number;
  /** mode `tls`: the TLS listeners (the first one's port is `port`) */
  tls?: TlsListener[];
  /** mode `http2`, nginx only: the backend's HTTP/1.1 listener (nginx has no HTTP/2 upstream) */
  http1BackendPort?: number;
}

const isH2 = (m: ProxyMode): boolean => m === 'http2' || m === 'grpc';

/** The TLS listeners of a `tls` config; a config without any gets none (and an error from the caller). */
function tlsListeners(c: ConfigInput): TlsListener[] {
  if (!c.tls?.length) throw new Error('mode tls needs certificates (ConfigInput.tls)');
  return c.tls;
}

/** Outrigger: MOSN JSON config. */
export function outriggerConfig(c: ConfigInput): object {
  if (c.mode === 'tls') return outriggerTlsConfig(c);
  if (isH2(c.mode)) return outriggerHttpConfig(c, 'Http2');
  if (c.mode === 'http1') return outriggerHttpConfig(c, 'Http1');
  // bolt, dubbo: MOSN `proxy` filter with the codec on both sides, a router on `service`
  const rpc = c.mode === 'bolt' || c.mode === 'dubbo' ? c.mode : undefined;
  const rpcService = c.mode === 'dubbo' ? DUBBO_BENCH_SERVICE : BOLT_BENCH_SERVICE;
  const filters =
    c.mode === 'tcp' || !rpc
      ? [{ type: 'tcp_proxy', config: { stat_prefix: 'bench', cluster: 'backend' } }]
      : [{ type: 'proxy', config: { downstream_protocol: rpc, upstream_protocol: rpc, router_config_name: `${rpc}_router` } }];
  return {
    servers: [
      {
        default_log_level: 'WARN',
        processor: 1,
        listeners: [{ name: c.mode, address: `127.0.0.1:${c.port}`, bind_port: true, filter_chains: [{ filters }] }],
        ...(rpc
          ? {
              routers: [
                {
                  router_config_name: `${rpc}_router`,
                  virtual_hosts: [
                    {
                      name: 'bench',
                      domains: ['*'],
                      routers: [{ match: { headers: [{ name: 'service', value: rpcService }] }, route: { cluster_name: 'backend' } }],
                    },
                  ],
                },
              ],
            }
          : {}),
      },
    ],
    cluster_manager: {
      clusters: [{ name: 'backend', type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: [{ address: `127.0.0.1:${c.backendPort}` }] }],
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: c.adminPort ?? 0 } } },
  };
}

const outriggerCommon = (c: ConfigInput): object => ({
  cluster_manager: {
    clusters: [{ name: 'backend', type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: [{ address: `127.0.0.1:${c.backendPort}` }] }],
  },
  admin: { address: { socket_address: { address: '127.0.0.1', port_value: c.adminPort ?? 0 } } },
});

/** Outrigger `tls`: per certificate a listener whose filter chain has a MOSN tls_context (file paths) and tcp_proxy. */
function outriggerTlsConfig(c: ConfigInput): object {
  return {
    servers: [
      {
        default_log_level: 'WARN',
        processor: 1,
        listeners: tlsListeners(c).map((t) => ({
          name: `tls-${t.name}`,
          address: `127.0.0.1:${t.port}`,
          bind_port: true,
          filter_chains: [
            {
              tls_context: { status: true, cert_chain: t.cert.cert, private_key: t.cert.key, min_version: 'tlsv1_2', max_version: 'tlsv1_3' },
              filters: [{ type: 'tcp_proxy', config: { stat_prefix: `tls_${t.name}`, cluster: 'backend' } }],
            },
          ],
        })),
      },
    ],
    ...outriggerCommon(c),
  };
}

/** Outrigger `http1`, `http2`/`grpc`: MOSN `proxy` filter Http1 -> Http1 or Http2 -> Http2, router to cluster `backend`. */
function outriggerHttpConfig(c: ConfigInput, proto: 'Http1' | 'Http2'): object {
  return {
    servers: [
      {
        default_log_level: 'WARN',
        processor: 1,
        listeners: [
          {
            name: c.mode,
            address: `127.0.0.1:${c.port}`,
            bind_port: true,
            filter_chains: [
              { filters: [{ type: 'proxy', config: { downstream_protocol: proto, upstream_protocol: proto, router_config_name: 'h2_router' } }] },
            ],
          },
        ],
        routers: [
          {
            router_config_name: 'h2_router',
            virtual_hosts: [{ name: 'bench', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'backend' } }] }],
          },
        ],
      },
    ],
    ...outriggerCommon(c),
  };
}

/**
 * MOSN v0.26 (the project whose config format Outrigger reads): the Outrigger config of the
 * mode, which is MOSN's own shape (`tcp_proxy`; `proxy` filter with `bolt`/`dubbo` on both
 * sides routing on `service`; `Http1`/`Http2` proxy with a prefix router; per-certificate
 * `tls_context` + `tcp_proxy`), with `processor: 1` and MOSN's logs written under `dir`.
 */
export function mosnConfig(c: ConfigInput): object {
  const doc = outriggerConfig(c) as { servers: Record<string, unknown>[] };
  doc.servers[0]['default_log_path'] = `${c.dir}/mosn.log`;
  return doc;
}

/**
 * HAProxy 2.6: one thread. `mode tcp`; or `mode http` with keep-alive both sides;
 * `tls`: `bind ... ssl crt` per certificate, TLS 1.2+, no tickets, no session cache;
 * `http2`/`grpc`: h2 on the bind (prior knowledge) and on the server line.
 */
export function haproxyConfig(c: ConfigInput): string {
  if (c.mode === 'tls') {
    return [
      'global',
      '  nbthread 1',
      '  maxconn 4096',
      '  ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets',
      '  tune.ssl.cachesize 0',
      '',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      '',
      ...tlsListeners(c).flatMap((t) => [
        `listen tls_${t.name}`,
        `  bind 127.0.0.1:${t.port} ssl crt ${t.cert.pem}`,
        `  server backend 127.0.0.1:${c.backendPort}`,
        '',
      ]),
    ].join('\n');
  }
  const h2 = isH2(c.mode);
  const http = c.mode === 'http1' || h2;
  return [
    'global',
    '  nbthread 1',
    '  maxconn 4096',
    '',
    'defaults',
    `  mode ${http ? 'http' : 'tcp'}`,
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    ...(http ? ['  option http-keep-alive', '  http-reuse always'] : []),
    '',
    'listen bench',
    `  bind 127.0.0.1:${c.port}${h2 ? ' proto h2' : ''}`,
    `  server backend 127.0.0.1:${c.backendPort}${h2 ? ' proto h2' : ''}`,
    '',
  ].join('\n');
}

export const NGINX_STREAM_MODULE_PATHS = [
  '/usr/lib/nginx/modules/ngx_stream_module.so',
  '/usr/share/nginx/modules/ngx_stream_module.so',
  '/usr/lib64/nginx/modules/ngx_stream_module.so',
];

/** Modes nginx serves in its `http` block (the others use the stream module). */
export const nginxUsesStream = (m: ProxyMode): boolean => m === 'tcp' || m === 'bolt' || m === 'dubbo' || m === 'tls';

/** nginx 1.22: one worker, foreground, every path under `dir`. */
export function nginxConfig(c: ConfigInput, streamModule: string | undefined): string {
  const head = [
    ...(nginxUsesStream(c.mode) && streamModule ? [`load_module ${streamModule};`] : []),
    'daemon off;',
    'worker_processes 1;',
    `pid ${c.dir}/nginx.pid;`,
    `error_log ${c.dir}/error.log warn;`,
    'events { worker_connections 20000; multi_accept on; }',
  ];
  if (c.mode === 'tls') {
    return [
      ...head,
      'stream {',
      '  ssl_protocols TLSv1.2 TLSv1.3;',
      '  ssl_session_tickets off;',
      '  ssl_session_cache off;',
      ...tlsListeners(c).map(
        (t) =>
          `  server { listen 127.0.0.1:${t.port} ssl; ssl_certificate ${t.cert.cert}; ssl_certificate_key ${t.cert.key}; proxy_pass 127.0.0.1:${c.backendPort}; }`,
      ),
      '}',
      '',
    ].join('\n');
  }
  if (nginxUsesStream(c.mode)) {
    return [
      ...head,
      'stream {',
      `  server { listen 127.0.0.1:${c.port}; proxy_pass 127.0.0.1:${c.backendPort}; }`,
      '}',
      '',
    ].join('\n');
  }
  return [
    ...head,
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${c.dir}/client_body;`,
    `  proxy_temp_path ${c.dir}/proxy;`,
    `  fastcgi_temp_path ${c.dir}/fastcgi;`,
    `  uwsgi_temp_path ${c.dir}/uwsgi;`,
    `  scgi_temp_path ${c.dir}/scgi;`,
    '  keepalive_requests 1000000;',
    // http2: nginx has no HTTP/2 upstream (except grpc_pass): HTTP/1.1 keep-alive to the backend's HTTP/1.1 listener.
    `  upstream backend { server 127.0.0.1:${c.mode === 'http2' ? (c.http1BackendPort ?? c.backendPort) : c.backendPort}; keepalive 256; }`,
    '  server {',
    `    listen 127.0.0.1:${c.port}${isH2(c.mode) ? ' http2' : ''};`,
    c.mode === 'grpc'
      ? '    location / { grpc_pass grpc://backend; }'
      : '    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Envoy v3 static bootstrap (JSON is valid YAML): tcp_proxy or http_connection_manager. */
export function envoyConfig(c: ConfigInput): object {
  const http = c.mode === 'http1' || isH2(c.mode);
  const filter =
    !http
      ? {
          name: 'envoy.filters.network.tcp_proxy',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
            stat_prefix: 'bench',
            cluster: 'backend',
          },
        }
      : {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
            stat_prefix: 'bench',
            codec_type: 'AUTO',
            route_config: {
              name: 'local',
              virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'backend' } }] }],
            },
            http_filters: [
              { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
            ],
          },
        };
  // tls: DownstreamTlsContext per listener, no session tickets, no stateful resumption.
  const listeners =
    c.mode === 'tls'
      ? tlsListeners(c).map((t) => ({
          name: `tls_${t.name}`,
          address: { socket_address: { address: '127.0.0.1', port_value: t.port } },
          filter_chains: [
            {
              filters: [filter],
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
                  disable_stateless_session_resumption: true,
                  disable_stateful_session_resumption: true,
                  common_tls_context: {
                    tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
                    tls_certificates: [{ certificate_chain: { filename: t.cert.cert }, private_key: { filename: t.cert.key } }],
                  },
                },
              },
            },
          ],
        }))
      : [{ name: 'bench', address: { socket_address: { address: '127.0.0.1', port_value: c.port } }, filter_chains: [{ filters: [filter] }] }];
  const h2Upstream = isH2(c.mode)
    ? {
        typed_extension_protocol_options: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            explicit_http_config: { http2_protocol_options: {} },
          },
        },
      }
    : {};
  return {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: c.adminPort ?? 0 } } },
    static_resources: {
      listeners,
      clusters: [
        {
          name: 'backend',
          type: 'STATIC',
          connect_timeout: '5s',
          ...h2Upstream,
          load_assignment: {
            cluster_name: 'backend',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: c.backendPort } } } }] }],
          },
        },
      ],
    },
  };
}
