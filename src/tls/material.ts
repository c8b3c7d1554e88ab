/**
 * Certificates and keys: reading a TlsSource (file path or inline PEM, as MOSN's
 * pkg/mtls/confighook.go accepts both), checking that the PEM parses, that the key matches
 * the certificate, and mapping MOSN's version/cipher/curve/ALPN spellings to OpenSSL's.
 *
 * Secrets rule: nothing here ever puts key material in an error message or a log line.
 * Errors name the source (`file "/x.key"` or `inline PEM`) and what is wrong with it.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import type { TlsContextConfig, TlsSource, TlsVersion } from '../config/types';

/** A problem with one field of a tls_context; `field` is the MOSN key (cert_chain, private_key, ca_cert...). */
export class TlsMaterialError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'TlsMaterialError';
  }
}

/** MOSN's rule: a value containing "-----BEGIN" is PEM, anything else is a file path. */
export function sourceOf(value: string): TlsSource {
  return value.includes('-----BEGIN') ? { kind: 'inline', pem: value } : { kind: 'file', path: value };
}

export function describeSource(src: TlsSource): string {
  return src.kind === 'file' ? `file ${JSON.stringify(src.path)}` : 'inline PEM';
}

function readSource(field: string, src: TlsSource): string {
  if (src.kind === 'inline') return src.pem;
  try {
    return fs.readFileSync(src.path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new TlsMaterialError(field, `${describeSource(src)} not found`);
    if (code === 'EACCES') throw new TlsMaterialError(field, `${describeSource(src)} is not readable (permission denied)`);
    if (code === 'EISDIR') throw new TlsMaterialError(field, `${describeSource(src)} is a directory`);
    throw new TlsMaterialError(field, `${describeSource(src)} cannot be read (${code ?? 'error'})`);
  }
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Parses every CERTIFICATE block; at least one is required. */
function parseCerts(field: string, src: TlsSource, pem: string): crypto.X509Certificate[] {
  const blocks = pem.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) throw new TlsMaterialError(field, `${describeSource(src)} holds no PEM certificate`);
  return blocks.map((b, i) => {
    try {
      return new crypto.X509Certificate(b);
    } catch {
      throw new TlsMaterialError(field, `${describeSource(src)}: certificate ${i + 1} does not parse`);
    }
  });
}

function parseKey(src: TlsSource, pem: string): crypto.KeyObject {
  if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(pem)) {
    throw new TlsMaterialError('private_key', `${describeSource(src)} holds no PEM private key`);
  }
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem)) {
    throw new TlsMaterialError('private_key', `${describeSource(src)} is an encrypted private key (passphrases are not supported)`);
  }
  try {
    return crypto.createPrivateKey(pem);
  } catch {
    // The crypto error text is not echoed: it is generic and the key must not leak through it.
    throw new TlsMaterialError('private_key', `${describeSource(src)} does not parse as a private key`);
  }
}

/** PEM material of one context, read and checked. */
export interface TlsMaterial {
  readonly cert?: string;
  readonly key?: string;
  readonly ca?: string;
  /** The leaf certificate (cert_chain's first block). */
  readonly leaf?: crypto.X509Certificate;
}

/**
 * Reads and checks cert_chain, private_key and ca_cert of a context. `now` (ms) rejects a
 * leaf that is not yet valid or has expired.
 */
