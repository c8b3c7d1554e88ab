/**
 * MOSN's `mirror` stream filter (after route): the route's `request_mirror_policies` name the
 * clusters that get a copy of the request; `amplification` copies go to each. The copy goes out
 * through the cluster manager (the cluster's lb, pools and max_requests breaker) when the main
 * request's first attempt is sent; its answer is discarded and it never delays or fails the main
 * request (fire and forget).
 *
 *   { "type": "mirror", "config": { "amplification": 1, "max_body_bytes": 65536,
 *                                   "max_concurrent": 64, "timeout": "5s" } }
 *
 * Bounded: a worker keeps at most `max_concurrent` mirrors in flight; HTTP bodies are mirrored
 * only when the main path buffered them whole (known length up to the retry buffer) and no
 * larger than `max_body_bytes`. Per mirror target cluster, shared by every worker: copies sent,
 * dropped by each bound, failed (admin stats `mirror.*` of the cluster, Prometheus
 * outrigger_cluster_mirror_*). Policies that came over xDS (Envoy's router mirrors) are sent by
 * the router itself (routerMirrorHttp) with this filter's default bounds.
 * HTTP copies carry the authority with "-shadow" appended, as Envoy's do.
 */
import { DecodePhase, FilterStatus, registerStreamFilterKind, type FilterStream, type StreamFilter, type StreamFilterValidationContext } from '../../../api/stream-filter';
import { intInRange } from '../config-int';
import type { UpstreamRequest, UpstreamSink, UpstreamAttempt } from '../../../http/upstream';
import type { startH1 as StartH1 } from '../../../http/upstream-h1';
import type { startH2 as StartH2 } from '../../../http/upstream-h2';
import type { ErrorKind, XCodec, XFrame } from '../../../protocol/types';
import type { ActiveStream } from '../../../stream/pipeline';
import { hostPool, sendOverflowed, type PendingRequest, type PoolSettings, type StreamReceiver } from '../../../stream/upstream-pool';
import type { Cluster, ClusterManager } from '../../../upstream/cluster';
import { H, healthTable } from '../../../upstream/health/shared';
import type { Host } from '../../../upstream/lb';
import type { MirrorPolicy } from './policy';

/* eslint-disable @typescript-eslint/no-require-imports */
// The HTTP upstream engines (node:http2, the HTTP/1.1 codec) load with the first HTTP mirror copy (issue 15: idle memory).
let h1Start: typeof StartH1 | null = null;
let h2Start: typeof StartH2 | null = null;
const upstreamH1 = (): typeof StartH1 => (h1Start ??= (require('../../../http/upstream-h1') as typeof import('../../../http/upstream-h1')).startH1);
const upstreamH2 = (): typeof StartH2 => (h2Start ??= (require('../../../http/upstream-h2') as typeof import('../../../http/upstream-h2')).startH2);
/* eslint-enable @typescript-eslint/no-require-imports */

export interface MirrorConfig {
  readonly amplification: number;
  readonly maxBodyBytes: number;
  readonly maxConcurrent: number;
  readonly timeoutMs: number;
}

/** What one request mirrors (decided by the filter; sent by the adapter with its first attempt). */
export interface MirrorJob {
  readonly clusters: readonly string[];
  readonly cfg: MirrorConfig;
}

const KEYS = new Set(['amplification', 'max_body_bytes', 'max_concurrent', 'timeout']);

function validateMirror(raw: unknown, path: string, ctx: StreamFilterValidationContext): MirrorConfig | undefined {
  const obj = raw === undefined || raw === null ? {} : raw;
  if (typeof obj !== 'object' || Array.isArray(obj)) {
    ctx.error(path, `${JSON.stringify(raw)} must be an object`);
    return undefined;
  }
  const o = obj as Record<string, unknown>;
  let ok = true;
  for (const k of Object.keys(o)) {
    if (!KEYS.has(k)) ctx.warn(`${path}.${k}`, `unknown key (mirror knows ${[...KEYS].join(', ')}); ignored`);
  }
  const int = (key: string, def: number, min: number, max: number): number => {
    const v = intInRange(o[key], def, min, max, `${path}.${key}`, ctx);
    if (v === undefined) ok = false;
    return v ?? def;
  };
  const amplification = int('amplification', 1, 1, 16);
  const maxBodyBytes = int('max_body_bytes', 65536, 0, 64 * 1024 * 1024);
  const maxConcurrent = int('max_concurrent', 64, 1, 65536);
  let timeoutMs = 5000;
  const t = o['timeout'];
  if (t !== undefined) {
    const m = typeof t === 'string' ? /^(\d+)(ms|s)$/.exec(t) : null;
    if (m === null || Number(m[1]) === 0) {
      ctx.error(`${path}.timeout`, `${JSON.stringify(t)} must be a duration like "500ms" or "5s"`);
      ok = false;
    } else timeoutMs = Number(m[1]) * (m[2] === 's' ? 1000 : 1);
  }
  return ok ? { amplification, maxBodyBytes, maxConcurrent, timeoutMs } : undefined;
}

