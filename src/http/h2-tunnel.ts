/**
 * CONNECT on an HTTP/2 downstream: the byte relay of a TunnelRequest (./tunnel.ts runs the
 * request through the same stream phases as HTTP/1.1 CONNECT and Upgrade: filters, route by
 * authority, cluster, host, max_connections, retries of connect failures, access log).
 *
 *   CONNECT (RFC 7540 §8.3)     :authority host:port, no :path / :scheme
 *     upstream gets             "CONNECT host:port HTTP/1.1" + Host, as an HTTP/1.1 CONNECT does
 *   extended CONNECT (RFC 8441) :protocol websocket, :path, :authority
 *     upstream gets             "GET :path HTTP/1.1" + Upgrade: websocket, Connection: Upgrade and
 *                               a Sec-WebSocket-Key of ours (h2 clients send none)
 *
 * The upstream's HTTP/1.1 answer head is read here (it is not relayed as bytes, unlike on an
 * HTTP/1.1 downstream): 2xx to CONNECT or 101 to the Upgrade becomes :status 200 (with the
 * WebSocket subprotocol / extensions it chose) and from then on DATA frames and the upstream
 * connection's bytes are relayed both ways, half-closes passed on; anything else is passed back
 * as that status with END_STREAM. A TCP error after the tunnel is up resets the stream with
 * CONNECT_ERROR (RFC 7540 §8.3).
 */
import * as crypto from 'node:crypto';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { HTTP1_ALPN, type Cluster } from '../upstream/cluster';
import { readyEvent } from '../upstream/connect';
import type { Host } from '../upstream/lb';
import type { DownstreamTransport, HttpEnv } from './exchange';
import type { Headers } from './headers';
import { statusOf, TunnelRequest, type TunnelRelay } from './tunnel';

const { NGHTTP2_CONNECT_ERROR, NGHTTP2_NO_ERROR } = http2.constants;
/** An upstream answer head longer than this is refused (502). */
const MAX_HEAD = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/** Upgrade response headers passed back to an RFC 8441 client. */
const WS_RESPONSE_HEADERS = ['sec-websocket-protocol', 'sec-websocket-extensions'];

