import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import {
  BoltFrame,
  CLASS_RPC_SERVER_EXCEPTION,
  CLASS_SOFA_REQUEST,
  CLASS_SOFA_RESPONSE,
  CMD_HEARTBEAT,
  CMD_RPC_REQUEST,
  CMD_RPC_RESPONSE,
  CODEC_PROTOBUF,
  DECODE_NEED_MORE,
  ERR_BAD_LENGTH,
  ERR_BAD_VERSION,
  ERR_CRC_MISMATCH,
  ERR_FRAME_TOO_LARGE,
  ERR_UNKNOWN_PROTOCOL,
  ERR_UNKNOWN_TYPE,
  HEADER_MALFORMED,
  HEADER_NOT_FOUND,
  HeaderValueRange,
  HAS_NATIVE_CRC32,
  SET_ID_OK,
  SET_ID_TRUNCATED,
  STATUS_CONNECTION_CLOSED,
  STATUS_NO_PROCESSOR,
  STATUS_SERVER_THREADPOOL_BUSY,
  STATUS_TIMEOUT,
  TYPE_ONEWAY,
  TYPE_REQUEST,
  TYPE_RESPONSE,
  crc32,
  crc32Table,
  decodeFrame,
  decodeHeaders,
  defaultErrorMessage,
  encodeErrorResponse,
  encodeFrame,
  encodeHeaders,
  encodeHeartbeat,
  encodeHeartbeatAck,
  findHeader,
  findHeaderValue,
  findServiceHeader,
  getRequestId,
  headerKey,
  setRequestId,
  type BoltFrameSpec,
} from '../../src/protocol/bolt';

// Compiled to dist/test/unit; the vectors stay in the source tree.
const VECTORS = path.join(__dirname, '..', '..', '..', 'test', 'vectors', 'bolt');
function vector(name: string): Buffer {
  return Buffer.from(fs.readFileSync(path.join(VECTORS, name), 'utf8').replace(/\s+/g, ''), 'hex');
}
const ALL_VECTORS = fs.readdirSync(VECTORS).filter((f) => f.endsWith('.hex')).sort();

const MAX = 1 << 20;

function decode(buf: Buffer, max = MAX): [number, BoltFrame] {
  const out = new BoltFrame();
  return [decodeFrame(buf, 0, buf.length, max, out), out];
}

function section(buf: Buffer, start: number, end: number): string {
  return buf.toString('utf8', start, end);
}

test('captured sofa-rpc-node request: every field', () => {
  const buf = vector('bolt-v1-request-sofa-rpc-node.hex');
  assert.equal(buf.length, 339);
  const [n, f] = decode(buf);
  assert.equal(n, 339);
  assert.equal(f.frameLen, 339);
  assert.equal(f.proto, 1);
  assert.equal(f.ver1, 0);
  assert.equal(f.type, TYPE_REQUEST);
  assert.equal(f.isRequest, true);
  assert.equal(f.cmdcode, CMD_RPC_REQUEST);
  assert.equal(f.isHeartbeat, false);
  assert.equal(f.ver2, 1);
  assert.equal(f.requestId, 1);
  assert.equal(f.codec, 1);
  assert.equal(f.timeout, 3000);
  assert.equal(f.classLen, 44);
  assert.equal(f.headerLen, 42);
  assert.equal(f.contentLen, 231);
  assert.equal(f.fixedLen, 22);
  assert.equal(f.classStart, 22);
  assert.equal(f.headerStart, 66);
  assert.equal(f.contentStart, 108);
  assert.equal(f.contentEnd, 339);
  assert.equal(f.hasCrc, false);
  assert.equal(section(buf, f.classStart, f.headerStart), CLASS_SOFA_REQUEST);
  assert.deepEqual(decodeHeaders(buf, f.headerStart, f.contentStart), new Map([['service', 'com.example.TestService:1.0']]));
  const r = new HeaderValueRange();
  assert.equal(findServiceHeader(buf, f.headerStart, f.contentStart, r), 66 + 4 + 7 + 4);
  assert.equal(section(buf, r.start, r.end), 'com.example.TestService:1.0');
  assert.equal(findHeader(buf, f.headerStart, f.contentStart, 'sofa_head_method_name'), HEADER_NOT_FOUND);
  assert.equal(getRequestId(buf, 0), 1);
  // The content is Hessian and stays opaque: it starts with the class definition tag 'O'.
  assert.equal(buf[f.contentStart], 0x4f);
});

