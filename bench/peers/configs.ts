// Config generators for every proxy peer. Each produces the same topology:
// one listener on 127.0.0.1:<port> forwarding to one backend 127.0.0.1:<backendPort>,
// one worker/thread, logging off or at warning level.
// Mode `bolt`: Outrigger runs its Bolt L7 proxy (routing on the `service` header);
// HAProxy, nginx and Envoy have no Bolt codec and forward TCP (L4).
export type ProxyMode = 'tcp' | 'http1' | 'bolt';

import { BENCH_SERVICE as BOLT_BENCH_SERVICE } from '../load/bolt';

/** Whether a peer looks into the protocol (L7) or forwards bytes (L4) in a mode. */
export function proxyLayer(peer: string, mode: ProxyMode): 'L4' | 'L7' | undefined {
  if (peer === 'direct') return undefined;
  if (mode === 'tcp') return 'L4';
  if (mode === 'http1') return 'L7';
  return peer === 'outrigger' ? 'L7' : 'L4';
}

export interface ConfigInput {
  mode: ProxyMode;
  port: number;
  backendPort: number;
  /** Directory for pid/log/temp files (nginx) */
  dir: string;
  adminPort?: number;
}

/** Outrigger: MOSN JSON config. */
export function outriggerConfig(c: ConfigInput): object {
  const bolt = c.mode === 'bolt';
  const filters =
    c.mode === 'tcp'
      ? [{ type: 'tcp_proxy', config: { stat_prefix: 'bench', cluster: 'backend' } }]
      : bolt
        ? [{ type: 'proxy', config: { downstream_protocol: 'bolt', upstream_protocol: 'bolt', router_config_name: 'bolt_router' } }]
        : [
          {
            type: 'proxy',
            config: { downstream_protocol: 'Http1', upstream_protocol: 'Http1', router_config_name: 'bench_router' },
          },
          {
            type: 'connection_manager',
            config: {
              router_config_name: 'bench_router',
              virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'backend' } }] }],
            },
          },
        ];
  return {
    servers: [
      {
        default_log_level: 'WARN',
        processor: 1,
        listeners: [{ name: c.mode, address: `127.0.0.1:${c.port}`, bind_port: true, filter_chains: [{ filters }] }],
        ...(bolt
          ? {
              routers: [
                {
                  router_config_name: 'bolt_router',
                  virtual_hosts: [
                    {
                      name: 'bench',
                      domains: ['*'],
                      routers: [{ match: { headers: [{ name: 'service', value: BOLT_BENCH_SERVICE }] }, route: { cluster_name: 'backend' } }],
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

/** HAProxy 2.6: one thread, `mode tcp` or `mode http` with keep-alive both sides. */
export function haproxyConfig(c: ConfigInput): string {
  const http = c.mode === 'http1';
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
    `  bind 127.0.0.1:${c.port}`,
    `  server backend 127.0.0.1:${c.backendPort}`,
    '',
  ].join('\n');
}

export const NGINX_STREAM_MODULE_PATHS = [
  '/usr/lib/nginx/modules/ngx_stream_module.so',
  '/usr/share/nginx/modules/ngx_stream_module.so',
  '/usr/lib64/nginx/modules/ngx_stream_module.so',
];

/** nginx 1.22: one worker, foreground, every path under `dir`. */
export function nginxConfig(c: ConfigInput, streamModule: string | undefined): string {
  const head = [
    ...(c.mode !== 'http1' && streamModule ? [`load_module ${streamModule};`] : []),
    'daemon off;',
    'worker_processes 1;',
    `pid ${c.dir}/nginx.pid;`,
    `error_log ${c.dir}/error.log warn;`,
    'events { worker_connections 20000; multi_accept on; }',
  ];
  if (c.mode !== 'http1') {
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
    `  upstream backend { server 127.0.0.1:${c.backendPort}; keepalive 256; }`,
    '  server {',
    `    listen 127.0.0.1:${c.port};`,
    '    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Envoy v3 static bootstrap (JSON is valid YAML): tcp_proxy or http_connection_manager. */
export function envoyConfig(c: ConfigInput): object {
  const filter =
    c.mode !== 'http1'
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
  return {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: c.adminPort ?? 0 } } },
    static_resources: {
      listeners: [
        {
          name: 'bench',
          address: { socket_address: { address: '127.0.0.1', port_value: c.port } },
          filter_chains: [{ filters: [filter] }],
        },
      ],
      clusters: [
        {
          name: 'backend',
          type: 'STATIC',
          connect_timeout: '5s',
          load_assignment: {
            cluster_name: 'backend',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: c.backendPort } } } }] }],
          },
        },
      ],
    },
  };
}
