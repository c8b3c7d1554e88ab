/**
 * A listener as one worker runs it: a net.Server accepting on a listening fd shared with the
 * other workers (one socket made by the addon and dup'ed per worker, or the fallback's shared
 * fd), and the filter chains of the config snapshot it currently serves. A new snapshot swaps
 * the chains for new connections; live connections keep the ones they were accepted under.
 *
 *   accepted socket
 *     -> TLS inspector (listener filter; when a chain terminates TLS or a filter_chain_match
 *        reads SNI / ALPN / transport): peeks the ClientHello, puts the bytes back
 *     -> filter_chain_match (chain-select.ts) picks a chain; none -> closed, counted
 *     -> the chain's TLS handshake (src/tls), or plaintext (inspector) / passthrough
 *     -> protocol sniffing (listener filter; only when a selective filter precedes the last one)
 *     -> the chain's network filters (src/filters/network/chain.ts): the first that takes it
 *
 * With use_original_dst / original_dst (original-dst.ts) the original destination is read
 * first; use_original_dst hands the connection to the listener at that address, if any.
 *
 * One chain without TLS, match, sniffing or read filters takes the plain path unchanged
 * (zero-copy reads, writev; no per-connection info).
 */
import * as net from 'node:net';
import type { ListenerConfig } from '../config/types';
import { buildChain, ChainSession, CX_NO_CHAIN_MATCH, firstTaker, type BuiltChain } from '../filters/network/chain';
import type { ConnectionInfo, DetectedProtocol, ListenerContext, NetworkFilterFactory } from '../filters/network/types';
import { AUTO_REJECTED, autoSocketHandoff, sniffSocket, Sniffed, SNIFFED_NAMES, type AutoOwner } from '../proxy/detect';
import { allCodecs, type XCodec } from '../protocol/types';
import { parseClientHello, TLS_RECORD_HANDSHAKE } from '../tls/client-hello';
import { peekClientHello, ServerTls } from '../tls/server';
import { negotiatedAlpn, tlsServerName } from '../tls/native';
import { tlsLog } from '../tls/log';
import { L } from '../stats/layout';
import { ChainSelector, compileMatch, needsHello } from './chain-select';
import { retireChains } from './chain-drain';
import { Connection, ownedFdReads, type ConnectionHandler } from './connection';
import { FdSocket } from './fd-socket';
import { native } from '../native';
import { inheritOriginalDst, ListenerDirectory, originalDstOf, originalDstUnavailable, readOriginalDst } from './original-dst';
import { admitConnection, connectionClosed } from '../overload/manager';
import { OL } from '../overload/stats';
import { SlotList, type Slotted } from './slot-list';

/** Handler of a connection until a filter installs its own (a filter that takes it replaces it at once). */
const rejectHandler: ConnectionHandler = {
  onData(conn) {
    conn.destroy();
  },
  onEnd(conn) {
    conn.destroy();
  },
  onClose() {},
  onHighWatermark() {},
  onLowWatermark() {},
};

export interface ChainRuntime {
  readonly built: BuiltChain;
  /** Downstream TLS of the chain; null = plaintext. */
  readonly tls: ServerTls | null;
  /**
   * The chain's own version (src/network/chain-versions.ts): a new listener runtime keeps the
   * ChainRuntime object of a chain whose key did not change, so its connections are untouched.
   */
  readonly key?: string;
}

export interface ListenerRuntime {
  readonly config: ListenerConfig;
  readonly ctx: ListenerContext;
  readonly chains: readonly ChainRuntime[];
  readonly selector: ChainSelector;
  /** The TLS-inspector listener filter runs first (a chain terminates TLS, or a match reads SNI/ALPN/transport). */
  readonly peekHello: boolean;
  /**
   * The one chain when no listener filter has anything to do (one chain without match, TLS,
   * sniffing or read filters): the accept path then makes no per-connection info at all.
   */
  readonly simple: ChainRuntime | null;
  /** Codecs the protocol-sniffing listener filter recognizes. */
  readonly codecs: readonly XCodec[];
  /** The last filter of the first chain (for tools and benches that drive one filter directly). */
  readonly terminal: NetworkFilterFactory;
  /**
   * Every chain terminates TLS natively (no inspector: a plaintext client never reaches a
   * Connection) and no original destination is read: the connection may be an FdSocket
   * (fd-socket.ts, no net.Socket) when the listener accepts natively (tlsFdAccept).
   */
  readonly fdTls?: boolean;
}

