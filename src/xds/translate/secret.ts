/**
 * SDS Secret -> TranslatedSecret (certificate chain, private key, trusted CA). Inline material
 * is checked here (a bad PEM is NACKed on the secret, not later on every listener using it).
 */
import * as crypto from 'node:crypto';
import type { TlsSource } from '../../config/types';
import type { TranslatedSecret, TranslationContext, XdsMessage } from '../types';
import { checkFields, join, msg, str, Tx, type FieldPolicy, type Msg } from './util';

/** An Envoy DataSource (filename | inline_bytes | inline_string) as a TlsSource. */
export function dataSource(tx: Tx, m: Msg, path: string): TlsSource {
  checkFields(tx, m, path, {
    ok: ['filename', 'inlineBytes', 'inlineString'],
    nack: { environmentVariable: 'material from an environment variable is not supported' },
  });
  if (typeof m.filename === 'string' && m.filename !== '') return { kind: 'file', path: m.filename };
  if (typeof m.inlineString === 'string' && m.inlineString !== '') return { kind: 'inline', pem: m.inlineString };
  if (typeof m.inlineBytes === 'string' && m.inlineBytes !== '') return { kind: 'inline', pem: Buffer.from(m.inlineBytes, 'base64').toString('utf8') };
  return tx.fail(path, 'is empty (give filename, inline_bytes or inline_string)');
}

function checkPem(tx: Tx, src: TlsSource, path: string, what: 'cert' | 'key'): void {
  if (src.kind !== 'inline') return; // files are read and checked where the context is built
  try {
    if (what === 'cert') new crypto.X509Certificate(src.pem);
    else crypto.createPrivateKey(src.pem);
  } catch {
    tx.fail(path, what === 'cert' ? 'is not a PEM certificate' : 'is not a PEM private key');
  }
}

const TLS_CERT_POLICY = {
  ok: ['certificateChain', 'privateKey'],
  warn: { ocspStaple: 'OCSP stapling is not supported; ignored', signedCertificateTimestamp: 'not supported; ignored', watchedDirectory: 'files are watched individually; ignored' },
  nack: { password: 'encrypted private keys are not supported', privateKeyProvider: 'private key providers are not supported', pkcs12: 'PKCS#12 material is not supported' },
};

/** A TlsCertificate: chain + key. */
export function tlsCertificate(tx: Tx, m: Msg, path: string): { certChain: TlsSource; privateKey: TlsSource } {
  checkFields(tx, m, path, TLS_CERT_POLICY);
  const cm = msg(m.certificateChain);
  const km = msg(m.privateKey);
  if (cm === undefined) tx.fail(join(path, 'certificateChain'), 'is required');
  if (km === undefined) tx.fail(join(path, 'privateKey'), 'is required');
  const certChain = dataSource(tx, cm, join(path, 'certificateChain'));
  const privateKey = dataSource(tx, km, join(path, 'privateKey'));
  checkPem(tx, certChain, join(path, 'certificateChain'), 'cert');
  checkPem(tx, privateKey, join(path, 'privateKey'), 'key');
  return { certChain, privateKey };
}

/**
 * A CertificateValidationContext: only the trusted CA is representable. Anything that narrows
 * which certificates are accepted is refused (accepting more peers than configured is unsafe);
 * SAN matchers are handled by the callers that can enforce them.
 */
export const VALIDATION_POLICY: FieldPolicy = {
  ok: ['trustedCa'],
  warn: { watchedDirectory: 'files are watched individually; ignored', onlyVerifyLeafCertCrl: 'no CRL is used; ignored' },
  nack: {
    matchSubjectAltNames: 'subject alt name matching (the peer identity check) is not supported',
    matchTypedSubjectAltNames: 'subject alt name matching (the peer identity check) is not supported',
    verifyCertificateSpki: 'certificate pinning (SPKI) is not supported',
    verifyCertificateHash: 'certificate pinning (hash) is not supported',
    crl: 'certificate revocation lists are not supported',
    customValidatorConfig: 'custom certificate validators are not supported',
    caCertificateProviderInstance: 'certificate provider instances are not supported',
    systemRootCerts: 'system root certificates as a validation context are not supported',
  },
};

export function validationContext(tx: Tx, m: Msg, path: string, policy: FieldPolicy = VALIDATION_POLICY): TlsSource | undefined {
  checkFields(tx, m, path, policy);
  if (m.allowExpiredCertificate === true) tx.fail(join(path, 'allowExpiredCertificate'), 'accepting expired certificates is not supported');
  if (str(m.trustChainVerification) === 'ACCEPT_UNTRUSTED') tx.fail(join(path, 'trustChainVerification'), 'ACCEPT_UNTRUSTED (no chain verification) is not supported');
  const ca = msg(m.trustedCa);
  if (ca === undefined) return undefined;
  const src = dataSource(tx, ca, join(path, 'trustedCa'));
  checkPem(tx, src, join(path, 'trustedCa'), 'cert');
  return src;
}

export function translateSecret(m: XdsMessage, ctx: TranslationContext): TranslatedSecret {
  const name = str(m.name);
  const tx = new Tx(name || '(unnamed secret)', ctx);
  if (name === '') tx.fail('name', 'is required');
  checkFields(tx, m, '', {
    ok: ['name', 'tlsCertificate', 'validationContext'],
    warn: { sessionTicketKeys: 'configured ticket keys are not supported; ignored (tickets use keys Outrigger makes and rotates itself)' },
    nack: { genericSecret: 'generic secrets are not used by any supported filter' },
  });
  const out: { -readonly [K in keyof TranslatedSecret]: TranslatedSecret[K] } = { name };
  const tc = msg(m.tlsCertificate);
  if (tc !== undefined) Object.assign(out, tlsCertificate(tx, tc, 'tlsCertificate'));
  const vc = msg(m.validationContext);
  if (vc !== undefined) {
    const ca = validationContext(tx, vc, 'validationContext');
    if (ca !== undefined) out.caCert = ca;
  }
  if (tc === undefined && vc === undefined) tx.fail('', 'has neither tls_certificate nor validation_context');
  return out;
}