// ---- accounting: in-flight copies per worker; counters per mirror target cluster, shared by
// every worker (the cluster's entry of the health table, src/upstream/health/shared.ts)

let inflight = 0;

/** This worker's mirror copies in flight (the counters are per cluster: admin stats `mirror.*`). */
export function mirrorStats(): { readonly inflight: number } {
  return { inflight };
}

/** Adds one to mirror counter `cell` of cluster `name`. */
function count(name: string, cluster: Cluster | undefined, cell: number): void {
  const h0 = cluster?.hosts[0];
  if (h0 !== undefined && h0.clusterOff >= 0) {
    Atomics.add(h0.cells, h0.clusterOff + cell, 1);
    return;
  }
  const t = healthTable(); // a cluster without hosts (or a missing one): find its entry by name
  const off = t.entry(`${name}\0`);
  if (off >= 0) Atomics.add(t.cells, off + cell, 1);
}

/** The route's mirror job when its policies are the router's own (Envoy: sent without the mirror filter). */
const ROUTER_DEFAULTS: MirrorConfig = { amplification: 1, maxBodyBytes: 65536, maxConcurrent: 64, timeoutMs: 5000 };

/** Samples `pol`'s policies of kind `router` (true: Envoy's, sent by the router; false: the mirror filter's). */
function sample(pol: readonly MirrorPolicy[], router: boolean): string[] | null {
  let names: string[] | null = null;
  for (let i = 0; i < pol.length; i++) {
    const p = pol[i];
    if (p.router !== router || (p.fraction < 1 && Math.random() >= p.fraction)) continue;
    (names ??= []).push(p.cluster); // mirrored requests only
  }
  return names;
}

/**
 * Envoy's router-driven mirroring (request_mirror_policies that came over xDS): the copies of
 * the first attempt go out with the mirror filter's default bounds. No-op for MOSN's policies.
 */
export function routerMirrorHttp(pol: readonly MirrorPolicy[], req: UpstreamRequest, clusters: ClusterManager, h2: boolean, h2Window: number, connectionsPerHost: number): void {
  const names = sample(pol, true);
  if (names !== null) mirrorHttp({ clusters: names, cfg: ROUTER_DEFAULTS }, req, clusters, h2, h2Window, connectionsPerHost);
}

class MirrorFilter implements StreamFilter {
  readonly phase = DecodePhase.AfterRoute;
  constructor(private readonly cfg: MirrorConfig) {}

  decode(s: FilterStream): FilterStatus {
    const a = s as ActiveStream;
    const pol = a.mirrorPolicies;
    if (pol === null) return FilterStatus.Continue;
    const names = sample(pol, false);
    if (names !== null) a.mirror = { clusters: names, cfg: this.cfg };
    return FilterStatus.Continue;
  }
}

registerStreamFilterKind<MirrorConfig>({
  type: 'mirror',
  validate: validateMirror,
  create: (cfg) => new MirrorFilter(cfg),
});

/** A mirror slot: false (counted as dropped) when the worker's bound is reached or the cluster's breaker is open. */
function acquire(job: MirrorJob, name: string, cluster: Cluster): boolean {
  if (inflight >= job.cfg.maxConcurrent) {
    count(name, cluster, H.MIRROR_DROP_CONCURRENT);
    return false;
  }
  if (!cluster.tryAcquireRequest()) {
    count(name, cluster, H.MIRROR_DROP_BREAKER);
    return false;
  }
  inflight++;
  count(name, cluster, H.MIRROR_SENT);
  return true;
}

/** The host of one copy to cluster `name`; null (counted as dropped) when there is none. */
function mirrorHost(name: string, cluster: Cluster | undefined): Host | null {
  const host = cluster === undefined ? null : cluster.lb.choose();
  if (host === null) count(name, cluster, H.MIRROR_DROP_NO_HOST);
  return host;
}

