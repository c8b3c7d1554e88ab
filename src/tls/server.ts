/**
 * Downstream TLS for one listener in one worker: the certificates of its tls_context (or
 * tls_context_set), SNI selection, client-certificate policy, the TLS inspector, hot reload
 * of certificate files, and handshake stats.
 *
 *   accepted socket ── peek the first record ──┬─ ClientHello: SNI -> context ─ TLSSocket handshake ─ 'secure' ─> onTls(tlsSocket)
 *                                              └─ not TLS: inspector -> onPlain(socket); else the handshake rejects it
 *
 * SNI is read from the buffered ClientHello (client-hello.ts) and the chosen context is
 * given to the TLSSocket whole; Node's SNICallback cannot be used (it adds the chosen
 * certificate beside the default one instead of replacing it).
 *
 * Each handshake starts with the contexts current at that moment; a reload swaps them for
 * new handshakes only, so live connections are never touched. A replacement that does not
 * load (missing file, bad PEM, key not matching, expired) is refused: the old pair stays and
 * the refusal is logged and counted.
 *
 * SNI (MOSN pkg/mtls tls_context_manager.go): an entry answers to its certificate's CN and
 * DNS SANs and its server_name; exact names first, then wildcards ("*.example.com");
 * no match or no SNI -> the first entry.
 */
import type * as net from 'node:net';
import * as tls from 'node:tls';
import type { NativeTlsConn, NativeTlsEngine } from '../native';
import type { FilterConfig, TlsContextConfig } from '../config/types';
import { L } from '../stats/layout';
import { peekSocket } from '../network/peek';
import { tlsLog } from './log';
import { firstRecordLength, parseSni, TLS_RECORD_HANDSHAKE } from './client-hello';
import { rememberServerName } from './identity';
import { buildSecureContext, certNames, loadMaterial, TlsMaterialError } from './material';
import { alpnWire, announceTlsPath, nativeHandshake, tlsEngine, type NativeHandshake, type NativeTlsSession } from './native';
import type { TlsInfo } from './identity';
import { countListenerFailure, countListenerHandshake, countListenerHandshakeOf, FailReason, failReason } from './stats';
import { disableTickets, enableTickets, sessionIdContext } from './tickets';
import { FileWatcher } from './watch';

/** A client that connects and stays silent (or stalls mid-handshake) is closed after this long. */
export const HANDSHAKE_TIMEOUT_MS = 15_000;

/** Peek at most this much for the ClientHello (a TLS record is at most 16 KiB + header). */
const MAX_PEEK = 16 * 1024 + 5;

interface Entry {
  readonly config: TlsContextConfig;
  context: tls.SecureContext;
  /** The TLSSocket options of a handshake with this context (built once, shared by every handshake). */
  socketOptions: tls.TLSSocketOptions;
  names: Set<string>;
  /** PEM text currently in use (to skip reloads that change nothing). */
  cert: string;
  key: string;
  ca: string;
  /**
   * The SSL_CTX handle of `context` for the native path (its `context._external`, read once:
   * a property read per handshake otherwise); valid while the entry holds `context`.
   */
  sslContext: unknown;
}

export interface TlsHandoff {
  /**
   * Handshake done (and the client certificate accepted): the socket carries cleartext. A
   * tls.TLSSocket on Node's path; on the native path (src/tls/native.ts) the accepted socket
   * itself, whose Connection reads and writes through its NativeTlsSession.
   */
  onTls(sock: net.Socket): void;
  /** Inspector only: the client spoke plaintext; the peeked bytes are back in the socket. */
  onPlain(sock: net.Socket): void;
}

