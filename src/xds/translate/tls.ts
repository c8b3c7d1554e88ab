/**
 * DownstreamTlsContext / UpstreamTlsContext (a transport_socket named envoy.transport_sockets.tls)
 * -> TlsContextConfig, by way of a MOSN-shaped `tls_context` run through the MOSN validator
 * (src/config/tls-context.ts: material loaded, key matches certificate, OpenSSL accepts the
 * settings). SDS references (tls_certificate_sds_secret_configs, validation_context_sds_secret_config,
 * Istio's `default` and `ROOTCA`) are resolved with ctx.secret(); every referenced secret is listed
 * in deps.secrets. While one is missing the context is a placeholder without material: the
 * resource must wait (the store re-translates it when the secret arrives or changes).
 */
import { IssueCollector } from '../../config/reader';
import { parseTlsContext, type TlsSide } from '../../config/tls-context';
import type { SanMatcher, TlsContextConfig, TlsSource } from '../../config/types';
import { checkFields, join, list, msg, str, strList, typeName, Tx, wrappedBool, type FieldPolicy, type Msg } from './util';
import { tlsCertificate, validationContext, VALIDATION_POLICY } from './secret';

export const TLS_SOCKET_TYPES = {
  downstream: 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  upstream: 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  raw: 'envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
};

/** ALPN names the listener and cluster TLS of Outrigger can negotiate. */
const ALPN_OK = new Set(['h2', 'http/1.1']);
/**
 * Istio's ALPN names, offered upstream as given (the peer sidecar's inbound chains match on
 * them); an HTTP connection over such a context offers istio-http/1.1 or istio-h2 too
 * (src/upstream/transport-match.ts offeredAlpn).
 */
