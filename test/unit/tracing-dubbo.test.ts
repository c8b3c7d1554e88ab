// The traceparent attachment a sampled Dubbo request carries upstream (src/tracing/dubbo.ts):
// other attachments kept, an existing traceparent replaced (the last pair wins), a request
// without attachments gets a map, arguments untouched; not hessian2 or unreadable: left alone.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { encodeString } from '../../src/protocol/dubbo/hessian';
import { dubboCodec } from '../../src/protocol/dubbo/xcodec';
import { HeaderName, type XCodec, type XFrame } from '../../src/protocol/types';
import { dubboWithTraceparent } from '../../src/tracing/dubbo';
import { dubboFrame, dubboRequest, dubboRequestBody } from '../helpers/dubbo';

const TP = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const h = (n: string): HeaderName => new HeaderName(n);
const codec = dubboCodec as unknown as XCodec;

function decode(buf: Buffer, at = 0): XFrame {
  const f = codec.newFrame();
  assert.ok(codec.decode(buf, at, buf.length, 1 << 20, f) > 0);
  return f;
}

test('dubbo traceparent: attachments kept, an existing one replaced, a map added when there is none', () => {
  for (const att of [{ group: 'g1', timeout: '3000' } as Record<string, string>, { traceparent: '00-11111111111111111111111111111111-2222222222222222-01', group: 'g1' }]) {
    const raw = Buffer.concat([Buffer.alloc(5, 1), dubboRequest(9, 'com.example.S', 'echo', { attachments: att })]);
    const f = decode(raw, 5);
    const out = dubboWithTraceparent(codec, raw, f, TP, 1 << 20);
    assert.ok(out !== null);
    assert.equal(codec.getHeader(out.buf, out.frame, h('traceparent')), TP);
    assert.equal(codec.getHeader(out.buf, out.frame, h('group')), 'g1');
    assert.equal(codec.getHeader(out.buf, out.frame, h('path')), 'com.example.S');
    assert.equal(codec.getHeader(out.buf, out.frame, h('method')), 'echo');
    assert.equal(out.frame.requestId, 9);
  }
  // No attachments map at all (the body ends after the arguments).
  const body = dubboRequestBody('com.example.S', 'echo');
  const noMap = body.subarray(0, body.indexOf(Buffer.from([0x48]), body.length - 60));
  const plain = dubboFrame(3, 0xc2, 0, Buffer.concat([noMap]));
  assert.equal(codec.getHeader(plain, decode(plain), h('path')), undefined);
  const out = dubboWithTraceparent(codec, plain, decode(plain), TP, 1 << 20);
  assert.ok(out !== null);
  assert.equal(codec.getHeader(out.buf, out.frame, h('traceparent')), TP);
  assert.equal(codec.getHeader(out.buf, out.frame, h('service')), 'com.example.S');
  // Unreadable arguments (a descriptor for two, one written): left as it came.
  const bad = dubboFrame(4, 0xc2, 0, Buffer.concat([encodeString('2.0.2'), encodeString('S'), encodeString('1.0'), encodeString('m'), encodeString('II'), Buffer.from([0x91])]));
  assert.equal(dubboWithTraceparent(codec, bad, decode(bad), TP, 1 << 20), null);
});