/** ALPN protocols offered: the configured ones, else h2 + http/1.1 when the listener serves HTTP. */
export function alpnFor(c: TlsContextConfig, filters: readonly FilterConfig[]): string[] {
  if (c.alpn.length > 0) return [...c.alpn];
  // The chain's L7 proxy (not necessarily the last filter: a fallback tcp_proxy may follow it).
  const last = filters.find((f) => f.type.toLowerCase() === 'proxy');
  if (last) {
    // The RPC proxy config lists downstreamProtocols; the HTTP family's has `downstream`.
    const cfg = last.config as { downstreamProtocols?: readonly string[]; family?: string; downstream?: string };
    const dp = cfg.downstreamProtocols ?? [];
    if (dp.some((p) => /^(http1|http2|auto)$/i.test(p))) return ['h2', 'http/1.1'];
    if (cfg.family === 'http') return cfg.downstream === 'http1' ? ['http/1.1'] : ['h2', 'http/1.1'];
  }
  return [];
}

export class ServerTls {
  private entries: Entry[];
  private readonly watcher: FileWatcher | null;
  private readonly socketOptions: tls.TLSSocketOptions;
  private readonly verifyIfGiven: boolean;
  /**
   * The listener must read the ClientHello before the handshake: several contexts (SNI picks
   * one) or the inspector. Otherwise the handshake starts on the accepted socket at once and
   * OpenSSL reads the hello itself (no JS read, no buffer copy, no put-back).
   */
  readonly needsHello: boolean;
  /** The client-certificate policy, part of the session id context (a session resumes only under the same one). */
  private readonly policy: string;
  private closed = false;
  /** Native TLS (src/tls/native.ts) for this chain, or null: Node's TLSSocket. */
  readonly engine: NativeTlsEngine | null;
  private readonly nativeVerify: number;
  private readonly nativeAlpn: Uint8Array | undefined;
  private nativePolicy: NativeHandshake<TlsHandoff> | null = null;

  constructor(
    readonly listenerName: string,
    configs: readonly TlsContextConfig[],
    filters: readonly FilterConfig[],
    private readonly counters: Float64Array,
    private readonly base: number,
    readonly inspector: boolean,
    /** The chain takes a Connection (not the socket itself): native TLS may serve it. */
    nativeOk = false,
  ) {
    if (configs.length === 0) throw new Error(`listener ${listenerName}: no TLS context`);
    const first = configs[0];
    const alpn = alpnFor(first, filters);
    // MOSN GetClientAuth: verify+require -> RequireAndVerify; verify -> VerifyIfGiven; require -> Request.
    const requestCert = first.verifyClient || first.requireClientCert;
    const rejectUnauthorized = first.verifyClient && first.requireClientCert;
    this.verifyIfGiven = first.verifyClient;
    this.policy = `${listenerName}|${first.verifyClient}|${first.requireClientCert}`;
    this.socketOptions = {
      isServer: true,
      requestCert,
      // With this set OpenSSL fails the handshake when no certificate comes; the chain itself
      // is checked after the handshake (Node's model), in onSecure.
      rejectUnauthorized,
      ...(alpn.length > 0 ? { ALPNProtocols: alpn } : {}),
    };
    // h2 by ALPN hands the socket itself to node:http2 (listener autoSocketHandoff): Node's TLS then.
    this.engine = nativeOk && !alpn.includes('h2') ? tlsEngine : null;
    announceTlsPath(listenerName, this.engine !== null);
    this.nativeVerify = rejectUnauthorized ? 2 : requestCert ? 1 : 0;
    this.nativeAlpn = alpnWire(alpn);
    this.entries = configs.map((c) => this.load(c));
    this.needsHello = configs.length > 1 || inspector;
    const files = new Set<string>();
    for (const c of configs) for (const s of [c.certChain, c.privateKey, c.caCert]) if (s && s.kind === 'file') files.add(s.path);
    this.watcher = files.size > 0 ? new FileWatcher(files, () => this.reload()) : null;
  }

