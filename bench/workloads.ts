// Workload registry. Each workload names the Outrigger feature(s) it needs and
// whether the harness has a driver for it yet. Workloads with no driver are
// reported as skipped (never faked); workloads whose driver exists but whose
// Outrigger feature does not run against the other peers and skip Outrigger.
import type { LoadKind } from './load/spec';
import type { ProxyMode } from './peers/configs';
import { CERT_LABEL, type CertKind } from './lib/certs';
import type { Unit } from './types';

export interface CaseDef {
  /** e.g. "tcp-rr c=1" */
  id: string;
  kind: LoadKind;
  connections: number;
  messageSize: number;
  /** throughput unit */
  unit: Unit;
  backend: 'echo' | 'source' | 'http' | 'bolt' | 'dubbo' | 'h2' | 'grpc';
  /** TLS cases: which of the proxy's TLS listeners (certificate kind) the case uses */
  listener?: CertKind;
  /** TLS cases: the certificate's key, for reports */
  cert?: string;
  /** h2/grpc: streams (requests, calls) in flight per connection */
  streams?: number;
  /** bolt, dubbo: requests in flight per connection (closed loop) */
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
  /** --streams override (h2, grpc: in flight per connection) */
  streams?: number;
}

/** Defaults of the bolt workload (MOSN's published SOFARPC report: 200 connections, 1 request in flight each). */
export const BOLT_DEFAULTS = { connections: 200, rate: 2000, pipeline: 1, bodyBytes: 1024 };

/** Defaults of the dubbo workload: the bolt workload's shape (1 KiB, 200 connections, 2,000/s). */
export const DUBBO_DEFAULTS = BOLT_DEFAULTS;

/** Defaults of the http2 workload: few connections, many streams, 1 KiB responses. */
export const H2_DEFAULTS = { connections: 4, streams: 100 };
/** Defaults of the grpc workload: unary calls, 1 KiB request and reply. */
export const GRPC_DEFAULTS = { connections: 4, streams: 10, messageBytes: 1024 };
/** tls-handshake: concurrent connect-handshake-echo-close loops, 64-byte echo. */
export const TLS_HANDSHAKE_DEFAULTS = { connections: 16, messageBytes: 64 };

/** tls-handshake / tls-resume: one case per certificate kind, `connections` connect loops each. */
function handshakeCases(kind: 'tls-handshake' | 'tls-resume', o: CaseOptions): CaseDef[] {
  const c = o.connections ?? TLS_HANDSHAKE_DEFAULTS.connections;
  return (['ecdsa', 'rsa'] as const).map((k) => ({
    id: `${kind} ${k === 'ecdsa' ? 'ecdsa-p256' : 'rsa-2048'} c=${c}`,
    kind,
    connections: c,
    messageSize: TLS_HANDSHAKE_DEFAULTS.messageBytes,
    unit: 'handshakes/s' as const,
    backend: 'echo' as const,
    listener: k,
    cert: CERT_LABEL[k],
  }));
}