/**
 * Natively terminated TLS listeners accept in the addon and serve each connection on its bare fd
 * (FdSocket: no net.Socket per connection). On by default with the addon's accept and owned-fd
 * reads (and native TLS, per chain); OUTRIGGER_TLS_FD=0 keeps net.Server and a net.Socket per
 * connection (the native TLS driver still runs on it).
 */
export const tlsFdAccept: boolean = process.env.OUTRIGGER_TLS_FD?.trim() !== '0' && native.accept !== undefined && ownedFdReads;

/**
 * `reuse(i)`: an unchanged chain of the previous runtime to keep as chain i (chain-versions.ts),
 * or undefined to build it. `keys[i]`: the version key of chain i.
 */
export function buildListenerRuntime(config: ListenerConfig, ctx: ListenerContext, reuse?: (i: number) => ChainRuntime | undefined, keys?: readonly string[]): ListenerRuntime {
  if (config.filterChains.length === 0) throw new Error(`listener ${config.name}: no filter chain`);
  const unavailable = originalDstUnavailable(config);
  if (unavailable !== '') throw new Error(unavailable);
  const chains: ChainRuntime[] = config.filterChains.map((fc, i) => {
    const kept = reuse?.(i);
    if (kept !== undefined) return kept;
    const built = buildChain(config.name, fc.filters, ctx);
    const t = fc.tlsContexts;
    // Native TLS only where the chain takes a Connection (no socket-taking terminal, no sniffing).
    const nativeOk = !built.needsSniff && built.stages.every((st) => st.factory.onSocket === undefined);
    const tlsRt = t !== undefined && t.length > 0 ? new ServerTls(config.name, t, fc.filters, ctx.counters, ctx.base, config.inspector, nativeOk) : null;
    return { built, tls: tlsRt, key: keys?.[i] };
  });
  const matches = config.filterChains.map((fc) => compileMatch(fc.match));
  const peekHello = chains.some((c) => c.tls !== null && c.tls.needsHello) || needsHello(matches);
  const only = chains.length === 1 && matches[0] === null ? chains[0] : null;
  const simple = only !== null && only.tls === null && !peekHello && !only.built.needsSniff && !only.built.hasReadFilters ? only : null;
  const first = chains[0].built.stages;
  // The ClientHello may be peeked (SNI sets, filter_chain_match): FdSocket reads 'data' events until it has a reader.
  const fdTls = !config.inspector && config.originalDst === undefined && chains.every((c) => c.tls !== null && c.tls.engine !== null);
  return { config, ctx, chains, selector: new ChainSelector(matches), peekHello, simple, codecs: allCodecs(), terminal: first[first.length - 1].factory, fdTls };
}

const NO_ALPN: readonly string[] = [];

/** What the TLS inspector would have learnt, from a handshake that read the ClientHello itself. */
function tlsWithoutPeek(info: ConnectionInfo, sock: net.Socket): void {
  info.transportProtocol = 'tls';
  const sn = tlsServerName(sock);
  if (sn !== '') info.serverName = sn;
}

function newInfo(s: net.Socket): ConnectionInfo {
  const d = originalDstOf(s); // filter_chain_match sees the original destination
  return {
    remoteAddress: s.remoteAddress ?? '',
    remotePort: s.remotePort ?? 0,
    localAddress: d !== null ? d.host : (s.localAddress ?? ''),
    localPort: d !== null ? d.port : (s.localPort ?? 0),
    transportProtocol: 'raw_buffer',
    serverName: '',
    applicationProtocols: NO_ALPN,
    negotiatedProtocol: '',
    detected: null,
    codec: '',
  };
}

