/**
 * HTTP/1.1 upstream. Two engines, chosen once per process from OUTRIGGER_H1_UPSTREAM:
 *
 *   (unset) or "raw"  the raw engine of ./h1/pool.ts (default): keep-alive pools of the
 *                     zero-copy Connection with the strict codec of ./h1/codec.ts, TLS
 *                     origination from the cluster's tls_context;
 *   "undici"          one keep-alive undici Pool per (cluster, host) per worker, driven through
 *                     `dispatch` with a handler object (no promise or stream per response;
 *                     backpressure by returning false from onData and calling resume()),
 *                     its sockets from the cluster (TLS origination, counters, connect
 *                     timeout). Kept to compare against and as a fallback.
 */
import type { Dispatcher, Pool } from 'undici';
import { UPSTREAM_OVERFLOW, type Cluster } from '../upstream/cluster';
import type { Host, UpstreamPool } from '../upstream/lb';
import { fromRaw } from './headers';
import { closeRawH1Pools, startRawH1 } from './h1/pool';
import { FailKind, isConnectError, libraryBody, OVERFLOW_ERROR, type UpstreamAttempt, type UpstreamRequest, type UpstreamSink } from './upstream';

function pickEngine(): 'raw' | 'undici' {
  const v = process.env.OUTRIGGER_H1_UPSTREAM;
  if (v === undefined || v === '' || v === 'raw') return 'raw';
  if (v === 'undici') return 'undici';
  throw new Error(`OUTRIGGER_H1_UPSTREAM: "${v}" is not one of raw, undici`);
}

const ENGINE = pickEngine();

/** An undici Pool in the cluster manager's registry (key 'undici' on its host). */
class UndiciEntry implements UpstreamPool {
  constructor(
    readonly pool: Pool,
    readonly connections: number,
    readonly cluster: Cluster,
    readonly host: Host,
  ) {}

  /** Graceful: undici finishes the requests it has, then closes its connections. */
  drain(): void {
    live.delete(this);
    this.pool.close().catch(() => {});
  }
}

/** Every entry not drained yet (closeH1Pools). */
const live = new Set<UndiciEntry>();

function poolFor(cluster: Cluster, host: Host, connections: number): Pool {
  const cur = cluster.pool(host, 'undici') as UndiciEntry | undefined;
  if (cur !== undefined && cur.connections === connections) return cur.pool;
  const p = cluster.undiciPool(host, {
    connections,
    pipelining: 1,
    // The exchange runs route and per-try timeouts itself.
    headersTimeout: 0,
    bodyTimeout: 0,
    keepAliveTimeout: 30_000,
    strictContentLength: true,
  });
  const e = new UndiciEntry(p, connections, cluster, host);
  live.add(e);
  cluster.addPool(host, 'undici', e); // drains a pool made for another connection count
  return p;
}

class H1Attempt implements UpstreamAttempt, Dispatcher.DispatchHandler {
  private abortFn: ((err?: Error) => void) | null = null;
  private resumeFn: (() => void) | null = null;
  private aborted = false;
  private gotHeaders = false;

  constructor(private readonly sink: UpstreamSink) {}

  // undici handler (legacy callback form)
  onConnect(abort: (err?: Error) => void): void {
    if (this.aborted) abort(new Error('aborted'));
    else this.abortFn = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (this.aborted) return false;
    this.resumeFn = resume;
    if (statusCode < 200) return true; // 1xx: interim, not forwarded
    this.gotHeaders = true;
    this.sink.onResponseHeaders(statusCode, fromRaw(rawHeaders), false);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.aborted) return false;
    return this.sink.onResponseData(chunk);
  }

  onComplete(trailers: string[] | null): void {
    if (this.aborted) return;
    this.sink.onResponseEnd(trailers && trailers.length > 0 ? fromRaw(trailers) : null);
  }

  onError(err: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    if ((err as { code?: unknown }).code === UPSTREAM_OVERFLOW) this.sink.onUpstreamError(FailKind.Overflow, OVERFLOW_ERROR);
    else this.sink.onUpstreamError(!this.gotHeaders && isConnectError(err) ? FailKind.ConnectFailure : FailKind.Reset, err);
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    if (this.abortFn !== null) this.abortFn(new Error('aborted by proxy'));
  }

  resume(): void {
    if (this.resumeFn !== null) this.resumeFn();
  }
}

export function startH1(cluster: Cluster, host: Host, connections: number, req: UpstreamRequest, sink: UpstreamSink): UpstreamAttempt {
  return ENGINE === 'raw' ? startRawH1(cluster, host, connections, req, sink) : startUndici(cluster, host, connections, req, sink);
}

function startUndici(cluster: Cluster, host: Host, connections: number, req: UpstreamRequest, sink: UpstreamSink): UpstreamAttempt {
  const a = new H1Attempt(sink);
  const headers = req.headers as Record<string, string | string[]>;
  headers['host'] = req.authority;
  try {
    poolFor(cluster, host, connections).dispatch(
      { method: req.method as Dispatcher.HttpMethod, path: req.path, headers, body: libraryBody(req.body), idempotent: false, blocking: false },
      a as unknown as Dispatcher.DispatchHandler,
    );
  } catch (e) {
    // Invalid header value or path (validated by undici): answer as a reset, not a crash.
    queueMicrotask(() => a.onError(e instanceof Error ? e : new Error(String(e))));
  }
  return a;
}

/** Closes every pool of both engines (tests, shutdown). */
export async function closeH1Pools(): Promise<void> {
  const all = [...live];
  live.clear();
  for (const e of all) e.cluster.removePool(e.host, 'undici', e);
  await Promise.all([closeRawH1Pools(), ...all.map((e) => e.pool.close().catch(() => {}))]);
}
