// Unit tests of the strict HTTP/1.1 codec (src/http/h1/codec.ts): a table of valid heads with
// their expected fields, a table of invalid heads (status + reason), incremental feeding at
// every split point, the golden vectors captured from real clients and servers
// (test/vectors/http1, scripts/capture-h1-vectors.js), the chunked decoder and the encoders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  BodyKind,
  ChunkedDecoder,
  HeadParser,
  LAST_CHUNK,
  chunkHeader,
  requestHead,
  responseHead,
  type ChunkSink,
} from '../../src/http/h1/codec';
import type { Headers } from '../../src/http/headers';
import { H, INVALID, VALID, type Opts, type Valid } from '../helpers/h1-cases';

const MAX_HEAD = 16384;
const MAX_HEADERS = 100;

function parser(isRequest: boolean, o: Opts = {}): HeadParser {
  const p = new HeadParser(isRequest, o.maxHeaderBytes ?? MAX_HEAD, o.maxHeaders ?? MAX_HEADERS);
  p.headRequest = o.headRequest ?? false;
  p.connectRequest = o.connectRequest ?? false;
  return p;
}

/** The parse results as a plain object (headers copied out of their null-prototype map). */
function snap(p: HeadParser): Record<string, unknown> {
  return {
    method: p.method,
    target: p.target,
    versionMinor: p.versionMinor,
    status: p.status,
    reason: p.reason,
    headers: { ...p.headers },
    headerCount: p.headerCount,
    bodyKind: p.bodyKind,
    contentLength: p.contentLength,
    keepAlive: p.keepAlive,
    upgrade: p.upgrade,
    connect: p.connect,
    expectContinue: p.expectContinue,
  };
}

// ---------------------------------------------------------------------------------------------
// Valid heads (test/helpers/h1-cases.ts)

function checkValid(v: Valid, p: HeadParser, r: number, len: number): void {
  assert.equal(r, len, `${v.name}: returned ${r} (${p.errorStatus} ${p.errorReason})`);
  const got = snap(p);
  for (const k of Object.keys(v.want)) assert.deepEqual(got[k], v.want[k], `${v.name}: ${k}`);
}

test('h1 codec: valid heads give the expected fields', () => {
  for (const v of VALID) {
    const p = parser(v.req, v.opts);
    const b = Buffer.from(v.head, 'latin1');
    checkValid(v, p, p.parse(b, 0, b.length), b.length);
  }
});

test('h1 codec: a head followed by body bytes and inside a larger buffer', () => {
  for (const v of VALID) {
    const p = parser(v.req, v.opts);
    const b = Buffer.from('garbage!' + v.head + 'BODY-BYTES\r\n\r\n', 'latin1');
    const r = p.parse(b, 8, b.length);
    checkValid(v, p, r - 8, v.head.length);
  }
});

test('h1 codec: results are reset between parses on one parser', () => {
  const p = parser(true);
  const a = Buffer.from('POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n', 'latin1');
  const b = Buffer.from('GET /b HTTP/1.1\r\nHost: b\r\n\r\n', 'latin1');
  assert.equal(p.parse(a, 0, a.length), a.length);
  assert.equal(p.parse(b, 0, b.length), b.length);
  assert.deepEqual(snap(p), {
    method: 'GET', target: '/b', versionMinor: 1, status: 0, reason: '', headers: { host: 'b' }, headerCount: 1,
    bodyKind: BodyKind.None, contentLength: -1, keepAlive: true, upgrade: false, connect: false, expectContinue: false,
  });
});

// ---------------------------------------------------------------------------------------------
// Invalid heads (test/helpers/h1-cases.ts)

test('h1 codec: invalid heads are refused with the expected status and reason', () => {
  for (const v of INVALID) {
    const p = parser(v.req ?? true, v.opts);
    const b = Buffer.from(v.head, 'latin1');
    const r = p.parse(b, 0, b.length);
    const what = JSON.stringify(v.head.slice(0, 80));
    assert.equal(r, -1, `${what}: returned ${r}`);
    assert.equal(p.errorStatus, v.status, `${what}: ${p.errorReason}`);
    assert.ok(p.errorReason.includes(v.reason), `${what}: reason "${p.errorReason}" lacks "${v.reason}"`);
  }
});