class H2Relay implements TunnelRelay {
  private up: net.Socket | null = null;
  private connected = false;
  private responded = false;
  private head: Buffer | null = null;
  bytesIn = 0;
  bytesOut = 0;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    /** Extended CONNECT: the upstream answers 101. */
    private readonly upgrade: boolean,
  ) {}

  transport(): DownstreamTransport | null {
    const s = this.stream.session;
    return s === undefined ? null : s.socket;
  }

  refuse(status: number): void {
    this.respondEnd(status);
  }

  private respondEnd(status: number): void {
    const st = this.stream;
    this.responded = true;
    if (st.destroyed || st.closed || st.headersSent) return;
    st.respond({ ':status': status, 'content-length': '0' }, { endStream: true });
    // The answer is complete: the client need not send more (RST_STREAM NO_ERROR, RFC 7540 §8.1),
    // and the stream closes here rather than when the client ends its side.
    st.close(NGHTTP2_NO_ERROR);
  }

  open(t: TunnelRequest, cluster: Cluster, host: Host, head: string): void {
    host.active++;
    // The cluster's socket: TLS per its tls_context, counted, connect (and handshake) timeout.
    const up = cluster.openSocket(host, cluster.connectTimeoutMs, HTTP1_ALPN);
    this.up = up;
    this.connected = false;
    this.head = null;
    let failed = false;
    up.once(readyEvent(up), () => {
      this.connected = true;
      up.write(head);
      // Client DATA flows as soon as the upstream is there; the answer head is read first.
      this.stream.on('data', (d: Buffer) => (this.bytesIn += d.length));
      this.stream.pipe(up);
      up.on('data', (d: Buffer) => this.onUpstreamData(t, d));
    });
    up.on('error', (err: Error) => {
      if (!this.connected) {
        if (!failed) {
          failed = true;
          t.connectFailed(err.message);
        }
      } else if (!this.stream.destroyed) this.stream.close(NGHTTP2_CONNECT_ERROR);
    });
    up.once('end', () => {
      if (!this.responded) this.respondEnd(502);
      else if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
    });
    up.once('close', () => {
      host.active--;
      if (!this.connected) {
        if (!failed) {
          failed = true;
          t.connectFailed('upstream closed before connecting');
        }
        return;
      }
      if (!this.responded) this.respondEnd(502);
      else if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
    });
  }

  /** Upstream bytes: the answer head first (translated to an HTTP/2 response), then the tunnel's payload. */
  private onUpstreamData(t: TunnelRequest, d: Buffer): void {
    if (this.responded) {
      this.bytesOut += d.length;
      if (!this.stream.destroyed && !this.stream.write(d)) {
        const up = this.up as net.Socket;
        up.pause();
        this.stream.once('drain', () => up.resume());
      }
      return;
    }
    // One copy per tunnel while the head is incomplete (usually one read holds it whole).
    const buf = this.head === null ? d : Buffer.concat([this.head, d]);
    const end = buf.indexOf(HEAD_END);
    if (end < 0) {
      if (buf.length > MAX_HEAD) this.fail(t, 502);
      else this.head = buf;
      return;
    }
    this.head = null;
    const status = statusOf(buf, 0, buf.length);
    t.upstreamStatus(status);
    const ok = this.upgrade ? status === 101 : status >= 200 && status < 300;
    if (!ok) {
      this.fail(t, status >= 200 ? status : 502);
      return;
    }
    const out: http2.OutgoingHttpHeaders = { ':status': 200 };
    if (this.upgrade) {
      const lines = buf.toString('latin1', 0, end).split('\r\n');
      for (let i = 1; i < lines.length; i++) {
        const c = lines[i].indexOf(':');
        const name = lines[i].slice(0, c).trim().toLowerCase();
        if (c > 0 && WS_RESPONSE_HEADERS.includes(name)) out[name] = lines[i].slice(c + 1).trim();
      }
    }
    this.responded = true;
    const st = this.stream;
    if (st.destroyed || st.closed) return;
    st.respond(out);
    const rest = buf.subarray(end + 4);
    if (rest.length > 0) this.onUpstreamData(t, rest);
  }

  /** The upstream refused the tunnel (or answered nonsense): that status, and the upstream connection goes. */
  private fail(_t: TunnelRequest, status: number): void {
    this.respondEnd(status);
    if (this.up !== null) this.up.destroy();
  }

  /** The client stream closed: the upstream goes too; the stream ends. */
  closed(t: TunnelRequest): void {
    const up = this.up;
    if (up !== null) up.destroy();
    t.ended(this.bytesIn, this.bytesOut, up === null || !up.destroyed);
  }
}

/**
 * Serves a CONNECT stream of an HTTP/2 downstream (plain, or extended with :protocol) as a
 * tunnel. Returns false when the stream is not one (the caller runs it as a request).
 */
export function h2Tunnel(env: HttpEnv, stream: http2.ServerHttp2Stream, headers: Headers): boolean {
  if (headers[':method'] !== 'CONNECT') return false;
  stream.on('error', () => {});
  const authority = String(headers[':authority'] ?? '');
  const protocol = headers[':protocol'];
  // The upstream head's headers: the client's, pseudo-headers out, Host from :authority.
  const out: Headers = {};
  for (const k in headers) if (k.charCodeAt(0) !== 58) out[k] = headers[k];
  out['host'] = authority;
  const upgrade = protocol !== undefined;
  let req: TunnelRequest;
  const relay = new H2Relay(stream, upgrade);
  if (!upgrade) {
    req = new TunnelRequest(env, relay, 'CONNECT', authority, out, true, 'http2');
  } else {
    out['upgrade'] = String(protocol);
    out['connection'] = 'Upgrade';
    // RFC 8441 clients send no key (the h2 stream proves the handshake); HTTP/1.1 servers need one.
    if (String(protocol).toLowerCase() === 'websocket' && out['sec-websocket-key'] === undefined) {
      out['sec-websocket-key'] = crypto.randomBytes(16).toString('base64');
    }
    req = new TunnelRequest(env, relay, 'GET', String(headers[':path'] ?? '/'), out, false, 'http2');
  }
  stream.once('close', () => relay.closed(req));
  req.start();
  return true;
}