export function loadMaterial(c: Pick<TlsContextConfig, 'certChain' | 'privateKey' | 'caCert'>, now = Date.now()): TlsMaterial {
  let cert: string | undefined;
  let key: string | undefined;
  let ca: string | undefined;
  let leaf: crypto.X509Certificate | undefined;
  if (c.certChain) {
    cert = readSource('cert_chain', c.certChain);
    const chain = parseCerts('cert_chain', c.certChain, cert);
    leaf = chain[0];
    if (Date.parse(leaf.validTo) < now) throw new TlsMaterialError('cert_chain', `${describeSource(c.certChain)}: certificate expired on ${leaf.validTo}`);
    if (Date.parse(leaf.validFrom) > now + 60_000) throw new TlsMaterialError('cert_chain', `${describeSource(c.certChain)}: certificate is not valid before ${leaf.validFrom}`);
  }
  if (c.privateKey) {
    key = readSource('private_key', c.privateKey);
    const k = parseKey(c.privateKey, key);
    if (leaf && !leaf.checkPrivateKey(k)) {
      throw new TlsMaterialError('private_key', `${describeSource(c.privateKey)} does not match the certificate in cert_chain`);
    }
  }
  if (c.caCert) {
    ca = readSource('ca_cert', c.caCert);
    parseCerts('ca_cert', c.caCert, ca);
  }
  return { cert, key, ca, leaf };
}

/** Names a certificate answers to for SNI selection: subject CN and DNS SANs (lowercase). */
export function certNames(leaf: crypto.X509Certificate): string[] {
  const names: string[] = [];
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(leaf.subject);
  if (cn) names.push(cn[1].toLowerCase());
  for (const e of splitAltNames(leaf.subjectAltName)) {
    if (e.startsWith('DNS:')) names.push(e.slice(4).toLowerCase());
  }
  return names;
}

