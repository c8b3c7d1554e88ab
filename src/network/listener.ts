/**
 * A listener as one worker runs it: a net.Server accepting on a listening fd shared with the
 * other workers (SO_REUSEPORT socket made by the addon, or the fallback's shared fd), and
 * the filter chain of the config snapshot it currently serves. A new snapshot swaps the
 * chain for new connections; live connections keep the one they were accepted under.
 *
 * With TLS on the chain, an accepted socket first goes through src/tls (inspector peek,
 * handshake, client-certificate policy); the TLS socket then becomes a stream-mode
 * Connection. Without TLS the accept path is unchanged (zero-copy reads, writev).
 */
import * as net from 'node:net';
import type * as tls from 'node:tls';
import type { ListenerConfig } from '../config/types';
import { ServerTls } from '../tls/server';
import { networkFilterBuilder, type ListenerContext, type NetworkFilterFactory, type NetworkFilterFactoryBuilder } from '../filters/network/types';
import { L } from '../stats/layout';
import { Connection, type ConnectionHandler } from './connection';
import { admitConnection, connectionClosed } from '../overload/manager';
import { OL } from '../overload/stats';

/** Handler of a connection accepted while no terminal filter took it (never happens with a valid config). */
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

export interface ListenerRuntime {
  readonly config: ListenerConfig;
  readonly ctx: ListenerContext;
  readonly terminal: NetworkFilterFactory;
  /** Downstream TLS of the chain; null = plaintext. */
  readonly tls: ServerTls | null;
}

export function buildListenerRuntime(config: ListenerConfig, ctx: ListenerContext): ListenerRuntime {
  const chain = config.filterChains[0];
  if (chain === undefined || chain.filters.length === 0) throw new Error(`listener ${config.name}: no filter chain`);
  // The last filter is terminal; the config layer rejects filter types we cannot run.
  const last = chain.filters[chain.filters.length - 1];
  const build = networkFilterBuilder(last.type);
  if (build === undefined) throw new Error(`listener ${config.name}: network filter "${last.type}" is not supported`);
  let terminal = build(last.config, ctx);
  // MOSN's fallback_for_unknown_protocol chain: `proxy` then `tcp_proxy`. The proxy reads first
  // (Auto detection) and hands connections of an unknown protocol to the tcp_proxy.
  const prev = chain.filters.length >= 2 ? chain.filters[chain.filters.length - 2] : undefined;
  if (prev !== undefined && prev.type === 'proxy' && last.type === 'tcp_proxy' && prev.config['fallbackForUnknownProtocol'] === true) {
    const proxy = (networkFilterBuilder('proxy') as NetworkFilterFactoryBuilder)(prev.config, ctx) as NetworkFilterFactory & { setFallback?(f: NetworkFilterFactory): void };
    if (proxy.setFallback !== undefined) {
      proxy.setFallback(terminal);
      terminal = proxy;
    }
  }
  const tlsCtx = chain.tlsContexts;
  const tlsRt = tlsCtx !== undefined && tlsCtx.length > 0 ? new ServerTls(config.name, tlsCtx, chain.filters, ctx.counters, ctx.base, config.inspector) : null;
  return { config, ctx, terminal, tls: tlsRt };
}

export class WorkerListener {
  private server: net.Server | null = null;
  private readonly live = new Set<Connection>();
  /** Sockets in the TLS inspector or handshake (no Connection yet). */
  private readonly pending = new Set<net.Socket>();
  /** Plaintext sockets handed to a filter's onSocket (the HTTP proxy). */
  private readonly raw = new Set<net.Socket>();
  private draining = false;
  private drainResolve: (() => void) | null = null;

  constructor(private runtime: ListenerRuntime) {}

  get name(): string {
    return this.runtime.config.name;
  }

  get activeConnections(): number {
    return this.live.size + this.pending.size + this.raw.size;
  }

