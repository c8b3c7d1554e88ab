/**
 * The only place that opens upstream sockets (a lint rule keeps net.connect, tls.connect,
 * http2.connect and undici clients inside src/upstream): every upstream path — the raw
 * Connection pools (tcp_proxy, RPC, HTTP/1.1), the node:http tunnel, the HTTP/2 session, the
 * undici pool — dials through these functions, with the cluster's TLS options when it has a
 * tls_context. Counting, TLS stats and breakers are the Cluster's (cluster.ts).
 */
import type * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Pool } from 'undici';
import { native } from '../native';
import { Connection, ownedFdReads, type ConnectionHandler } from '../network/connection';
import { FdSocket } from '../network/fd-socket';
import { io } from '../network/io';
import { clientTlsOf, rememberSessions, sessionKey, withSession } from '../tls/client';
import { originateNative, originEngine } from '../tls/origin';

/**
 * Native connect (issue 15): a plaintext upstream connection to an IP literal is a bare fd
 * (FdSocket.connect: native/listen.cc connectTcp, polled by the thread's native read watcher
 * batch, no net.Socket or TCP handle), when the addon has it and this thread writes with writev.
 * OUTRIGGER_UPSTREAM_FD=0 (or OUTRIGGER_NATIVE_READ=0, or no addon) keeps net.connect. Host
 * names and a source address (upstream_bind_config) keep net.connect too.
 */
const fdConnect = process.env.OUTRIGGER_UPSTREAM_FD?.trim() !== '0' && ownedFdReads ? (native.connect ?? null) : null;

/** Whether dialConnection would open a plaintext connection to `host` on a bare fd in this thread. */
export function upstreamOnFd(host: string, localAddress?: string): boolean {
  return fdConnect !== null && localAddress === undefined && io().mode === 'writev' && isIpLiteral(host);
}

/**
 * net.isIP runs a regular expression (it showed in the handshake profile at one upstream per
 * connection): hosts are few, so the answer is kept per host string; the map is emptied past
 * 4,096 names (ORIGINAL_DST clusters make hosts on demand).
 */
const ipLiteral = new Map<string, boolean>();

function isIpLiteral(host: string): boolean {
  let v = ipLiteral.get(host);
  if (v === undefined) {
    if (ipLiteral.size >= 4096) ipLiteral.clear();
    v = net.isIP(host) !== 0;
    ipLiteral.set(host, v);
  }
  return v;
}

/**
 * A zero-copy Connection to host:port, TLS when `tlsOptions` is given: native (src/tls/origin.ts)
 * when the addon's engine originates in this thread, else Node's TLSSocket (Connection.adoptOutgoing),
 * from `localAddress` when given (upstream_bind_config source address). Plaintext: a bare fd
 * (upstreamOnFd), else a net.Socket reading into the shared chunk.
 */
export function dialConnection(
  host: string, port: number, handler: ConnectionHandler, bufferLimit: number, timeoutMs: number, tlsOptions: tls.ConnectionOptions | null,
  localAddress?: string,
): Connection {
  const local = localAddress !== undefined ? { localAddress } : null;
  const ct = tlsOptions !== null && originEngine !== null ? clientTlsOf(tlsOptions) : undefined;
  if (ct !== undefined && originEngine !== null && tlsOptions !== null) {
    // Native TLS (src/tls/origin.ts): a plain socket reading into the thread's chunk; the
    // handshake reads until the Connection takes the socket over (one closure per connection).
    let read: (n: number, b: Buffer) => void = () => {};
    const onread = { buffer: io().readBuffer, callback: (n: number, b: Buffer): boolean => (read(n, b), true) };
    const sock = net.connect({ host, port, allowHalfOpen: true, noDelay: true, ...local, onread } as net.NetConnectOpts);
    const conn = Connection.adoptOutgoingTls(sock, handler, bufferLimit, timeoutMs);
    read = originateNative(originEngine, sock, ct.nativeContext(), tlsOptions, host, sessionKey(tlsOptions, host, port), (s) => conn.tlsEstablished(s));
    return conn;
  }
  if (tlsOptions !== null) {
    // allowHalfOpen is honored by tls.connect (passed to the TLSSocket) though its typings omit it.
    const r = withSession(tlsOptions, host, port);
    const ts = tls.connect({ ...r.options, host, port, allowHalfOpen: true, ...local } as tls.ConnectionOptions);
    rememberSessions(ts, r.cache, r.key);
    return Connection.adoptOutgoing(ts, handler, bufferLimit, timeoutMs, null);
  }
  if (fdConnect !== null && upstreamOnFd(host, localAddress)) {
    const s = FdSocket.connect(fdConnect, host, port);
    return Connection.adoptOutgoing(s.asSocket, handler, bufferLimit, timeoutMs, null);
  }
  const hook = Connection.outgoingReadHook();
  const opts = { host, port, allowHalfOpen: true, noDelay: true, ...local } as net.NetConnectOpts;
  if (hook !== null) (opts as net.NetConnectOpts & { onread: unknown }).onread = hook.onread;
  return Connection.adoptOutgoing(net.connect(opts), handler, bufferLimit, timeoutMs, hook);
}

/**
 * A plain node socket to host:port (TLS with `tlsOptions`). The socket is usable once
 * `readyEvent(socket)` fired: 'secureConnect' for TLS (handshake verified), else 'connect'.
 */
export function dialSocket(host: string, port: number, tlsOptions: tls.ConnectionOptions | null, localAddress?: string): net.Socket {
  const local = localAddress !== undefined ? { localAddress } : null;
  if (tlsOptions === null) return net.connect({ host, port, noDelay: true, ...local });
  const r = withSession(tlsOptions, host, port);
  const s = tls.connect({ ...r.options, host, port, ...local });
  rememberSessions(s, r.cache, r.key);
  s.setNoDelay(true);
  return s;
}

export function readyEvent(s: net.Socket): 'secureConnect' | 'connect' {
  return s instanceof tls.TLSSocket ? 'secureConnect' : 'connect';
}

/**
 * An HTTP/2 client session over `socket` (from dialSocket; over TLS its options must offer
 * ALPN h2). `authority` is only the session's origin label: the socket is already chosen.
 */
export function dialH2(authority: string, socket: net.Socket, options: http2.ClientSessionOptions): http2.ClientHttp2Session {
  const scheme = socket instanceof tls.TLSSocket ? 'https' : 'http';
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- node:http2 loads with the first HTTP/2 upstream (issue 15: idle memory)
  return (require('node:http2') as typeof http2).connect(`${scheme}://${authority}`, { ...options, createConnection: () => socket });
}

/** An undici keep-alive pool whose connections come from `connect` (the cluster's dialer). */
export function undiciPool(authority: string, secure: boolean, options: Pool.Options): Pool {
  // undici (110 modules, ~8 MB of heap per thread) is loaded on first use: only the undici
  // HTTP/1.1 engine (OUTRIGGER_H1_UPSTREAM=undici) needs it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Pool: UndiciPool } = require('undici') as typeof import('undici');
  return new UndiciPool(`${secure ? 'https' : 'http'}://${authority}`, options);
}
