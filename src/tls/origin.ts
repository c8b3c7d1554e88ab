/**
 * Native TLS origination (issue 15): an upstream connection of the raw Connection pools
 * (tcp_proxy, Bolt, Dubbo, the raw HTTP/1.1 engine) stays a plain net.Socket reading into the
 * thread's chunk; OpenSSL runs in client mode on memory BIOs (native/tls_conn.cc TlsConn,
 * native/tls_client.cc for SNI, ALPN and the session cache), and the Connection reads and
 * writes through the session once the handshake is verified — no TLSSocket per connection.
 *
 *   net.connect ─ 'connect' ─> TlsConn (connect state) + tlsClientSetup ─ ClientHello to the fd
 *     reads ─> feed ─ handshake done ─ verdict (chain, then host name / SAN matchers, as Node's
 *     client decides) ─ 'secureConnect' on the socket (ClientTls.track counts it)
 *     ─> Connection.tlsEstablished(session)
 *
 * Used when the addon has the client side and OUTRIGGER_NATIVE_TLS is not 0 (src/tls/native.ts),
 * and the thread reads into user buffers; otherwise Node's tls.connect (src/upstream/connect.ts).
 * A failure destroys the socket with the error Node's path would give (an OpenSSL reason as
 * ERR_SSL_<REASON>, an X509 verification code such as UNABLE_TO_VERIFY_LEAF_SIGNATURE, or the
 * checkServerIdentity error), so counters and local replies are the same on both paths.
 */
import { X509Certificate } from 'node:crypto';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import type { NativeTlsClient, NativeTlsConn, NativeTlsConnInfo, NativeTlsEngine } from '../native';
import { io } from '../network/io';
import { socketFd, userBufferSupported } from '../network/user-buffer';
import { nativeTlsInfo } from './identity';
import { tlsLog } from './log';
import { alpnWire, drainPending, NativeTlsSession, TLS_FATAL, TLS_HANDSHAKE_DONE, TLS_MORE, tlsEngine } from './native';

interface OriginEngine {
  readonly engine: NativeTlsEngine;
  readonly client: NativeTlsClient;
}

/**
 * The engine that originates TLS natively in this thread, or null (Node's tls.connect): no
 * addon or one without tls_client.cc, OUTRIGGER_NATIVE_TLS=0, or no user-buffer reads.
 */
export const originEngine: OriginEngine | null =
  tlsEngine !== null && tlsEngine.client !== undefined && userBufferSupported ? { engine: tlsEngine, client: tlsEngine.client } : null;

/** Node's names of OpenSSL's X509 verification results (its err.code on the TLSSocket path). */
const X509_CODES: Readonly<Record<number, string>> = {
  2: 'UNABLE_TO_GET_ISSUER_CERT',
  3: 'UNABLE_TO_GET_CRL',
  4: 'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  6: 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  7: 'CERT_SIGNATURE_FAILURE',
  9: 'CERT_NOT_YET_VALID',
  10: 'CERT_HAS_EXPIRED',
  13: 'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  14: 'ERROR_IN_CERT_NOT_AFTER_FIELD',
  17: 'OUT_OF_MEM',
  18: 'DEPTH_ZERO_SELF_SIGNED_CERT',
  19: 'SELF_SIGNED_CERT_IN_CHAIN',
  20: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  21: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  22: 'CERT_CHAIN_TOO_LONG',
  23: 'CERT_REVOKED',
  24: 'INVALID_CA',
  25: 'PATH_LENGTH_EXCEEDED',
  26: 'INVALID_PURPOSE',
  27: 'CERT_UNTRUSTED',
  28: 'CERT_REJECTED',
  62: 'HOSTNAME_MISMATCH',
};

function verifyError(client: NativeTlsClient, code: number): Error {
  return Object.assign(new Error(client.verifyErrorString(code)), { code: X509_CODES[code] ?? 'UNSPECIFIED' });
}

type IdentityCheck = (host: string, cert: tls.PeerCertificate) => Error | undefined;

/**
 * The last certificate each identity check accepted, and for which name: upstreams present the
 * same certificate on every connection, and parsing it (X509Certificate + its legacy object) is
 * a tenth of a native handshake's JS. Keyed by the check function (the default, or a cluster's
 * SAN / IP check, both long-lived); a per-connection closure simply misses. Only acceptances are
 * kept: a rejection is computed again (and gets its own Error) every time.
 */
const accepted = new WeakMap<IdentityCheck, { name: string; der: Buffer }>();

/**
 * Whether the upstream is accepted, decided as Node's client does (onConnectSecure): the chain's
 * verdict first; then, unless the session was resumed, options.checkServerIdentity (default
 * tls.checkServerIdentity) against `servername || host`; an error only fails the connection
 * with rejectUnauthorized (the default).
 */
