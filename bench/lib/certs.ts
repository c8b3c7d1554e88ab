// Throw-away TLS server certificates for the TLS workloads, made with the `openssl` CLI
// in the run's scratch directory at bench time (no key is ever committed). Self-signed,
// CN/SAN for 127.0.0.1 and localhost, valid for two days.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

export type CertKind = 'ecdsa' | 'rsa';

/** What each kind is, for reports. */
export const CERT_LABEL: Record<CertKind, string> = { ecdsa: 'ECDSA P-256', rsa: 'RSA-2048' };

export interface CertFiles {
  kind: CertKind;
  /** certificate PEM */
  cert: string;
  /** private key PEM (PKCS#8) */
  key: string;
  /** certificate followed by key, one file (HAProxy's `crt`) */
  pem: string;
}

function openssl(args: string[]): string {
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw new Error(`openssl ${args[0]}: ${r.error.message} (is the openssl CLI installed?)`);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} exited ${r.status}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' ')}`);
  return r.stdout ?? '';
}

/** Generates a self-signed server certificate of `kind` under `dir` (files `<kind>.crt`, `.key`, `.pem`). */
export function makeCert(dir: string, kind: CertKind): CertFiles {
  fs.mkdirSync(dir, { recursive: true });
  const cert = path.join(dir, `${kind}.crt`);
  const key = path.join(dir, `${kind}.key`);
  const pem = path.join(dir, `${kind}.pem`);
  const newkey = kind === 'ecdsa' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
  openssl([
    'req', '-x509', ...newkey, '-nodes', '-sha256', '-days', '2',
    '-subj', '/CN=127.0.0.1/O=outrigger-bench',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', key, '-out', cert,
  ]);
  fs.chmodSync(key, 0o600);
  fs.writeFileSync(pem, fs.readFileSync(cert, 'utf8') + fs.readFileSync(key, 'utf8'), { mode: 0o600 });
  return { kind, cert, key, pem };
}

/** Both kinds under `dir`. */
export function makeCerts(dir: string): Record<CertKind, CertFiles> {
  return { ecdsa: makeCert(dir, 'ecdsa'), rsa: makeCert(dir, 'rsa') };
}

/** The public key of a certificate file as `openssl x509 -text` shows it: e.g. "EC prime256v1" or "RSA 2048". */
export function certKeyType(certFile: string): string {
  const t = openssl(['x509', '-in', certFile, '-noout', '-text']);
  const alg = /Public Key Algorithm:\s*(\S+)/.exec(t)?.[1] ?? '?';
  if (alg === 'id-ecPublicKey') return `EC ${/ASN1 OID:\s*(\S+)/.exec(t)?.[1] ?? '?'}`;
  if (alg === 'rsaEncryption') return `RSA ${/Public-Key:\s*\((\d+) bit\)/.exec(t)?.[1] ?? '?'}`;
  return alg;
}
