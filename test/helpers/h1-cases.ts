// The HTTP/1.1 codec's table of valid heads (with the fields they must give) and of invalid heads
// (status + reason), shared by test/unit/h1-codec.test.ts and the native/TypeScript differential
// test (test/unit/h1-native-head.test.ts).
import { BodyKind } from '../../src/http/h1/codec';

export interface Opts {
  headRequest?: boolean;
  connectRequest?: boolean;
  maxHeaderBytes?: number;
  maxHeaders?: number;
}

// Valid heads

export interface Valid {
  name: string;
  req: boolean;
  head: string;
  opts?: Opts;
  /** Expected fields (only those listed are compared). */
  want: Record<string, unknown>;
}

export const VALID: Valid[] = [
  {
    name: 'curl-like GET',
    req: true,
    head: 'GET /a?b=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n',
    want: { method: 'GET', target: '/a?b=1', versionMinor: 1, headers: { host: 'example', 'user-agent': 'curl/8.5.0', accept: '*/*' }, headerCount: 3, bodyKind: BodyKind.None, contentLength: -1, keepAlive: true, upgrade: false, connect: false },
  },
  {
    name: 'leading empty lines, HTTP/1.0 keep-alive, CL list of equal values',
    req: true,
    head: '\r\n\r\nPOST /x HTTP/1.0\r\nHost: a\r\nContent-Length: 5, 5\r\nConnection: Keep-Alive\r\n\r\n',
    want: { method: 'POST', versionMinor: 0, headers: { host: 'a', 'content-length': '5', connection: 'Keep-Alive' }, bodyKind: BodyKind.Length, contentLength: 5, keepAlive: true },
  },
  {
    name: 'HTTP/1.0 without keep-alive closes',
    req: true,
    head: 'GET / HTTP/1.0\r\nHost: a\r\n\r\n',
    want: { versionMinor: 0, keepAlive: false, bodyKind: BodyKind.None },
  },
  {
    name: 'Connection: close among other tokens',
    req: true,
    head: 'GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE , bar\r\n\r\n',
    want: { keepAlive: false },
  },
  {
    name: 'repeated equal Content-Length lines keep one value',
    req: true,
    head: 'PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\ncontent-length: 12\r\n\r\n',
    want: { headers: { host: 'a', 'content-length': '12' }, bodyKind: BodyKind.Length, contentLength: 12, headerCount: 3 },
  },
  {
    name: 'Content-Length 0 means no body',
    req: true,
    head: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n',
    want: { bodyKind: BodyKind.None, contentLength: -1 },
  },
  {
    name: 'chunked request',
    req: true,
    head: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n',
    want: { bodyKind: BodyKind.Chunked, contentLength: -1, headers: { host: 'a', 'transfer-encoding': 'Chunked' } },
  },
  {
    name: 'gzip then chunked (chunked final) is chunked',
    req: true,
    head: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: , chunked ,\r\n\r\n',
    want: { bodyKind: BodyKind.Chunked, headers: { host: 'a', 'transfer-encoding': ['gzip', ', chunked ,'] } },
  },
  {
    name: 'Expect: 100-continue',
    req: true,
    head: 'POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-Continue\r\n\r\n',
    want: { expectContinue: true, bodyKind: BodyKind.Length, contentLength: 10 },
  },
  {
    name: 'WebSocket upgrade',
    req: true,
    head: 'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    want: { upgrade: true, keepAlive: true, bodyKind: BodyKind.None },
  },
  {
    name: 'Upgrade header without the Connection token is no upgrade',
    req: true,
    head: 'GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n',
    want: { upgrade: false },
  },
  {
    name: 'CONNECT authority-form',
    req: true,
    head: 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
    want: { method: 'CONNECT', target: 'example.com:443', connect: true, bodyKind: BodyKind.None },
  },
  {
    name: 'CONNECT to an IPv6 literal',
    req: true,
    head: 'CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n',
    want: { target: '[::1]:8443', connect: true },
  },
  {
    name: 'names longer than the interning table takes, mixed case, repeated',
    req: true,
    head: `GET / HTTP/1.1\r\nX-${'Long'.repeat(12)}: 1\r\nx-${'long'.repeat(12)}: 2\r\n\r\n`,
    want: { headers: { [`x-${'long'.repeat(12)}`]: ['1', '2'] } },
  },
  {
    name: 'OPTIONS *',
    req: true,
    head: 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n',
    want: { method: 'OPTIONS', target: '*' },
  },
  {
    name: 'absolute-form target',
    req: true,
    head: 'GET http://example.com:8080/p?q HTTP/1.1\r\nHost: example.com:8080\r\n\r\n',
    want: { target: 'http://example.com:8080/p?q' },
  },
  {
    name: 'extension method, obs-text in a value, HTAB inside a value, OWS trimmed, empty value',
    req: true,
    head: 'PURGE /caf%C3%A9 HTTP/1.1\r\nHost: a\r\nX-A:\t  one\ttwo \t\r\nX-Latin: caf\xe9\r\nX-Empty:\r\nX-Blank:   \r\n\r\n',
    want: { method: 'PURGE', target: '/caf%C3%A9', headers: { host: 'a', 'x-a': 'one\ttwo', 'x-latin': 'caf\xe9', 'x-empty': '', 'x-blank': '' } },
  },
  {
    name: 'mixed-case and repeated names; names reaching Object.prototype stay plain fields',
    req: true,
    head: 'GET / HTTP/1.1\r\nHOST: a\r\nX-Rare-Name-Q: 1\r\nx-rare-name-q: 2\r\nX-RARE-NAME-Q: 3\r\n__proto__: p\r\nconstructor: c\r\ntoString: t\r\n\r\n',
    want: { headers: { host: 'a', 'x-rare-name-q': ['1', '2', '3'], ['__proto__']: 'p', constructor: 'c', tostring: 't' }, headerCount: 7 },
  },
  {
    name: 'no headers at all',
    req: true,
    head: 'GET / HTTP/1.1\r\n\r\n',
    want: { headers: {}, headerCount: 0, keepAlive: true },
  },
  {
    name: '200 with Content-Length',
    req: false,
    head: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 42\r\n\r\n',
    want: { status: 200, reason: 'OK', versionMinor: 1, bodyKind: BodyKind.Length, contentLength: 42, keepAlive: true },
  },
  {
    name: 'status line without reason or SP, no framing: until close',
    req: false,
    head: 'HTTP/1.1 200\r\nServer: x\r\n\r\n',
    want: { status: 200, reason: '', bodyKind: BodyKind.UntilClose, keepAlive: false },
  },
  {
    name: 'empty reason after SP; reason with spaces kept as is',
    req: false,
    head: 'HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n',
    want: { status: 404, reason: '', bodyKind: BodyKind.Length, contentLength: 0 },
  },
  {
    name: 'reason with inner spaces and obs-text',
    req: false,
    head: 'HTTP/1.1 503 Service  Unavailable \xe9\r\nContent-Length: 3\r\n\r\n',
    want: { status: 503, reason: 'Service  Unavailable \xe9' },
  },
  {
    name: 'response chunked; Content-Length dropped',
    req: false,
    head: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n',
    want: { bodyKind: BodyKind.Chunked, contentLength: -1, headers: { 'transfer-encoding': 'chunked', x: 'y' } },
  },
  {
    name: 'response with a non-chunked coding: until close',
    req: false,
    head: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n',
    want: { bodyKind: BodyKind.UntilClose, keepAlive: false },
  },
  {
    name: '204 ignores Content-Length',
    req: false,
    head: 'HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n',
    want: { bodyKind: BodyKind.None, contentLength: -1, keepAlive: true },
  },
  {
    name: '304 has no body',
    req: false,
    head: 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nTransfer-Encoding: chunked\r\n\r\n',
    want: { bodyKind: BodyKind.None },
  },
  {
    name: '100 Continue',
    req: false,
    head: 'HTTP/1.1 100 Continue\r\n\r\n',
    want: { status: 100, bodyKind: BodyKind.None, upgrade: false },
  },
  {
    name: '101 Switching Protocols',
    req: false,
    head: 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    want: { status: 101, upgrade: true, bodyKind: BodyKind.None },
  },
  {
    name: 'response to HEAD: no body whatever the headers say',
    req: false,
    head: 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n',
    opts: { headRequest: true },
    want: { bodyKind: BodyKind.None, contentLength: -1 },
  },
  {
    name: '2xx to CONNECT: tunnel, no body',
    req: false,
    head: 'HTTP/1.1 200 Connection Established\r\n\r\n',
    opts: { connectRequest: true },
    want: { bodyKind: BodyKind.None, keepAlive: true },
  },
  {
    name: '407 to CONNECT has a body',
    req: false,
    head: 'HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\n',
    opts: { connectRequest: true },
    want: { bodyKind: BodyKind.Length, contentLength: 3 },
  },
  {
    name: 'HTTP/1.0 response with keep-alive and length',
    req: false,
    head: 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n',
    want: { versionMinor: 0, keepAlive: true, bodyKind: BodyKind.Length },
  },
  {
    name: 'HTTP/1.0 response with chunked: decoded, then close',
    req: false,
    head: 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n',
    want: { versionMinor: 0, keepAlive: false, bodyKind: BodyKind.Chunked },
  },
];

