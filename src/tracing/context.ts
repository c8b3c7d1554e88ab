/**
 * Trace context carried by a request, read from its headers: W3C `traceparent`, B3 (single
 * `b3` header and the multi-header `x-b3-*` form) and SOFATracer's Bolt headers
 * (`rpc_trace_context.sofaTraceId` / `.sofaRpcId`). No OpenTelemetry import here: this runs for
 * every request when tracing is enabled, sampled or not.
 */
import { createHash } from 'node:crypto';

/** Formats a request carried (bits), so that the upstream request gets them rewritten. */
export const FMT_W3C = 1;
export const FMT_B3 = 2;
export const FMT_B3MULTI = 4;
export const FMT_SOFA = 8;

export const SOFA_TRACE_ID = 'rpc_trace_context.sofaTraceId';
export const SOFA_RPC_ID = 'rpc_trace_context.sofaRpcId';

/** An incoming context (only made when one is present). */
export interface IncomingContext {
  /** 32 lower-case hex digits. */
  readonly traceId: string;
  /** 16 hex digits: the caller's span (SOFATracer: derived from trace id and rpcId). */
  readonly spanId: string;
  /** 1 sampled, 0 not, -1 the caller did not say (sampling ratio decides). */
  readonly sampled: number;
  readonly format: number;
}

type HeaderRead = (name: string) => string | undefined;

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO32 = '00000000000000000000000000000000';
const ZERO16 = '0000000000000000';

function traceId(v: string): string | undefined {
  const t = v.toLowerCase();
  if (t.length === 16 && HEX16.test(t)) return ZERO16 + t; // 64-bit B3 ids, left-padded (B3 spec)
  return HEX32.test(t) && t !== ZERO32 ? t : undefined;
}

function spanId(v: string): string | undefined {
  const s = v.toLowerCase();
  return HEX16.test(s) && s !== ZERO16 ? s : undefined;
}

/** W3C traceparent: version-traceid-parentid-flags. */
export function parseTraceparent(v: string): IncomingContext | undefined {
  if (v.length < 55 || v.charCodeAt(2) !== 45 || v.charCodeAt(35) !== 45 || v.charCodeAt(52) !== 45) return undefined;
  const ver = v.slice(0, 2).toLowerCase();
  if (ver === 'ff' || (ver === '00' && v.length !== 55)) return undefined;
  const t = HEX32.test(v.slice(3, 35)) ? v.slice(3, 35).toLowerCase() : undefined;
  const s = spanId(v.slice(36, 52));
  const flags = parseInt(v.slice(53, 55), 16);
  if (t === undefined || t === ZERO32 || s === undefined || Number.isNaN(flags)) return undefined;
  return { traceId: t, spanId: s, sampled: flags & 1, format: FMT_W3C };
}

function b3Sampled(v: string | undefined): number {
  if (v === undefined) return -1;
  if (v === '1' || v === 'd' || v === 'true') return 1;
  if (v === '0' || v === 'false') return 0;
  return -1;
}

/** B3 single header: traceid-spanid[-sampled[-parentspanid]] (a lone "0" only says "not sampled"). */
export function parseB3(v: string): IncomingContext | undefined {
  const parts = v.split('-');
  if (parts.length < 2) return undefined;
  const t = traceId(parts[0]);
  const s = spanId(parts[1]);
  if (t === undefined || s === undefined) return undefined;
  return { traceId: t, spanId: s, sampled: b3Sampled(parts[2]), format: FMT_B3 };
}

/** SOFATracer: trace id as the 32-hex W3C id (its hex digits padded, or a hash of another form). */
export function sofaTraceIdToW3c(v: string): string {
  const l = v.toLowerCase();
  if (/^[0-9a-f]{1,32}$/.test(l) && !/^0+$/.test(l)) return l.padStart(32, '0');
  return createHash('sha256').update(v).digest('hex').slice(0, 32);
}

/** The span id standing for a SOFATracer rpcId (the caller's span) of a trace: stable on every hop. */
export function sofaSpanId(sofaTraceId: string, rpcId: string): string {
  const h = createHash('sha256').update(sofaTraceId).update('\0').update(rpcId).digest('hex').slice(0, 16);
  return h === ZERO16 ? '0000000000000001' : h;
}

/**
 * The request's incoming context, or undefined (no header, or none valid). `rpc`: the request
 * is an RPC frame (Bolt): SOFATracer's headers are read first.
 */
export function extract(h: HeaderRead, rpc: boolean): IncomingContext | undefined {
  // An explicit W3C / B3 context wins (an Outrigger hop writes it into Bolt headers too).
  const tp = h('traceparent');
  if (tp !== undefined) {
    const c = parseTraceparent(tp);
    if (c !== undefined) return c;
  }
  if (rpc) {
    const sofa = h(SOFA_TRACE_ID);
    if (sofa === undefined || sofa === '') return undefined;
    const rpcId = h(SOFA_RPC_ID) ?? '0';
    return { traceId: sofaTraceIdToW3c(sofa), spanId: sofaSpanId(sofa, rpcId), sampled: -1, format: FMT_SOFA };
  }
  const b3 = h('b3');
  if (b3 !== undefined) {
    const c = parseB3(b3);
    if (c !== undefined) return c;
  }
  const bt = h('x-b3-traceid');
  if (bt !== undefined) {
    const t = traceId(bt);
    const bs = h('x-b3-spanid');
    const s = bs === undefined ? undefined : spanId(bs);
    if (t !== undefined && s !== undefined) {
      const sampled = h('x-b3-flags') === '1' ? 1 : b3Sampled(h('x-b3-sampled'));
      return { traceId: t, spanId: s, sampled, format: FMT_B3MULTI };
    }
  }
  return undefined;
}

/**
 * Head sampling of a trace without a sampled flag: by the trace id's last 8 hex digits when
 * known (every hop of one trace decides alike), else at random.
 */
export function sampleByRatio(ratio: number, traceIdHex: string | undefined): boolean {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  if (traceIdHex === undefined) return Math.random() < ratio;
  return parseInt(traceIdHex.slice(24), 16) / 0x100000000 < ratio;
}