  private load(config: TlsContextConfig, prev?: Entry): Entry {
    const m = loadMaterial(config);
    const names = new Set<string>(m.leaf ? certNames(m.leaf) : []);
    if (config.serverName !== '') names.add(config.serverName.toLowerCase());
    const cert = m.cert ?? '';
    const key = m.key ?? '';
    const ca = m.ca ?? '';
    if (prev && prev.cert === cert && prev.key === key && prev.ca === ca) return prev;
    const context = buildSecureContext(config, m);
    const sid = sessionIdContext(cert, ca, this.policy);
    if (config.sessionTickets === false) disableTickets(context, sid);
    else enableTickets(context, sid);
    return { config, context, socketOptions: { ...this.socketOptions, secureContext: context }, names, cert, key, ca, sslContext: sslContextOf(context) };
  }

  /** The entry for an SNI name (exact, then wildcard), else the default (first). */
  select(servername: string | undefined): Entry {
    const entries = this.entries;
    if (servername) {
      let name = servername.toLowerCase();
      while (name.endsWith('.')) name = name.slice(0, -1);
      for (const e of entries) if (e.names.has(name)) return e;
      const labels = name.split('.');
      for (let i = 1; i < labels.length; i++) {
        const wild = `*.${labels.slice(i).join('.')}`;
        for (const e of entries) if (e.names.has(wild)) return e;
      }
    }
    return entries[0];
  }

  /** Re-reads changed certificate files; a context that fails to load keeps its old material. */
  reload(): void {
    if (this.closed) return;
    const log = tlsLog();
    const next = this.entries.map((e, i) => {
      try {
        const n = this.load(e.config, e);
        if (n !== e) {
          this.counters[this.base + L.TLS_CERT_RELOAD]++;
          log.info({ listener: this.listenerName, context: i }, 'TLS certificate reloaded; new handshakes use it');
        }
        return n;
      } catch (err) {
        this.counters[this.base + L.TLS_CERT_RELOAD_FAIL]++;
        const field = err instanceof TlsMaterialError ? err.field : 'tls_context';
        const why = err instanceof Error ? err.message : String(err);
        log.error({ listener: this.listenerName, context: i, field, reason: why }, 'TLS certificate reload refused; keeping the previous certificate');
        return e;
      }
    });
    this.entries = next;
  }

  /** Takes an accepted (paused) socket through the inspector and/or the handshake. */
  start(raw: net.Socket, h: TlsHandoff): void {
    peekClientHello(
      raw,
      (buf) => this.afterPeek(raw, buf, h),
      () => {
        this.counters[this.base + L.TLS_FAIL_OTHER]++;
        raw.destroy();
      },
    );
  }

  /** After peekClientHello (the bytes are back in the socket): handshake, or plaintext through the inspector. */
  afterPeek(raw: net.Socket, buf: Buffer, h: TlsHandoff): void {
    const isTls = buf[0] === TLS_RECORD_HANDSHAKE;
    if (isTls || !this.inspector) {
      this.handshake(raw, isTls ? parseSni(buf) : '', h);
    } else {
      this.counters[this.base + L.TLS_INSPECTOR_PLAINTEXT]++;
      h.onPlain(raw);
    }
  }

  /**
   * Handshakes an accepted socket with the context for `sni`: the ClientHello was peeked (and
   * put back), or (no needsHello) not read at all and `sni` is "".
   */
  handshake(raw: net.Socket, sni: string, h: TlsHandoff): void {
    if (this.engine !== null) {
      this.nativeHandshake(this.engine, raw, sni, h);
      return;
    }
    const sock = new tls.TLSSocket(raw, this.select(sni).socketOptions);
    if (sni !== '') rememberServerName(sock, sni);
    const counters = this.counters;
    const base = this.base;
    let failed = false;
    const fail = (reason: FailReason): void => {
      if (failed) return;
      failed = true;
      countListenerFailure(counters, base, reason);
      sock.destroy();
    };
    const onError = (err: Error): void => fail(failReason(err));
    const onTimeout = (): void => fail(FailReason.Other);
    sock.on('error', onError);
    sock.setTimeout(HANDSHAKE_TIMEOUT_MS);
    sock.once('timeout', onTimeout);
    sock.once('secure', () => {
      sock.setTimeout(0);
      sock.off('timeout', onTimeout);
      if (this.verifyIfGiven && sock.getPeerX509Certificate() !== undefined && verifyError(sock) !== null) {
        fail(FailReason.Verify);
        return;
      }
      if (failed || sock.destroyed) return;
      countListenerHandshake(counters, base, sock);
      sock.off('error', onError);
      sock.on('error', noop); // the Connection records errors itself; keep one listener so none is unhandled
      h.onTls(sock);
    });
  }