export interface WorkloadDef {
  name: string;
  description: string;
  /** Outrigger features this workload needs (see peers/index.ts outriggerFeatures) */
  needs: string[];
  /** proxy mode the peers are configured for */
  mode: ProxyMode;
  /** undefined when the harness can drive it, else what is missing */
  pending?: string;
  /** method notes printed under the workload in the report */
  notes?: string[];
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
    name: 'dubbo',
    description: 'Dubbo 2.x (hessian2): max req/s with 1 KiB arguments and results over 200 connections, and latency at a fixed rate (2,000/s)',
    needs: ['dubbo'],
    mode: 'dubbo',
    notes: [
      'Outrigger is the L7 Dubbo proxy (decodes each frame, routes on the service path, rewrites the 8-byte id); HAProxy, nginx and Envoy forward TCP (L4).',
    ],
    cases: (o) => {
      const c = o.connections ?? DUBBO_DEFAULTS.connections;
      const k = o.pipeline ?? DUBBO_DEFAULTS.pipeline;
      const rate = o.rate ?? DUBBO_DEFAULTS.rate;
      const base = { connections: c, messageSize: DUBBO_DEFAULTS.bodyBytes, unit: 'req/s' as const, backend: 'dubbo' as const };
      return [
        { ...base, id: `dubbo max c=${c}${k > 1 ? ` k=${k}` : ''}`, kind: 'dubbo', pipeline: k },
        { ...base, id: `dubbo ${rate}/s c=${c}`, kind: 'dubbo-rate', rate },
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
    description: 'h2c (HTTP/2 cleartext, prior knowledge), few connections with many concurrent GET streams, 1 KiB responses; req/s and latency',
    needs: ['http2'],
    mode: 'http2',
    notes: [
      'HAProxy speaks HTTP/2 on both sides (`proto h2` on bind and server); nginx accepts h2c (`listen ... http2`) but proxies to the backend over HTTP/1.1 keep-alive (nginx cannot proxy HTTP/2 upstream except with grpc_pass), so its upstream is the backend\'s HTTP/1.1 listener (same 1 KiB body).',
    ],
    cases: (o) => {
      const c = o.connections ?? H2_DEFAULTS.connections;
      const k = o.streams ?? H2_DEFAULTS.streams;
      return [{ id: `http2 c=${c} s=${k}`, kind: 'h2', connections: c, streams: k, messageSize: 0, unit: 'req/s', backend: 'h2' }];
    },
  },
  {
    name: 'grpc',
    description: 'gRPC unary calls (grpc-js client and server, 1 KiB request and reply), few connections with many calls in flight; calls/s and latency',
    needs: ['http2'],
    mode: 'grpc',
    notes: [
      'gRPC rides on HTTP/2: HAProxy `mode http` with `proto h2` on both sides; nginx `grpc_pass` (HTTP/2 upstream, keep-alive pool); Outrigger and Envoy their HTTP/2 proxy.',
    ],
    cases: (o) => {
      const c = o.connections ?? GRPC_DEFAULTS.connections;
      const k = o.streams ?? GRPC_DEFAULTS.streams;
      return [{ id: `grpc c=${c} s=${k}`, kind: 'grpc', connections: c, streams: k, messageSize: GRPC_DEFAULTS.messageBytes, unit: 'calls/s', backend: 'grpc' }];
    },
  },
  {
    name: 'tls-handshake',
    description: 'new TLS connection per request (full handshake, no resumption, 64-byte echo, close); handshakes/s, ECDSA P-256 and RSA-2048 certificates',
    needs: ['tls'],
    mode: 'tls',
    notes: [
      'Every peer terminates TLS and forwards plaintext TCP to the echo backend. The client disables tickets (SSL_OP_NO_TICKET) and never offers a session; a resumed session counts as an error. Servers have tickets and session caches off where configurable.',
    ],
    cases: (o) => handshakeCases('tls-handshake', o),
  },
  {
    name: 'tls-resume',
    description: 'like tls-handshake, but every connection offers the session (ticket) of its slot\'s previous one: resumed-handshake cost where the server resumes; ECDSA P-256 and RSA-2048 certificates',
    needs: ['tls'],
    mode: 'tls',
    notes: [
      'The client accepts tickets and offers each slot\'s latest session on its next connection; the note under each case says which share of the handshakes resumed. Peers configured without tickets or session cache (haproxy, nginx, node-tls, Envoy here) answer with full handshakes, so only a peer that resumes shows the resumed cost. Compare a peer\'s CPU per handshake here with its tls-handshake row.',
    ],
    cases: (o) => handshakeCases('tls-resume', o),
  },
  {
    name: 'tls-bulk',
    description: 'bulk download through a TLS-terminating listener (backend streams 64 KiB writes in plaintext, the peer encrypts); bytes/s, ECDSA P-256 certificate',
    needs: ['tls'],
    mode: 'tls',
    notes: ['Every peer terminates TLS and forwards plaintext TCP from the source backend; bytes are counted decrypted at the client.'],
    cases: (o) =>
      conns(o, [1, 16]).map((c) => ({
        id: `tls-bulk c=${c}`, kind: 'tls-bulk' as const, connections: c, messageSize: 0, unit: 'B/s' as const, backend: 'source' as const,
        listener: 'ecdsa' as const, cert: CERT_LABEL.ecdsa,
      })),
  },
];

export function workloadByName(name: string): WorkloadDef | undefined {
  return WORKLOADS.find((w) => w.name === name);
}