export function originVerdict(client: NativeTlsClient, o: tls.ConnectionOptions, host: string, ni: NativeTlsConnInfo): Error | null {
  let err: Error | undefined;
  const der = ni.peerDer;
  if (der === undefined) err = Object.assign(new Error('upstream presented no certificate'), { code: 'UNABLE_TO_GET_ISSUER_CERT' });
  else if (ni.verifyResult !== 0) err = verifyError(client, ni.verifyResult);
  else if (!ni.reused) {
    const check: IdentityCheck = o.checkServerIdentity ?? tls.checkServerIdentity;
    const name = o.servername !== undefined && o.servername !== '' ? o.servername : host;
    const last = accepted.get(check);
    if (last === undefined || last.name !== name || !last.der.equals(der)) {
      err = check(name, new X509Certificate(der).toLegacyObject());
      if (err === undefined) accepted.set(check, { name, der }); // one entry per check function, replaced
    }
  }
  return err !== undefined && o.rejectUnauthorized !== false ? err : null;
}

/** ALPN offer of tls.connect options in wire format (undefined: none). */
function offer(o: tls.ConnectionOptions): Uint8Array | undefined {
  const a = o.ALPNProtocols;
  if (a === undefined) return undefined;
  if (a instanceof Uint8Array) return a;
  const names = (a as readonly (string | Uint8Array)[]).map((p) => (typeof p === 'string' ? p : Buffer.from(p).toString('latin1')));
  return alpnWire(names);
}

let announced = false;

function announce(): void {
  if (announced) return;
  announced = true;
  tlsLog().info({ path: 'native' }, 'TLS origination: native (OpenSSL on memory BIOs)');
}

/**
 * Runs the client handshake on `sock` (a plain socket just created by net.connect with user-buffer
 * reads calling the returned function until the Connection takes the socket over). `context`: a
 * SecureContext's `context` used by native connections only; `key`: the session cache key.
 * onUp runs with the verified session; on failure the socket is destroyed with the error.
 */
export function originateNative(
  oe: OriginEngine, sock: net.Socket, context: unknown, o: tls.ConnectionOptions, host: string, key: string, onUp: (s: NativeTlsSession) => void,
): (n: number, buf: Buffer) => void {
  const { engine, client } = oe;
  const st = engine.status;
  let conn: NativeTlsConn | null = null;
  let fd = -1;
  let finished = false;
  const cleanup = (): void => {
    finished = true;
    sock.off('error', onError);
    sock.off('close', onClose);
    sock.off('end', onEnd);
  };
  const fail = (err: Error): void => {
    if (finished) return;
    cleanup();
    client.forget(context, key); // a session that led to a failed connection is not offered again
    if (conn !== null) conn.free();
    sock.destroy(err);
  };
  const onError = (): void => {
    if (finished) return;
    cleanup();
    client.forget(context, key);
    if (conn !== null) conn.free();
  };
  const onClose = (): void => onError();
  // The upstream closed before the handshake finished: Node's TLSSocket reports it so.
  const onEnd = (): void => fail(Object.assign(new Error('Client network socket disconnected before secure TLS connection was established'), { code: 'ECONNRESET' }));
  /**
   * Sends what the handshake left in the write BIO (read() only flushes before the handshake is
   * done; after it, everything was decrypted already), then what the kernel refused (rare) as a
   * copy through the socket's queue.
   */
  const send = (c: NativeTlsConn, buf: Buffer): void => {
    c.read(buf, sock.writableLength > 0 ? -1 : fd);
    if (st[1] > 0) sock.write(c.take());
  };
  const onRead = (n: number, buf: Buffer): void => {
    if (finished || conn === null) return;
    const c = conn;
    // Records stay in the write BIO (fd -1) until the verdict: like Node's client, a rejected
    // upstream never gets our Finished (nor the client certificate's proof), so its application
    // never sees the connection.
    const out = c.feed(buf, n, -1);
    const flags = st[0];
    if (flags & TLS_FATAL) {
      fail(c.error());
      return;
    }
    if ((flags & TLS_HANDSHAKE_DONE) === 0) {
      send(c, buf);
      return;
    }
    const ni = c.info();
    const err = originVerdict(client, o, host, ni);
    if (err !== null) {
      fail(err);
      return;
    }
    const session = new NativeTlsSession(c, nativeTlsInfo(ni), ni.reused);
    // Application data that came with the server's last flight: one copy, for the Connection's first read.
    if (out > 0 || flags & TLS_MORE) session.pending = drainPending(c, st, buf, out, sock, fd);
    if (finished) return;
    send(c, buf);
    if (st[0] & TLS_FATAL) {
      fail(c.error());
      return;
    }
    cleanup();
    sock.pause();
    announce();
    sock.emit('secureConnect', session); // ClientTls.track counts the handshake
    onUp(session);
  };
  sock.on('error', onError);
  sock.once('close', onClose);
  sock.prependOnceListener('end', onEnd);
  sock.once('connect', () => {
    if (finished) return;
    try {
      const c = engine.create(context, false, 0, undefined);
      conn = c;
      client.setup(c, o.servername ?? '', offer(o), key);
      fd = socketFd(sock);
      c.feed(io().readBuffer, 0, fd); // the ClientHello, sent to the fd
      if (st[0] & TLS_FATAL) {
        fail(c.error());
        return;
      }
      if (st[1] > 0) sock.write(c.take());
    } catch (e) {
      fail(e instanceof Error ? e : new Error(String(e)));
    }
  });
  return onRead;
}
