/**
 * One filter chain as a worker runs it: the network filters in order (see types.ts for the
 * contract), and the per-connection session that runs read filters before the terminal filter.
 *
 *   stage 0 .. n-1: read filters (createFilter) run in order: Continue -> next, StopIteration -> wait
 *                   terminal filters take the connection if accepts(info) (absent = always)
 *                   a terminal that does not accept -> the next stage (MOSN fallback_for_unknown_protocol)
 *   no stage takes it -> closed, counted as downstream_cx_no_filter_chain_match
 *
 * Limitation: read filters see the connection's start (onNewConnection and the reads before a
 * terminal takes it); once a terminal filter installed its handler, later reads go to it only.
 */
import * as tls from 'node:tls';
import type { FilterConfig } from '../../config/types';
import type { Connection, ConnectionHandler } from '../../network/connection';
import { LISTENER_STATS } from '../../stats/layout';
import {
  FilterStatus, networkFilterBuilder, type ConnectionInfo, type ListenerContext, type NetworkFilterFactory, type ReadFilter,
  type ReadFilterCallbacks,
} from './types';

export const CX_NO_CHAIN_MATCH = LISTENER_STATS.indexOf('downstream_cx_no_filter_chain_match');

export interface ChainStage {
  readonly type: string;
  readonly factory: NetworkFilterFactory;
  /** null = takes every connection (or is a read filter). */
  readonly accepts: ((info: ConnectionInfo) => boolean) | null;
}

/** The factory of an RPC `proxy` that detects protocols itself and hands unknown bytes to its fallback. */
interface FallbackCapable {
  setFallback(f: NetworkFilterFactory): void;
}

function hasSetFallback(f: NetworkFilterFactory): f is NetworkFilterFactory & FallbackCapable {
  return typeof (f as Partial<FallbackCapable>).setFallback === 'function';
}

/**
 * Which connections a `proxy` filter with fallback_for_unknown_protocol takes (from its
 * normalized config): the protocols it serves; the rest continue to the next filter.
 * null = it takes everything (no fallback: MOSN closes unknown protocols).
 */
export function proxyAccepts(cfg: Readonly<Record<string, unknown>>): ((info: ConnectionInfo) => boolean) | null {
  if (cfg['fallbackForUnknownProtocol'] !== true) return null;
  if (cfg['family'] === 'http') {
    const d = cfg['downstream'];
    if (d === 'http1') return (i) => i.detected === 'http1';
    if (d === 'http2') return (i) => i.detected === 'http2';
    return (i) => i.detected === 'http1' || i.detected === 'http2';
  }
  const downs = Array.isArray(cfg['downstreamProtocols']) ? (cfg['downstreamProtocols'] as unknown[]).map((p) => String(p).toLowerCase()) : [];
  if (downs.length === 0 || downs.includes('auto')) return (i) => i.detected === 'codec' || i.detected === 'http1' || i.detected === 'http2';
  return (i) => i.detected === 'codec' && downs.includes(i.codec.toLowerCase());
}

export interface BuiltChain {
  readonly stages: readonly ChainStage[];
  /** A selective terminal filter stands before the last stage: the listener sniffs the protocol first. */
  readonly needsSniff: boolean;
  /** Some stage is a read filter: connections run through a ChainSession. */
  readonly hasReadFilters: boolean;
}

