/**
 * Reads the SNI name out of a buffered TLS ClientHello, before any TLS socket exists, so the
 * listener can hand the handshake the right SecureContext whole. (Node's SNICallback only
 * adds the chosen certificate next to the default one: with an ECDSA default and an RSA
 * name-specific certificate, a TLS 1.3 client is still served the ECDSA one.)
 *
 *   record:    0x16 | version(2) | length(2) | handshake...
 *   handshake: 0x01 (ClientHello) | length(3) | client_version(2) | random(32)
 *              | session_id(1+n) | cipher_suites(2+n) | compression(1+n) | extensions(2+n)
 *   extension: type(2) | length(2) | data;  server_name (type 0): list_len(2) | 0x00 | len(2) | name
 *
 * Anything a peer sends is handled: a malformed or truncated hello yields "no SNI" and the
 * handshake itself reports the error.
 */

export const TLS_RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;

/** Bytes needed for the whole first record (header included), or -1 if the header is incomplete. */
export function firstRecordLength(buf: Buffer): number {
  if (buf.length < 5) return -1;
  return 5 + buf.readUInt16BE(3);
}

/** What the listener reads from a ClientHello before any handshake. */
export interface HelloInfo {
  /** SNI host name, "" when absent or unreadable. */
  readonly sni: string;
  /** ALPN protocols offered, in the client's order (empty when absent or unreadable). */
  readonly alpn: readonly string[];
}

const NO_HELLO: HelloInfo = { sni: '', alpn: [] };

/** SNI and ALPN of the first record of `buf` (a malformed or truncated hello yields what was readable). */
export function parseClientHello(buf: Buffer): HelloInfo {
  if (buf.length < 5 || buf[0] !== TLS_RECORD_HANDSHAKE) return NO_HELLO;
  const end = Math.min(buf.length, 5 + buf.readUInt16BE(3));
  let p = 5;
  if (p + 4 > end || buf[p] !== HANDSHAKE_CLIENT_HELLO) return NO_HELLO;
  p += 4 + 2 + 32; // handshake header, client_version, random
  if (p + 1 > end) return NO_HELLO;
  p += 1 + buf[p]; // session id
  if (p + 2 > end) return NO_HELLO;
  p += 2 + buf.readUInt16BE(p); // cipher suites
  if (p + 1 > end) return NO_HELLO;
  p += 1 + buf[p]; // compression methods
  if (p + 2 > end) return NO_HELLO;
  const extEnd = Math.min(end, p + 2 + buf.readUInt16BE(p));
  p += 2;
  let sni = '';
  let alpn: string[] = [];
  while (p + 4 <= extEnd) {
    const type = buf.readUInt16BE(p);
    const len = buf.readUInt16BE(p + 2);
    p += 4;
    if (p + len > extEnd) break;
    if (type === EXT_SERVER_NAME) sni = readServerName(buf, p, p + len);
    else if (type === EXT_ALPN) alpn = readAlpn(buf, p, p + len);
    p += len;
  }
  return sni === '' && alpn.length === 0 ? NO_HELLO : { sni, alpn };
}

/** server_name extension data: list_len(2) | (type(1) | len(2) | name)* ; the first host_name entry. */
function readServerName(buf: Buffer, p: number, end: number): string {
  if (p + 2 > end) return '';
  let q = p + 2;
  const listEnd = Math.min(end, q + buf.readUInt16BE(p));
  while (q + 3 <= listEnd) {
    const nameType = buf[q];
    const nameLen = buf.readUInt16BE(q + 1);
    q += 3;
    if (q + nameLen > listEnd) return '';
    if (nameType === 0) return buf.toString('latin1', q, q + nameLen);
    q += nameLen;
  }
  return '';
}

/** ALPN extension data: list_len(2) | (len(1) | protocol)* */
function readAlpn(buf: Buffer, p: number, end: number): string[] {
  const out: string[] = [];
  if (p + 2 > end) return out;
  let q = p + 2;
  const listEnd = Math.min(end, q + buf.readUInt16BE(p));
  while (q + 1 <= listEnd) {
    const n = buf[q];
    q += 1;
    if (n === 0 || q + n > listEnd) break;
    out.push(buf.toString('latin1', q, q + n));
    q += n;
  }
  return out;
}

/** The SNI host name in the first record of `buf`, "" when absent or unreadable. */
export function parseSni(buf: Buffer): string {
  return parseClientHello(buf).sni;
}
