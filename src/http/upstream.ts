/**
 * What the exchange (src/http/exchange.ts) needs from an upstream protocol: start one attempt
 * of a request on a host, get the response back through an UpstreamSink, abort it.
 */
// The module's own binding: the global `Buffer` is an accessor property (a getter call on every use).
import { Buffer } from 'node:buffer';
import { Readable } from 'node:stream';
import type { Headers } from './headers';

export const enum FailKind {
  /** The request never reached the upstream (refused, unreachable, connect timeout). */
  ConnectFailure = 0,
  /** The upstream reset the stream or closed the connection mid-request. */
  Reset = 1,
  /**
   * Refused before it was sent: by the cluster's circuit breaker (max_connections: no
   * connection to use and none may be opened), or the pool's queue is full or the request
   * waited too long for a connection. Answered 503 at once (flag UO), not retried.
   */
  Overflow = 2,
}

/** The error an Overflow failure carries (no detail to show). */
export const OVERFLOW_ERROR = new Error('upstream overflow');

export interface UpstreamRequest {
  readonly method: string;
  /** Path with query. */
  readonly path: string;
  readonly authority: string;
  /** End-to-end headers (no pseudo-headers, no hop-by-hop). */
  readonly headers: Headers;
  /**
   * null = no body; a Buffer can be sent again by a retry; a stream (a node:http/http2
   * request) or a BodySource (a raw HTTP/1.1 downstream, src/http/h1) only once.
   */
  readonly body: Buffer | Readable | BodySource | null;
  /**
   * A bodiless request whose head nothing changed (raw HTTP/1.1 downstream): the raw pool may
   * send the downstream's field lines as bytes instead of serializing `headers`.
   */
  readonly bytes?: RequestBytes;
}

/** The downstream's own head of a request (h1/downstream.ts). */
export interface HeadBytes {
  /**
   * The buffer holding the head's field lines, or null once it may have been reused (after the
   * read that parsed the head): then the request goes out from `headers` as usual.
   */
  headBuffer(): Buffer | null;
  /** Its field lines to forward (hop-by-hop, host and expect lines left out); valid while headBuffer() is not null. */
  readonly lines: RawHeadLines;
}

/** A request head forwarded unchanged (exchange.ts; sent by h1/pool.ts). */
export interface RequestBytes extends HeadBytes {
  /** Lines the proxy adds ("x-request-id: ...\r\n"), or ''. */
  readonly addedLines: string;
}

/**
 * A request body read from a raw HTTP/1.1 downstream connection (src/http/h1): decoded payload
 * bytes (chunked framing removed), pulled by one upstream attempt.
 */
export interface BodySource {
  /** Payload length from content-length; -1 when the downstream sent it chunked. */
  readonly length: number;
  /** Starts delivery to `sink` (once). Bytes already received are delivered at once. */
  start(sink: BodySink): void;
  /** Backpressure from the upstream side: stop / restart reading the downstream. */
  pause(): void;
  resume(): void;
}

export interface BodySink {
  /** The body is read into memory (not streamed to an upstream connection): no minimum rate applies. */
  readonly collecting?: boolean;
  /** Payload bytes; the view is valid only during the call (write or copy it). */
  onBodyData(buf: Buffer, start: number, end: number): void;
  /** The whole body was delivered. */
  onBodyEnd(): void;
  /** The downstream failed mid-body (malformed chunk, reset): abandon the attempt. */
  onBodyError(err: Error): void;
}

export function isBodySource(b: UpstreamRequest['body']): b is BodySource {
  return b !== null && !Buffer.isBuffer(b) && typeof (b as BodySource).start === 'function' && typeof (b as Readable).pipe !== 'function';
}

/** The field lines of a response head as the raw HTTP/1.1 parser indexed them (h1/codec.ts HeadParser indexOnly). */
export interface RawHeadLines {
  /** [start, end) offsets of the lines to forward (CRLF included), runCount entries. */
  readonly runs: Int32Array;
  readonly runCount: number;
  /** The Content-Length of a length-framed body, else -1. */
  readonly contentLength: number;
  /** Where the head starts in its buffer, and where it ends (its body starts). */
  readonly headStart: number;
  readonly headEnd: number;
}

export interface UpstreamSink {
  onResponseHeaders(status: number, headers: Headers, endStream: boolean): void;
  /**
   * Asked by the raw HTTP/1.1 pool before it parses a response head: true when the response
   * head may be forwarded as its own bytes (onResponseRaw) because nothing would change it
   * (no header operations, filters or access log, a raw HTTP/1.1 client).
   */
  rawResponseHead?(): boolean;
  /**
   * The response head as bytes of the upstream's read buffer (valid during the call): `lines`
   * index buf's field lines to forward, hop-by-hop lines left out; buf[lines.headEnd, bufEnd) are
   * the body bytes read with the head (the downstream may rewrite the head in place, in front
   * of them, to send head and body as one range). Called instead of
   * onResponseHeaders after rawResponseHead() said yes and the head was regular.
   */
  onResponseRaw?(status: number, buf: Buffer, lines: RawHeadLines, endStream: boolean, bufEnd: number): void;
  /**
   * Response payload. `chunk` may be a view of a reused read buffer, valid only during the call:
   * a sink that keeps it (a node:http response's write queue) copies it. Returns false when the
   * downstream is full: the attempt pauses until resume().
   */
  onResponseData(chunk: Buffer): boolean;
  onResponseEnd(trailers: Headers | null): void;
  onUpstreamError(kind: FailKind, err: Error): void;
}

export interface UpstreamAttempt {
  abort(): void;
  resume(): void;
  /** "ip:port" of the upstream connection's local end (%upstream_local_address%), once bound to one; absent: unknown. */
  localAddress?(): string | undefined;
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/** Errors that happen before a request can have reached the upstream. */
export function isConnectError(e: unknown): boolean {
  let cur: unknown = e;
  for (let i = 0; i < 3 && cur !== null && typeof cur === 'object'; i++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECT_CODES.has(code)) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * A BodySource as a Readable, for upstreams driven by libraries (undici, node:http2). Only
 * for translated requests (raw HTTP/1.1 downstream to an HTTP/2 upstream): one stream per
 * body, its bytes copied out of the read buffer.
 */
export function sourceReadable(src: BodySource): Readable {
  const r = new Readable({
    read(): void {
      src.resume();
    },
  });
  src.start({
    onBodyData(buf: Buffer, start: number, end: number): void {
      if (!r.push(Buffer.from(buf.subarray(start, end)))) src.pause();
    },
    onBodyEnd(): void {
      r.push(null);
    },
    onBodyError(err: Error): void {
      r.destroy(err);
    },
  });
  return r;
}

/** The body as a library upstream takes it: Buffer, Readable or null. */
export function libraryBody(b: UpstreamRequest['body']): Buffer | Readable | null {
  return isBodySource(b) ? sourceReadable(b) : b;
}