test('h1 codec: size limits are exact', () => {
  const head = `GET / HTTP/1.1\r\n${H}X: yyyy\r\n\r\n`;
  const b = Buffer.from(head, 'latin1');
  assert.equal(parser(true, { maxHeaderBytes: b.length }).parse(b, 0, b.length), b.length);
  const short = parser(true, { maxHeaderBytes: b.length - 1 });
  assert.equal(short.parse(b, 0, b.length), -1);
  assert.equal(short.errorStatus, 431);
  // exactly maxHeaders fields pass
  const many = Buffer.from(`GET / HTTP/1.1\r\n${'X: y\r\n'.repeat(5)}\r\n`, 'latin1');
  assert.equal(parser(true, { maxHeaders: 5 }).parse(many, 0, many.length), many.length);
  // an unfinished head shorter than the limit waits; at the limit it is refused
  const p = parser(true, { maxHeaderBytes: 64 });
  const part = Buffer.from(`GET /${'a'.repeat(80)}`, 'latin1');
  assert.equal(p.parse(part, 0, 63), 0);
  assert.equal(p.parse(part, 0, 64), -1);
  assert.equal(p.errorStatus, 431);
});

// ---------------------------------------------------------------------------------------------
// Incremental feeding

/** Feeds `bytes` as prefixes [0, n) for every n (fresh copies, as a caller accumulating would). */
function feedEveryPrefix(isRequest: boolean, bytes: Buffer, opts: Opts): { r: number; p: HeadParser; firstNonZero: number } {
  const p = parser(isRequest, opts);
  for (let n = 1; n <= bytes.length; n++) {
    const copy = Buffer.from(bytes.subarray(0, n));
    const r = p.parse(copy, 0, n);
    if (r !== 0) return { r, p, firstNonZero: n };
  }
  return { r: 0, p, firstNonZero: -1 };
}

test('h1 codec: valid heads fed byte by byte and split at every point give the same result', () => {
  for (const v of VALID) {
    const full = Buffer.from(v.head + 'XYZ', 'latin1');
    const once = parser(v.req, v.opts);
    const len = v.head.length;
    assert.equal(once.parse(full, 0, full.length), len);
    const want = snap(once);
    // growing prefixes on one parser: 0 until the whole head is there
    const g = feedEveryPrefix(v.req, full, v.opts ?? {});
    assert.equal(g.firstNonZero, len, `${v.name}: first result at ${g.firstNonZero}`);
    assert.equal(g.r, len);
    assert.deepEqual(snap(g.p), want, v.name);
    // two parts at every split point, each call with its own buffer and a non-zero start
    for (let i = 1; i < len; i++) {
      const p = parser(v.req, v.opts);
      const a = Buffer.concat([Buffer.from('..'), full.subarray(0, i)]);
      assert.equal(p.parse(a, 2, a.length), 0, `${v.name}: split ${i}`);
      const b = Buffer.concat([Buffer.from('....'), full]);
      assert.equal(p.parse(b, 4, b.length), len + 4, `${v.name}: split ${i}`);
      assert.deepEqual(snap(p), want, `${v.name}: split ${i}`);
    }
  }
});

test('h1 codec: invalid heads fed byte by byte fail the same way (never accepted)', () => {
  for (const v of INVALID) {
    const b = Buffer.from(v.head, 'latin1');
    const g = feedEveryPrefix(v.req ?? true, b, v.opts ?? {});
    assert.equal(g.r, -1, JSON.stringify(v.head));
    assert.equal(g.p.errorStatus, v.status, JSON.stringify(v.head));
  }
});

test('h1 codec: reset() forgets a partial head', () => {
  const p = parser(true);
  const a = Buffer.from('GET /first HTTP/1.1\r\nHost: a\r\nX-Long: aaaaaaaa', 'latin1');
  assert.equal(p.parse(a, 0, a.length), 0);
  p.reset();
  const b = Buffer.from('GET /x HTTP/1.1\r\n\r\n', 'latin1');
  assert.equal(p.parse(b, 0, b.length), b.length);
  assert.equal(p.target, '/x');
});

// ---------------------------------------------------------------------------------------------
// Golden vectors from real peers

const VECTORS = path.join(__dirname, '..', '..', '..', 'test', 'vectors', 'http1');

