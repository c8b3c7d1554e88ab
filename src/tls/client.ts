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
import { buildSecureContext, loadMaterial, TlsMaterialError } from './material';
import { sanMatches } from './san';
import { countClusterFailure, countClusterHandshake, failReason } from './stats';
import { FileWatcher } from './watch';

export class ClientTls {
  private context: tls.SecureContext;
  private pem: string;
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
    const o: tls.ConnectionOptions = {
      secureContext: this.context,
      rejectUnauthorized: !c.insecureSkip,
    };
    if (!net.isIP(sni)) o.servername = sni;
    if (this.checkIdentity) o.checkServerIdentity = this.checkIdentity;
    else if (c.serverName === '' && hostname) o.checkServerIdentity = (_h, cert) => tls.checkServerIdentity(hostname, cert);
    if (c.alpn.length > 0) o.ALPNProtocols = [...c.alpn];
    return o;
  }

  /** Counts the outcome of one upstream handshake. */
  track(sock: tls.TLSSocket): void {
    let done = false;
    sock.once('secureConnect', () => {
      done = true;
      countClusterHandshake(this.counters, this.base, sock);
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
      this.pem = pem;
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