const ISTIO_ALPN_UPSTREAM = new Set(['istio-peer-exchange', 'istio', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2']);

export interface TlsResult {
  readonly ctx: TlsContextConfig;
  /** Every secret the context references (present or not). */
  readonly secrets: readonly string[];
  /** Some referenced secret has not arrived: ctx is a placeholder. */
  readonly pending: boolean;
}

function pemOf(s: TlsSource): string {
  return s.kind === 'file' ? s.path : s.pem;
}

const VERSIONS: Readonly<Record<string, string>> = {
  TLS_AUTO: 'tls_auto', TLSv1_0: 'tlsv1_0', TLSv1_1: 'tlsv1_1', TLSv1_2: 'tlsv1_2', TLSv1_3: 'tlsv1_3',
};

const UPSTREAM_VALIDATION_POLICY: FieldPolicy = {
  ...VALIDATION_POLICY,
  ok: [...VALIDATION_POLICY.ok, 'matchSubjectAltNames', 'matchTypedSubjectAltNames'],
  nack: Object.fromEntries(Object.entries(VALIDATION_POLICY.nack ?? {}).filter(([k]) => k !== 'matchSubjectAltNames' && k !== 'matchTypedSubjectAltNames')),
};

const SAN_TYPES = new Set(['DNS', 'URI', 'EMAIL', 'IP_ADDRESS']);

function stringMatcher(tx: Tx, m: Msg, path: string): Pick<SanMatcher, 'kind' | 'value'> {
  checkFields(tx, m, path, { ok: ['exact', 'prefix', 'suffix', 'contains'], nack: { safeRegex: 'regex SAN matching is not supported', ignoreCase: 'case-insensitive SAN matching is not supported', custom: 'custom matchers are not supported' } });
  for (const kind of ['exact', 'prefix', 'suffix', 'contains'] as const) {
    const v = m[kind];
    if (typeof v === 'string') return { kind, value: v };
  }
  return tx.fail(path, 'needs exact, prefix, suffix or contains');
}

/** match_subject_alt_names (any SAN type) and match_typed_subject_alt_names. */
function sanMatchers(tx: Tx, vc: Msg, path: string): SanMatcher[] {
  const out: SanMatcher[] = [];
  list(vc.matchSubjectAltNames).forEach((m, i) => out.push(stringMatcher(tx, m, join(join(path, 'matchSubjectAltNames'), i))));
  list(vc.matchTypedSubjectAltNames).forEach((m, i) => {
    const p = join(join(path, 'matchTypedSubjectAltNames'), i);
    checkFields(tx, m, p, { ok: ['sanType', 'matcher'], nack: { oid: 'OTHER_NAME SANs are not supported' } });
    const t = str(m.sanType);
    if (!SAN_TYPES.has(t)) tx.fail(join(p, 'sanType'), `${t || '(unset)'} is not supported (DNS, URI, EMAIL, IP_ADDRESS)`);
    const sm = msg(m.matcher);
    if (sm === undefined) tx.fail(join(p, 'matcher'), 'is required');
    out.push({ ...stringMatcher(tx, sm, join(p, 'matcher')), sanType: t as NonNullable<SanMatcher['sanType']> });
  });
  return out;
}

function sdsName(tx: Tx, m: Msg, path: string): string {
  checkFields(tx, m, path, { ok: ['name', 'sdsConfig'] });
  const n = str(m.name);
  if (n === '') tx.fail(join(path, 'name'), 'is required');
  return n;
}

/**
 * The transport socket of a filter chain or cluster: undefined for plaintext (absent or
 * raw_buffer), else the TLS context.
 */
export function transportSocket(tx: Tx, ts: Msg | undefined, path: string, side: TlsSide): TlsResult | undefined {
  if (ts === undefined) return undefined;
  checkFields(tx, ts, path, { ok: ['name', 'typedConfig'] });
  const tc = msg(ts.typedConfig);
  const t = typeName(tc);
  const name = str(ts.name);
  if (t === TLS_SOCKET_TYPES.raw || (tc === undefined && (name === 'envoy.transport_sockets.raw_buffer' || name === 'raw_buffer'))) return undefined;
  const want = side === 'listener' ? TLS_SOCKET_TYPES.downstream : TLS_SOCKET_TYPES.upstream;
  if (tc === undefined || t !== want) {
    return tx.fail(join(path, 'typedConfig'), `transport socket ${JSON.stringify(t || name)} is not supported (only ${want.split('.').pop()} and RawBuffer)`);
  }
  return tlsContext(tx, tc, join(path, 'typedConfig'), side);
}

function tlsContext(tx: Tx, m: Msg, path: string, side: TlsSide): TlsResult {
  const mosn: Record<string, unknown> = { status: true };
  if (side === 'listener') {
    checkFields(tx, m, path, {
      ok: ['commonTlsContext', 'requireClientCertificate', 'disableStatelessSessionResumption', 'disableStatefulSessionResumption', 'fullScanCertsOnSniMismatch'],
      warn: {
        sessionTicketKeys: 'configured ticket keys are not supported; ignored (tickets use keys Outrigger makes and rotates itself)',
        sessionTicketKeysSdsSecretConfig: 'configured ticket keys are not supported; ignored (tickets use keys Outrigger makes and rotates itself)',
        sessionTimeout: 'not supported; ignored (OpenSSL default)',
        ocspStaplePolicy: 'OCSP stapling is not supported; ignored',
        preferClientCiphers: 'not supported; ignored',
      },
      nack: { requireSni: 'refusing connections without SNI is not supported' },
    });
    if (wrappedBool(m.disableStatelessSessionResumption) === true) mosn.disable_stateless_session_resumption = true;
    const require = wrappedBool(m.requireClientCertificate) === true;
    if (require) {
      mosn.verify_client = true;
      mosn.require_client_cert = true;
    }
  } else {
    checkFields(tx, m, path, {
      ok: ['commonTlsContext', 'sni', 'allowRenegotiation'],
      warn: { maxSessionKeys: 'session resumption settings are not supported; ignored', enforceRsaKeyUsage: 'not supported; ignored' },
      nack: { autoHostSni: 'SNI from the request host is not supported', autoSniSanValidation: 'SAN validation from the request host is not supported' },
    });
    if (m.allowRenegotiation === true) tx.warn(join(path, 'allowRenegotiation'), 'renegotiation is never allowed; ignored');
    const sni = str(m.sni);
    if (sni !== '') mosn.server_name = sni;
  }
  const secrets: string[] = [];
  let pending = false;
  const common = msg(m.commonTlsContext) ?? {};
  const cpath = join(path, 'commonTlsContext');
  checkFields(tx, common, cpath, {
    ok: ['tlsParams', 'tlsCertificates', 'tlsCertificateSdsSecretConfigs', 'validationContext', 'validationContextSdsSecretConfig', 'combinedValidationContext', 'alpnProtocols'],
    warn: { keyLog: 'TLS key logging is not supported; ignored' },
    nack: {
      tlsCertificateProviderInstance: 'certificate provider instances are not supported',
      tlsCertificateCertificateProviderInstance: 'certificate provider instances are not supported',
      customHandshaker: 'custom handshakers are not supported',
      handshakerSocket: 'custom handshakers are not supported',
      customTlsCertificateSelector: 'custom certificate selection is not supported',
    },
  });
  // tls_params
  const params = msg(common.tlsParams);
  if (params !== undefined) {
    const ppath = join(cpath, 'tlsParams');
    checkFields(tx, params, ppath, {
      ok: ['tlsMinimumProtocolVersion', 'tlsMaximumProtocolVersion', 'cipherSuites', 'ecdhCurves'],
      warn: { signatureAlgorithms: 'not supported; ignored (OpenSSL default)' },
      nack: { compliancePolicies: 'TLS compliance policies are not supported' },
    });
    const min = str(params.tlsMinimumProtocolVersion);
    const max = str(params.tlsMaximumProtocolVersion);
    if (min !== '') mosn.min_version = VERSIONS[min] ?? min;
    if (max !== '') mosn.max_version = VERSIONS[max] ?? max;
    const ciphers = strList(params.cipherSuites);
    if (ciphers.length > 0) mosn.cipher_suites = ciphers.join(':');
    const curves = strList(params.ecdhCurves);
    if (curves.length > 0) mosn.ecdh_curves = curves.map((c) => c.toLowerCase().replace('-', '')).join(',');
  }
  // certificates: inline or SDS
  const certs = list(common.tlsCertificates);
  const sdsCerts = list(common.tlsCertificateSdsSecretConfigs);
  if (certs.length + sdsCerts.length > 1) {
    tx.warn(cpath, `${certs.length + sdsCerts.length} certificates given; only the first is served (no per-key-type selection)`);
  }
  if (certs.length > 0) {
    const c = tlsCertificate(tx, certs[0], join(cpath, 'tlsCertificates[0]'));
    mosn.cert_chain = pemOf(c.certChain);
    mosn.private_key = pemOf(c.privateKey);
  } else if (sdsCerts.length > 0) {
    const n = sdsName(tx, sdsCerts[0], join(cpath, 'tlsCertificateSdsSecretConfigs[0]'));
    secrets.push(n);
    const s = tx.ctx.secret(n);
    if (s === undefined) pending = true;
    else if (s.certChain === undefined || s.privateKey === undefined) {
      tx.fail(join(cpath, 'tlsCertificateSdsSecretConfigs[0].name'), `secret ${JSON.stringify(n)} has no tls_certificate`);
    } else {
      mosn.cert_chain = pemOf(s.certChain);
      mosn.private_key = pemOf(s.privateKey);
    }
  }
  // validation context: inline, SDS, or combined (inline defaults + SDS CA)
  let vc = msg(common.validationContext);
  let vcPath = join(cpath, 'validationContext');
  let vcSds = msg(common.validationContextSdsSecretConfig);
  let vcSdsPath = join(cpath, 'validationContextSdsSecretConfig');
  const combined = msg(common.combinedValidationContext);
  if (combined !== undefined) {
    const p = join(cpath, 'combinedValidationContext');
    checkFields(tx, combined, p, { ok: ['defaultValidationContext', 'validationContextSdsSecretConfig'] });
    vc = msg(combined.defaultValidationContext);
    vcPath = join(p, 'defaultValidationContext');
    vcSds = msg(combined.validationContextSdsSecretConfig);
    vcSdsPath = join(p, 'validationContextSdsSecretConfig');
  }
  let ca: TlsSource | undefined;
  let sans: SanMatcher[] = [];
  if (vc !== undefined) {
    // Upstream: SAN matchers are enforced by the cluster's TLS (src/tls/san.ts); downstream they are refused.
    ca = validationContext(tx, vc, vcPath, side === 'cluster' ? UPSTREAM_VALIDATION_POLICY : VALIDATION_POLICY);
    if (side === 'cluster') sans = sanMatchers(tx, vc, vcPath);
  }
  if (vcSds !== undefined) {
    const n = sdsName(tx, vcSds, vcSdsPath);
    secrets.push(n);
    const s = tx.ctx.secret(n);
    if (s === undefined) pending = true;
    else if (s.caCert === undefined) tx.fail(join(vcSdsPath, 'name'), `secret ${JSON.stringify(n)} has no validation_context.trusted_ca`);
    else ca = s.caCert;
  }
  if (ca !== undefined) {
    mosn.ca_cert = pemOf(ca);
    if (side === 'listener' && mosn.verify_client !== true) mosn.verify_client = true; // verify a client certificate when one is presented
  } else if (side === 'cluster' && !pending) {
    tx.warn(cpath, 'no validation context: the upstream certificate is verified against the system CA store (Envoy would not verify it)');
  }
  if (side === 'listener' && mosn.require_client_cert === true && ca === undefined && !pending) {
    tx.fail(join(path, 'requireClientCertificate'), 'true without a validation context (trusted CA): client certificates could not be verified');
  }
  // ALPN
  const alpn = strList(common.alpnProtocols);
  const offered = (a: string): boolean => ALPN_OK.has(a) || (side === 'cluster' && ISTIO_ALPN_UPSTREAM.has(a));
  const kept = alpn.filter((a) => ALPN_OK.has(a));
  const dropped = alpn.filter((a) => !offered(a));
  if (dropped.length > 0) tx.warn(join(cpath, 'alpnProtocols'), `${dropped.join(', ')} not offered (Outrigger negotiates only h2 and http/1.1${side === 'cluster' ? ', and offers Istio\'s names upstream' : ''})`);
  if (kept.length > 0) mosn.alpn = kept.join(',');
  // The MOSN validator knows only protocol names; Istio's are put back in their given order.
  const upAlpn = side === 'cluster' && alpn.some((a) => ISTIO_ALPN_UPSTREAM.has(a)) ? alpn.filter(offered) : undefined;

  if (sans.length > 0 && ca === undefined && !pending) tx.fail(join(vcPath, 'matchSubjectAltNames'), 'SAN matching without a trusted CA would accept any self-signed certificate');
  const withSans = (c0: TlsContextConfig): TlsContextConfig => {
    const c = upAlpn !== undefined ? { ...c0, alpn: upAlpn } : c0;
    return sans.length > 0 ? { ...c, matchSubjectAltNames: sans } : c;
  };
  if (pending) {
    // Placeholder without material: the validator's errors (missing certificate) are expected.
    const ctx = parseTlsContext(new IssueCollector(), mosn, path, side);
    if (ctx === undefined) return tx.fail(path, 'TLS context could not be built');
    return { ctx: withSans(ctx), secrets, pending };
  }
  const ctx = tx.mosn(path, (issues) => parseTlsContext(issues, mosn, 'tls_context', side));
  if (ctx === undefined) return tx.fail(path, 'TLS context could not be built');
  return { ctx: withSans(ctx), secrets, pending };
}