interface Golden {
  kind: 'request' | 'response';
  bytes: number;
  headEnd: number;
  messageEnd: number;
  headers: Headers;
  method?: string;
  target?: string;
  versionMinor: number;
  status?: number;
  reason?: string;
  bodyKind: number;
  contentLength: number;
  keepAlive: boolean;
  expectContinue?: boolean;
  headRequest?: boolean;
  body: string;
  trailers?: Headers | null;
}

const goldenNames = fs
  .readdirSync(VECTORS)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -5))
  .sort();

/** Collects decoded payload ranges. */
class Collect implements ChunkSink {
  parts: Buffer[] = [];
  onChunkData(buf: Buffer, start: number, end: number): void {
    this.parts.push(Buffer.from(buf.subarray(start, end)));
  }
  text(): string {
    return Buffer.concat(this.parts).toString('latin1');
  }
}

test('h1 codec: golden vectors (curl, node:http, undici, python) parse to the recorded results', () => {
  assert.ok(goldenNames.length >= 14, `only ${goldenNames.length} vectors`);
  const kinds = new Set<string>();
  for (const name of goldenNames) {
    const g = JSON.parse(fs.readFileSync(path.join(VECTORS, `${name}.json`), 'utf8')) as Golden;
    const bin = fs.readFileSync(path.join(VECTORS, `${name}.bin`));
    const hex = fs.readFileSync(path.join(VECTORS, `${name}.hex`), 'utf8').trim();
    assert.equal(bin.toString('hex'), hex, `${name}: .bin and .hex differ`);
    assert.equal(bin.length, g.bytes);
    const isReq = g.kind === 'request';
    const p = parser(isReq, { headRequest: g.headRequest });
    const r = p.parse(bin, 0, bin.length);
    assert.equal(r, g.headEnd, `${name}: ${p.errorStatus} ${p.errorReason}`);
    assert.deepEqual({ ...p.headers }, g.headers, name);
    assert.equal(p.versionMinor, g.versionMinor, name);
    assert.equal(p.bodyKind, g.bodyKind, name);
    assert.equal(p.contentLength, g.contentLength, name);
    assert.equal(p.keepAlive, g.keepAlive, name);
    if (isReq) {
      assert.equal(p.method, g.method, name);
      assert.equal(p.target, g.target, name);
      assert.equal(p.expectContinue, g.expectContinue, name);
    } else {
      assert.equal(p.status, g.status, name);
      assert.equal(p.reason, g.reason, name);
    }
    kinds.add(`${g.kind}:${g.bodyKind}`);
    // the body, framed as the head says
    let body = '';
    let end = r;
    if (p.bodyKind === BodyKind.Length) {
      end = r + p.contentLength;
      body = bin.toString('latin1', r, end);
    } else if (p.bodyKind === BodyKind.Chunked) {
      const d = new ChunkedDecoder(1024);
      const c = new Collect();
      end = d.decode(bin, r, bin.length, c);
      assert.equal(d.done, true, `${name}: ${d.error}`);
      body = c.text();
      assert.deepEqual(d.trailers === null ? null : { ...d.trailers }, g.trailers ?? null, name);
    } else if (p.bodyKind === BodyKind.UntilClose) {
      end = bin.length;
      body = bin.toString('latin1', r);
    }
    assert.equal(body, g.body, name);
    assert.equal(end, g.messageEnd, name);
  }
  // the set covers every framing a real peer produced: request none/length/chunked, response all four
  for (const k of ['request:0', 'request:1', 'request:2', 'response:0', 'response:1', 'response:2', 'response:3']) assert.ok(kinds.has(k), k);
});

test('h1 codec: golden heads split at every point give the same result', () => {
  for (const name of goldenNames) {
    const g = JSON.parse(fs.readFileSync(path.join(VECTORS, `${name}.json`), 'utf8')) as Golden;
    const bin = fs.readFileSync(path.join(VECTORS, `${name}.bin`));
    const opts = { headRequest: g.headRequest };
    const isReq = g.kind === 'request';
    const f = feedEveryPrefix(isReq, bin, opts);
    assert.equal(f.firstNonZero, g.headEnd, name);
    assert.equal(f.r, g.headEnd, name);
    assert.deepEqual({ ...f.p.headers }, g.headers, name);
  }
});