/** One HTTP copy in flight: discards the answer, frees its slot once. */
class HttpMirror implements UpstreamSink {
  attempt: UpstreamAttempt | null = null;
  private done = false;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly cluster: Cluster, timeoutMs: number) {
    this.timer = setTimeout(() => {
      if (this.attempt !== null) this.attempt.abort();
      this.finish(true);
    }, timeoutMs);
    this.timer.unref();
  }
  private finish(failed: boolean): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    inflight--;
    if (failed) count(this.cluster.name, this.cluster, H.MIRROR_FAILED);
    this.cluster.releaseRequest();
  }
  onResponseHeaders(_status: number, _headers: unknown, endStream: boolean): void {
    if (endStream) this.finish(false);
  }
  onResponseData(): boolean {
    return true;
  }
  onResponseEnd(): void {
    this.finish(false);
  }
  onUpstreamError(): void {
    this.finish(true);
  }
}

/** HTTP (1.1, 2, gRPC): copies of the prepared upstream request (`req`) to the job's clusters. */
export function mirrorHttp(job: MirrorJob, req: UpstreamRequest, clusters: ClusterManager, h2: boolean, h2Window: number, connectionsPerHost: number): void {
  const body = req.body;
  const bodyOk = body === null || (Buffer.isBuffer(body) && body.length <= job.cfg.maxBodyBytes);
  for (const name of job.clusters) {
    for (let i = 0; i < job.cfg.amplification; i++) {
      const cluster = clusters.get(name);
      if (!bodyOk) {
        count(name, cluster, H.MIRROR_DROP_BODY); // streamed or too large: the main path owns the body stream
        continue;
      }
      const host = mirrorHost(name, cluster);
      if (host === null || !acquire(job, name, cluster as Cluster)) continue;
      // Each copy gets its own header object (upstreams edit the headers they are given).
      const copy: UpstreamRequest = { ...req, authority: `${req.authority}-shadow`, headers: { ...req.headers } };
      const m = new HttpMirror(cluster as Cluster, job.cfg.timeoutMs);
      try {
        m.attempt = h2 ? upstreamH2()(cluster as Cluster, host, h2Window, copy, m) : upstreamH1()(cluster as Cluster, host, connectionsPerHost, copy, m);
      } catch {
        m.onUpstreamError();
      }
    }
  }
}

/** RPC copies: answers and errors are dropped (one receiver for every copy of the worker). */
const rpcReceiver: StreamReceiver = {
  pendingHead: null,
  onUpstreamResponse(p: PendingRequest) {
    rpcDone(p, false);
  },
  onUpstreamError(p: PendingRequest, _kind: ErrorKind) {
    rpcDone(p, true);
  },
};

function rpcDone(p: PendingRequest, failed: boolean): void {
  inflight--;
  const cl = p.context as Cluster | null;
  if (cl !== null) {
    if (failed) count(cl.name, cl, H.MIRROR_FAILED);
    cl.releaseRequest();
  }
}

/** RPC (Bolt, Dubbo, codecs): copies of the request frame to the job's clusters. */
export function mirrorRpc(job: MirrorJob, codec: XCodec, buf: Buffer, frame: XFrame, clusters: ClusterManager, settings: PoolSettings): void {
  for (const name of job.clusters) {
    for (let i = 0; i < job.cfg.amplification; i++) {
      const cluster = clusters.get(name);
      const host = mirrorHost(name, cluster);
      if (host === null || !acquire(job, name, cluster as Cluster)) continue;
      const cl = cluster as Cluster;
      // Each copy owns its frame (the pool rewrites the request id in place).
      const copy = Buffer.from(buf.subarray(frame.frameStart, frame.frameStart + frame.frameLen));
      const f = codec.newFrame();
      if (codec.decode(copy, 0, copy.length, settings.maxFrameSize, f) <= 0) {
        inflight--;
        cl.releaseRequest();
        count(name, cl, H.MIRROR_FAILED);
        continue;
      }
      const r = hostPool(host, cl, codec, settings).send(copy, f, rpcReceiver, codec.replyMeta(copy, f), job.cfg.timeoutMs);
      if (sendOverflowed(r) || r === null) {
        // Overflow (dropped) or oneway (sent, nothing comes back): the slot is free now.
        inflight--;
        cl.releaseRequest();
        if (sendOverflowed(r)) count(name, cl, H.MIRROR_DROP_BREAKER); // the pool's pending bound (counted as sent above)
        continue;
      }
      r.context = cl;
    }
  }
}
