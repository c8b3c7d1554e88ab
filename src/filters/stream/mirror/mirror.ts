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
 * larger than `max_body_bytes`; every copy not sent is counted as dropped (mirrorStats()).
 * HTTP copies carry the authority with "-shadow" appended, as Envoy's do.
 */
import { DecodePhase, FilterStatus, registerStreamFilterKind, type FilterStream, type StreamFilter, type StreamFilterValidationContext } from '../../../api/stream-filter';
import { intInRange } from '../config-int';
import type { UpstreamRequest, UpstreamSink, UpstreamAttempt } from '../../../http/upstream';
import { startH1 } from '../../../http/upstream-h1';
import { startH2 } from '../../../http/upstream-h2';
import type { ErrorKind, XCodec, XFrame } from '../../../protocol/types';
import type { ActiveStream } from '../../../stream/pipeline';
import { hostPool, SEND_OVERFLOW, type PendingRequest, type PoolSettings, type StreamReceiver } from '../../../stream/upstream-pool';
import type { Cluster, ClusterManager } from '../../../upstream/cluster';

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

// ---- per-worker accounting

let inflight = 0;
const stats = { sent: 0, dropped: 0, failed: 0 };

/** This worker's mirror counters: copies sent, dropped (bounds, no host, streamed body), failed upstream. */
export function mirrorStats(): { readonly sent: number; readonly dropped: number; readonly failed: number; readonly inflight: number } {
  return { ...stats, inflight };
}

class MirrorFilter implements StreamFilter {
  readonly phase = DecodePhase.AfterRoute;
  constructor(private readonly cfg: MirrorConfig) {}

  decode(s: FilterStream): FilterStatus {
    const a = s as ActiveStream;
    const pol = a.mirrorPolicies;
    if (pol === null) return FilterStatus.Continue;
    let names: string[] | null = null;
    for (let i = 0; i < pol.length; i++) {
      const p = pol[i];
      if (p.fraction < 1 && Math.random() >= p.fraction) continue;
      (names ??= []).push(p.cluster); // mirrored requests only
    }
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
function acquire(job: MirrorJob, cluster: Cluster | undefined): cluster is Cluster {
  if (cluster === undefined || inflight >= job.cfg.maxConcurrent || !cluster.tryAcquireRequest()) {
    stats.dropped++;
    return false;
  }
  inflight++;
  stats.sent++;
  return true;
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
    if (failed) stats.failed++;
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
      if (!bodyOk) {
        stats.dropped++; // streamed or too large: the main path owns the body stream
        continue;
      }
      const cluster = clusters.get(name);
      const host = cluster === undefined ? null : cluster.lb.choose();
      if (host === null || !acquire(job, cluster)) {
        if (host === null) stats.dropped++;
        continue;
      }
      // Each copy gets its own header object (upstreams edit the headers they are given).
      const copy: UpstreamRequest = { ...req, authority: `${req.authority}-shadow`, headers: { ...req.headers } };
      const m = new HttpMirror(cluster as Cluster, job.cfg.timeoutMs);
      try {
        m.attempt = h2 ? startH2(cluster as Cluster, host, h2Window, copy, m) : startH1(cluster as Cluster, host, connectionsPerHost, copy, m);
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
  if (failed) stats.failed++;
  const cl = p.context as Cluster | null;
  if (cl !== null) cl.releaseRequest();
}

/** RPC (Bolt, Dubbo, codecs): copies of the request frame to the job's clusters. */
export function mirrorRpc(job: MirrorJob, codec: XCodec, buf: Buffer, frame: XFrame, clusters: ClusterManager, settings: PoolSettings): void {
  for (const name of job.clusters) {
    for (let i = 0; i < job.cfg.amplification; i++) {
      const cluster = clusters.get(name);
      const host = cluster === undefined ? null : cluster.lb.choose();
      if (host === null || !acquire(job, cluster)) {
        if (host === null) stats.dropped++;
        continue;
      }
      const cl = cluster as Cluster;
      // Each copy owns its frame (the pool rewrites the request id in place).
      const copy = Buffer.from(buf.subarray(frame.frameStart, frame.frameStart + frame.frameLen));
      const f = codec.newFrame();
      if (codec.decode(copy, 0, copy.length, settings.maxFrameSize, f) <= 0) {
        inflight--;
        cl.releaseRequest();
        stats.dropped++;
        continue;
      }
      const r = hostPool(host, cl, codec, settings).send(copy, f, rpcReceiver, codec.replyMeta(copy, f), job.cfg.timeoutMs);
      if (r === SEND_OVERFLOW || r === null) {
        // Overflow (dropped) or oneway (sent, nothing comes back): the slot is free now.
        inflight--;
        cl.releaseRequest();
        if (r === SEND_OVERFLOW) {
          stats.sent--;
          stats.dropped++;
        }
        continue;
      }
      r.context = cl;
    }
  }
}
