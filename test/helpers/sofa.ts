/**
 * Bolt test peers: a real sofa-rpc-node server and client, raw Bolt sockets (frames built with
 * the project's encoder), a scriptable fake Bolt upstream, and MOSN-shaped proxy configs.
 */
import { FrameCollector } from './frames';
import * as net from 'node:net';
import { createBoltFrame, decodeFrame, encodeFrame, encodeHeartbeat, CMD_RPC_REQUEST, CMD_RPC_RESPONSE, TYPE_REQUEST, TYPE_ONEWAY, TYPE_RESPONSE, PROTO_V1, type BoltFrame } from '../../src/protocol/bolt';
import { listen } from './net';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const sofa = require('sofa-rpc-node') as any;

export const quietLogger = { info() {}, warn() {}, error() {}, debug() {} };

export interface SofaServer {
  readonly port: number;
  readonly server: any;
  close(): Promise<void>;
}

/** A sofa-rpc-node RpcServer on 127.0.0.1, port 0, with the given services. */
export async function startSofaServer(services: Record<string, Record<string, (...a: any[]) => Promise<unknown>>>): Promise<SofaServer> {
  const server = new sofa.server.RpcServer({ logger: quietLogger, port: 0 });
  for (const [interfaceName, impl] of Object.entries(services)) server.addService({ interfaceName }, impl);
  await server.start();
  await server.ready();
  const port = (server._servers[0] as net.Server).address() as net.AddressInfo;
  return {
    port: port.port,
    server,
    async close() {
      await server.close();
    },
  };
}

export interface SofaClient {
  readonly client: any;
  consumer(interfaceName: string): Promise<any>;
  close(): Promise<void>;
}

export function sofaClient(port: number): SofaClient {
  const client = new sofa.client.RpcClient({ logger: quietLogger });
  return {
    client,
    async consumer(interfaceName: string) {
      const c = client.createConsumer({ interfaceName, serverHost: `127.0.0.1:${port}` });
      await c.ready();
      return c;
    },
    async close() {
      await client.close();
    },
  };
}

/** sofa-bolt-node's encoder (writes real client frames, oneway and v2+CRC included). */
export function sofaEncoder(opts: { boltVersion?: number; crcEnable?: boolean } = {}): any {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const bolt = require('sofa-bolt-node');
  return bolt.encoder({ boltVersion: opts.boltVersion ?? 1, crcEnable: opts.crcEnable ?? false, codecType: 'hessian2', sentReqs: new Map() });
}

export interface ProxyConfigOpts {
  /** cluster name -> upstream ports */
  readonly clusters: Record<string, number[]>;
  /** MOSN router entries (routers[] of the one virtual host); default: service ".*" -> first cluster. */
  readonly routes?: unknown[];
  readonly downstreamProtocol?: string;
  readonly upstreamProtocol?: string;
  readonly extendConfig?: Record<string, unknown>;
  readonly circuitBreakers?: Record<string, number>;
  readonly listenerName?: string;
}

/** A config in the shape of MOSN's sofarpc samples (examples/codes/sofarpc-with-xprotocol-sample). */
export function boltProxyConfig(o: ProxyConfigOpts): Record<string, unknown> {
  const names = Object.keys(o.clusters);
  const routes = o.routes ?? [{ match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: names[0] } }];
  const proxy: Record<string, unknown> = {
    downstream_protocol: o.downstreamProtocol ?? 'bolt',
    router_config_name: 'bolt_router',
  };
  if (o.upstreamProtocol) proxy.upstream_protocol = o.upstreamProtocol;
  if (o.extendConfig) proxy.extend_config = o.extendConfig;
  return {
    servers: [
      {
        default_log_path: 'stdout',
        default_log_level: 'WARN',
        processor: 1,
        routers: [{ router_config_name: 'bolt_router', virtual_hosts: [{ name: 'sofa', domains: ['*'], routers: routes }] }],
        listeners: [
          {
            name: o.listenerName ?? 'bolt',
            address: '127.0.0.1:0',
            bind_port: true,
            filter_chains: [{ filters: [{ type: 'proxy', config: proxy }] }],
          },
        ],
      },
    ],
    cluster_manager: {
      clusters: names.map((name) => {
        const c: Record<string, unknown> = {
          name,
          type: 'SIMPLE',
          lb_type: 'LB_ROUNDROBIN',
          max_request_per_conn: 1024,
          conn_buffer_limit_bytes: 32768,
          hosts: o.clusters[name].map((p) => ({ address: `127.0.0.1:${p}` })),
        };
        if (o.circuitBreakers) c.circuit_breakers = [o.circuitBreakers];
        return c;
      }),
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
  };
}

