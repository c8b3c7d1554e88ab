/**
 * What the exchange (src/http/exchange.ts) needs from an upstream protocol: start one attempt
 * of a request on a host, get the response back through an UpstreamSink, abort it.
 */
import type { Readable } from 'node:stream';
import type { Headers } from './headers';

export const enum FailKind {
  /** The request never reached the upstream (refused, unreachable, connect timeout). */
  ConnectFailure = 0,
  /** The upstream reset the stream or closed the connection mid-request. */
  Reset = 1,
}

export interface UpstreamRequest {
  readonly method: string;
  /** Path with query. */
  readonly path: string;
  readonly authority: string;
  /** End-to-end headers (no pseudo-headers, no hop-by-hop). */
  readonly headers: Headers;
  /** null = no body; a Buffer can be sent again by a retry, a stream only once. */
  readonly body: Buffer | Readable | null;
}

export interface UpstreamSink {
  onResponseHeaders(status: number, headers: Headers, endStream: boolean): void;
  /** Returns false when the downstream is full: the attempt pauses until resume(). */
  onResponseData(chunk: Buffer): boolean;
  onResponseEnd(trailers: Headers | null): void;
  onUpstreamError(kind: FailKind, err: Error): void;
}

export interface UpstreamAttempt {
  abort(): void;
  resume(): void;
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
