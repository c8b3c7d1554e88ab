// The traceparent a sampled Bolt request carries upstream (src/tracing/bolt.ts): the spliced copy
// (v1, v2 without CRC) and the rebuilt one (v2 with CRC, a traceparent already there) decode to
// the same frame with the same headers, class and content.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { encodeFrame } from '../../src/protocol/bolt/encoder';
import { PROTO_V1, PROTO_V2, SWITCH_CRC, TYPE_REQUEST, V2_VER1_CRC } from '../../src/protocol/bolt/constants';
import type { BoltFrame } from '../../src/protocol/bolt/frame';
import { decodeHeaders } from '../../src/protocol/bolt/header-map';
import { boltCodec, boltV2Codec } from '../../src/protocol/bolt/xcodec';
import type { XCodec, XFrame } from '../../src/protocol/types';
import { boltWithTraceparent } from '../../src/tracing/bolt';

const TP = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

function request(proto: number, headers: [string, string][], crc: boolean): Buffer {
  return encodeFrame({
    proto,
    ver1: proto === PROTO_V2 ? V2_VER1_CRC : undefined,
    switch: crc ? SWITCH_CRC : 0,
    type: TYPE_REQUEST,
    cmdcode: 1,
    requestId: 7,
    codec: 1,
    timeout: 3000,
    className: 'com.alipay.sofa.rpc.core.request.SofaRequest',
    headers,
    content: Buffer.from('hessian body bytes'),
    crc,
  });
}

function check(codec: XCodec, raw: Buffer, offset: number): void {
  // The frame sits inside a larger read chunk, as it does in the proxy.
  const buf = Buffer.concat([Buffer.alloc(offset, 0xee), raw, Buffer.alloc(5, 0xee)]);
  const frame = codec.newFrame();
  assert.ok(codec.decode(buf, offset, buf.length, 1 << 20, frame) > 0);
  const out = boltWithTraceparent(codec, buf, frame, TP, 1 << 20);
  assert.ok(out !== null);
  const f = frame as unknown as BoltFrame;
  const g = out.frame as unknown as BoltFrame;
  const before = decodeHeaders(buf, f.headerStart, f.headerStart + f.headerLen) as Map<string, string>;
  const after = decodeHeaders(out.buf, g.headerStart, g.headerStart + g.headerLen) as Map<string, string>;
  assert.equal(after.get('traceparent'), TP);
  before.set('traceparent', TP);
  assert.deepEqual(after, before);
  assert.equal(g.requestId, 7);
  assert.equal(g.timeout, 3000);
  assert.equal(g.frameLen, out.buf.length);
  assert.deepEqual(out.buf.subarray(g.classStart, g.classStart + g.classLen), buf.subarray(f.classStart, f.classStart + f.classLen));
  assert.deepEqual(out.buf.subarray(g.contentStart, g.contentEnd), buf.subarray(f.contentStart, f.contentEnd));
  assert.equal(codec.getRouteKey(out.buf, out.frame as XFrame), 'com.example.Echo:1.0');
}

test('bolt traceparent: v1 and v2 frames spliced, CRC frames rebuilt, an existing traceparent replaced', () => {
  const hs: [string, string][] = [['service', 'com.example.Echo:1.0'], ['sofa_head_method_name', 'echo']];
  check(boltCodec, request(PROTO_V1, hs, false), 0);
  check(boltCodec, request(PROTO_V1, hs, false), 13);
  check(boltCodec, request(PROTO_V1, [...hs, ['rpc_trace_context.sofaTraceId', '0a0b']], false), 3);
  check(boltV2Codec, request(PROTO_V2, hs, false), 9);
  check(boltV2Codec, request(PROTO_V2, hs, true), 9);
  check(boltCodec, request(PROTO_V1, [...hs, ['traceparent', '00-11111111111111111111111111111111-2222222222222222-01']], false), 4);
});

test('bolt traceparent: a header map that would pass 32767 bytes is left as it came', () => {
  const big: [string, string][] = [['service', 'com.example.Echo:1.0'], ['pad', 'x'.repeat(32767 - 60)]];
  const raw = request(PROTO_V1, big, false);
  const frame = boltCodec.newFrame();
  assert.ok(boltCodec.decode(raw, 0, raw.length, 1 << 20, frame) > 0);
  assert.equal(boltWithTraceparent(boltCodec, raw, frame, TP, 1 << 20), null);
});
