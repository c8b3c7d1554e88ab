/**
 * Dubbo test peers: a dubbo-remoting@2.1.4 provider (as the `protocol` of sofa-rpc-node's
 * RpcServer), a sofa-rpc-node consumer with dubbo-remoting, a dubbo2.js@2.3.9 DirectlyDubbo
 * consumer, raw Dubbo frames and MOSN-shaped proxy configs (examples/codes/dubbo client_config).
 */
import { FrameCollector } from './frames';
import * as net from 'node:net';
import { decodeDubboFrame, DubboFrame, encodeString } from '../../src/protocol/dubbo';
import { quietLogger } from './sofa';

/* eslint-disable @typescript-eslint/no-require-imports */
const sofa = require('sofa-rpc-node') as any;
const dubboProtocol = require('dubbo-remoting') as any;

export interface DubboProvider {
  readonly port: number;
  close(): Promise<void>;
}

/** A dubbo-remoting provider on port 0 with the given services (interface -> methods). */
export async function startDubboProvider(services: Record<string, Record<string, (...a: any[]) => Promise<unknown>>>, version = '1.0.0'): Promise<DubboProvider> {
  const server = new sofa.server.RpcServer({ logger: quietLogger, port: 0, protocol: dubboProtocol });
  for (const [interfaceName, impl] of Object.entries(services)) server.addService({ interfaceName, version }, impl);
  await server.start();
  await server.ready();
  const port = ((server._servers[0] as net.Server).address() as net.AddressInfo).port;
  return {
    port,
    async close() {
      await server.close();
    },
  };
}

/** A sofa-rpc-node RpcClient speaking Dubbo (dubbo-remoting) to host:port, no registry. */
export function sofaDubboClient(port: number): { client: any; consumer(interfaceName: string, version?: string): Promise<any>; close(): Promise<void> } {
  const client = new sofa.client.RpcClient({ logger: quietLogger, protocol: dubboProtocol });
  return {
    client,
    async consumer(interfaceName: string, version = '1.0.0') {
      const c = client.createConsumer({ interfaceName, version, serverHost: `127.0.0.1:${port}` });
      await c.ready();
      return c;
    },
    async close() {
      await client.close();
    },
  };
}

/** dubbo2.js DirectlyDubbo (its own codec) to host:port; methods map names to argument builders. */
export function dubbo2js(port: number, dubboInterface: string, methods: Record<string, (...a: any[]) => unknown[]>, opts: { version?: string; group?: string; timeoutS?: number } = {}): any {
  const { DirectlyDubbo } = require('dubbo2.js');
  const d = DirectlyDubbo.from({ dubboAddress: `127.0.0.1:${port}`, dubboVersion: '2.0.2', dubboInvokeTimeout: opts.timeoutS ?? 10 });
  const svc = d.proxyService({ dubboInterface, version: opts.version ?? '1.0.0', group: opts.group, methods });
  return { dubbo: d, svc };
}

/** dubbo2.js's java type helpers (js-to-java). */
export const java = require('js-to-java') as any;

/** Closes a DirectlyDubbo's socket (it has no close()) without its reconnect loop (20 tries, 3 s apart). */
export function closeDubbo2js(d: any): void {
  const w = d._socketWorker;
  if (w) w._retry = 0; // its close handler then ends the worker instead of scheduling a reconnect
  if (w && w._socket) w._socket.destroy();
  if (w && w._heartBeatTimer) clearInterval(w._heartBeatTimer);
}

// ---- raw frames

/** A hessian2 request body: version, path, service version, method, descriptor, args, attachments. */
export function dubboRequestBody(service: string, method: string, o: { version?: string | null; desc?: string; args?: Buffer; attachments?: Record<string, string> } = {}): Buffer {
  const parts = [encodeString('2.0.2'), encodeString(service), o.version === null ? Buffer.from([0x4e]) : encodeString(o.version ?? '1.0.0'), encodeString(method), encodeString(o.desc ?? 'Ljava/lang/String;')];
  parts.push(o.args ?? encodeString('hello'));
  const att = { path: service, interface: service, ...(o.attachments ?? {}) };
  parts.push(Buffer.from([0x48]));
  for (const [k, v] of Object.entries(att)) parts.push(encodeString(k), encodeString(v));
  parts.push(Buffer.from([0x5a]));
  return Buffer.concat(parts);
}

/** A whole Dubbo frame. */
export function dubboFrame(id: number, flag: number, status: number, body: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h[0] = 0xda;
  h[1] = 0xbb;
  h[2] = flag;
  h[3] = status;
  h.writeUInt32BE(Math.floor(id / 2 ** 32), 4);
  h.writeUInt32BE(id >>> 0, 8);
  h.writeUInt32BE(body.length, 12);
  return Buffer.concat([h, body]);
}

export function dubboRequest(id: number, service: string, method = 'echo', o: Parameters<typeof dubboRequestBody>[2] & { oneway?: boolean } = {}): Buffer {
  return dubboFrame(id, o.oneway ? 0x82 : 0xc2, 0, dubboRequestBody(service, method, o));
}

/** Dubbo frames arriving on a socket. */
export class DubboCollector extends FrameCollector<DubboFrame> {
  constructor(sock: net.Socket) {
    super(sock, () => new DubboFrame(), decodeDubboFrame);
  }
}

export function dubboRawClient(port: number): Promise<DubboCollector> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(new DubboCollector(s)));
    s.once('error', reject);
  });
}

/** A config in the shape of MOSN's examples/codes/dubbo client_config.json (port 0, admin on port 0). */
export function dubboProxyConfig(o: { clusters: Record<string, number[]>; routes?: unknown[]; downstreamProtocol?: string; extendConfig?: Record<string, unknown>; listenerName?: string; fallbackCluster?: number[] }): Record<string, unknown> {
  const names = Object.keys(o.clusters);
  const routes = o.routes ?? [{ match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: names[0] } }];
  const proxy: Record<string, unknown> = { downstream_protocol: o.downstreamProtocol ?? 'dubbo', router_config_name: 'client_router' };
  if (o.extendConfig) proxy.extend_config = o.extendConfig;
  const filters: unknown[] = [{ type: 'proxy', config: proxy }];
  const clusters: Record<string, number[]> = { ...o.clusters };
  if (o.fallbackCluster) {
    proxy.fallback_for_unknown_protocol = true;
    filters.push({ type: 'tcp_proxy', config: { cluster: 'fallback_tcp' } });
    clusters.fallback_tcp = o.fallbackCluster;
  }
  return {
    servers: [
      {
        default_log_path: 'stdout',
        default_log_level: 'WARN',
        processor: 1,
        routers: [{ router_config_name: 'client_router', virtual_hosts: [{ name: 'clientHost', domains: ['*'], routers: routes }] }],
        listeners: [{ name: o.listenerName ?? 'clientListener', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters }] }],
      },
    ],
    cluster_manager: {
      clusters: Object.keys(clusters).map((name) => ({
        Name: name,
        type: 'SIMPLE',
        lb_type: 'LB_RANDOM',
        max_request_per_conn: 1024,
        conn_buffer_limit_bytes: 32768,
        hosts: clusters[name].map((p) => ({ address: `127.0.0.1:${p}` })),
      })),
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
  };
}