  /** Starts accepting on a listening fd. */
  listenFd(fd: number): Promise<void> {
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

  swap(runtime: ListenerRuntime): void {
    const old = this.runtime;
    this.runtime = runtime;
    // Live TLS connections keep their contexts; only the old watcher stops.
    if (old.tls !== null && old.tls !== runtime.tls) old.tls.close();
  }

  private accept(socket: net.Socket): void {
    const rt = this.runtime;
    const { counters, base } = rt.ctx;
    if (this.draining) {
      socket.destroy();
      return;
    }
    // Overload manager: connection limit or memory (stop accepting); counted until the close.
    if (!admitConnection()) {
      counters[base + OL.CX_REJECT]++;
      socket.destroy();
      return;
    }
    socket.once('close', connectionClosed);
    counters[base + L.CX_TOTAL]++;
    counters[base + L.CX_ACTIVE]++;
    if (rt.tls !== null) {
      this.acceptTls(rt, rt.tls, socket);
      return;
    }
    if (rt.terminal.onSocket !== undefined) {
      this.acceptRaw(rt, socket);
      return;
    }
    const conn = Connection.accept(socket, rejectHandler, rt.ctx.bufferLimit);
    this.live.add(conn);
    socket.once('close', () => {
      counters[base + L.CX_ACTIVE]--;
      counters[base + L.CX_DESTROY]++;
      this.live.delete(conn);
      this.checkDrained();
    });
    rt.terminal.onAccept(conn);
  }

  /** The terminal filter reads the socket itself (onSocket); the listener only counts it. */
  private acceptRaw(rt: ListenerRuntime, socket: net.Socket): void {
    const { counters, base } = rt.ctx;
    this.raw.add(socket);
    socket.once('close', () => {
      counters[base + L.CX_ACTIVE]--;
      counters[base + L.CX_DESTROY]++;
      this.raw.delete(socket);
      this.checkDrained();
    });
    (rt.terminal.onSocket as (s: net.Socket) => void)(socket);
  }

  private acceptTls(rt: ListenerRuntime, t: ServerTls, raw: net.Socket): void {
    const { counters, base } = rt.ctx;
    this.pending.add(raw);
    let conn: Connection | null = null;
    let closed = false;
    const onClose = (): void => {
      if (closed) return;
      closed = true;
      counters[base + L.CX_ACTIVE]--;
      counters[base + L.CX_DESTROY]++;
      this.pending.delete(raw);
      if (conn !== null) this.live.delete(conn);
      this.checkDrained();
    };
    raw.once('close', onClose);
    const open = (sock: net.Socket, stream: boolean): void => {
      this.pending.delete(raw);
      if (this.draining) {
        sock.destroy();
        return;
      }
      if (rt.terminal.onSocket !== undefined) {
        // A filter that reads sockets itself (the HTTP proxy) gets the decrypted TLSSocket.
        this.raw.add(sock);
        sock.once('close', () => {
          this.raw.delete(sock);
          onClose();
          this.checkDrained(); // the raw socket may have closed (and counted) first
        });
        rt.terminal.onSocket(sock);
        return;
      }
      const c = Connection.accept(sock, rejectHandler, rt.ctx.bufferLimit, stream ? { stream: true } : undefined);
      conn = c;
      this.live.add(c);
      sock.once('close', onClose);
      rt.terminal.onAccept(c);
    };
    t.start(raw, {
      onTls: (sock: tls.TLSSocket) => open(sock, true),
      // The inspector put the peeked bytes back into the socket's readable buffer: read it with 'data' events.
      onPlain: (sock: net.Socket) => open(sock, true),
    });
  }

  /** While draining: resolves the drain once no connection of any kind is left. */
  private checkDrained(): void {
    if (this.draining && this.live.size === 0 && this.pending.size === 0 && this.raw.size === 0 && this.drainResolve) this.drainResolve();
  }

  /** Stops accepting (the shared listening fd stays open for the other workers). */
  stopAccepting(): void {
    if (this.server) {
      this.server.close();
      this.server = null;
    }
  }

  /** Stops accepting and resolves once every live connection has closed or `graceMs` passed. */
  drain(graceMs: number): Promise<void> {
    this.draining = true;
    this.stopAccepting();
    if (this.runtime.tls !== null) this.runtime.tls.close();
    for (const s of this.pending) s.destroy();
    if (this.runtime.terminal.onDrain !== undefined) this.runtime.terminal.onDrain();
    if (this.live.size === 0 && this.raw.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        for (const c of this.live) c.destroy();
        for (const s of this.raw) s.destroy();
        resolve();
      }, graceMs);
      this.drainResolve = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  closeAll(): void {
    this.stopAccepting();
    if (this.runtime.tls !== null) this.runtime.tls.close();
    for (const s of this.pending) s.destroy();
    for (const c of this.live) c.destroy();
    for (const s of this.raw) s.destroy();
  }
}
