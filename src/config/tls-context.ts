/** tls_context / tls_context_set sections, material included. */
import { showValue } from './errors';
import { ConfigObject, IssueCollector } from './reader';
import type { TlsContextConfig, TlsVersion } from './types';
import { isHostnameOrIp, isPresent, isSet } from './values';
import {
  ALPN_PROTOCOLS, buildSecureContext, DEFAULT_CIPHERS, DEFAULT_CURVES, describeSource, loadMaterial, mapCiphers, mapCurves,
  parseVersion, sourceOf, TlsMaterialError, VERSION_ORDER,
} from '../tls/material';

// TLS (MOSN pkg/config/v2 TLSConfig, semantics of pkg/mtls): validated fully at load, material
// included (files exist, PEM parses, key matches certificate, OpenSSL accepts the settings).
// Messages name the source (file path or "inline PEM"), never key bytes.
// ---------------------------------------------------------------------------------------------

const TLS_KEYS_NO_EFFECT = ['ticket', 'callbacks'];

export type TlsSide = 'listener' | 'cluster';

/** Parses one tls_context; returns the validated context when status is true. */
export function parseTlsContext(issues: IssueCollector, value: unknown, path: string, side: TlsSide): TlsContextConfig | undefined {
  const o = ConfigObject.from(issues, path, value);
  if (!o) return undefined;
  const status = o.bool('status', false);
  const verifyClient = o.bool('verify_client', false);
  const requireClientCert = o.bool('require_client_cert', false);
  const insecureSkip = o.bool('insecure_skip', false);
  const fallBack = o.bool('fall_back', false);
  const sds = o.get('sds_source');
  const ev = o.get('extend_verify');
  const type = o.str('type', { def: '' }) ?? '';
  const serverName = (o.str('server_name', { def: '' }) ?? '').trim();
  const certStr = o.str('cert_chain', { def: '' }) ?? '';
  const keyStr = o.str('private_key', { def: '' }) ?? '';
  const caStr = o.str('ca_cert', { def: '' }) ?? '';
  const ciphersStr = o.str('cipher_suites', { def: '' }) ?? '';
  const curvesStr = o.str('ecdh_curves', { def: '' }) ?? '';
  const minStr = o.str('min_version', { def: '' }) ?? '';
  const maxStr = o.str('max_version', { def: '' }) ?? '';
  const alpnStr = o.str('alpn', { def: '' }) ?? '';
  const noTickets = o.bool('disable_stateless_session_resumption', false);
  o.accept(...TLS_KEYS_NO_EFFECT);
  o.done();
  if (!status) {
    if (verifyClient) issues.warn(o.at('verify_client'), 'has no effect: status is false, so TLS (and client certificate verification) is off');
    if (requireClientCert) issues.warn(o.at('require_client_cert'), 'has no effect: status is false, so TLS is off');
    if (isSet(sds)) issues.warn(o.at('sds_source'), 'has no effect: status is false, so TLS is off');
    return undefined;
  }
  const before = issues.errors.length;
  if (isPresent(sds)) issues.error(o.at('sds_source'), 'SDS (certificates from a secret discovery service) is not supported yet; give cert_chain/private_key/ca_cert as files or PEM');
  if (isPresent(ev)) issues.error(o.at('extend_verify'), 'custom verification extensions are not supported; refusing to run with weaker verification than configured');
  if (type !== '') issues.warn(o.at('type'), `${showValue(type)}: no TLS extension of that name; the default certificate handling is used (as MOSN does for an unregistered type)`);
  if (fallBack) issues.warn(o.at('fall_back'), 'has no effect: certificates are checked at load and a bad one is an error, never a fallback to plaintext');
  for (const k of TLS_KEYS_NO_EFFECT) {
    if (isSet(o.source[o.spelled(k)])) issues.warn(o.at(k), 'not supported; ignored');
  }

  // Versions: MOSN names (tls_auto, tlsv1_0 .. tlsv1_3). Safe default 1.2..1.3 (MOSN's is 1.0..1.3).
  const version = (key: string, s: string, def: TlsVersion): TlsVersion => {
    if (s === '') return def;
    const v = parseVersion(s);
    if (v === undefined) {
      issues.error(o.at(key), `${showValue(s)} is not a TLS version (tls_auto, tlsv1_0, tlsv1_1, tlsv1_2, tlsv1_3)`);
      return def;
    }
    return v === 'auto' ? def : v;
  };
  const minVersion = version('min_version', minStr, 'TLSv1.2');
  const maxVersion = version('max_version', maxStr, 'TLSv1.3');
  if (VERSION_ORDER.indexOf(minVersion) > VERSION_ORDER.indexOf(maxVersion)) {
    issues.error(o.at('min_version'), `${showValue(minStr)} is above max_version ${showValue(maxStr)}`);
  } else if (VERSION_ORDER.indexOf(minVersion) < VERSION_ORDER.indexOf('TLSv1.2')) {
    issues.warn(o.at('min_version'), `${showValue(minStr)}: TLS 1.0/1.1 are insecure, and OpenSSL 3 refuses them unless cipher_suites ends in "@SECLEVEL=0"`);
  }

  let ciphers = DEFAULT_CIPHERS;
  if (ciphersStr.trim() !== '') {
    const r = mapCiphers(ciphersStr);
    if ('unknown' in r) issues.error(o.at('cipher_suites'), `${showValue(r.unknown)} is not a known cipher suite (MOSN or OpenSSL name)`);
    else {
      ciphers = r.list;
      if (r.weak.length > 0) issues.warn(o.at('cipher_suites'), `${r.weak.join(', ')}: CBC/RSA-key-exchange/3DES suites are weak; prefer ECDHE with GCM or CHACHA20`);
    }
  }
  let ecdhCurve = DEFAULT_CURVES;
  if (curvesStr.trim() !== '') {
    const r = mapCurves(curvesStr);
    if ('unknown' in r) issues.error(o.at('ecdh_curves'), `${showValue(r.unknown)} is not a supported curve (x25519, p256, p384, p521)`);
    else ecdhCurve = r.list;
  }
  const alpn: string[] = [];
  for (const raw of alpnStr.split(',')) {
    const p = raw.trim().toLowerCase();
    if (p === '') continue;
    if (!ALPN_PROTOCOLS.has(p)) issues.error(o.at('alpn'), `${showValue(raw.trim())} is not a supported ALPN protocol (h2, http/1.1, sofa)`);
    else if (!alpn.includes(p)) alpn.push(p);
  }

  const certChain = certStr.trim() !== '' ? sourceOf(certStr) : undefined;
  const privateKey = keyStr.trim() !== '' ? sourceOf(keyStr) : undefined;
  const caCert = caStr.trim() !== '' ? sourceOf(caStr) : undefined;
  if (side === 'listener') {
    if (!certChain) issues.error(o.at('cert_chain'), 'is required when status is true (a TLS listener needs a certificate)');
    if (!privateKey) issues.error(o.at('private_key'), 'is required when status is true (a TLS listener needs a private key)');
    if (verifyClient && !caCert) issues.warn(o.at('verify_client'), 'without ca_cert: client certificates are verified against the system CA store');
    if (requireClientCert && !verifyClient) {
      issues.warn(o.at('require_client_cert'), 'without verify_client only REQUESTS a client certificate (MOSN semantics): it is neither required nor verified; set verify_client too');
    }
    if (insecureSkip) issues.warn(o.at('insecure_skip'), 'has no effect on a listener (it skips upstream verification in a cluster tls_context)');
  } else {
    if (certChain && !privateKey) issues.error(o.at('private_key'), 'is required with cert_chain (client certificate for mTLS to the upstream)');
    if (privateKey && !certChain) issues.error(o.at('cert_chain'), 'is required with private_key (client certificate for mTLS to the upstream)');
    if (verifyClient) issues.warn(o.at('verify_client'), 'has no effect in a cluster tls_context (the upstream is verified unless insecure_skip)');
    if (requireClientCert) issues.warn(o.at('require_client_cert'), 'has no effect in a cluster tls_context');
    if (insecureSkip) issues.warn(o.at('insecure_skip'), 'true: the upstream certificate is NOT verified');
    if (noTickets) issues.warn(o.at('disable_stateless_session_resumption'), 'has no effect in a cluster tls_context (it is a listener setting)');
    if (serverName !== '' && !isHostnameOrIp(serverName)) issues.error(o.at('server_name'), `${showValue(serverName)} is not a host name`);
  }
  const sessionTickets = side === 'listener' && noTickets ? false : undefined;
  const ctx: TlsContextConfig = {
    serverName, verifyClient, requireClientCert, insecureSkip, minVersion, maxVersion, ciphers, ecdhCurve, alpn,
    ...(certChain ? { certChain } : {}),
    ...(privateKey ? { privateKey } : {}),
    ...(caCert ? { caCert } : {}),
    ...(sessionTickets === false ? { sessionTickets } : {}),
  };
  if (issues.errors.length > before) return ctx;
  // Material: files exist, PEM parses, key matches certificate, OpenSSL takes the settings.
  try {
    buildSecureContext(ctx, loadMaterial(ctx));
  } catch (e) {
    if (e instanceof TlsMaterialError) issues.error(o.at(e.field), e.message);
    else issues.error(path, 'TLS context could not be built');
  }
  return ctx;
}

/** Settings a tls_context_set shares: Outrigger applies client verification and protocol settings per listener. */
export function checkTlsSetConsistent(issues: IssueCollector, set: { ctx: TlsContextConfig; path: string }[]): void {
  const first = set[0];
  if (!first) return;
  const src = (s: TlsContextConfig['caCert']): string => (s ? describeSource(s) : '');
  const same: [string, (c: TlsContextConfig) => string][] = [
    ['verify_client', (c) => String(c.verifyClient)],
    ['require_client_cert', (c) => String(c.requireClientCert)],
    ['ca_cert', (c) => src(c.caCert) + (c.caCert?.kind === 'inline' ? c.caCert.pem : '')],
    ['min_version', (c) => c.minVersion],
    ['max_version', (c) => c.maxVersion],
    ['cipher_suites', (c) => c.ciphers],
    ['ecdh_curves', (c) => c.ecdhCurve],
    ['alpn', (c) => c.alpn.join(',')],
  ];
  for (const e of set.slice(1)) {
    for (const [key, get] of same) {
      if (get(e.ctx) !== get(first.ctx)) issues.error(`${e.path}.${key}`, `must be the same in every entry of tls_context_set (entries differ only in certificate, key and server_name)`);
    }
  }
}
