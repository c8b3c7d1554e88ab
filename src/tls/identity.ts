/**
 * What a TLS connection tells filters and the access log: negotiated version and cipher,
 * the SNI the client asked for, the ALPN protocol, and the peer's identity (subject, URI
 * SANs such as a SPIFFE id, DNS SANs, issuer, serial, SHA-256 fingerprint).
 *
 * Read once per connection when it is adopted; the peer's identity is parsed on first use
 * (never on the data path).
 */
import { X509Certificate } from 'node:crypto';
import type * as tls from 'node:tls';
import type { NativeTlsConnInfo } from '../native';
import { splitAltNames } from './material';

export interface PeerIdentity {
  /** Subject as one line, e.g. "CN=client,O=Example". */
  readonly subject: string;
  readonly issuer: string;
  /** URI SANs, e.g. ["spiffe://cluster.local/ns/default/sa/web"]. */
  readonly uriSans: readonly string[];
  readonly dnsSans: readonly string[];
  readonly serialNumber: string;
  /** SHA-256 fingerprint of the certificate, hex without colons, lowercase. */
  readonly fingerprint256: string;
}

export interface TlsInfo {
  /** "TLSv1.2" / "TLSv1.3" */
  readonly version: string;
  /** OpenSSL/IANA cipher name, e.g. "TLS_AES_256_GCM_SHA384". */
  readonly cipher: string;
  /** SNI the client sent (downstream) or the one we sent (upstream); "" when none. */
  readonly serverName: string;
  /** Negotiated ALPN protocol, "" when none. */
  readonly alpn: string;
  /** The peer's certificate identity; null when it presented none. */
  readonly peer: PeerIdentity | null;
}

function oneLine(dn: string): string {
  return dn.split('\n').filter((x) => x !== '').join(',');
}

export function peerIdentityOf(sock: tls.TLSSocket): PeerIdentity | null {
  const cert = sock.getPeerX509Certificate();
  return cert === undefined ? null : identityOfCert(cert);
}

function identityOfCert(cert: X509Certificate): PeerIdentity {
  const sans = splitAltNames(cert.subjectAltName);
  return {
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    uriSans: sans.filter((s) => s.startsWith('URI:')).map((s) => s.slice(4)),
    dnsSans: sans.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)),
    serialNumber: cert.serialNumber.toLowerCase(),
    fingerprint256: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
  };
}

/** SNI names read from ClientHellos by the listener (Node does not record them without an SNICallback). */
const serverNames = new WeakMap<tls.TLSSocket, string>();

export function rememberServerName(sock: tls.TLSSocket, name: string): void {
  serverNames.set(sock, name);
}

/**
 * TlsInfo of a connection. The peer certificate is taken while the session is up (it is gone
 * once the socket closes), but its identity (subject, issuer, SANs, serial, fingerprint: a
 * dozen strings) is only worked out when something reads `peer` (RBAC, an access log field),
 * so a connection that nobody asks about pays one native call, not the parsing.
 */
class ConnectionTlsInfo implements TlsInfo {
  private identity: PeerIdentity | null | undefined = undefined;

  constructor(
    readonly version: string,
    readonly cipher: string,
    readonly serverName: string,
    readonly alpn: string,
    /** The certificate, or its DER (native TLS: parsed on first read too). */
    private readonly cert: X509Certificate | Buffer | undefined,
  ) {}

  get peer(): PeerIdentity | null {
    if (this.identity === undefined) {
      const c = this.cert;
      this.identity = c === undefined ? null : identityOfCert(c instanceof X509Certificate ? c : new X509Certificate(c));
    }
    return this.identity;
  }
}

export function tlsInfoOf(sock: tls.TLSSocket): TlsInfo {
  const c = sock.getCipher();
  const sn = serverNames.get(sock) ?? (sock as tls.TLSSocket & { servername?: string | false }).servername;
  const alpn = sock.alpnProtocol;
  return new ConnectionTlsInfo(
    sock.getProtocol() ?? '',
    c ? c.standardName || c.name : '',
    typeof sn === 'string' ? sn : '',
    typeof alpn === 'string' ? alpn : '',
    sock.getPeerX509Certificate(),
  );
}

/** TlsInfo of a native TLS connection (src/tls/native.ts) from its handshake report. */
export function nativeTlsInfo(i: NativeTlsConnInfo): TlsInfo {
  return new ConnectionTlsInfo(i.version, i.cipher ?? '', i.servername ?? '', i.alpn ?? '', i.peerDer);
}