// ---------------------------------------------------------------------------------------------
// Chunked decoder

interface Decoded {
  r: number;
  body: string;
  done: boolean;
  error: string;
  trailers: Record<string, unknown> | null;
}

function decodeAll(body: string, maxTrailer = 1024, sink = true): Decoded {
  const d = new ChunkedDecoder(maxTrailer);
  const b = Buffer.from(body, 'latin1');
  const c = new Collect();
  const r = d.decode(b, 0, b.length, sink ? c : null);
  return { r, body: c.text(), done: d.done, error: d.error, trailers: d.trailers === null ? null : { ...d.trailers } };
}

/** Feeds one byte per call, each in its own buffer. */
function decodeBytewise(body: string, maxTrailer = 1024): Decoded {
  const d = new ChunkedDecoder(maxTrailer);
  const b = Buffer.from(body, 'latin1');
  const c = new Collect();
  let r = 0;
  for (let i = 0; i < b.length; i++) {
    const one = Buffer.from([b[i]]);
    const x = d.decode(one, 0, 1, c);
    if (x < 0) return { r: -1, body: c.text(), done: false, error: d.error, trailers: null };
    if (d.done) {
      r = i + x;
      break;
    }
    assert.equal(x, 1);
  }
  return { r, body: c.text(), done: d.done, error: d.error, trailers: d.trailers === null ? null : { ...d.trailers } };
}

const CHUNKED_VALID: Array<{ body: string; payload: string; trailers: Record<string, unknown> | null }> = [
  { body: '0\r\n\r\n', payload: '', trailers: null },
  { body: '5\r\nhello\r\n0\r\n\r\n', payload: 'hello', trailers: null },
  { body: '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n', payload: 'hello world', trailers: null },
  { body: 'A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n', payload: '0123456789abcdefghij', trailers: null },
  { body: '0005\r\nhello\r\n000\r\n\r\n', payload: 'hello', trailers: null },
  { body: '5;name=value\r\nhello\r\n3 ;a;b="q\tz" \r\nabc\r\n0;last\r\n\r\n', payload: 'helloabc', trailers: null },
  { body: '2\r\n\r\n\r\n0\r\n\r\n', payload: '\r\n', trailers: null },
  { body: '3\r\nabc\r\n0\r\nX-Checksum: abc123\r\nX-Other:  two words \r\nx-checksum: again\r\n\r\n', payload: 'abc', trailers: { 'x-checksum': ['abc123', 'again'], 'x-other': 'two words' } },
  { body: '0\r\nGrpc-Status: 0\r\nGrpc-Message:\r\n\r\n', payload: '', trailers: { 'grpc-status': '0', 'grpc-message': '' } },
];

test('h1 codec: chunked bodies decode whole and byte by byte', () => {
  for (const v of CHUNKED_VALID) {
    for (const res of [decodeAll(v.body + 'NEXT'), decodeBytewise(v.body + 'NEXT')]) {
      assert.equal(res.error, '', JSON.stringify(v.body));
      assert.equal(res.done, true, JSON.stringify(v.body));
      assert.equal(res.r, v.body.length, JSON.stringify(v.body));
      assert.equal(res.body, v.payload);
      assert.deepEqual(res.trailers, v.trailers);
    }
    const noSink = decodeAll(v.body, 1024, false);
    assert.equal(noSink.r, v.body.length);
  }
});

test('h1 codec: the decoder returns end while it needs more and stays done afterwards', () => {
  const d = new ChunkedDecoder(64);
  const b = Buffer.from('5\r\nhel', 'latin1');
  assert.equal(d.decode(b, 0, b.length, null), b.length);
  assert.equal(d.done, false);
  const c = Buffer.from('lo\r\n0\r\n\r\nrest', 'latin1');
  assert.equal(d.decode(c, 0, c.length, null), 9);
  assert.equal(d.done, true);
  assert.equal(d.decode(c, 9, c.length, null), 9);
  d.reset();
  assert.equal(d.done, false);
  const again = Buffer.from('1\r\nx\r\n0\r\n\r\n', 'latin1');
  assert.equal(d.decode(again, 0, again.length, null), again.length);
  assert.equal(d.trailers, null);
});