test('captured sofa-rpc-node response: every field', () => {
  const buf = vector('bolt-v1-response-sofa-rpc-node.hex');
  assert.equal(buf.length, 164);
  const [n, f] = decode(buf);
  assert.equal(n, 164);
  assert.equal(f.type, TYPE_RESPONSE);
  assert.equal(f.isRequest, false);
  assert.equal(f.cmdcode, CMD_RPC_RESPONSE);
  assert.equal(f.requestId, 1);
  assert.equal(f.codec, 1);
  assert.equal(f.status, 0);
  assert.equal(f.timeout, 0);
  assert.equal(f.classLen, 46);
  assert.equal(f.headerLen, 0);
  assert.equal(f.contentLen, 98);
  assert.equal(f.fixedLen, 20);
  assert.equal(section(buf, f.classStart, f.headerStart), CLASS_SOFA_RESPONSE);
  assert.deepEqual(decodeHeaders(buf, f.headerStart, f.contentStart), new Map());
  assert.equal(findServiceHeader(buf, f.headerStart, f.contentStart, new HeaderValueRange()), HEADER_NOT_FOUND);
});

test('PROTOCOLS.md section 5 vectors decode and re-encode byte for byte', () => {
  const a = vector('bolt-v1-request-service-testsofa.hex');
  let [n, f] = decode(a);
  assert.equal(n, 45);
  assert.deepEqual([f.requestId, f.timeout, f.classLen, f.headerLen, f.contentLen], [1, -1, 0, 23, 0]);
  assert.deepEqual(findHeader(a, f.headerStart, f.contentStart, 'service'), [22 + 4 + 7 + 4, 45]);
  assert.deepEqual(
    encodeFrame({ proto: 1, type: TYPE_REQUEST, cmdcode: CMD_RPC_REQUEST, requestId: 1, headers: { service: 'testSofa' } }),
    a,
  );

  const resp = vector('bolt-v1-response-success-id1.hex');
  [n, f] = decode(resp);
  assert.equal(n, 20);
  assert.deepEqual([f.type, f.cmdcode, f.requestId, f.status, f.frameLen], [TYPE_RESPONSE, CMD_RPC_RESPONSE, 1, 0, 20]);
  assert.deepEqual(encodeFrame({ proto: 1, type: TYPE_RESPONSE, cmdcode: CMD_RPC_RESPONSE, requestId: 1 }), resp);

  const kv = vector('bolt-v1-request-kv-hello.hex');
  [n, f] = decode(kv);
  assert.equal(n, 43);
  assert.deepEqual([f.requestId, f.headerLen, f.contentLen], [111, 10, 11]);
  assert.deepEqual(decodeHeaders(kv, f.headerStart, f.contentStart), new Map([['k', 'v']]));
  assert.equal(section(kv, f.contentStart, f.contentEnd), 'hello world');
  assert.deepEqual(
    encodeFrame({ proto: 1, type: TYPE_REQUEST, cmdcode: CMD_RPC_REQUEST, requestId: 111, headers: [['k', 'v']], content: Buffer.from('hello world') }),
    kv,
  );
});

