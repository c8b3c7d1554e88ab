// The method of a hessian SofaRequest (src/protocol/bolt/sofa-request.ts), for Bolt requests
// without a method header: the Hessian 2.0 draft form sofa-rpc-node writes (methodName first)
// and the Hessian 2.0 form (Java's field order: targetAppName before methodName, skipped).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { encodeFrame } from '../../src/protocol/bolt/encoder';
import { CLASS_SOFA_REQUEST, PROTO_V1, TYPE_REQUEST } from '../../src/protocol/bolt/constants';
import type { BoltFrame } from '../../src/protocol/bolt/frame';
import { sofaRequestMethod } from '../../src/protocol/bolt/sofa-request';
import { boltCodec } from '../../src/protocol/bolt/xcodec';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hessian = require('hessian.js') as { encode(o: unknown, v: string): Buffer };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const sofaHessian = require('sofa-hessian-node') as { encode(o: unknown, v: string, classMap?: unknown): Buffer };

const str = (s: string): unknown => ({ $class: 'java.lang.String', $: s });

function frameOf(content: Buffer, className = CLASS_SOFA_REQUEST): { buf: Buffer; f: BoltFrame } {
  const raw = encodeFrame({ proto: PROTO_V1, type: TYPE_REQUEST, cmdcode: 1, requestId: 1, codec: 1, timeout: 1000, className, headers: [['service', 'svc:1.0']], content });
  const buf = Buffer.concat([Buffer.alloc(7), raw]);
  const f = boltCodec.newFrame();
  assert.ok(boltCodec.decode(buf, 7, buf.length, 1 << 20, f) > 0);
  return { buf, f: f as unknown as BoltFrame };
}

test('SofaRequest methodName: Hessian 2.0 (Java field order) and the 2.0 draft (sofa-rpc-node)', () => {
  const fields = { targetAppName: str('app'), methodName: str('sayHi'), targetServiceUniqueName: str('svc:1.0'), requestProps: null, methodArgSigs: { $class: '[java.lang.String', $: [str('java.lang.String')] } };
  const v2 = hessian.encode({ $class: CLASS_SOFA_REQUEST, $: fields }, '2.0');
  assert.equal(v2[0], 0x43, 'Hessian 2.0 class definition');
  const a = frameOf(v2);
  assert.equal(sofaRequestMethod(a.buf, a.f), 'sayHi');
  const draft = sofaHessian.encode({ $class: CLASS_SOFA_REQUEST, $: { methodName: str('hello'), targetAppName: str('app'), methodArgSigs: { $class: '[java.lang.String', $: [] }, targetServiceUniqueName: str('svc:1.0'), requestProps: null } }, '2.0');
  assert.equal(draft[0], 0x4f, 'Hessian 2.0 draft class definition');
  const b = frameOf(draft);
  assert.equal(sofaRequestMethod(b.buf, b.f), 'hello');
  // Not a SofaRequest, or a truncated one: no method.
  const other = frameOf(hessian.encode({ $class: 'com.example.Other', $: { methodName: str('x') } }, '2.0'));
  assert.equal(sofaRequestMethod(other.buf, other.f), undefined);
  const cut = frameOf(v2.subarray(0, 60)); // inside the field names
  assert.equal(sofaRequestMethod(cut.buf, cut.f), undefined);
  assert.equal(sofaRequestMethod(frameOf(Buffer.alloc(0)).buf, frameOf(Buffer.alloc(0)).f), undefined);
});