const CHUNKED_INVALID: Array<{ body: string; error: string; maxTrailer?: number }> = [
  { body: '\r\n', error: 'invalid chunk size' },
  { body: 'g\r\n', error: 'invalid chunk size' },
  { body: '-1\r\n', error: 'invalid chunk size' },
  { body: '0x5\r\nhello\r\n', error: 'invalid chunk size' },
  { body: '+5\r\nhello\r\n', error: 'invalid chunk size' },
  { body: '1000000000000000\r\n', error: 'chunk size too large' },
  { body: '20000000000000\r\n', error: 'chunk size too large' },
  { body: '0000000000000001\r\n', error: 'too many digits' },
  { body: '5 \r\nhello\r\n', error: 'whitespace after chunk size' },
  { body: '5\nhello\r\n', error: 'bare LF' },
  { body: '5\rhello\r\n', error: 'bare CR' },
  { body: '5;a\x00b\r\nhello\r\n', error: 'invalid character in chunk extension' },
  { body: '5;a\nhello\r\n', error: 'bare LF' },
  { body: '5\r\nhelloX\r\n', error: 'not followed by CRLF' },
  { body: '5\r\nhelloX\n0\r\n\r\n', error: 'not followed by CRLF' },
  { body: '5\r\nhello\rX0\r\n\r\n', error: 'not followed by CRLF' },
  { body: '5\r\nhello\n0\r\n\r\n', error: 'not followed by CRLF' },
  { body: '5\r\nhello\rX', error: 'not followed by CRLF' },
  { body: '0\r\nX-A: b\n\r\n', error: 'bare LF' },
  { body: '0\r\nX-A: b\rZ\r\n', error: 'bare CR' },
  { body: '0\r\n\rX', error: 'bare CR' },
  { body: '0\r\nno colon here\r\n\r\n', error: 'trailer: invalid character in header name' },
  { body: '0\r\nnocolon\r\n\r\n', error: 'trailer: header line without colon' },
  { body: '0\r\nX-A: b\r\n folded\r\n\r\n', error: 'trailer: obs-fold' },
  { body: '0\r\nX-A: a\x01b\r\n\r\n', error: 'trailer: invalid character in header value' },
  { body: `0\r\nX-Big: ${'v'.repeat(40)}\r\n\r\n`, error: 'trailer section larger than the limit', maxTrailer: 32 },
  { body: `0\r\n${'X: y\r\n'.repeat(10)}\r\n`, error: 'trailer section larger than the limit', maxTrailer: 32 },
  { body: `1;${'e'.repeat(17000)}\r\n`, error: 'chunk extensions too long' },
];

test('h1 codec: malformed chunked bodies are refused, whole and byte by byte', () => {
  for (const v of CHUNKED_INVALID) {
    for (const res of [decodeAll(v.body, v.maxTrailer), decodeBytewise(v.body, v.maxTrailer)]) {
      assert.equal(res.r, -1, JSON.stringify(v.body.slice(0, 60)));
      assert.ok(res.error.includes(v.error), `${JSON.stringify(v.body.slice(0, 60))}: "${res.error}" lacks "${v.error}"`);
    }
  }
  // an error is sticky
  const d = new ChunkedDecoder(16);
  const bad = Buffer.from('z', 'latin1');
  assert.equal(d.decode(bad, 0, 1, null), -1);
  const good = Buffer.from('0\r\n\r\n', 'latin1');
  assert.equal(d.decode(good, 0, good.length, null), -1);
});

test('h1 codec: the largest chunk size is the largest exact Number', () => {
  const d = new ChunkedDecoder(0);
  const b = Buffer.from('1fffffffffffff\r\nabc', 'latin1');
  assert.equal(d.decode(b, 0, b.length, null), b.length);
  assert.equal(d.error, '');
});

test('h1 codec: trailers exactly at the byte limit pass', () => {
  const line = 'X-T: 12345\r\n'; // 12 bytes
  assert.equal(decodeAll(`0\r\n${line}\r\n`, line.length).error, '');
  assert.ok(decodeAll(`0\r\n${line}\r\n`, line.length - 1).error.includes('larger than the limit'));
});

