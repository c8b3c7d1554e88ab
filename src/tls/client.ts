/**
 * Upstream TLS for one cluster in one worker (MOSN cluster `tls_context`): CA verification
 * (system roots when ca_cert is absent, none with insecure_skip), SNI from server_name (or
 * the host's name), an optional client certificate for mTLS, and handshake stats.
 * Certificate files are watched like a listener's: new connections use a rotated client
 * certificate or CA; a bad replacement is refused and the old one kept.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { TlsContextConfig } from '../config/types';
import { tlsLog } from './log';
import { buildSecureContext, loadMaterial, TlsMaterialError, type TlsMaterial } from './material';
import { sanMatches } from './san';
import type { NativeTlsSession } from './native';
import { countClusterFailure, countClusterHandshake, countClusterHandshakeOf, failReason } from './stats';
import { FileWatcher } from './watch';

/** Sessions kept per cluster and worker (one per host:port and SNI); the oldest goes first. */
const MAX_SESSIONS = 256;

/**
 * Client-side TLS sessions of one cluster (tickets the upstreams issued), so that a reconnect
 * to the same host resumes instead of running a full handshake. Keyed by host:port and SNI.
 */
export class SessionCache {
  private readonly sessions = new Map<string, Buffer>();

  get(key: string): Buffer | undefined {
    return this.sessions.get(key);
  }

  set(key: string, session: Buffer): void {
    const m = this.sessions;
    m.delete(key);
    m.set(key, session);
    if (m.size > MAX_SESSIONS) {
      const oldest = m.keys().next();
      if (oldest.done !== true) m.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.sessions.delete(key);
  }

  clear(): void {
    this.sessions.clear();
  }

  get size(): number {
    return this.sessions.size;
  }
}

const SESSIONS: unique symbol = Symbol('outrigger.tlsSessions');

/** tls.connect options that may carry the cluster's session cache (ClientTls.options). */
export type ResumableOptions = tls.ConnectionOptions & { [SESSIONS]?: SessionCache; [CLIENT]?: ClientTls };

/** The session cache key of an upstream: host:port and SNI (both TLS paths). */
export function sessionKey(o: tls.ConnectionOptions, host: string, port: number): string {
  return `${host}:${port}|${o.servername ?? ''}`;
}

const CLIENT: unique symbol = Symbol('outrigger.clientTls');

/** The ClientTls whose options() made `o`, if any (native origination takes its context from it). */
export function clientTlsOf(o: tls.ConnectionOptions): ClientTls | undefined {
  return (o as ResumableOptions)[CLIENT];
}

/**
 * tls.connect options for host:port with the cached session of that upstream (when the
 * options carry a cache); `remember` then keeps the sessions the upstream issues on `sock`.
 * One key string per upstream connection (not per request).
 */
export function withSession(o: ResumableOptions, host: string, port: number): { options: tls.ConnectionOptions; key: string; cache: SessionCache | null } {
  const cache = o[SESSIONS] ?? null;
  if (cache === null) return { options: o, key: '', cache };
  const key = sessionKey(o, host, port);
  const session = cache.get(key);
  return { options: session !== undefined ? { ...o, session } : o, key, cache };
}

/** Keeps the sessions (tickets) the upstream issues on `sock` for the next connection to it. */
export function rememberSessions(sock: tls.TLSSocket, cache: SessionCache | null, key: string): void {
  if (cache === null) return;
  sock.on('session', (s: Buffer) => cache.set(key, s));
  sock.once('error', () => cache.delete(key)); // a session that led to a failed connection is not offered again
}

export class ClientTls {
  private context: tls.SecureContext;
  /**
   * The context of native upstream connections (src/tls/origin.ts), built on first use: a context
   * serves one TLS path only (Node installs its callbacks on a context a TLSSocket used). Its
   * session cache lives in the addon; a reload replaces it (and so empties the cache).
   */
  private nativeCtx: tls.SecureContext | null = null;
  /** Sessions of this cluster's upstreams (cleared when the client certificate or CA changes). */
  readonly sessions = new SessionCache();
  private pem: string;
  private material: TlsMaterial;
  private readonly watcher: FileWatcher | null;
  private readonly checkIdentity: ((host: string, cert: tls.PeerCertificate) => Error | undefined) | undefined;