test('heartbeats: detection and encoders match PROTOCOLS.md section 5 C', () => {
  const hb1 = vector('bolt-v1-heartbeat-id7.hex');
  const ack1 = vector('bolt-v1-heartbeat-ack-id7.hex');
  const hb2 = vector('bolt-v2-heartbeat-id7.hex');
  let [n, f] = decode(hb1);
  assert.deepEqual([n, f.isHeartbeat, f.isRequest, f.requestId, f.timeout], [22, true, true, 7, -1]);
  [n, f] = decode(ack1);
  assert.deepEqual([n, f.isHeartbeat, f.isRequest, f.requestId, f.status], [20, true, false, 7, 0]);
  [n, f] = decode(hb2);
  assert.deepEqual([n, f.proto, f.ver1, f.isHeartbeat, f.isRequest, f.requestId, f.switch, f.hasCrc], [24, 2, 1, true, true, 7, 0, false]);
  assert.deepEqual(encodeHeartbeat(1, 7), hb1);
  assert.deepEqual(encodeHeartbeatAck(1, 0, 7), ack1);
  assert.deepEqual(encodeHeartbeat(2, 7, 1), hb2);
  // Node sends timeout 3000 in its heartbeats.
  [n, f] = decode(encodeHeartbeat(1, 9, 1, 3000));
  assert.deepEqual([n, f.timeout, f.cmdcode], [22, 3000, CMD_HEARTBEAT]);
  const ack2 = encodeHeartbeatAck(2, 2, 0xfffffffe);
  [n, f] = decode(ack2);
  assert.deepEqual([n, f.ver1, f.type, f.isHeartbeat, f.requestId, f.hasCrc], [22, 2, TYPE_RESPONSE, true, 0xfffffffe, false]);
});

const SPECS: BoltFrameSpec[] = [
  { proto: 1, type: TYPE_REQUEST, cmdcode: 1, requestId: 0xffffffff, timeout: 2500, className: CLASS_SOFA_REQUEST, headers: { service: 'a.B:1.0', sofa_head_method_name: 'm' }, content: Buffer.from([1, 2, 3]) },
  { proto: 1, type: TYPE_ONEWAY, cmdcode: 1, requestId: 3, codec: 11, headers: [['x', null], ['service', 'x:1.0']] },
  { proto: 1, type: TYPE_RESPONSE, cmdcode: 2, requestId: 4, status: 0x12, className: 'C', content: Buffer.alloc(300, 7) },
  { proto: 2, ver1: 1, type: TYPE_REQUEST, cmdcode: 1, requestId: 5, className: CLASS_SOFA_REQUEST, headers: { service: 's' }, content: Buffer.from('abc') },
  { proto: 2, ver1: 2, switch: 1, type: TYPE_REQUEST, cmdcode: 1, requestId: 6, timeout: 0, className: CLASS_SOFA_REQUEST, headers: { sofa_head_target_service: 'old:1.0' }, content: Buffer.alloc(1000, 0x5a) },
  { proto: 2, ver1: 2, switch: 1, type: TYPE_RESPONSE, cmdcode: 2, requestId: 7, className: CLASS_SOFA_RESPONSE, content: Buffer.from('ok') },
  { proto: 2, ver1: 2, switch: 0, type: TYPE_RESPONSE, cmdcode: 2, requestId: 8, status: 4 },
  { proto: 2, ver1: 1, switch: 1, type: TYPE_ONEWAY, cmdcode: 1, requestId: 9, content: Buffer.from('no crc: ver1 is 1') },
];

test('encode/decode round trips (v1, v2, with and without CRC)', () => {
  for (const spec of SPECS) {
    const buf = encodeFrame(spec);
    const [n, f] = decode(buf);
    const cls = spec.className === undefined ? 0 : Buffer.byteLength(spec.className as string);
    const content = spec.content?.length ?? 0;
    const hasCrc = spec.proto === 2 && spec.ver1 === 2 && ((spec.switch ?? 0) & 1) === 1;
    assert.equal(n, buf.length, `spec ${spec.requestId}`);
    assert.equal(f.hasCrc, hasCrc);
    assert.equal(f.frameLen, f.fixedLen + cls + f.headerLen + content + (hasCrc ? 4 : 0));
    assert.equal(f.proto, spec.proto);
    assert.equal(f.ver1, spec.proto === 2 ? (spec.ver1 ?? 1) : 0);
    assert.equal(f.type, spec.type);
    assert.equal(f.cmdcode, spec.cmdcode);
    assert.equal(f.requestId, spec.requestId);
    assert.equal(f.codec, spec.codec ?? 1);
    assert.equal(f.switch, spec.proto === 2 ? (spec.switch ?? 0) : 0);
    if (spec.type === TYPE_RESPONSE) assert.equal(f.status, spec.status ?? 0);
    else assert.equal(f.timeout, spec.timeout ?? -1);
    assert.equal(f.classLen, cls);
    assert.equal(f.contentLen, content);
    if (spec.className !== undefined) assert.equal(section(buf, f.classStart, f.headerStart), spec.className);
    if (spec.content !== undefined) assert.deepEqual(buf.subarray(f.contentStart, f.contentEnd), spec.content);
    const expectHeaders = new Map<string, string>();
    const h = spec.headers ?? {};
    for (const [k, v] of Array.isArray(h) ? h : Object.entries(h)) if (k !== null && v !== null) expectHeaders.set(k, v);
    assert.deepEqual(decodeHeaders(buf, f.headerStart, f.contentStart), expectHeaders);
    if (hasCrc) assert.equal(buf.readUInt32BE(f.contentEnd), zlib.crc32(buf.subarray(0, f.contentEnd)));
  }
});