/** Builds the factories of a chain's filters (all of them, in order). */
export function buildChain(listener: string, filters: readonly FilterConfig[], ctx: ListenerContext): BuiltChain {
  if (filters.length === 0) throw new Error(`listener ${listener}: no filter chain`);
  const stages: ChainStage[] = [];
  for (const fc of filters) {
    const build = networkFilterBuilder(fc.type);
    if (build === undefined) throw new Error(`listener ${listener}: network filter "${fc.type}" is not supported`);
    const factory = build(fc.config, ctx);
    let accepts = factory.accepts !== undefined ? factory.accepts.bind(factory) : null;
    if (accepts === null && fc.type.toLowerCase() === 'proxy') accepts = proxyAccepts(fc.config);
    stages.push({ type: fc.type, factory, accepts });
  }
  // The RPC proxy detects protocols on its own zero-copy reads and hands unknown bytes to the rest
  // of the chain itself (its "continue"): no listener sniffing needed for it.
  for (let i = 0; i < stages.length - 1; i++) {
    const st = stages[i];
    if (st.accepts !== null && st.factory.accepts === undefined && hasSetFallback(st.factory)) {
      st.factory.setFallback(chainTail(stages, i + 1, ctx));
      stages[i] = { type: st.type, factory: st.factory, accepts: null };
    }
  }
  let needsSniff = false;
  for (let i = 0; i < stages.length - 1; i++) if (stages[i].accepts !== null) needsSniff = true;
  const hasReadFilters = stages.some((s) => s.factory.createFilter !== undefined);
  return { stages, needsSniff, hasReadFilters };
}

/** The first terminal stage at or after `from` that takes a connection with this info (-1 = none). */
export function firstTaker(stages: readonly ChainStage[], from: number, info: ConnectionInfo): number {
  for (let j = from; j < stages.length; j++) {
    const st = stages[j];
    if (st.factory.createFilter !== undefined) return j;
    if (st.accepts === null || st.accepts(info)) return j;
  }
  return -1;
}

/**
 * Hands a Connection to a terminal factory with bytes already read (valid during the call).
 * A factory without onAcceptWithData gets onAccept, then its handler gets the bytes as its
 * first read.
 */
export function takeWithData(f: NetworkFilterFactory, conn: Connection, buf: Buffer, start: number, end: number): void {
  if (f.onAcceptWithData !== undefined) {
    f.onAcceptWithData(conn, buf, start, end);
    return;
  }
  // Learn the handler the factory installs (Connection keeps it private): wrap setHandler for this call only.
  let installed: ConnectionHandler | null = null;
  const own = Object.getOwnPropertyDescriptor(conn, 'setHandler');
  const orig = conn.setHandler;
  conn.setHandler = (h: ConnectionHandler): void => {
    installed = h;
    orig.call(conn, h);
  };
  try {
    f.onAccept(conn);
  } finally {
    if (own === undefined) delete (conn as { setHandler?: unknown }).setHandler;
    else Object.defineProperty(conn, 'setHandler', own);
  }
  const h = installed as ConnectionHandler | null;
  if (h !== null && end > start && conn.state !== 'closed') h.onData(conn, buf, start, end);
}

/** Info of a connection a filter hands on from inside (no listener filter ran for it). */
function infoOf(conn: Connection): ConnectionInfo {
  return {
    remoteAddress: conn.remoteAddress,
    remotePort: conn.remotePort,
    localAddress: conn.localAddress,
    localPort: conn.localPort,
    transportProtocol: conn.tlsInfo !== null || conn.socket instanceof tls.TLSSocket ? 'tls' : 'raw_buffer',
    serverName: '',
    applicationProtocols: [],
    negotiatedProtocol: '',
    detected: 'unknown',
    codec: '',
  };
}

/** The stages from `from` on, as one factory (what the RPC proxy's fallback continues to). */
function chainTail(stages: readonly ChainStage[], from: number, ctx: ListenerContext): NetworkFilterFactory {
  const run = (conn: Connection, buf: Buffer, start: number, end: number): void => {
    const info = infoOf(conn);
    const j = firstTaker(stages, from, info);
    if (j < 0) {
      noChainMatch(ctx, conn);
      return;
    }
    if (stages[j].factory.createFilter !== undefined) {
      const s = new ChainSession(stages, conn, info, ctx);
      conn.setHandler(s);
      s.startFrom(j, buf, start, end);
      return;
    }
    takeWithData(stages[j].factory, conn, buf, start, end);
  };
  return {
    onAccept: (conn) => run(conn, EMPTY, 0, 0),
    onAcceptWithData: run,
  };
}

const EMPTY = Buffer.alloc(0);