  /** The native path of handshake(): same context choice, policy and counters. */
  private nativeHandshake(engine: NativeTlsEngine, raw: net.Socket, sni: string, h: TlsHandoff): void {
    if (this.nativePolicy === null) this.nativePolicy = this.buildNativePolicy();
    nativeHandshake(engine, raw, this.select(sni).sslContext, this.nativePolicy, h);
  }

  /** The native handshake policy of this chain (once; it reads no per-connection state). */
  private buildNativePolicy(): NativeHandshake<TlsHandoff> {
    const counters = this.counters;
    const base = this.base;
    const verifyIfGiven = this.verifyIfGiven;
    return {
      verify: this.nativeVerify,
      alpn: this.nativeAlpn,
      timeoutMs: HANDSHAKE_TIMEOUT_MS,
      check(_conn: NativeTlsConn, _info: TlsInfo, verifyResult: number, hasPeer: boolean): Error | null {
        // As Node's path: a certificate that came must chain to the CA (verify_client); one
        // that did not come is refused by OpenSSL already when it is required.
        if (verifyIfGiven && hasPeer && verifyResult !== 0) return Object.assign(new Error(`client certificate not verified (X509 error ${verifyResult})`), { code: 'CERT_VERIFY' });
        return null;
      },
      onDone(sock: net.Socket, s: NativeTlsSession, h: TlsHandoff): void {
        countListenerHandshakeOf(counters, base, s.reused, s.info.version, s.info.cipher);
        h.onTls(sock);
      },
      onFail(err: Error): void {
        countListenerFailure(counters, base, failReason(err));
      },
    };
  }

  close(): void {
    this.closed = true;
    if (this.watcher) this.watcher.close();
  }
}

function noop(): void {}

/** A SecureContext's native handle as the addon takes it: `context._external` (else `context`). */
function sslContextOf(c: tls.SecureContext): unknown {
  const handle = (c as unknown as { context: { _external?: unknown } }).context;
  return handle._external ?? handle;
}

/**
 * The TLS-inspector listener filter: reads an accepted (paused) socket until its first TLS
 * record is whole (or the first read, when it is not TLS), puts the bytes back into the
 * socket's readable buffer (pausing it) and calls onPeek with them. A client that stays
 * silent (or sends half a ClientHello, or half-closes first) for HANDSHAKE_TIMEOUT_MS gets
 * onTimeout instead.
 */
export function peekClientHello(raw: net.Socket, onPeek: (buf: Buffer) => void, onTimeout: () => void): void {
  peekSocket(raw, HANDSHAKE_TIMEOUT_MS, helloComplete, onPeek, onTimeout);
}

/** The whole first TLS record is here (or enough bytes to say it is not TLS, or the peek limit). */
function helloComplete(buf: Buffer): boolean {
  if (buf[0] !== TLS_RECORD_HANDSHAKE) return true;
  const need = firstRecordLength(buf);
  return (need >= 0 && buf.length >= need) || buf.length >= MAX_PEEK;
}

/**
 * The chain verification result OpenSSL recorded during the handshake (Node verifies chains
 * after the handshake; tls.Server and tls.connect read the same value). Fails closed.
 */
export function verifyError(sock: tls.TLSSocket): Error | null {
  const handle = (sock as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
  if (handle === undefined || handle === null || typeof handle.verifyError !== 'function') return new Error('cannot read verification result');
  return handle.verifyError();
}