/** Splits Node's subjectAltName text ("DNS:a, URI:b, IP Address:1.2.3.4"), unquoting JSON-quoted values. */
export function splitAltNames(san: string | undefined): string[] {
  if (!san) return [];
  const out: string[] = [];
  for (const part of san.split(/, (?=[A-Za-z][A-Za-z ]*:)/)) {
    const i = part.indexOf(':');
    if (i < 0) continue;
    let v = part.slice(i + 1);
    if (v.startsWith('"')) {
      try {
        v = JSON.parse(v) as string;
      } catch {
        /* keep as is */
      }
    }
    out.push(`${part.slice(0, i)}:${v}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// MOSN spellings -> OpenSSL / Node

/** pkg/mtls/types.go `version`; "tls_auto" means the default. Node spellings are accepted too. */
const VERSIONS: Readonly<Record<string, TlsVersion | 'auto'>> = {
  tls_auto: 'auto',
  tlsv1_0: 'TLSv1',
  tlsv1_1: 'TLSv1.1',
  tlsv1_2: 'TLSv1.2',
  tlsv1_3: 'TLSv1.3',
  tlsv1: 'TLSv1',
  'tlsv1.0': 'TLSv1',
  'tlsv1.1': 'TLSv1.1',
  'tlsv1.2': 'TLSv1.2',
  'tlsv1.3': 'TLSv1.3',
};

export const VERSION_ORDER: readonly TlsVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

export function parseVersion(s: string): TlsVersion | 'auto' | undefined {
  return VERSIONS[s.trim().toLowerCase()];
}

/**
 * pkg/mtls/ciphers.go names -> OpenSSL names. MOSN's "AES128-GCM-SHA256"/"AES256-GCM-SHA384"
 * are the TLS 1.3 suites (Go constants TLS_AES_*), not OpenSSL's TLS 1.2 RSA ones.
 */
const MOSN_CIPHERS: Readonly<Record<string, string>> = {
  'ECDHE-ECDSA-AES256-GCM-SHA384': 'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384': 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256': 'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256': 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-WITH-CHACHA20-POLY1305': 'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-WITH-CHACHA20-POLY1305': 'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES256-CBC-SHA': 'ECDHE-RSA-AES256-SHA',
  'ECDHE-RSA-AES128-CBC-SHA': 'ECDHE-RSA-AES128-SHA',
  'ECDHE-ECDSA-AES256-CBC-SHA': 'ECDHE-ECDSA-AES256-SHA',
  'ECDHE-ECDSA-AES128-CBC-SHA': 'ECDHE-ECDSA-AES128-SHA',
  'RSA-AES256-CBC-SHA': 'AES256-SHA',
  'RSA-AES128-CBC-SHA': 'AES128-SHA',
  'ECDHE-RSA-3DES-EDE-CBC-SHA': 'ECDHE-RSA-DES-CBC3-SHA',
  'RSA-3DES-EDE-CBC-SHA': 'DES-CBC3-SHA',
  'AES256-GCM-SHA384': 'TLS_AES_256_GCM_SHA384',
  'AES128-GCM-SHA256': 'TLS_AES_128_GCM_SHA256',
};

/** TLS 1.3 suites always offered when a cipher list names none (Go ignores cipher_suites for 1.3; MOSN users expect that). */
export const TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

/** Safe default: TLS 1.3 suites + ECDHE with AEAD only (no CBC, no RSA key exchange, no 3DES). */
export const DEFAULT_CIPHERS =
  `${TLS13_SUITES}:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:` +
  'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';

/** Maps a MOSN cipher_suites value (":"-separated; "," tolerated) to an OpenSSL list, or returns the unknown name. */
export function mapCiphers(s: string): { list: string; weak: string[] } | { unknown: string } {
  const known = new Set(tls.getCiphers().map((c) => c.toUpperCase()));
  const out: string[] = [];
  const weak: string[] = [];
  for (const raw of s.split(/[:,]/)) {
    const name = raw.trim();
    if (name === '') continue;
    const mapped = MOSN_CIPHERS[name.toUpperCase()] ?? (known.has(name.toUpperCase()) ? name.toUpperCase() : undefined);
    if (mapped === undefined) return { unknown: name };
    if (/DES-CBC3|-SHA$/.test(mapped) || /^AES\d+-SHA/.test(mapped)) weak.push(name);
    out.push(mapped);
  }
  if (!out.some((c) => c.startsWith('TLS_'))) out.unshift(TLS13_SUITES);
  return { list: out.join(':'), weak };
}

/** pkg/mtls/types.go allCurves (","-separated, case-insensitive) -> OpenSSL group names. */
const CURVES: Readonly<Record<string, string>> = { x25519: 'X25519', p256: 'P-256', p384: 'P-384', p521: 'P-521' };
export const DEFAULT_CURVES = 'X25519:P-256:P-384';

export function mapCurves(s: string): { list: string } | { unknown: string } {
  const out: string[] = [];
  for (const raw of s.split(/[,:]/)) {
    const n = raw.trim().toLowerCase().replace(/-/g, '');
    if (n === '') continue;
    const c = CURVES[n];
    if (c === undefined) return { unknown: raw.trim() };
    out.push(c);
  }
  return { list: out.length > 0 ? out.join(':') : DEFAULT_CURVES };
}

/** pkg/mtls/types.go `alpn`: the protocols MOSN accepts. */
export const ALPN_PROTOCOLS: ReadonlySet<string> = new Set(['h2', 'http/1.1', 'sofa']);

/** Options for tls.createSecureContext from a context and its material. */
export function secureContextOptions(c: TlsContextConfig, m: TlsMaterial): tls.SecureContextOptions {
  const o: tls.SecureContextOptions = {
    minVersion: c.minVersion,
    maxVersion: c.maxVersion,
    ciphers: c.ciphers,
    ecdhCurve: c.ecdhCurve,
    honorCipherOrder: true,
  };
  if (m.cert !== undefined) o.cert = m.cert;
  if (m.key !== undefined) o.key = m.key;
  if (m.ca !== undefined) o.ca = m.ca;
  return o;
}

/** Builds a SecureContext; an OpenSSL refusal (e.g. no usable cipher) becomes a TlsMaterialError without key text. */
export function buildSecureContext(c: TlsContextConfig, m: TlsMaterial): tls.SecureContext {
  try {
    return tls.createSecureContext(secureContextOptions(c, m));
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const field = /cipher/i.test(msg) ? 'cipher_suites' : /curve|group/i.test(msg) ? 'ecdh_curves' : /key/i.test(msg) ? 'private_key' : 'cert_chain';
    // OpenSSL messages name routines and reasons, never key bytes; keep only the first line.
    throw new TlsMaterialError(field, `OpenSSL refused the context: ${msg.split('\n')[0]}`);
  }
}
