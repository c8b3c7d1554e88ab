/**
 * The HTTP family of the `proxy` network filter. The listener hands each accepted socket to
 * onSocket:
 *
 *   Http1 -> the raw HTTP/1.1 engine (h1/downstream.ts) on the zero-copy Connection, or the
 *            node:http server with OUTRIGGER_H1_DOWNSTREAM=node
 *   Http2 -> node:http2 server (h2c prior knowledge)
 *   Auto  -> first bytes "PRI " (the HTTP/2 connection preface) ? http2 : http1
 *
 * One pair of servers per factory (= per listener and config snapshot); connections accepted
 * under an older snapshot keep their servers.
 */
import type * as http from 'node:http';
import type * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { RouterConfig } from '../config/types';
import { Connection, type ConnectionHandler } from '../network/connection';
import type { ListenerContext, NetworkFilterFactory, RouteSwap } from '../filters/network/types';
import { onAutoDrain, setAutoHandoff, setAutoSocketHandoff, Sniffed, type AutoOwner } from '../proxy/detect';
import { registerProxyFamily } from '../proxy/families';
import { compiledHttpRouter } from '../router/http-routes';
import { claimsHttp, HTTP_DEFAULTS, parseHttpProxyConfig, type HttpProxyConfig } from './config';
import type { HttpEnv } from './exchange';
import type { RawH1Connection } from './h1/downstream';
import { pipelineFor } from '../stream/pipeline';
import { onCloseIdle } from '../overload/manager';
import { OL } from '../overload/stats';
import { HL } from './stats';
import '../filters/stream';

/* eslint-disable @typescript-eslint/no-require-imports */
/**
 * The HTTP engines (node:http, node:http2, the HTTP/1.1 codec and the upstream engines behind
 * them), loaded when a config has an HTTP listener, or with the first HTTP connection of an RPC
 * Auto listener: an RPC-only or TCP config never loads them (issue 15, idle memory).
 */
let engines: { h1: typeof import('./downstream-h1'); h2: typeof import('./downstream-h2'); raw: typeof import('./h1/downstream') } | null = null;
function httpEngines(): NonNullable<typeof engines> {
  return (engines ??= { h1: require('./downstream-h1') as typeof import('./downstream-h1'), h2: require('./downstream-h2') as typeof import('./downstream-h2'), raw: require('./h1/downstream') as typeof import('./h1/downstream') });
}
/* eslint-enable @typescript-eslint/no-require-imports */

/** Every factory of this worker (weakly: a replaced listener snapshot's factory may go), for the close-idle action. */
const live = new Set<WeakRef<HttpProxyFactory>>();
onCloseIdle(() => {
  for (const r of live) {
    const f = r.deref();
    if (f === undefined) live.delete(r);
    else f.closeIdle();
  }
});

/** HTTP/1.1 downstream engine: 'raw' (default) or 'node' (node:http), read once. */
export const H1_DOWNSTREAM: 'raw' | 'node' = process.env.OUTRIGGER_H1_DOWNSTREAM === 'node' ? 'node' : 'raw';

const PREFACE = Buffer.from('PRI ');

let kHandle: symbol | undefined;

/** The native handle of a session (Node keeps it under the private symbol "kHandle"). */
function sessionHandle(s: http2.ServerHttp2Session): { receive(b: Buffer): void } | null {
  if (kHandle === undefined) kHandle = Object.getOwnPropertySymbols(s).find((x) => x.description === 'kHandle');
  const h = kHandle === undefined ? undefined : (s as unknown as Record<symbol, { receive?: (b: Buffer) => void }>)[kHandle];
  return h !== undefined && typeof h.receive === 'function' ? (h as { receive(b: Buffer): void }) : null;
}

export class HttpProxyFactory implements NetworkFilterFactory {
  readonly env: HttpEnv;
  private h1: http.Server | null = null;
  private h2: http2.Http2Server | null = null;
  private readonly h2Sessions = new Set<http2.ServerHttp2Session>();
  private readonly rawH1 = new Set<RawH1Connection>();
  /** Bytes read while sniffing an HTTP/2 connection, for the session being created. */
  private sniffed: Buffer | null = null;

  constructor(cfg: HttpProxyConfig, ctx: ListenerContext, routerConfig: RouterConfig) {
    // The listener's connection_idle_timeout bounds the proxy's idle_timeout (the shorter wins):
    // every engine closes a keep-alive connection idle that long (HTTP/2: GOAWAY, then close).
    if (ctx.idleTimeoutMs > 0 && (cfg.idleTimeoutMs === 0 || ctx.idleTimeoutMs < cfg.idleTimeoutMs)) cfg = { ...cfg, idleTimeoutMs: ctx.idleTimeoutMs };
    this.env = { cfg, ctx, router: compiledHttpRouter(routerConfig), draining: false, pipeline: pipelineFor(ctx) };
    live.add(new WeakRef(this));
  }