/** A connection of this listener: the socket to destroy (a TLSSocket once the handshake is done). */
export interface Tracked extends Slotted {
  /** The accepted socket. */
  readonly raw: net.Socket;
  outer: net.Socket;
  /** A filter took it (drain waits for it; until then drain closes it at once). */
  taken: boolean;
  /** The filter chain it was dispatched to (its version decides whether a reload drains it). */
  chain: ChainRuntime | null;
  /** Hot upgrade: handed over to the new process; its close is not a destroy (the new process counts it as adopted). */
  moved: boolean;
}

/** The RPC `proxy` in Auto mode (it hands HTTP to the HTTP proxy with the listener's routers). */
function isAutoProxy(f: NetworkFilterFactory): f is NetworkFilterFactory & AutoOwner {
  return (f as { detectsAll?: unknown }).detectsAll === true;
}

function detectedOf(kind: Sniffed): DetectedProtocol {
  return SNIFFED_NAMES[kind] as DetectedProtocol;
}

export class WorkerListener {
  private server: net.Server | null = null;
  /** The addon's acceptor of the listening fd (tlsFdAccept), or -1. */
  private acceptId = -1;
  /** Every accepted socket not closed yet (a SlotList, not a Map: see slot-list.ts). */
  private readonly tracked = new SlotList<Tracked>();
  private draining = false;
  private closed = false;
  private drainResolve: (() => void) | null = null;
  private drainTimer: NodeJS.Timeout | null = null;
  /** Runtimes swapped out and not retired yet (their chains are drained on retire()). */
  private replaced: ListenerRuntime[] = [];
  /** Accepted sockets waiting (paused) for open(): a listener of a version not committed yet. */
  private held: net.Socket[] | null;

  /** `hold`: accepted connections wait until open() (a listener bound before its version is committed). */
  constructor(private runtime: ListenerRuntime, hold = false) {
    workerListeners.add(this);
    this.held = hold ? [] : null;
  }

  /** Starts serving the connections held since listen (commit). */
  open(): void {
    const held = this.held;
    this.held = null;
    if (held !== null) for (const s of held) if (!s.destroyed) this.accept(s);
  }

  get name(): string {
    return this.runtime.config.name;
  }

  /** The config of the runtime it serves (the hand-off directory reads its address). */
  get config(): ListenerConfig {
    return this.runtime.config;
  }

  /** Takes new connections (bound or not: a bind_port false listener gets them by hand-off). */
  get accepting(): boolean {
    return !this.draining && !this.closed;
  }

  get activeConnections(): number {
    return this.tracked.size;
  }