// ---- raw frames

export function rawRequest(id: number, service: string | null, o: { proto?: number; oneway?: boolean; timeout?: number; content?: Buffer; headers?: Record<string, string> } = {}): Buffer {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (service !== null) headers.service = service;
  return encodeFrame({
    proto: o.proto ?? PROTO_V1,
    type: o.oneway ? TYPE_ONEWAY : TYPE_REQUEST,
    cmdcode: CMD_RPC_REQUEST,
    requestId: id,
    timeout: o.timeout ?? -1,
    className: 'com.alipay.sofa.rpc.core.request.SofaRequest',
    headers,
    content: o.content ?? Buffer.from(`payload-${id}`),
  });
}

export function rawResponse(req: BoltFrame, buf: Buffer, status = 0): Buffer {
  // Echo the request content so the client can check which request this answers.
  return encodeFrame({
    proto: req.proto,
    ver1: req.ver1 || 1,
    type: TYPE_RESPONSE,
    cmdcode: CMD_RPC_RESPONSE,
    requestId: req.requestId,
    status,
    className: 'com.alipay.sofa.rpc.core.response.SofaResponse',
    content: Buffer.from(buf.subarray(req.contentStart, req.contentEnd)),
  });
}

export { encodeHeartbeat };

/** Bolt frames arriving on a socket. */
export class BoltCollector extends FrameCollector<BoltFrame> {
  constructor(sock: net.Socket) {
    super(sock, createBoltFrame, decodeFrame);
  }
}

export interface FakeUpstream {
  readonly port: number;
  readonly server: net.Server;
  readonly sockets: Set<net.Socket>;
  /** Every request frame received, in order, with the socket it came on. */
  readonly requests: { frame: BoltFrame; buf: Buffer; sock: net.Socket }[];
  close(): Promise<void>;
}

/**
 * A Bolt server under test control: `onRequest` decides what to do with each request
 * (answer now, later, never). Heartbeats are acked unless `ackHeartbeats` is false.
 */
export async function fakeUpstream(
  onRequest: (req: { frame: BoltFrame; buf: Buffer; sock: net.Socket }, all: FakeUpstream) => void,
  opts: { ackHeartbeats?: boolean } = {},
): Promise<FakeUpstream> {
  const sockets = new Set<net.Socket>();
  const requests: { frame: BoltFrame; buf: Buffer; sock: net.Socket }[] = [];
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    const fc = new BoltCollector(s);
    let seen = 0;
    s.on('data', () => {
      while (seen < fc.frames.length) {
        const r = { ...fc.frames[seen++], sock: s };
        if (r.frame.isHeartbeat) {
          if (opts.ackHeartbeats !== false) {
            s.write(encodeFrame({ proto: r.frame.proto, ver1: r.frame.ver1 || 1, type: TYPE_RESPONSE, cmdcode: 0, requestId: r.frame.requestId }));
          }
          requests.push(r);
          continue;
        }
        requests.push(r);
        onRequest(r, up);
      }
    });
  });
  const port = await listen(server);
  const up: FakeUpstream = {
    port,
    server,
    sockets,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return up;
}

/** Connects and returns the socket with a frame collector. */
export function rawClient(port: number): Promise<BoltCollector> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(new BoltCollector(s)));
    s.once('error', reject);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