  constructor(
    readonly clusterName: string,
    readonly config: TlsContextConfig,
    private readonly counters: Float64Array,
    private readonly base: number,
  ) {
    const m = loadMaterial(config);
    this.context = buildSecureContext(config, m);
    this.pem = `${m.cert ?? ''}${m.key ?? ''}${m.ca ?? ''}`;
    this.material = m;
    const sn = config.serverName;
    // Node checks the certificate against `servername || host`; an IP server_name cannot be
    // sent as SNI (RFC 6066), so it is checked explicitly.
    this.checkIdentity = sn !== '' && net.isIP(sn) ? (_h, cert) => tls.checkServerIdentity(sn, cert) : undefined;
    // SAN matchers (Envoy match_subject_alt_names) replace the host name check.
    const san = config.matchSubjectAltNames;
    if (san !== undefined && san.length > 0) {
      this.checkIdentity = (_h, cert) => (sanMatches(cert, san) ? undefined : new Error('upstream certificate: no subject alt name matches'));
    }
    const files = [config.certChain, config.privateKey, config.caCert].filter((s) => s && s.kind === 'file').map((s) => (s as { path: string }).path);
    this.watcher = files.length > 0 ? new FileWatcher(files, () => this.reload()) : null;
  }

  /** Options for tls.connect to one host. */
  options(host: string, hostname?: string): tls.ConnectionOptions {
    const c = this.config;
    const sni = c.serverName !== '' ? c.serverName : hostname !== undefined && hostname !== '' ? hostname : host;
    const o: ResumableOptions = {
      secureContext: this.context,
      rejectUnauthorized: !c.insecureSkip,
      [SESSIONS]: this.sessions,
      [CLIENT]: this,
    };
    if (!net.isIP(sni)) o.servername = sni;
    if (this.checkIdentity) o.checkServerIdentity = this.checkIdentity;
    else if (c.serverName === '' && hostname) o.checkServerIdentity = (_h, cert) => tls.checkServerIdentity(hostname, cert);
    if (c.alpn.length > 0) o.ALPNProtocols = [...c.alpn];
    return o;
  }

  /** SecureContext.context for native upstream connections (see nativeCtx). */
  nativeContext(): unknown {
    if (this.nativeCtx === null) this.nativeCtx = buildSecureContext(this.config, this.material);
    return this.nativeCtx.context;
  }

  /** Counts the outcome of one upstream handshake (a TLSSocket, or a socket carrying native TLS: src/tls/origin.ts). */
  track(sock: net.Socket): void {
    let done = false;
    sock.once('secureConnect', (native?: NativeTlsSession) => {
      done = true;
      if (native !== undefined) countClusterHandshakeOf(this.counters, this.base, native.info.version, native.info.cipher);
      else countClusterHandshake(this.counters, this.base, sock as tls.TLSSocket);
    });
    sock.once('error', (err: Error) => {
      if (done) return;
      done = true;
      countClusterFailure(this.counters, this.base, failReason(err));
    });
  }

  reload(): void {
    try {
      const m = loadMaterial(this.config);
      const pem = `${m.cert ?? ''}${m.key ?? ''}${m.ca ?? ''}`;
      if (pem === this.pem) return;
      this.context = buildSecureContext(this.config, m);
      this.material = m;
      this.nativeCtx = null; // a new native context: new connections use the new material and start a new session cache
      this.pem = pem;
      this.sessions.clear(); // a session resumes the old identity and trust: start over with the new ones
      tlsLog().info({ cluster: this.clusterName }, 'upstream TLS certificates reloaded; new connections use them');
    } catch (err) {
      const field = err instanceof TlsMaterialError ? err.field : 'tls_context';
      const why = err instanceof Error ? err.message : String(err);
      tlsLog().error({ cluster: this.clusterName, field, reason: why }, 'upstream TLS reload refused; keeping the previous certificates');
    }
  }

  close(): void {
    if (this.watcher) this.watcher.close();
  }
}