// Invalid heads

export interface Invalid {
  head: string;
  req?: boolean; // default: request
  status: number;
  reason: string; // substring of errorReason
  opts?: Opts;
}

export const H = 'Host: a\r\n';
export const INVALID: Invalid[] = [
  { head: `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n`, status: 400, reason: 'both Transfer-Encoding and Content-Length' },
  { head: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n`, status: 400, reason: 'both Transfer-Encoding and Content-Length' },
  { head: `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\n`, status: 400, reason: 'differing Content-Length' },
  { head: `POST / HTTP/1.1\r\n${H}Content-Length: 3, 4\r\n\r\n`, status: 400, reason: 'differing Content-Length' },
  { head: `POST / HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\n`, status: 400, reason: 'invalid Content-Length' },
  { head: `POST / HTTP/1.1\r\n${H}Content-Length: -3\r\n\r\n`, status: 400, reason: 'invalid Content-Length' },
  { head: `POST / HTTP/1.1\r\n${H}Content-Length: 1 2\r\n\r\n`, status: 400, reason: 'invalid Content-Length' },
  { head: `POST / HTTP/1.1\r\n${H}Content-Length: 0x10\r\n\r\n`, status: 400, reason: 'invalid Content-Length' },
  { head: `POST / HTTP/1.1\r\n${H}Content-Length:\r\n\r\n`, status: 400, reason: 'invalid Content-Length' },
  { head: `POST / HTTP/1.1\r\n${H}Content-Length: 3,\r\n\r\n`, status: 400, reason: 'invalid Content-Length' },
  { head: `POST / HTTP/1.1\r\n${H}Content-Length: 1234567890123456\r\n\r\n`, status: 400, reason: 'Content-Length too large' },
  { head: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n`, status: 501, reason: 'transfer-coding other than chunked' },
  { head: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n`, status: 400, reason: 'chunked is not the final' },
  { head: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n`, status: 400, reason: 'chunked applied more than once' },
  { head: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n`, status: 400, reason: 'chunked applied more than once' },
  { head: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: \r\n\r\n`, status: 400, reason: 'empty Transfer-Encoding' },
  { head: `POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n`, status: 400, reason: 'HTTP/1.0' },
  { head: `GET / HTTP/1.1\r\n${H}X-A: one\r\n two\r\n\r\n`, status: 400, reason: 'obs-fold' },
  { head: `GET / HTTP/1.1\r\n ${H}\r\n`, status: 400, reason: 'whitespace before the first header' },
  { head: `GET / HTTP/1.1\n${H}\r\n`, status: 400, reason: 'bare LF' },
  { head: `GET / HTTP/1.1\r\nHost: a\n\r\n`, status: 400, reason: 'bare LF' },
  { head: `GET / HTTP/1.1\r\n${H}\n`, status: 400, reason: 'bare LF' },
  { head: `GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n`, status: 400, reason: 'bare CR' },
  { head: `GET / HTTP/1.1\r${H}\r\n`, status: 400, reason: 'bare CR' },
  { head: `GET / HTTP/1.1\r\n${H}\rX\r\n`, status: 400, reason: 'bare CR' },
  { head: `GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`, status: 400, reason: 'invalid character in header value' },
  { head: `GET / HTTP/1.1\r\n${H}X-A: a\x7fb\r\n\r\n`, status: 400, reason: 'invalid character in header value' },
  { head: `GET / HTTP/1.1\r\n${H}X-A: a\x0bb\r\n\r\n`, status: 400, reason: 'invalid character in header value' },
  { head: `GET / HTTP/1.1\r\n${H}X-A : b\r\n\r\n`, status: 400, reason: 'whitespace before colon' },
  { head: `GET / HTTP/1.1\r\n${H}X(A): b\r\n\r\n`, status: 400, reason: 'invalid character in header name' },
  { head: `GET / HTTP/1.1\r\n${H}: b\r\n\r\n`, status: 400, reason: 'empty header name' },
  { head: `GET / HTTP/1.1\r\n${H}X-A\r\n\r\n`, status: 400, reason: 'without colon' },
  { head: `G@T / HTTP/1.1\r\n${H}\r\n`, status: 400, reason: 'method' },
  { head: ` GET / HTTP/1.1\r\n${H}\r\n`, status: 400, reason: 'method' },
  { head: `GET  / HTTP/1.1\r\n${H}\r\n`, status: 400, reason: 'more than one SP' },
  { head: `GET /a\x01b HTTP/1.1\r\n${H}\r\n`, status: 400, reason: 'request-target' },
  { head: `GET /a\x7fb HTTP/1.1\r\n${H}\r\n`, status: 400, reason: 'request-target' },
  { head: `GET /caf\xe9 HTTP/1.1\r\n${H}\r\n`, status: 400, reason: 'request-target' },
  { head: `GET /a\tb HTTP/1.1\r\n${H}\r\n`, status: 400, reason: 'request-target' },
  { head: `GET HTTP/1.1\r\n${H}\r\n`, status: 400, reason: 'missing HTTP version' },
  { head: `GET /\r\n${H}\r\n`, status: 400, reason: 'missing HTTP version' },
  { head: `GET example.com:80 HTTP/1.1\r\n${H}\r\n`, status: 400, reason: 'authority-form is only for CONNECT' },
  { head: `GET * HTTP/1.1\r\n${H}\r\n`, status: 400, reason: 'asterisk-form' },
  { head: `CONNECT /x HTTP/1.1\r\n${H}\r\n`, status: 400, reason: 'CONNECT needs an authority-form' },
  { head: `CONNECT example.com:https HTTP/1.1\r\n${H}\r\n`, status: 400, reason: 'invalid port' },
  { head: `GET / HTTP/2.0\r\n${H}\r\n`, status: 505, reason: 'version not supported' },
  { head: `GET / HTTP/1.2\r\n${H}\r\n`, status: 505, reason: 'version not supported' },
  { head: `GET / HTTP/10.0\r\n${H}\r\n`, status: 505, reason: 'version not supported' },
  { head: `GET / HTTP/1.1x\r\n${H}\r\n`, status: 400, reason: 'invalid HTTP version' },
  { head: `GET / http/1.1\r\n${H}\r\n`, status: 400, reason: 'invalid HTTP version' },
  { head: `GET / HTTP/1.1 \r\n${H}\r\n`, status: 400, reason: 'invalid HTTP version' },
  { head: `GET /  HTTP/1.1\r\n${H}\r\n`, status: 400, reason: 'more than one SP before HTTP version' },
  { head: `GET / HTTP/1.\r\n${H}\r\n`, status: 400, reason: 'invalid HTTP version' },
  { head: `GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n`, status: 400, reason: 'more than one Host' },
  { head: `\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n${H}\r\n`, status: 400, reason: 'too many empty lines' },
  { head: `GET / HTTP/1.1\r\n${H}${'X: y\r\n'.repeat(5)}\r\n`, status: 431, reason: 'too many header fields', opts: { maxHeaders: 5 } },
  { head: `GET / HTTP/1.1\r\n${H}X: ${'y'.repeat(200)}\r\n\r\n`, status: 431, reason: 'larger than the limit', opts: { maxHeaderBytes: 128 } },
  { head: `GET /${'a'.repeat(300)}`, status: 431, reason: 'larger than the limit', opts: { maxHeaderBytes: 128 } },
  { req: false, head: 'HTTP/1.1 99 Weird\r\n\r\n', status: 400, reason: 'invalid status code' },
  { req: false, head: 'HTTP/1.1 600 Weird\r\n\r\n', status: 400, reason: 'invalid status code' },
  { req: false, head: 'HTTP/1.1 2000 OK\r\n\r\n', status: 400, reason: 'invalid status code' },
  { req: false, head: 'HTTP/1.1 20x OK\r\n\r\n', status: 400, reason: 'invalid status code' },
  { req: false, head: 'HTTP/1.1 200 O\x01K\r\n\r\n', status: 400, reason: 'reason phrase' },
  { req: false, head: 'HTTP/1.1 200 OK\n\r\n', status: 400, reason: 'bare LF' },
  { req: false, head: 'HTTP/1.1\r\n\r\n', status: 400, reason: 'invalid status line' },
  { req: false, head: 'HTTP/2 200\r\n\r\n', status: 505, reason: 'version not supported' },
  { req: false, head: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', status: 400, reason: 'more than once' },
  { req: false, head: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', status: 400, reason: 'not the final' },
  { req: false, head: 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', status: 400, reason: 'differing Content-Length' },
  { req: false, head: '\r\nHTTP/1.1 200 OK\r\n\r\n', status: 400, reason: 'invalid' },
];

/** [request, node:http accepts?]: hostile and edge-case requests (the llhttp differential in the fuzz test). */
export const LLHTTP_TABLE: Array<[string, boolean]> = [
  [`GET / HTTP/1.1\r\n${H}\r\n`, true],
  [`GET / HTTP/1.0\r\n\r\n`, true],
  [`\r\nGET / HTTP/1.1\r\n${H}\r\n`, true],
  [`\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n${H}\r\n`, true],
  [`GET /caf\xe9 HTTP/1.1\r\n${H}\r\n`, false],
  [`GET / HTTP/1.1\r\n${H}X: caf\xe9\r\n\r\n`, true],
  [`GET / HTTP/2.0\r\n${H}\r\n`, true],
  [`GET / HTTP/1.2\r\n${H}\r\n`, false],
  [`GET / HTTP/0.9\r\n${H}\r\n`, true],
  [`POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, true],
  [`POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n`, true],
  [`POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n`, false],
  [`POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, false],
  [`POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, true],
  [`POST / HTTP/1.1\r\n${H}Content-Length: 1, 1\r\n\r\nx`, false],
  [`POST / HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 1\r\n\r\nx`, false],
  [`POST / HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx`, false],
  [`POST / HTTP/1.1\r\n${H}Content-Length: +1\r\n\r\nx`, false],
  [`POST / HTTP/1.1\r\n${H}Content-Length: 1 1\r\n\r\nx`, false],
  [`POST / HTTP/1.1\r\n${H}Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, false],
  [`POST / HTTP/1.1\r\n${H}Transfer-Encoding: \r\n\r\n`, true],
  [`GET example.com:80 HTTP/1.1\r\n${H}\r\n`, false],
  [`GET * HTTP/1.1\r\n${H}\r\n`, true],
  [`OPTIONS * HTTP/1.1\r\n${H}\r\n`, true],
  [`CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n`, true],
  [`GET http://a.example/ HTTP/1.1\r\n${H}\r\n`, true],
  [`GET foo HTTP/1.1\r\n${H}\r\n`, false],
  [`PURGE / HTTP/1.1\r\n${H}\r\n`, true],
  [`get / HTTP/1.1\r\n${H}\r\n`, false],
  [`FROB / HTTP/1.1\r\n${H}\r\n`, false],
  [`GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, true],
  [`GET / HTTP/1.1\r\n\r\n`, false],
  [`GET / HTTP/1.1\r\n${H}X-A:\r\n\r\n`, true],
  [`GET / HTTP/1.1\r\n${H}X-A: a\tb\r\n\r\n`, true],
  [`GET / HTTP/1.1\r\n${H}X-A: a\x7fb\r\n\r\n`, false],
  [`GET / HTTP/1.1\r\n${H}X-A: a\x01b\r\n\r\n`, false],
  [`GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`, false],
  [`GET / HTTP/1.1\r\n${H}X-A : b\r\n\r\n`, false],
  [`GET / HTTP/1.1\r\n${H}X-A: one\r\n two\r\n\r\n`, false],
  [`GET / HTTP/1.1\n${H}\r\n`, false],
  [`GET / HTTP/1.1\r\n${H}X-A: b\n\r\n`, false],
  [`GET / HTTP/1.1\r\n${H}X-A: b\rc\r\n\r\n`, false],
  [`GET /a\tb HTTP/1.1\r\n${H}\r\n`, false],
  [`GET  / HTTP/1.1\r\n${H}\r\n`, true],
  [`GET / HTTP/1.1 \r\n${H}\r\n`, false],
  [`GET /\x7f HTTP/1.1\r\n${H}\r\n`, false],
  [`GET / HTTP/1.1\r\n${H}X{}: b\r\n\r\n`, false],
  [`GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, true],
];
