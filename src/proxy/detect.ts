/**
 * Protocol auto-detection for `downstream_protocol: "Auto"`: which protocol a connection
 * speaks, from its first bytes, without consuming them.
 *
 *   first bytes                       verdict
 *   01 ..                             Bolt v1          (codec registry: each XCodec.detect)
 *   02 ..                             Bolt v2
 *   DA BB ..                          Dubbo
 *   other registered codecs           their own detect()
 *   "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" HTTP/2 (prior knowledge preface)
 *   "GET " "POST " "PUT " ...         HTTP/1.x (a method token and a space)
 *   16 03 0x ..                       TLS ClientHello (a handshake record)
 *   anything else                     unknown -> TCP fallback when configured, else close
 *
 * Codecs are asked first; a codec that needs more bytes to decide keeps the verdict open
 * (NEED_MORE), as does a prefix of the HTTP/2 preface or of a method. At most MAX_SNIFF
 * bytes are ever needed: beyond that the protocol is unknown.
 *
 * HTTP and TLS are served by other parts of Outrigger: HTTP by the HTTP proxy (its entry
 * point registers itself with setAutoHandoff), TLS by a filter chain with a tls_context
 * (with `inspector: true` the listener terminates TLS before the proxy filter sees the
 * connection, so Auto then detects the protocol inside TLS). When no handler is registered,
 * the connection takes the TCP fallback if configured, else it is closed with a log line.
 */
import type * as net from 'node:net';
import { createLogger } from '../log';
import { dataPlaneLogInit } from '../worker/host';
import type { Connection } from '../network/connection';
import type { ListenerContext } from '../filters/network/types';
import { peekSocket } from '../network/peek';
import type { XCodec } from '../protocol/types';
import { LISTENER_STATS } from '../stats/layout';

/** Listener stat offsets (looked up by name: the layout is append-only). */
export const AUTO_FALLBACK = LISTENER_STATS.indexOf('downstream_auto_fallback');
export const AUTO_REJECTED = LISTENER_STATS.indexOf('downstream_auto_rejected');

export const enum Sniffed {
  NeedMore = 0,
  Codec = 1,
  Http1 = 2,
  Http2 = 3,
  Tls = 4,
  Unknown = 5,
}

export const SNIFFED_NAMES = ['need_more', 'codec', 'http1', 'http2', 'tls', 'unknown'] as const;

/** Enough bytes for every verdict (the HTTP/2 preface is the longest pattern). */
export const MAX_SNIFF = 24;

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const METHODS = ['GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE'].map((m) => Buffer.from(`${m} `, 'latin1'));

/** Result of sniff: the verdict, and the codec when it is Sniffed.Codec. */
export const sniffResult = { codec: null as XCodec | null };

/** Compares buf[start, end) with a prefix of `pat`: 1 full match, 0 partial (need more), -1 mismatch. */
function prefix(buf: Buffer, start: number, end: number, pat: Buffer): number {
  const n = Math.min(end - start, pat.length);
  for (let i = 0; i < n; i++) if (buf[start + i] !== pat[i]) return -1;
  return n === pat.length ? 1 : 0;
}

/** Classifies the first bytes of a connection (see the table above). */
export function sniff(buf: Buffer, start: number, end: number, codecs: readonly XCodec[]): Sniffed {
  sniffResult.codec = null;
  if (end <= start) return Sniffed.NeedMore;
  let open = false;
  for (const c of codecs) {
    const r = c.detect(buf, start, end);
    if (r === true) {
      sniffResult.codec = c;
      return Sniffed.Codec;
    }
    if (r === undefined) open = true;
  }
  const b0 = buf[start];
  if (b0 === 0x16) {
    // TLS record: content type handshake (22), legacy version 3.x
    if (end - start < 2) return Sniffed.NeedMore;
    if (buf[start + 1] === 0x03) return Sniffed.Tls;
  }
  const h2 = prefix(buf, start, end, H2_PREFACE);
  if (h2 === 1) return Sniffed.Http2;
  if (h2 === 0) open = true;
  for (const m of METHODS) {
    const r = prefix(buf, start, end, m);
    if (r === 1) return Sniffed.Http1;
    if (r === 0) open = true;
  }
  return open && end - start < MAX_SNIFF ? Sniffed.NeedMore : Sniffed.Unknown;
}