test('h1 codec: a large chunk is delivered in the pieces it arrives in', () => {
  const d = new ChunkedDecoder(16);
  const c = new Collect();
  const size = 100_000;
  const head = Buffer.from(size.toString(16) + '\r\n', 'latin1');
  assert.equal(d.decode(head, 0, head.length, c), head.length);
  const piece = Buffer.alloc(1000, 0x61);
  for (let i = 0; i < size / 1000; i++) assert.equal(d.decode(piece, 0, piece.length, c), piece.length);
  assert.equal(c.parts.length, 100);
  const tail = Buffer.from('\r\n0\r\n\r\n', 'latin1');
  assert.equal(d.decode(tail, 0, tail.length, c), tail.length);
  assert.equal(d.done, true);
  assert.equal(c.text().length, size);
});

// ---------------------------------------------------------------------------------------------
// Encoders

test('h1 codec: request and response heads', () => {
  assert.equal(
    requestHead('GET', '/p?q=1', 'h:1', { a: 'b', c: ['d', 'e'], skipped: undefined }, 'content-length: 0\r\n'),
    'GET /p?q=1 HTTP/1.1\r\nhost: h:1\r\na: b\r\nc: d\r\nc: e\r\ncontent-length: 0\r\n\r\n',
  );
  assert.equal(responseHead(404, { a: 'b' }, 'transfer-encoding: chunked\r\n'), 'HTTP/1.1 404 Not Found\r\na: b\r\ntransfer-encoding: chunked\r\n\r\n');
  assert.equal(responseHead(200, {}, ''), 'HTTP/1.1 200 OK\r\n\r\n');
  assert.equal(responseHead(299, {}, ''), 'HTTP/1.1 299 Unknown\r\n\r\n');
  assert.equal(responseHead(999, {}, ''), 'HTTP/1.1 999 Unknown\r\n\r\n');
});

test('h1 codec: encoded heads parse back to what was encoded', () => {
  const headers = { 'x-one': '1', 'x-list': ['a', 'b'], 'content-type': 'text/plain' };
  const q = Buffer.from(requestHead('POST', '/up', 'svc:8080', headers, 'transfer-encoding: chunked\r\n'), 'latin1');
  const p = parser(true);
  assert.equal(p.parse(q, 0, q.length), q.length);
  assert.deepEqual({ ...p.headers }, { host: 'svc:8080', ...headers, 'transfer-encoding': 'chunked' });
  assert.equal(p.bodyKind, BodyKind.Chunked);
  const s = Buffer.from(responseHead(201, headers, 'content-length: 7\r\n'), 'latin1');
  const r = parser(false);
  assert.equal(r.parse(s, 0, s.length), s.length);
  assert.equal(r.status, 201);
  assert.equal(r.reason, 'Created');
  assert.equal(r.contentLength, 7);
});

test('h1 codec: chunk framing decodes back to the payload', () => {
  assert.equal(chunkHeader(1), '1\r\n');
  assert.equal(chunkHeader(255), 'ff\r\n');
  assert.equal(chunkHeader(0x10000), '10000\r\n');
  assert.equal(LAST_CHUNK.toString('latin1'), '0\r\n\r\n');
  const parts = ['a', 'bc'.repeat(200), 'x'.repeat(4097)];
  const wire = Buffer.concat([...parts.map((s) => Buffer.from(chunkHeader(s.length) + s + '\r\n', 'latin1')), LAST_CHUNK]);
  const d = new ChunkedDecoder(0);
  const c = new Collect();
  assert.equal(d.decode(wire, 0, wire.length, c), wire.length);
  assert.equal(c.text(), parts.join(''));
});

test('h1 codec: correct once the name table is full (names past its capacity are not interned)', () => {
  const p = parser(true, { maxHeaders: 1000, maxHeaderBytes: 65536 });
  let head = 'GET / HTTP/1.1\r\n';
  const want: Record<string, string | string[]> = {};
  for (let i = 0; i < 700; i++) {
    head += `X-Fill-${i}: v${i}\r\n`;
    want[`x-fill-${i}`] = `v${i}`;
  }
  head += 'X-FILL-699: again\r\nx-fill-3: again\r\n\r\n';
  want['x-fill-699'] = ['v699', 'again'];
  want['x-fill-3'] = ['v3', 'again'];
  const b = Buffer.from(head, 'latin1');
  for (let round = 0; round < 2; round++) {
    assert.equal(p.parse(b, 0, b.length), b.length);
    assert.deepEqual({ ...p.headers }, want);
  }
});