  /**
   * The overload manager's close-idle action, for the engines the raw HTTP/1.1 engine's own
   * closer does not cover: node:http closes its idle keep-alive connections; HTTP/2 sessions get
   * GOAWAY (streams in flight finish, no new ones) and close once their streams are done.
   */
  closeIdle(): void {
    if (this.h1 !== null) this.h1.closeIdleConnections();
    const c = this.env.ctx.counters;
    for (const s of this.h2Sessions) {
      if (s.closed) continue;
      c[this.env.ctx.base + OL.CX_IDLE_CLOSED]++;
      c[this.env.ctx.base + HL.H2_GOAWAY_SENT]++;
      s.close();
    }
  }

  private h1Server(): http.Server {
    if (this.h1 === null) this.h1 = httpEngines().h1.createH1Server(this.env);
    return this.h1;
  }

  private h2Server(): http2.Http2Server {
    if (this.h2 === null) {
      this.h2 = httpEngines().h2.createH2Server(this.env);
      this.h2.on('session', (s: http2.ServerHttp2Session) => {
        const first = this.sniffed;
        if (first !== null) {
          this.sniffed = null;
          const handle = sessionHandle(s);
          if (handle !== null) handle.receive(first);
          else s.destroy(new Error('cannot hand sniffed bytes to the HTTP/2 session'));
        }
        this.h2Sessions.add(s);
        s.once('close', () => this.h2Sessions.delete(s));
        // Accepted sockets allow half-open: a client's FIN must end the session here.
        s.socket.once('end', () => s.destroy());
      });
    }
    return this.h2;
  }

  /** Not used: the listener calls onSocket for this filter. */
  onAccept(conn: Connection): void {
    conn.destroy(new Error('http proxy takes raw sockets'));
  }

  /** Serves an HTTP/1.1 connection; `stream`: read with 'data' events (TLS, or bytes put back after sniffing). */
  private http1(socket: net.Socket, stream: boolean): void {
    if (H1_DOWNSTREAM === 'node') {
      this.h1Server().emit('connection', socket);
      socket.resume();
      return;
    }
    const h = new (httpEngines().raw.RawH1Connection)(this.env, this.rawH1);
    h.attach(Connection.accept(socket, h, this.env.ctx.bufferLimit, stream ? { stream: true } : undefined));
  }

  onSocket(socket: net.Socket): void {
    socket.on('error', () => {});
    const mode = this.env.cfg.downstream;
    if (mode === 'http1') {
      this.http1(socket, false);
      return;
    }
    if (mode === 'http2') {
      this.h2Server().emit('connection', socket);
      socket.resume();
      return;
    }
    // Behind TLS termination, ALPN has already chosen: no need to sniff the preface.
    const alpn = (socket as net.Socket & { alpnProtocol?: string | false }).alpnProtocol;
    if (alpn === 'http/1.1') {
      this.http1(socket, true);
      return;
    }
    if (alpn === 'h2') {
      // Bytes the TLS layer already decrypted into the stream buffer would be invisible to
      // the session (it reads the handle): pass them on like sniffed bytes.
      const early = socket.readableLength > 0 ? (socket.read() as Buffer | null) : null;
      if (early !== null) this.sniffed = early;
      // A server-side TLSSocket made outside tls.Server keeps secureConnecting = true after its
      // handshake, and node:http2 would wait for a 'secureConnect' that never comes.
      (socket as net.Socket & { secureConnecting?: boolean }).secureConnecting = false;
      this.h2Server().emit('connection', socket);
      if (this.sniffed !== null) {
        this.sniffed = null;
        socket.destroy();
        return;
      }
      socket.resume();
      return;
    }
    this.sniff(socket, Buffer.alloc(0));
  }

