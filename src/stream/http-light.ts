/**
 * The light pipeline's view of an HTTP request (HTTP/1.1, HTTP/2, gRPC): when a listener's
 * per-request work is only headersOnly filters and tracing's decision (src/stream/pipeline.ts
 * StreamPipeline.light), the Exchange runs them on this view instead of making an HttpStream;
 * a request tracing samples gets its HttpStream after all (runLight returns Sampled). It reads
 * what HttpStream (src/http/exchange.ts) reads: the Exchange's headers, the downstream's
 * method, authority, body length and connection, and answers through the Exchange.
 *
 * Views are pooled per thread and bound for one runLight call (synchronous): a local reply can
 * start the next pipelined request of the connection, and so another runLight, before the
 * first returns; each call takes a view of its own.
 */
import * as tls from 'node:tls';
import type { LocalReplyOptions, StreamPeer } from '../api/stream-filter';
import type { Downstream, DownstreamTransport, Exchange } from '../http/exchange';
import { tlsInfoOf, type TlsInfo } from '../tls/identity';
import { hostPort, runLight, type LightResult, type LightView, type StreamPipeline } from './pipeline';

/** The TLS facts of a client connection (a TLSSocket, or a Connection that carries them), null on plain TCP. */
export function transportTls(t: DownstreamTransport): TlsInfo | null {
  const info = t instanceof tls.TLSSocket ? tlsInfoOf(t) : (t as { tlsInfo?: TlsInfo | null }).tlsInfo;
  return info ?? null;
}

/** A request's body length as its head declares it: 0 without a body, content-length, or undefined when unknown (chunked). */
export function declaredBodyLength(d: Downstream): number | undefined {
  if (!d.hasBody) return 0;
  const cl = Number(d.headers['content-length']);
  return Number.isInteger(cl) ? cl : undefined;
}

class HttpLightView implements LightView {
  protocol = '';
  replied = false;
  private ex: Exchange | null = null;
  private down: Downstream | null = null;
  private transportRead = false;
  private transport: DownstreamTransport | null = null;

  bind(ex: Exchange | null, down: Downstream | null, protocol: string): void {
    this.ex = ex;
    this.down = down;
    this.protocol = protocol;
    this.replied = false;
    this.transportRead = false;
    this.transport = null;
  }

  private get d(): Downstream {
    return this.down as Downstream;
  }

  /** The client connection, read once per request (only when a filter asks for an address or the peer). */
  private conn(): DownstreamTransport | null {
    if (!this.transportRead) {
      this.transportRead = true;
      const d = this.d;
      this.transport = d.transport !== undefined ? d.transport() : null;
    }
    return this.transport;
  }

  service(): string | undefined {
    const a = this.d.authority;
    return a === '' ? undefined : a;
  }

  method(): string | undefined {
    return this.d.method;
  }

  header(name: string): string | undefined {
    return (this.ex as Exchange).header(name);
  }

  requestBodyLength(): number {
    return declaredBodyLength(this.d) ?? -1;
  }

  routeCluster(): string | undefined {
    return undefined; // light filters run before routing
  }

  peer(): StreamPeer | null {
    const t = this.conn();
    if (t === null) return null;
    const info = transportTls(t);
    return info === null ? null : info.peer;
  }

  remoteAddress(): string {
    const t = this.conn();
    // One string per request that asks (as HttpStream makes for every request).
    return t === null ? '' : (hostPort(t.remoteAddress, t.remotePort) ?? '');
  }

  localAddress(): string {
    const t = this.conn();
    return t === null ? '' : (hostPort(t.localAddress, t.localPort) ?? '');
  }

  sendLocalReply(status: number, message?: string, opts?: LocalReplyOptions): void {
    if (this.replied) return;
    this.replied = true;
    (this.ex as Exchange).filterReply(status, message, opts);
  }

  addResponseHeader(name: string, value: string): void {
    // One object per request that gets headers from a filter (as HttpStream).
    ((this.ex as Exchange).extraHeaders ??= {})[name] = value;
  }

  limitRequestBody(max: number, status: number): void {
    const ex = this.ex as Exchange;
    ex.bodyLimit = max;
    ex.bodyLimitStatus = status;
  }

  setResponseFlag(_flag: string): void {
    // Read by the access log and the trace only; a light request has neither.
  }

  resume(): void {
    // headersOnly filters never hold a request.
  }
}

const free: HttpLightView[] = [];

/** A light pipeline's filters on `ex`'s request (src/stream/pipeline.ts runLight). */
export function runHttpLight(p: StreamPipeline, ex: Exchange, down: Downstream, protocol: string): LightResult {
  const v = free.pop() ?? new HttpLightView(); // a few per thread (one per nested call), then reused
  v.bind(ex, down, protocol);
  try {
    return runLight(p, v);
  } finally {
    v.bind(null, null, '');
    free.push(v);
  }
}
