/**
 * TLS counters: the negotiated version and cipher family of a handshake, and a handshake
 * failure sorted into a reason. Slots are offsets in src/stats/layout.ts (L for listeners,
 * C for clusters).
 */
import type * as tls from 'node:tls';
import { C, L } from '../stats/layout';

export const enum FailReason {
  NoCertificate,
  Verify,
  Version,
  Other,
}

/** Sorts an OpenSSL/Node handshake error into a reason. */
export function failReason(err: Error | undefined): FailReason {
  if (err === undefined) return FailReason.Other;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const text = `${code} ${err.message}`;
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED|peer did not return a certificate/i.test(text)) return FailReason.NoCertificate;
  if (/UNSUPPORTED_PROTOCOL|WRONG_VERSION|VERSION_TOO_LOW|PROTOCOL_VERSION|unsupported protocol/i.test(text)) return FailReason.Version;
  if (/CERT|VERIFY|SELF_SIGNED|ISSUER|ALTNAME|EXPIRED|UNTRUSTED|UNABLE_TO_GET/i.test(code) || /certificate/i.test(err.message)) return FailReason.Verify;
  return FailReason.Other;
}

const enum Family {
  Aes128Gcm,
  Aes256Gcm,
  Chacha20,
  Other,
}

/** Family per cipher name seen (a handful of names): no string work per handshake. */
const families = new Map<string, Family>();

function family(cipher: string): Family {
  let f = families.get(cipher);
  if (f === undefined) {
    f = familyOf(cipher);
    if (families.size < 64) families.set(cipher, f);
  }
  return f;
}

function familyOf(cipher: string): Family {
  const c = cipher.toUpperCase();
  if (c.includes('CHACHA20')) return Family.Chacha20;
  if (c.includes('AES_128_GCM') || c.includes('AES128-GCM')) return Family.Aes128Gcm;
  if (c.includes('AES_256_GCM') || c.includes('AES256-GCM')) return Family.Aes256Gcm;
  return Family.Other;
}

const LISTENER_FAMILY = [L.TLS_CIPHER_AES_128_GCM, L.TLS_CIPHER_AES_256_GCM, L.TLS_CIPHER_CHACHA20, L.TLS_CIPHER_OTHER];
const CLUSTER_FAMILY = [C.TLS_CIPHER_AES_128_GCM, C.TLS_CIPHER_AES_256_GCM, C.TLS_CIPHER_CHACHA20, C.TLS_CIPHER_OTHER];

/** Counts a completed downstream handshake. */
export function countListenerHandshake(counters: Float64Array, base: number, sock: tls.TLSSocket): void {
  const c = sock.getCipher();
  countListenerHandshakeOf(counters, base, sock.isSessionReused(), sock.getProtocol() ?? '', c ? c.standardName || c.name : '');
}

/** Counts a completed downstream handshake from its parts (native TLS). */
export function countListenerHandshakeOf(counters: Float64Array, base: number, reused: boolean, version: string, cipher: string): void {
  counters[base + L.TLS_HANDSHAKE]++;
  if (reused) counters[base + L.TLS_SESSION_REUSED]++;
  if (version === 'TLSv1.3') counters[base + L.TLS_V1_3]++;
  else if (version === 'TLSv1.2') counters[base + L.TLS_V1_2]++;
  counters[base + LISTENER_FAMILY[family(cipher)]]++;
}

export function countListenerFailure(counters: Float64Array, base: number, reason: FailReason): void {
  const slot = reason === FailReason.NoCertificate ? L.TLS_FAIL_NO_CERT : reason === FailReason.Verify ? L.TLS_FAIL_VERIFY : reason === FailReason.Version ? L.TLS_FAIL_VERSION : L.TLS_FAIL_OTHER;
  counters[base + slot]++;
}

/** Counts a completed upstream handshake. */
export function countClusterHandshake(counters: Float64Array, base: number, sock: tls.TLSSocket): void {
  const c = sock.getCipher();
  countClusterHandshakeOf(counters, base, sock.getProtocol() ?? '', c ? c.standardName || c.name : '');
}

/** Counts a completed upstream handshake from its parts (native TLS). */
export function countClusterHandshakeOf(counters: Float64Array, base: number, version: string, cipher: string): void {
  counters[base + C.TLS_HANDSHAKE]++;
  if (version === 'TLSv1.3') counters[base + C.TLS_V1_3]++;
  else if (version === 'TLSv1.2') counters[base + C.TLS_V1_2]++;
  counters[base + CLUSTER_FAMILY[family(cipher)]]++;
}

export function countClusterFailure(counters: Float64Array, base: number, reason: FailReason): void {
  counters[base + (reason === FailReason.Verify ? C.TLS_FAIL_VERIFY : C.TLS_FAIL_OTHER)]++;
}