  /** Auto: reads until 4 bytes tell the HTTP/2 preface from an HTTP/1 request line. */
  private sniff(socket: net.Socket, have: Buffer): void {
    socket.once('data', (d: Buffer) => {
      socket.pause();
      const got = have.length === 0 ? d : Buffer.concat([have, d]);
      const n = Math.min(got.length, PREFACE.length);
      const isH2 = got.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isH2 && got.length < PREFACE.length) {
        this.sniff(socket, got);
        socket.resume();
        return;
      }
      if (isH2) {
        // node:http2 reads the socket's handle directly and would not see bytes put back with
        // unshift(): the new session's native handle receives them instead (see 'session').
        this.sniffed = got;
        this.h2Server().emit('connection', socket);
        if (this.sniffed !== null) {
          this.sniffed = null;
          socket.destroy();
          return;
        }
      } else {
        socket.unshift(got);
        this.http1(socket, true);
        return;
      }
      socket.resume();
    });
    socket.resume();
  }

  /** An RPC Auto listener's connection whose first bytes (a view, valid now) are an HTTP/1.x request. */
  adoptHttp1(conn: Connection, buf: Buffer, start: number, end: number): void {
    const h = new (httpEngines().raw.RawH1Connection)(this.env, this.rawH1);
    conn.setHandler(h);
    h.attach(conn);
    h.onData(conn, buf, start, end);
  }

  /** Same for the HTTP/2 preface: node:http2 takes over the socket; the bytes read so far go to its session. */
  adoptHttp2(conn: Connection, buf: Buffer, start: number, end: number): void {
    conn.setHandler(H2_ADOPTED);
    conn.readByNode(); // node:http2 reads the socket's handle itself
    const socket = conn.socket;
    this.sniffed = Buffer.from(buf.subarray(start, end));
    this.h2Server().emit('connection', socket);
    if (this.sniffed !== null) {
      this.sniffed = null;
      socket.destroy();
    }
  }

  prepareRoutes(routers: readonly RouterConfig[]): RouteSwap | null {
    const rc = routers.find((r) => r.name === this.env.cfg.routerConfigName);
    if (rc === undefined) throw new Error(`listener ${this.env.ctx.name}: proxy router_config_name "${this.env.cfg.routerConfigName}" not found`);
    const next = compiledHttpRouter(rc);
    const prev = this.env.router;
    return { apply: () => void (this.env.router = next), undo: () => void (this.env.router = prev) };
  }

  /** Listener drain: h1 keep-alive connections close after their current response, h2 sessions get GOAWAY. */
  onDrain(): void {
    this.env.draining = true;
    if (this.h1 !== null) this.h1.closeIdleConnections();
    for (const c of this.rawH1) c.closeIfIdle();
    const c = this.env.ctx.counters;
    const i = this.env.ctx.base + HL.H2_GOAWAY_SENT;
    const counted = (): void => void c[i]++;
    for (const s of this.h2Sessions) httpEngines().h2.drainH2Session(s, counted);
  }
}

// ---- HTTP on RPC `Auto` listeners: MOSN's Auto detects HTTP too; its requests are routed with
// the listener's router config, forwarded with the request's own protocol, default limits.

/** A Connection whose socket node:http2 took over: only the client's FIN matters (the socket is half-open capable). */
const H2_ADOPTED: ConnectionHandler = {
  onData() {},
  onEnd(conn: Connection) {
    conn.socket.destroy();
  },
  onClose() {},
  onHighWatermark() {},
  onLowWatermark() {},
};

/** One HTTP factory per Auto listener snapshot (its context), made on the first HTTP connection. */
const autoFactories = new WeakMap<ListenerContext, HttpProxyFactory | null>();

function autoFactory(owner: AutoOwner): HttpProxyFactory | null {
  let f = autoFactories.get(owner.ctx);
  if (f === undefined) {
    const name = owner.config.routerConfigName;
    const rc = owner.ctx.routers?.find((r) => r.name === name);
    const cfg: HttpProxyConfig = {
      ...HTTP_DEFAULTS,
      family: 'http',
      routerConfigName: name,
      downstream: 'auto',
      upstream: 'auto',
      h2MaxHeaderListSize: HTTP_DEFAULTS.maxHeaderSize,
      generateRequestId: true,
    };
    f = rc === undefined ? null : new HttpProxyFactory(cfg, owner.ctx, rc);
    autoFactories.set(owner.ctx, f);
  }
  return f;
}

onAutoDrain((ctx) => {
  const f = autoFactories.get(ctx);
  if (f !== undefined && f !== null) f.onDrain();
});

setAutoHandoff(Sniffed.Http1, (conn, buf, start, end, owner) => {
  const f = autoFactory(owner);
  if (f === null) return false;
  f.adoptHttp1(conn, buf, start, end);
  return true;
});

setAutoHandoff(Sniffed.Http2, (conn, buf, start, end, owner) => {
  const f = autoFactory(owner);
  // node:http2 takes the socket's handle: only when its fd carries the bytes read so far as they are.
  if (f === null || !conn.plainFd) return false;
  f.adoptHttp2(conn, buf, start, end);
  return true;
});

// h2 chosen by ALPN inside TLS on an RPC Auto listener: node:http2 takes the decrypted socket.
setAutoSocketHandoff((socket, owner) => {
  const f = autoFactory(owner);
  if (f === null) return false;
  f.onSocket(socket);
  return true;
});

function build(config: Readonly<Record<string, unknown>>, ctx: ListenerContext): NetworkFilterFactory {
  const cfg = config as unknown as HttpProxyConfig;
  const rc = ctx.routers?.find((r) => r.name === cfg.routerConfigName);
  if (rc === undefined) throw new Error(`listener ${ctx.name}: proxy router_config_name "${cfg.routerConfigName}" not found`);
  httpEngines(); // an HTTP listener loads its engines with the config, not on its first connection (~0.1 s)
  return new HttpProxyFactory(cfg, ctx, rc);
}

registerProxyFamily({
  name: 'http',
  claims: claimsHttp,
  validate: (config, path, ctx) => parseHttpProxyConfig(config, path, ctx) as unknown as Record<string, unknown>,
  build,
});
