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

/** Bytes needed for the whole first record (header included), or -1 if the header is incomplete. */
export function firstRecordLength(buf: Buffer): number {
  if (buf.length < 5) return -1;
  return 5 + buf.readUInt16BE(3);
}

/** The SNI host name in the first record of `buf`, "" when absent or unreadable. */
export function parseSni(buf: Buffer): string {
  if (buf.length < 5 || buf[0] !== TLS_RECORD_HANDSHAKE) return '';
  const end = Math.min(buf.length, 5 + buf.readUInt16BE(3));
  let p = 5;
  if (p + 4 > end || buf[p] !== HANDSHAKE_CLIENT_HELLO) return '';
  p += 4 + 2 + 32; // handshake header, client_version, random
  if (p + 1 > end) return '';
  p += 1 + buf[p]; // session id
  if (p + 2 > end) return '';
  p += 2 + buf.readUInt16BE(p); // cipher suites
  if (p + 1 > end) return '';
  p += 1 + buf[p]; // compression methods
  if (p + 2 > end) return '';
  const extEnd = Math.min(end, p + 2 + buf.readUInt16BE(p));
  p += 2;
  while (p + 4 <= extEnd) {
    const type = buf.readUInt16BE(p);
    const len = buf.readUInt16BE(p + 2);
    p += 4;
    if (p + len > extEnd) return '';
    if (type === EXT_SERVER_NAME) {
      let q = p + 2; // server_name_list length
      const listEnd = Math.min(p + len, q + buf.readUInt16BE(p));
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
    p += len;
  }
  return '';
}