test('CRC32 is IEEE/zlib: known value, TS table = zlib.crc32 at every length', () => {
  assert.equal(HAS_NATIVE_CRC32, typeof (zlib as { crc32?: unknown }).crc32 === 'function');
  const check = Buffer.from('123456789');
  assert.equal(crc32Table(check, 0, 9), 0xcbf43926);
  assert.equal(crc32(check, 0, 9), 0xcbf43926);
  assert.equal(crc32Table(Buffer.alloc(0), 0, 0), 0);
  const big = Buffer.alloc(5000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 131 + (i >> 3)) & 0xff;
  for (const len of [1, 2, 3, 4, 5, 7, 8, 63, 1023, 1024, 1025, 4099]) {
    for (const start of [0, 1, 3]) {
      const want = zlib.crc32(big.subarray(start, start + len));
      assert.equal(crc32Table(big, start, start + len), want, `table len ${len} start ${start}`);
      assert.equal(crc32(big, start, start + len), want, `crc32 len ${len} start ${start}`);
    }
  }
});

test('v2 CRC: counted in the frame length, verified, any corrupted body/trailer byte is rejected', () => {
  const buf = encodeFrame(SPECS[4]);
  const [n, f] = decode(buf);
  assert.equal(n, buf.length);
  assert.equal(f.contentEnd + 4, n);
  // Without the 4 trailer bytes the frame is incomplete.
  assert.equal(decodeFrame(buf, 0, buf.length - 1, MAX, new BoltFrame()), DECODE_NEED_MORE);
  // The id, the class, header and content bytes, and the trailer are all covered.
  const positions = [6, 7, 8, 9, 10, 24, f.headerStart + 5, f.contentStart, f.contentEnd - 1, f.contentEnd, n - 1];
  for (const pos of positions) {
    const bad = Buffer.from(buf);
    bad[pos] ^= 0x01;
    assert.equal(decodeFrame(bad, 0, bad.length, MAX, new BoltFrame()), ERR_CRC_MISMATCH, `byte ${pos}`);
  }
});