  /** Starts accepting on a listening fd. */
  listenFd(fd: number): Promise<void> {
    const acc = native.accept;
    if (tlsFdAccept && acc !== undefined && this.runtime.fdTls === true) {
      this.acceptId = acc.start(fd, this.onFdAccept);
      announceFdAccept(this.name);
      return Promise.resolve();
    }
    const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (s) => this.accept(s));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd }, () => {
        server.off('error', reject);
        server.on('error', () => {
          /* accept errors (EMFILE...) are transient; libuv retries */
        });
        resolve();
      });
    });
  }

  /**
   * A connection the addon accepted: an FdSocket while the runtime's chains allow it, else (a
   * config swapped in since, e.g. plaintext or SNI chains) a net.Socket on the fd, paused as
   * net.Server's would be.
   */
  private readonly onFdAccept = (fd: number, remoteAddress: string, remotePort: number, localAddress: string, localPort: number): void => {
    if (this.runtime.fdTls === true) {
      this.accept(new FdSocket(fd, remoteAddress, remotePort, localAddress, localPort).asSocket);
      return;
    }
    // pauseOnCreate: Node's own option for sockets of a pauseOnConnect server.
    const opts = { fd, allowHalfOpen: true, readable: true, writable: true, pauseOnCreate: true };
    const s = new net.Socket(opts);
    s.setNoDelay(true);
    this.accept(s);
  };

  /** Starts accepting on an already listening server (fallback mode, first worker). */
  adoptServer(server: net.Server): void {
    this.server = server;
    // net.Server reads these when it creates each accepted socket.
    const opts = server as unknown as { allowHalfOpen: boolean; pauseOnConnect: boolean; noDelay: boolean };
    opts.allowHalfOpen = true;
    opts.pauseOnConnect = true;
    opts.noDelay = true;
    server.on('connection', (s: net.Socket) => this.accept(s));
  }

  /**
   * New connections get `runtime`'s chains (reversible until retire(): a rollback swaps back).
   * Live connections keep the chain they were accepted under.
   */
  swap(runtime: ListenerRuntime): void {
    const old = this.runtime;
    if (old === runtime) return; // an unchanged listener resource keeps its runtime (src/config/versions.ts)
    this.runtime = runtime;
    workerListeners.changed();
    if (!this.replaced.includes(old)) this.replaced.push(old);
  }

  /**
   * The swap is final: connections of chains the current runtime does not have (changed or
   * removed chains) get their protocol's goodbye now and are closed after `drainMs`; live
   * connections of kept chains are not touched. TLS watchers of retired chains stop.
   */
  retire(drainMs: number): void {
    const replaced = this.replaced;
    if (replaced.length === 0) return;
    this.replaced = [];
    retireChains(this.runtime, replaced, this.tracked, drainMs);
  }

  /** Hot upgrade: every connection of this listener. */
  connections(): readonly Tracked[] {
    return this.tracked.values();
  }

  /** Hot upgrade: serves a connection another process handed over; `unread` (bytes it read and did not process) comes first. */
  adopt(socket: net.Socket, unread: Buffer): void {
    if (unread.length > 0) socket.unshift(unread);
    this.accept(socket, unread.length > 0, true);
  }

  /**
   * `adopted`: handed over by the previous process, which counted it in downstream_cx_total already.
   * `handedOff`: from a use_original_dst listener (its original destination is read already).
   */
  private accept(socket: net.Socket, peeked = false, adopted = false, handedOff = false): void {
    if (this.held !== null) {
      this.held.push(socket);
      return;
    }
    const rt = this.runtime;
    const { counters, base } = rt.ctx;
    if (this.draining) {
      socket.destroy();
      return;
    }
    const od = rt.config.originalDst;
    if (od !== undefined && !handedOff) {
      const d = readOriginalDst(socket, od, rt.config.address.port);
      if (d !== null && rt.config.useOriginalDst === true) {
        const to = workerListeners.find(d, this, rt.config.originalDstFallbackToLocal === true);
        if (to !== null) {
          to.accept(socket, false, false, true);
          return;
        }
      }
    }
    // Overload manager: connection limit or memory (stop accepting); counted until the close.
    if (!admitConnection()) {
      counters[base + OL.CX_REJECT]++;
      socket.destroy();
      return;
    }
    if (!adopted) counters[base + L.CX_TOTAL]++;
    counters[base + L.CX_ACTIVE]++;
    const t: Tracked = { raw: socket, outer: socket, taken: false, chain: null, moved: false, slot: -1 }; // one per connection
    this.tracked.add(t);
    let closed = false;
    // One 'close' listener per socket, added with on(): once() would add a wrapper, a bound
    // function and its state (~180 bytes per idle connection); `closed` makes it run once.
    const onClose = (): void => {
      if (closed) return;
      closed = true;
      connectionClosed();
      counters[base + L.CX_ACTIVE]--;
      if (!t.moved) counters[base + L.CX_DESTROY]++;
      this.tracked.remove(t);
      this.checkDrained();
    };
    socket.on('close', onClose);
    if (rt.simple !== null) {
      this.dispatch(rt, rt.simple, socket, null, peeked, t);
      return;
    }
    const info = newInfo(socket); // one per connection: what the listener filters learn
    if (!rt.peekHello) {
      this.choose(rt, socket, info, peeked, t, onClose);
      return;
    }
    peekClientHello(
      socket,
      (buf) => {
        if (buf[0] === TLS_RECORD_HANDSHAKE) {
          info.transportProtocol = 'tls';
          const h = parseClientHello(buf);
          info.serverName = h.sni;
          info.applicationProtocols = h.alpn;
        }
        this.choose(rt, socket, info, true, t, onClose);
      },
      () => {
        counters[base + L.TLS_FAIL_OTHER]++;
        socket.destroy();
      },
    );
  }

  /** filter_chain_match, then the chain's TLS termination. `peeked`: bytes were put back into the socket. */
  private choose(rt: ListenerRuntime, socket: net.Socket, info: ConnectionInfo, peeked: boolean, t: Tracked, onClose: () => void): void {
    const i = rt.selector.select(info);
    if (i < 0) {
      rt.ctx.counters[rt.ctx.base + CX_NO_CHAIN_MATCH]++;
      socket.destroy();
      return;
    }
    const chain = rt.chains[i];
    const st = chain.tls;
    if (st === null) {
      this.proceed(rt, chain, socket, info, peeked, t);
      return;
    }
    if (info.transportProtocol !== 'tls' && rt.config.inspector) {
      rt.ctx.counters[rt.ctx.base + L.TLS_INSPECTOR_PLAINTEXT]++;
      this.proceed(rt, chain, socket, info, true, t);
      return;
    }
    st.handshake(socket, info.serverName, {
      onTls: (sock: net.Socket) => {
        t.outer = sock;
        if (info.transportProtocol !== 'tls') tlsWithoutPeek(info, sock); // the hello was not read before the handshake
        if (sock !== socket) {
          // A TLSSocket over the accepted one; the native path hands back the accepted socket itself (its 'close' is watched already).
          inheritOriginalDst(sock, socket);
          sock.on('close', onClose);
        }
        const alpn = negotiatedAlpn(sock);
        info.negotiatedProtocol = alpn;
        if (alpn === 'h2') info.detected = 'http2';
        else if (alpn === 'http/1.1') info.detected = 'http1';
        this.proceed(rt, chain, sock, info, true, t);
      },
      onPlain: (sock: net.Socket) => this.proceed(rt, chain, sock, info, true, t),
    });
  }

  /** The protocol-sniffing listener filter when the chain needs it, then the network filters. */
  private proceed(rt: ListenerRuntime, chain: ChainRuntime, sock: net.Socket, info: ConnectionInfo, stream: boolean, t: Tracked): void {
    if (!chain.built.needsSniff || info.detected !== null) {
      this.dispatch(rt, chain, sock, info, stream, t);
      return;
    }
    sniffSocket(
      sock,
      rt.codecs,
      (kind, codec) => {
        info.detected = detectedOf(kind);
        info.codec = codec !== null ? codec.name : '';
        this.dispatch(rt, chain, sock, info, true, t);
      },
      () => {
        rt.ctx.counters[rt.ctx.base + AUTO_REJECTED]++;
        sock.destroy();
      },
    );
  }

  /** Runs the chain's network filters: the first that takes the connection gets it. */
  private dispatch(rt: ListenerRuntime, chain: ChainRuntime, sock: net.Socket, info: ConnectionInfo | null, stream: boolean, t: Tracked): void {
    if (this.draining) {
      sock.destroy();
      return;
    }
    const ctx = rt.ctx;
    const stages = chain.built.stages;
    const opts = stream ? STREAM : undefined;
    t.taken = true;
    t.chain = chain;
    if (info !== null && chain.built.hasReadFilters) {
      const conn = Connection.accept(sock, rejectHandler, ctx.bufferLimit, opts);
      const s = new ChainSession(stages, conn, info, ctx);
      conn.setHandler(s);
      s.start();
      return;
    }
    const j = info === null ? 0 : firstTaker(stages, 0, info);
    if (j < 0) {
      ctx.counters[ctx.base + CX_NO_CHAIN_MATCH]++;
      sock.destroy();
      return;
    }
    const f = stages[j].factory;
    if (info !== null && info.negotiatedProtocol === 'h2' && f.onSocket === undefined && isAutoProxy(f)) {
      // HTTP/2 inside TLS on an Auto listener: node:http2 reads the TLS socket itself.
      const h = autoSocketHandoff();
      if (h !== null && h(sock, f)) return;
    }
    if (f.onSocket !== undefined) {
      f.onSocket(sock);
      return;
    }
    f.onAccept(Connection.accept(sock, rejectHandler, ctx.bufferLimit, opts));
  }

  /** While draining: resolves the drain once no connection of any kind is left. */
  private checkDrained(): void {
    if (this.draining && this.tracked.size === 0 && this.drainResolve) this.drainResolve();
  }

  /** Stops accepting (the shared listening fd stays open for the other workers). */
  stopAccepting(): void {
    if (this.acceptId >= 0) {
      (native.accept as { stop(id: number): void }).stop(this.acceptId); // closes this worker's fd, as server.close()
      this.acceptId = -1;
    }
    if (this.server) {
      this.server.close();
      this.server = null;
    }
  }

  /** Stops accepting and resolves once every live connection has closed or `graceMs` passed, with how many were cut then. */
  drain(graceMs: number): Promise<number> {
    this.draining = true;
    workerListeners.remove(this);
    this.stopAccepting();
    for (const s of this.held ?? []) s.destroy();
    this.held = null;
    closeTls(this.runtime);
    for (const rt of this.replaced) closeTls(rt);
    // Connections still in a listener filter (TLS handshake, sniffing) are closed now.
    for (const t of this.tracked.values()) if (!t.taken) t.raw.destroy();
    for (const rt of [this.runtime, ...this.replaced]) for (const c of rt.chains) for (const st of c.built.stages) if (st.factory.onDrain !== undefined) st.factory.onDrain();
    if (this.tracked.size === 0) return Promise.resolve(0);
    return new Promise<number>((resolve) => {
      this.drainTimer = setTimeout(() => {
        this.drainTimer = null;
        const cut = this.tracked.size;
        for (const t of this.tracked.values()) t.outer.destroy();
        resolve(cut);
      }, graceMs);
      this.drainResolve = () => {
        if (this.drainTimer !== null) clearTimeout(this.drainTimer);
        this.drainTimer = null;
        resolve(0);
      };
    });
  }

  /**
   * Hot upgrade: undoes a drain (the new process died; the worker checks that it has not ended):
   * accepts again on `fd` and keeps its connections (the drain promise never settles).
   */
  resume(fd: number | null, undrain: (f: NetworkFilterFactory) => void): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`listener ${this.name} is closed`));
    if (this.drainTimer !== null) clearTimeout(this.drainTimer);
    this.drainTimer = null;
    this.drainResolve = null;
    this.draining = false;
    workerListeners.add(this);
    for (const rt of [this.runtime, ...this.replaced]) for (const c of rt.chains) for (const st of c.built.stages) undrain(st.factory);
    return fd === null ? Promise.resolve() : this.listenFd(fd);
  }

  closeAll(): void {
    this.closed = true;
    workerListeners.remove(this);
    this.stopAccepting();
    for (const s of this.held ?? []) s.destroy();
    this.held = null;
    closeTls(this.runtime);
    for (const t of this.tracked.values()) {
      t.outer.destroy();
      t.raw.destroy();
    }
  }
}

const STREAM = { stream: true } as const;

let fdAnnounced = false;

/** Logs once per thread that a listener accepts natively (FdSocket connections). */
function announceFdAccept(listener: string): void {
  if (fdAnnounced) return;
  fdAnnounced = true;
  setImmediate(() => tlsLog().info({ listener, path: 'fd' }, 'TLS accept: native, one fd per connection (no net.Socket)'));
}

/** This worker's listeners by address: where use_original_dst hands connections (original-dst.ts). */
const workerListeners = new ListenerDirectory<WorkerListener>();

function closeTls(rt: ListenerRuntime): void {
  for (const c of rt.chains) if (c.tls !== null) c.tls.close();
}