/** The Auto listener handing a connection over: its context and router config name. */
export interface AutoOwner {
  readonly ctx: ListenerContext;
  readonly config: { readonly routerConfigName: string };
}

/**
 * Takes over a connection whose first bytes are buf[start, end) (not consumed: the handler
 * must process them as the connection's first read). Returns false when it cannot.
 */
export type AutoHandoff = (conn: Connection, buf: Buffer, start: number, end: number, owner: AutoOwner) => boolean;

const handoffs = new Map<Sniffed, AutoHandoff>();

/**
 * The hook another protocol family uses to serve connections an Auto listener recognized
 * (Sniffed.Http1 / Sniffed.Http2 for the HTTP proxy; Sniffed.Tls for a TLS terminator).
 */
export function setAutoHandoff(kind: Sniffed.Http1 | Sniffed.Http2 | Sniffed.Tls, h: AutoHandoff | null): void {
  if (h === null) handoffs.delete(kind);
  else handoffs.set(kind, h);
}

export function autoHandoff(kind: Sniffed): AutoHandoff | undefined {
  return handoffs.get(kind);
}

/**
 * Takes a decrypted TLS socket whose ALPN chose HTTP/2 on an Auto listener (node:http2 reads
 * the socket itself, so it cannot go through a Connection). Returns false when it cannot.
 */
export type AutoSocketHandoff = (socket: net.Socket, owner: AutoOwner) => boolean;

let socketHandoff: AutoSocketHandoff | null = null;

/** Registered by the HTTP proxy: serves h2 (ALPN) inside TLS on RPC Auto listeners. */
export function setAutoSocketHandoff(h: AutoSocketHandoff | null): void {
  socketHandoff = h;
}

export function autoSocketHandoff(): AutoSocketHandoff | null {
  return socketHandoff;
}

/** How long the protocol-sniffing listener filter waits for enough first bytes (Envoy: listener_filters_timeout). */
export const SNIFF_TIMEOUT_MS = 15_000;

/**
 * The protocol-sniffing listener filter: reads an accepted (paused) socket until sniff() has a
 * verdict, puts the bytes back into its readable buffer (paused), and calls done. A socket that
 * stays silent (or sends too few bytes) for SNIFF_TIMEOUT_MS gets onTimeout. Runs once per
 * connection, only on chains with a selective filter before the last one.
 */
export function sniffSocket(sock: net.Socket, codecs: readonly XCodec[], done: (kind: Sniffed, codec: XCodec | null) => void, onTimeout: () => void): void {
  peekSocket(
    sock,
    SNIFF_TIMEOUT_MS,
    (buf) => sniff(buf, 0, buf.length, codecs) !== Sniffed.NeedMore,
    (buf) => {
      const kind = sniff(buf, 0, buf.length, codecs); // the verdict again: sniffResult is shared
      done(kind, sniffResult.codec);
    },
    onTimeout,
  );
}

const drainHooks: ((ctx: ListenerContext) => void)[] = [];

/** Lets a family that took connections from Auto listeners drain them with the listener. */
export function onAutoDrain(h: (ctx: ListenerContext) => void): void {
  drainHooks.push(h);
}

/** An Auto listener drains: tells the families it handed connections to. */
export function autoDrain(ctx: ListenerContext): void {
  for (const h of drainHooks) h(ctx);
}

/** A filter factory that can take a connection together with bytes already read from it (tcp_proxy). */
export interface InitialBytesAcceptor {
  onAcceptWithData(conn: Connection, buf: Buffer, start: number, end: number): void;
}

export function acceptsInitialBytes(f: unknown): f is InitialBytesAcceptor {
  return typeof f === 'object' && f !== null && typeof (f as { onAcceptWithData?: unknown }).onAcceptWithData === 'function';
}

export interface ProxyLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
  debug?(obj: Record<string, unknown>, msg: string): void;
}

let logger: ProxyLogger | undefined;
const STDERR_LOG: ProxyLogger = { warn: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: 'warn', msg, ...obj })}\n`) };

/** The worker's log destination in a worker thread; stderr elsewhere (tests, tools). */
export function proxyLog(): ProxyLogger {
  if (logger === undefined) {
    const wd = dataPlaneLogInit(); // a worker thread, or the main thread running the data plane
    if (wd === null) return STDERR_LOG; // not cached: a data plane may start on this thread later
    logger = createLogger({ level: wd.logLevel, path: wd.logPath, name: `worker-${wd.workerId}` });
  }
  return logger;
}