test('setRequestId rewrites v1/v2 ids in place and keeps the v2 CRC valid', () => {
  for (const spec of SPECS) {
    const buf = encodeFrame(spec);
    const before = Buffer.from(buf);
    for (const id of [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 32 + 5]) {
      assert.equal(setRequestId(buf, 0, id), SET_ID_OK);
      const [n, f] = decode(buf);
      assert.equal(n, buf.length, `spec ${spec.requestId} id ${id}`);
      assert.equal(f.requestId, id >>> 0);
      assert.equal(getRequestId(buf, 0), id >>> 0);
    }
    assert.equal(setRequestId(buf, 0, spec.requestId), SET_ID_OK);
    assert.deepEqual(buf, before);
  }
  // Inside a larger buffer, at an offset, leaving the neighbours alone.
  const frame = encodeFrame(SPECS[5]);
  const big = Buffer.concat([Buffer.alloc(9, 0xee), frame, Buffer.alloc(5, 0xee)]);
  assert.equal(setRequestId(big, 9, 1234), SET_ID_OK);
  assert.equal(decodeFrame(big, 9, big.length, MAX, new BoltFrame()), frame.length);
  assert.equal(getRequestId(big, 9), 1234);
  assert.deepEqual(big.subarray(0, 9), Buffer.alloc(9, 0xee));
  assert.deepEqual(big.subarray(9 + frame.length), Buffer.alloc(5, 0xee));
  // A CRC frame cut short: refused, bytes untouched.
  const cut = frame.subarray(0, frame.length - 2);
  const copy = Buffer.from(cut);
  assert.equal(setRequestId(copy, 0, 99), SET_ID_TRUNCATED);
  assert.deepEqual(copy, cut);
  assert.equal(getRequestId(Buffer.from([0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 0), -1);
  assert.equal(getRequestId(Buffer.from([0x01, 0, 0]), 0), -1);
});

function allFrames(): Buffer[] {
  return [...ALL_VECTORS.map(vector), ...SPECS.map(encodeFrame), encodeErrorResponse(2, 2, 77, STATUS_TIMEOUT, 1, 'late', { switch: 1 })];
}

test('a frame split at every byte boundary: 0 until complete, never reads past end', () => {
  for (const frame of allFrames()) {
    // Garbage on both sides: decodeFrame must stay inside [offset, end).
    const big = Buffer.concat([Buffer.alloc(3, 0x01), frame, Buffer.alloc(30, 0xff)]);
    const out = new BoltFrame();
    for (let k = 0; k < frame.length; k++) {
      assert.equal(decodeFrame(big, 3, 3 + k, MAX, out), DECODE_NEED_MORE, `len ${frame.length} cut ${k}`);
      // Same prefix in a buffer of its own.
      assert.equal(decodeFrame(frame.subarray(0, k), 0, k, MAX, out), DECODE_NEED_MORE);
    }
    assert.equal(decodeFrame(big, 3, 3 + frame.length, MAX, out), frame.length);
    assert.equal(out.frameStart, 3);
    assert.equal(decodeFrame(big, 3, big.length, MAX, out), frame.length);
  }
});

test('many frames in one buffer decode in sequence', () => {
  const frames = allFrames();
  const buf = Buffer.concat(frames);
  const out = new BoltFrame();
  let off = 0;
  let i = 0;
  while (off < buf.length) {
    const n = decodeFrame(buf, off, buf.length, MAX, out);
    assert.equal(n, frames[i].length, `frame ${i}`);
    assert.equal(out.frameStart, off);
    assert.equal(out.requestId, getRequestId(frames[i], 0));
    off += n;
    i++;
  }
  assert.equal(i, frames.length);
  assert.equal(decodeFrame(buf, off, buf.length, MAX, out), DECODE_NEED_MORE);
});

test('oversized frames are rejected from the fixed header alone', () => {
  const out = new BoltFrame();
  // v1 request header announcing 1 GB of content; only the 22 header bytes exist.
  const h1 = encodeFrame({ proto: 1, type: TYPE_REQUEST, cmdcode: 1, requestId: 1 });
  h1.writeInt32BE(1_000_000_000, 18);
  assert.equal(decodeFrame(h1, 0, h1.length, MAX, out), ERR_FRAME_TOO_LARGE);
  // Same for a v1 response, v2 request and v2 response (CRC counted too).
  const h2 = encodeFrame({ proto: 1, type: TYPE_RESPONSE, cmdcode: 2, requestId: 1 });
  h2.writeInt16BE(0x7fff, 12);
  assert.equal(decodeFrame(h2, 0, 20, 0x7fff, out), ERR_FRAME_TOO_LARGE);
  const h3 = encodeFrame({ proto: 2, ver1: 2, switch: 1, type: TYPE_REQUEST, cmdcode: 1, requestId: 1 }).subarray(0, 24);
  h3.writeInt32BE(100, 20);
  assert.equal(decodeFrame(h3, 0, 24, 24 + 100 + 4, out), DECODE_NEED_MORE);
  assert.equal(decodeFrame(h3, 0, 24, 24 + 100 + 3, out), ERR_FRAME_TOO_LARGE);
  const h4 = encodeFrame({ proto: 2, type: TYPE_RESPONSE, cmdcode: 2, requestId: 1 });
  h4.writeInt32BE(0x7fffffff, 18);
  assert.equal(decodeFrame(h4, 0, 22, MAX, out), ERR_FRAME_TOO_LARGE);
  // The limit is inclusive.
  const exact = vector('bolt-v1-request-sofa-rpc-node.hex');
  assert.equal(decodeFrame(exact, 0, exact.length, 339, out), 339);
  assert.equal(decodeFrame(exact, 0, exact.length, 338, out), ERR_FRAME_TOO_LARGE);
  assert.equal(decodeFrame(exact, 0, 22, 338, out), ERR_FRAME_TOO_LARGE);
});

test('negative lengths, unknown protocol/type, bad v2 version or switch', () => {
  const out = new BoltFrame();
  const req1 = encodeFrame({ proto: 1, type: TYPE_REQUEST, cmdcode: 1, requestId: 1 });
  const resp1 = encodeFrame({ proto: 1, type: TYPE_RESPONSE, cmdcode: 2, requestId: 1 });
  const req2 = encodeFrame({ proto: 2, type: TYPE_REQUEST, cmdcode: 1, requestId: 1 });
  const resp2 = encodeFrame({ proto: 2, type: TYPE_RESPONSE, cmdcode: 2, requestId: 1 });
  const cases: Array<[Buffer, number, number]> = [
    [req1, 14, 2], [req1, 16, 2], [req1, 18, 4],
    [resp1, 12, 2], [resp1, 14, 2], [resp1, 16, 4],
    [req2, 16, 2], [req2, 18, 2], [req2, 20, 4],
    [resp2, 14, 2], [resp2, 16, 2], [resp2, 18, 4],
  ];
  for (const [frame, at, size] of cases) {
    for (const v of size === 2 ? [0x8000, 0xffff] : [0x80000000, 0xffffffff]) {
      const b = Buffer.from(frame);
      if (size === 2) b.writeUInt16BE(v, at);
      else b.writeUInt32BE(v, at);
      assert.equal(decodeFrame(b, 0, b.length, MAX, out), ERR_BAD_LENGTH, `proto ${b[0]} offset ${at} value ${v}`);
    }
  }
  assert.equal(decodeFrame(Buffer.from([0x03]), 0, 1, MAX, out), ERR_UNKNOWN_PROTOCOL);
  assert.equal(decodeFrame(Buffer.from([0xda, 0xbb]), 0, 2, MAX, out), ERR_UNKNOWN_PROTOCOL);
  assert.equal(decodeFrame(Buffer.from([0x01, 0x03]), 0, 2, MAX, out), ERR_UNKNOWN_TYPE);
  assert.equal(decodeFrame(Buffer.from([0x02, 0x01, 0x05]), 0, 3, MAX, out), ERR_UNKNOWN_TYPE);
  assert.equal(decodeFrame(Buffer.from([0x02, 0x03]), 0, 2, MAX, out), ERR_BAD_VERSION);
  assert.equal(decodeFrame(Buffer.from([0x02, 0x00]), 0, 2, MAX, out), ERR_BAD_VERSION);
  const sw = Buffer.from(req2);
  sw[11] = 0x80;
  assert.equal(decodeFrame(sw, 0, sw.length, MAX, out), ERR_BAD_VERSION);
  // Nothing at all, and offset == end.
  assert.equal(decodeFrame(Buffer.alloc(0), 0, 0, MAX, out), DECODE_NEED_MORE);
  assert.equal(decodeFrame(req1, 5, 5, MAX, out), DECODE_NEED_MORE);
  // end beyond the buffer is clamped.
  assert.equal(decodeFrame(req1, 0, 1000, MAX, out), 22);
});

test('findHeader: lazy lookup, Buffer or string key, nulls, duplicates, fallback', () => {
  const hdr = encodeHeaders([
    ['sofa_head_target_service', 'old:1.0'],
    ['rpc_trace_context.sofaTraceId', 'abc'],
    [null, 'x'],
    ['nullvalue', null],
    ['empty', ''],
    ['dup', 'first'],
    ['dup', 'second'],
    ['ключ', 'значение'],
  ]);
  const buf = Buffer.concat([Buffer.alloc(4, 0xaa), hdr, Buffer.alloc(4, 0xbb)]);
  const s = 4;
  const e = 4 + hdr.length;
  const get = (k: string | Buffer): string | number => {
    const r = findHeader(buf, s, e, k);
    return typeof r === 'number' ? r : section(buf, r[0], r[1]);
  };
  assert.equal(get('rpc_trace_context.sofaTraceId'), 'abc');
  assert.equal(get(headerKey('rpc_trace_context.sofaTraceId')), 'abc');
  assert.equal(get(Buffer.from('empty')), '');
  assert.equal(get('dup'), 'second');
  assert.equal(get('ключ'), 'значение');
  assert.equal(get('nullvalue'), HEADER_NOT_FOUND);
  assert.equal(get('service'), HEADER_NOT_FOUND);
  assert.equal(get('rpc_trace_context.sofaTraceI'), HEADER_NOT_FOUND);
  const r = new HeaderValueRange();
  assert.equal(findServiceHeader(buf, s, e, r), r.start);
  assert.equal(section(buf, r.start, r.end), 'old:1.0');
  assert.deepEqual(
    decodeHeaders(buf, s, e),
    new Map([['sofa_head_target_service', 'old:1.0'], ['rpc_trace_context.sofaTraceId', 'abc'], ['empty', ''], ['dup', 'second'], ['ключ', 'значение']]),
  );
  // service beats the old key wherever it is.
  const both = encodeHeaders([['sofa_head_target_service', 'old'], ['service', 'new']]);
  assert.equal(findServiceHeader(both, 0, both.length, r), r.start);
  assert.equal(section(both, r.start, r.end), 'new');
  // Empty map.
  assert.equal(findHeader(buf, s, s, 'x'), HEADER_NOT_FOUND);
  assert.deepEqual(decodeHeaders(buf, s, s), new Map());
});

test('findHeader/decodeHeaders: malformed maps give HEADER_MALFORMED / null, never read out of range', () => {
  const good = encodeHeaders({ service: 'a', k: 'v' });
  const bad: Buffer[] = [];
  let b = Buffer.from(good);
  b.writeInt32BE(1000, 0); // key runs past the end
  bad.push(b);
  b = Buffer.from(good);
  b.writeInt32BE(-5, 0); // below -1
  bad.push(b);
  b = Buffer.from(good);
  b.writeInt32BE(100, 11); // value of 'service' runs past the end
  bad.push(b);
  b = Buffer.from(good);
  b.writeInt32BE(-2, 11);
  bad.push(b);
  bad.push(good.subarray(0, good.length - 1)); // last value cut
  bad.push(Buffer.concat([good, Buffer.from([0, 0])])); // 2 stray bytes
  bad.push(Buffer.concat([good, Buffer.from([0, 0, 0, 1, 0x6b])])); // key without a value length
  for (const m of bad) {
    const padded = Buffer.concat([m, Buffer.from('00000001' + '6b' + '00000001' + '76', 'hex')]);
    assert.equal(findHeader(padded, 0, m.length, 'k'), HEADER_MALFORMED, m.toString('hex'));
    assert.equal(findHeaderValue(padded, 0, m.length, headerKey('service'), new HeaderValueRange()), HEADER_MALFORMED);
    assert.equal(findServiceHeader(padded, 0, m.length, new HeaderValueRange()), HEADER_MALFORMED);
    assert.equal(decodeHeaders(padded, 0, m.length), null);
  }
  // headerEnd past the buffer is clamped.
  assert.deepEqual(findHeader(good, 0, good.length + 50, 'k'), [good.length - 1, good.length]);
});

test('error responses: decodable frames with status, RpcServerException body, bare form', () => {
  for (const status of [STATUS_NO_PROCESSOR, STATUS_TIMEOUT, STATUS_CONNECTION_CLOSED, STATUS_SERVER_THREADPOOL_BUSY]) {
    const buf = encodeErrorResponse(1, 0, 42, status, 1, 'no route to com.example.Svc:1.0');
    const [n, f] = decode(buf);
    assert.equal(n, buf.length);
    assert.deepEqual([f.type, f.cmdcode, f.requestId, f.status, f.codec, f.headerLen], [TYPE_RESPONSE, CMD_RPC_RESPONSE, 42, status, 1, 0]);
    assert.equal(section(buf, f.classStart, f.headerStart), CLASS_RPC_SERVER_EXCEPTION);
    const content = buf.subarray(f.contentStart, f.contentEnd);
    // Hessian draft class definition 'O' + the class, then the message in the instance.
    assert.equal(content[0], 0x4f);
    assert.ok(content.includes(Buffer.from(CLASS_RPC_SERVER_EXCEPTION)));
    assert.ok(content.includes(Buffer.from('no route to com.example.Svc:1.0')));
    assert.equal(content[content.length - 1], 0x4e); // cause: null
  }
  // Default message names the status.
  let buf = encodeErrorResponse(1, 0, 1, STATUS_TIMEOUT, 1);
  assert.ok(buf.includes(Buffer.from(defaultErrorMessage(STATUS_TIMEOUT))));
  assert.match(defaultErrorMessage(STATUS_TIMEOUT), /TIMEOUT \(status 0x07\)/);
  // Bare (MOSN hijack form), and non-hessian codecs: all sections empty.
  for (const b of [encodeErrorResponse(1, 0, 9, STATUS_NO_PROCESSOR, 1, 'x', { bare: true }), encodeErrorResponse(1, 0, 9, STATUS_NO_PROCESSOR, CODEC_PROTOBUF)]) {
    const [n, f] = decode(b);
    assert.deepEqual([n, f.classLen, f.headerLen, f.contentLen, f.status, f.requestId], [20, 0, 0, 0, STATUS_NO_PROCESSOR, 9]);
  }
  // v2 echoing a CRC switch gets a valid CRC; v2 plain gets none.
  buf = encodeErrorResponse(2, 2, 5, STATUS_TIMEOUT, 1, 'late', { switch: 1 });
  let [n, f] = decode(buf);
  assert.deepEqual([n, f.hasCrc, f.ver1, f.status], [buf.length, true, 2, STATUS_TIMEOUT]);
  buf = encodeErrorResponse(2, 1, 5, STATUS_TIMEOUT, 1);
  [n, f] = decode(buf);
  assert.deepEqual([n, f.hasCrc, f.ver1], [buf.length, false, 1]);
  // Long and non-ASCII messages stay well-formed Hessian strings ('S' + u16 length in UTF-16 units).
  buf = encodeErrorResponse(1, 0, 1, STATUS_TIMEOUT, 1, 'é'.repeat(40) + '\u{1F600}');
  [n, f] = decode(buf);
  assert.deepEqual([n, f.status], [buf.length, STATUS_TIMEOUT]);
  const i = buf.indexOf(Buffer.from('é'.repeat(40)));
  assert.ok(i > 0);
  assert.deepEqual([buf[i - 3], buf.readUInt16BE(i - 2)], [0x53, 42]);
  assert.ok(buf.includes(Buffer.from('é'.repeat(40) + '??')));
});

test('decodeFrame reuses `out` and leaves it untouched on 0 or error', () => {
  const out = new BoltFrame();
  const v = vector('bolt-v1-request-sofa-rpc-node.hex');
  assert.equal(decodeFrame(v, 0, v.length, MAX, out), 339);
  const snapshot = JSON.stringify(out);
  assert.equal(decodeFrame(v, 0, 100, MAX, out), DECODE_NEED_MORE);
  assert.equal(decodeFrame(Buffer.from([9]), 0, 1, MAX, out), ERR_UNKNOWN_PROTOCOL);
  assert.equal(JSON.stringify(out), snapshot);
});