export function noChainMatch(ctx: ListenerContext, conn: Connection): void {
  ctx.counters[ctx.base + CX_NO_CHAIN_MATCH]++;
  conn.destroy();
}

/**
 * Runs the read filters of a chain for one connection, then hands it to the terminal filter
 * that takes it. Installed as the connection's handler until then.
 *
 *   start: onNewConnection of each read filter in order, up to the first StopIteration (k)
 *   each read: onData from the first read filter on; Continue -> the next one; StopIteration ->
 *              this read stops there; filters after k are not reached until k continues
 *   continueReading(buf) from filter j: onNewConnection of the filters after j that have not
 *              run it, then buf goes on from j + 1
 *   a read reaching a terminal filter that accepts the connection: it takes it with those bytes
 */
export class ChainSession implements ConnectionHandler {
  private readonly filters: (ReadFilter | null)[];
  /** Read filters whose onNewConnection ran (their index < this). */
  private newUpTo = 0;
  private done = false;

  constructor(
    private readonly stages: readonly ChainStage[],
    private readonly conn: Connection,
    private readonly info: ConnectionInfo,
    private readonly ctx: ListenerContext,
  ) {
    this.filters = stages.map(() => null);
  }

  /** New connection: read filters' onNewConnection in order, up to the first that stops. */
  start(): void {
    this.runNew(0);
  }

  /** A connection handed on mid-chain (the RPC proxy's fallback): stages from `j`, with its first bytes. */
  startFrom(j: number, buf: Buffer, start: number, end: number): void {
    this.newUpTo = j;
    this.runNew(j); // a filter that stops here still gets the bytes (its onData may hold them)
    this.startAt(j, buf, start, end);
  }

  /** Runs onNewConnection from stage `j` on; false when a filter stopped (or closed the connection). */
  private runNew(j: number): boolean {
    for (; j < this.stages.length; j++) {
      const st = this.stages[j];
      if (st.factory.createFilter === undefined) break;
      let f = this.filters[j];
      if (f === null) {
        f = st.factory.createFilter(this.callbacks(j));
        this.filters[j] = f;
      }
      this.newUpTo = j + 1;
      if (f.onNewConnection() === FilterStatus.StopIteration || this.conn.state === 'closed') return false;
    }
    this.newUpTo = Math.max(this.newUpTo, j + 1);
    return true;
  }

  /** Offers buf[start, end) to the stages from `j` on (see the class comment). */
  startAt(j: number, buf: Buffer, start: number, end: number): void {
    for (; j < this.stages.length; j++) {
      if (this.done || this.conn.state === 'closed') return;
      if (j >= this.newUpTo && !this.runNew(j)) return;
      const st = this.stages[j];
      const f = this.filters[j];
      if (f === null) {
        // A terminal filter: it takes the connection with these bytes, unless it does not accept it.
        if (st.accepts !== null && !st.accepts(this.info)) continue;
        if (end === start) return; // no bytes yet: the first read reaching it hands it over
        this.done = true;
        takeWithData(st.factory, this.conn, buf, start, end);
        return;
      }
      if (end > start && f.onData(buf, start, end) === FilterStatus.StopIteration) return;
      if (end === start) continue;
    }
    if (this.done) return;
    this.done = true;
    noChainMatch(this.ctx, this.conn);
  }

  private callbacks(j: number): ReadFilterCallbacks {
    return {
      connection: this.conn,
      info: this.info,
      continueReading: (buf: Buffer, start: number, end: number): void => {
        if (this.done || this.conn.state === 'closed') return;
        this.startAt(j + 1, buf, start, end);
      },
    };
  }

  onData(_conn: Connection, buf: Buffer, start: number, end: number): void {
    if (!this.done) this.startAt(0, buf, start, end);
  }

  onEnd(conn: Connection): void {
    if (!this.done) conn.destroy();
  }

  onClose(): void {
    this.done = true;
  }

  onHighWatermark(): void {}
  onLowWatermark(): void {}
}
