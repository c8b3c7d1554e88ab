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
import { tlsLog } from './log';
import { alpnWire, NativeHandshakeRun, type NativeTlsSession, TLS_FATAL, tlsEngine } from './native';

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
 * One client handshake (the shared loop of NativeHandshakeRun, client policy): the TlsConn is
 * made once the socket is connected; each flight's records wait until the feed is over, so the
 * Finished (and a client certificate's proof) leaves only after the verdict accepted the server,
 * as with Node's client. A failure forgets the cache key (a session that led to a failed
 * connection is not offered again) and destroys the socket with the error Node would give.
 */
class ClientHandshake extends NativeHandshakeRun {
  constructor(
    sock: net.Socket,
    st: Int32Array,
    private readonly oe: OriginEngine,
    private readonly context: unknown,
    private readonly o: tls.ConnectionOptions,
    private readonly host: string,
    private readonly key: string,
    private readonly onUp: (s: NativeTlsSession) => void,
  ) {
    super(sock, null, -1, st, true);
  }

  /** Connected: the client's TlsConn (SNI, ALPN offer, cached session) and its ClientHello, sent to the fd. */
  readonly start = (): void => {
    if (this.finished) return;
    try {
      const c = this.oe.engine.create(this.context, false, 0, undefined);
      this.conn = c;
      this.oe.client.setup(c, this.o.servername ?? '', offer(this.o), this.key);
      this.fd = socketFd(this.sock);
      c.feed(io().readBuffer, 0, this.fd);
      if (this.st[0] & TLS_FATAL) {
        this.fail(c.error());
        return;
      }
      if (this.st[1] > 0) this.sock.write(c.take());
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
    }
  };

  /** The upstream closed before the handshake finished: Node's TLSSocket reports it so. */
  protected endError(): Error {
    return Object.assign(new Error('Client network socket disconnected before secure TLS connection was established'), { code: 'ECONNRESET' });
  }

  /** Node destroys the socket and reports the error to the Connection: only let go here. */
  protected socketError(): void {
    this.abandon();
  }

  protected socketClosed(): void {
    this.abandon();
  }

  private abandon(): void {
    if (this.finished) return;
    this.cleanup();
    this.oe.client.forget(this.context, this.key);
    if (this.conn !== null) this.conn.free();
  }

  protected verdict(_conn: NativeTlsConn, ni: NativeTlsConnInfo): Error | null {
    return originVerdict(this.oe.client, this.o, this.host, ni);
  }

  protected failed(err: Error): void {
    this.oe.client.forget(this.context, this.key);
    this.sock.destroy(err);
  }

  protected done(session: NativeTlsSession): void {
    this.sock.pause();
    announce();
    this.sock.emit('secureConnect', session); // ClientTls.track counts the handshake
    this.onUp(session);
  }
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
  const r = new ClientHandshake(sock, oe.engine.status, oe, context, o, host, key, onUp);
  sock.on('error', r.onError);
  sock.on('close', r.onClose);
  sock.prependListener('end', r.onEnd); // before the Connection's own 'end' listener
  sock.once('connect', r.start);
  return r.onRead;
}
