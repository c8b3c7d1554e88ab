// Workload registry. Each workload names the Outrigger feature(s) it needs and
// whether the harness has a driver for it yet. Workloads with no driver are
// reported as skipped (never faked); workloads whose driver exists but whose
// Outrigger feature does not run against the other peers and skip Outrigger.
import type { LoadKind } from './load/spec';
import type { ProxyMode } from './peers/configs';

export interface CaseDef {
  /** e.g. "tcp-rr c=1" */
  id: string;
  kind: LoadKind;
  connections: number;
  messageSize: number;
  /** throughput unit */
  unit: 'req/s' | 'B/s';
  backend: 'echo' | 'source' | 'http' | 'bolt';
  /** bolt: requests in flight per connection (closed loop) */
  pipeline?: number;
  /** open-loop cases: the fixed request rate (req/s over all connections) */
  rate?: number;
}

export interface CaseOptions {
  /** --connections override */
  connections?: number;
  /** --rate override (fixed-rate cases) */
  rate?: number;
  /** --pipeline override (bolt max-rate case) */
  pipeline?: number;
}

/** Defaults of the bolt workload (MOSN's published SOFARPC report: 200 connections, 1 request in flight each). */
export const BOLT_DEFAULTS = { connections: 200, rate: 2000, pipeline: 1, bodyBytes: 1024 };

export interface WorkloadDef {
  name: string;
  description: string;
  /** Outrigger features this workload needs (see peers/index.ts outriggerFeatures) */
  needs: string[];
  /** proxy mode the peers are configured for */
  mode: ProxyMode;
  /** undefined when the harness can drive it, else what is missing */
  pending?: string;
  cases(o: CaseOptions): CaseDef[];
}

const conns = (o: CaseOptions, defaults: number[]): number[] => (o.connections ? [o.connections] : defaults);

export const WORKLOADS: WorkloadDef[] = [
  {
    name: 'tcp-bulk',
    description: 'bulk TCP download through the proxy (backend streams 64 KiB writes); bytes/s',
    needs: ['tcp_proxy'],
    mode: 'tcp',
    cases: (o) =>
      conns(o, [1, 64]).map((c) => ({ id: `tcp-bulk c=${c}`, kind: 'tcp-bulk', connections: c, messageSize: 0, unit: 'B/s', backend: 'source' })),
  },
  {
    name: 'tcp-rr',
    description: 'TCP request/response: 64-byte message echoed, closed loop per connection; req/s and latency',
    needs: ['tcp_proxy'],
    mode: 'tcp',
    cases: (o) =>
      conns(o, [1, 50]).map((c) => ({ id: `tcp-rr c=${c}`, kind: 'tcp-rr', connections: c, messageSize: 64, unit: 'req/s', backend: 'echo' })),
  },
  {
    name: 'bolt',
    description: 'SOFA Bolt: max req/s with 1 KiB bodies over 200 connections, and latency at a fixed rate (2,000/s)',
    needs: ['bolt'],
    mode: 'bolt',
    cases: (o) => {
      const c = o.connections ?? BOLT_DEFAULTS.connections;
      const k = o.pipeline ?? BOLT_DEFAULTS.pipeline;
      const rate = o.rate ?? BOLT_DEFAULTS.rate;
      const base = { connections: c, messageSize: BOLT_DEFAULTS.bodyBytes, unit: 'req/s' as const, backend: 'bolt' as const };
      return [
        { ...base, id: `bolt max c=${c}${k > 1 ? ` k=${k}` : ''}`, kind: 'bolt', pipeline: k },
        { ...base, id: `bolt ${rate}/s c=${c}`, kind: 'bolt-rate', rate },
      ];
    },
  },
  {
    name: 'http1',
    description: 'HTTP/1.1 keep-alive, 100 connections, GET with 1 KiB responses; req/s and latency',
    needs: ['http1'],
    mode: 'http1',
    cases: (o) =>
      conns(o, [100]).map((c) => ({ id: `http1 c=${c}`, kind: 'http1', connections: c, messageSize: 0, unit: 'req/s', backend: 'http' })),
  },
  {
    name: 'http2',
    description: 'h2c, few connections, many concurrent streams',
    needs: ['http2'],
    mode: 'http1',
    pending: 'h2c load driver and h2c backend not written yet',
    cases: () => [],
  },
  {
    name: 'grpc',
    description: 'gRPC unary calls',
    needs: ['grpc'],
    mode: 'http1',
    pending: 'gRPC driver not written yet',
    cases: () => [],
  },
  {
    name: 'tls-handshake',
    description: 'new TLS connections per second (full handshakes)',
    needs: ['tls'],
    mode: 'tcp',
    pending: 'TLS termination configs and handshake driver not written yet',
    cases: () => [],
  },
  {
    name: 'tls-bulk',
    description: 'bulk bytes/s over TLS-terminating listener',
    needs: ['tls'],
    mode: 'tcp',
    pending: 'TLS termination configs and bulk driver not written yet',
    cases: () => [],
  },
];

export function workloadByName(name: string): WorkloadDef | undefined {
  return WORKLOADS.find((w) => w.name === name);
}
