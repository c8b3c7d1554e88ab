// Dubbo codec: golden vectors (captured from dubbo2.js and dubbo-remoting, and PROTOCOLS.md
// section 5 D), framing edge cases, in-place 64-bit id rewrite, routing keys from the hessian2
// body (leading strings without touching the arguments; attachments only on demand), the frames
// the proxy writes (heartbeat ack, errors) decoded by the real peers' own decoders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  countJvmArgs,
  decodeDubboFrame,
  dubboCodec,
  DubboXFrame,
  encodeDubboHeartbeat,
  encodeString,
  ERR_BAD_LENGTH,
  ERR_BAD_MAGIC,
  ERR_ID_RANGE,
  hs,
  readString,
  skipValue,
  SkipState,
  STATUS_BAD_REQUEST,
  STATUS_CLIENT_TIMEOUT,
  STATUS_SERVER_ERROR,
  STATUS_SERVER_THREADPOOL_EXHAUSTED_ERROR,
  STATUS_SERVICE_NOT_FOUND,
} from '../../src/protocol/dubbo';
import { ErrorKind, ERR_TOO_LARGE, getCodec, HeaderName, NEED_MORE } from '../../src/protocol/types';
import { dubboFrame, dubboRequest } from '../helpers/dubbo';

const VECTORS = path.join(__dirname, '..', '..', '..', 'test', 'vectors', 'dubbo');
const vec = (name: string): Buffer => Buffer.from(fs.readFileSync(path.join(VECTORS, `${name}.hex`), 'utf8').replace(/\s+/g, ''), 'hex');
const MAX = 16 + 8 * 1024 * 1024;

function decode(buf: Buffer): DubboXFrame {
  const f = dubboCodec.newFrame();
  assert.equal(dubboCodec.decode(buf, 0, buf.length, MAX, f), buf.length);
  return f;
}

test('registered as "dubbo"; MOSN Auto bytes DA BB', () => {
  assert.equal(getCodec('Dubbo'), dubboCodec);
  assert.equal(dubboCodec.detect(Buffer.from([0xda]), 0, 1), undefined);
  assert.equal(dubboCodec.detect(Buffer.from([0xda, 0xbb]), 0, 2), true);
  assert.equal(dubboCodec.detect(Buffer.from([0xda, 0xbc]), 0, 2), false);
  assert.equal(dubboCodec.detect(Buffer.from([0x01]), 0, 1), false);
});

test('golden: dubbo2.js request (163 bytes): header, routing keys, attachments', () => {
  const b = vec('dubbo-request-dubbo2js');
  assert.equal(b.length, 163);
  const f = decode(b);
  assert.equal(f.requestId, 1);
  assert.equal(f.isRequest, true);
  assert.equal(f.isTwoWay, true);
  assert.equal(f.isOneway, false);
  assert.equal(f.isHeartbeat, false);
  assert.equal(f.serialization, 2);
  assert.equal(f.bodyLen, 147);
  assert.equal(dubboCodec.getRouteKey(b, f), 'com.example.DemoService');
  assert.equal(f.attachments, null, 'the route key does not decode the attachments');
  assert.equal(dubboCodec.getHeader(b, f, new HeaderName('version')), '1.0.0');
  assert.equal(dubboCodec.getHeader(b, f, new HeaderName('method')), 'plus');
  assert.equal(dubboCodec.getHeader(b, f, new HeaderName('dubbo')), '2.0.2');
  assert.equal(f.paramDesc, 'II');
  assert.equal(f.attachments, null);
  assert.equal(dubboCodec.getHeader(b, f, new HeaderName('application')), 'dubbo2.js');
  assert.equal(dubboCodec.getHeader(b, f, new HeaderName('interface')), 'com.example.DemoService');
  assert.equal(dubboCodec.getHeader(b, f, new HeaderName('group')), undefined);
});

test('golden: dubbo-remoting request with group attachment', () => {
  const b = vec('dubbo-request-dubbo-remoting-group');
  const f = decode(b);
  assert.equal(f.requestId, 5);
  assert.equal(dubboCodec.getRouteKey(b, f), 'com.example.DemoService');
  assert.equal(dubboCodec.getHeader(b, f, new HeaderName('group')), 'blue');
  assert.equal(dubboCodec.getHeader(b, f, new HeaderName('dubbo')), '5.3.0');
});

test('golden: responses and heartbeats', () => {
  const ok = vec('dubbo-response-dubbo-remoting');
  const f = decode(ok);
  assert.equal(f.isRequest, false);
  assert.equal(f.isSuccess, true);
  assert.equal(f.status, 20);
  assert.equal(f.requestId, 1);
  const er = decode(vec('dubbo-response-error-dubbo-remoting'));
  assert.equal(er.status, 80);
  assert.equal(er.isSuccess, false);
  for (const name of ['dubbo-heartbeat-request-id1', 'dubbo-heartbeat-request-dubbo-remoting']) {
    const b = vec(name);
    const h = decode(b);
    assert.equal(h.isHeartbeat, true, name);
    assert.equal(h.isRequest, true);
    assert.equal(h.isTwoWay, true);
  }
  // Our ack to the PROTOCOLS.md heartbeat is byte for byte the Java answer.
  const req = vec('dubbo-heartbeat-request-id1');
  assert.deepEqual(dubboCodec.encodeHeartbeatAck(req, decode(req)), vec('dubbo-heartbeat-response-id1'));
  assert.deepEqual(encodeDubboHeartbeat(1), req);
});

test('framing: partial header and body need more; bad magic, negative length, size cap', () => {
  const b = vec('dubbo-request-dubbo2js');
  for (const n of [0, 1, 2, 15]) assert.equal(dubboCodec.frameLength(b, 0, n, MAX), NEED_MORE, `${n} bytes`);
  assert.equal(dubboCodec.frameLength(b, 0, 16, MAX), 163);
  const f = dubboCodec.newFrame();
  assert.equal(dubboCodec.decode(b, 0, 100, MAX, f), NEED_MORE);
  assert.equal(dubboCodec.frameLength(Buffer.from([0xda, 0x00]), 0, 2, MAX), ERR_BAD_MAGIC);
  assert.equal(dubboCodec.frameLength(Buffer.from([0x01]), 0, 1, MAX), ERR_BAD_MAGIC);
  const neg = Buffer.from(b.subarray(0, 16));
  neg.writeUInt32BE(0x80000000, 12);
  assert.equal(dubboCodec.frameLength(neg, 0, 16, MAX), ERR_BAD_LENGTH);
  // Dubbo's own payload limit: 8 MiB of body is fine, one byte more is refused from the header.
  const big = Buffer.from(b.subarray(0, 16));
  big.writeUInt32BE(8 * 1024 * 1024, 12);
  assert.equal(dubboCodec.frameLength(big, 0, 16, dubboCodec.defaultMaxFrameSize), 16 + 8 * 1024 * 1024);
  big.writeUInt32BE(8 * 1024 * 1024 + 1, 12);
  assert.equal(dubboCodec.frameLength(big, 0, 16, dubboCodec.defaultMaxFrameSize), ERR_TOO_LARGE);
  // two frames back to back at an offset
  const two = Buffer.concat([Buffer.from('xx'), b, vec('dubbo-response-dubbo-remoting')]);
  assert.equal(dubboCodec.decode(two, 2, two.length, MAX, f), 163);
  assert.equal(dubboCodec.decode(two, 165, two.length, MAX, f), 18);
  assert.equal(f.frameStart, 165);
});

test('64-bit ids: rewritten in place as 8 bytes; ids up to 2^53-1 kept exactly; larger refused', () => {
  const b = Buffer.from(vec('dubbo-request-dubbo2js'));
  const f = decode(b);
  assert.ok(dubboCodec.setRequestId(b, f, 0xfffffffe));
  assert.equal(b.toString('hex', 4, 12), '00000000fffffffe');
  assert.equal(decode(b).requestId, 0xfffffffe);
  const big = 2 ** 40 + 12345;
  dubboCodec.setRequestId(b, f, big);
  assert.equal(b.toString('hex', 4, 12), '0000010000003039');
  assert.equal(decode(b).requestId, big);
  const max = Number.MAX_SAFE_INTEGER;
  dubboCodec.setRequestId(b, f, max);
  assert.equal(decode(b).requestId, max);
  b.writeUInt32BE(0xffffffff, 4); // negative int64
  assert.equal(decodeDubboFrame(b, 0, b.length, MAX, f), ERR_ID_RANGE);
  // the body is untouched by id rewrites
  assert.deepEqual(b.subarray(12), vec('dubbo-request-dubbo2js').subarray(12));
  // the heartbeat ack copies the 8 id bytes whatever they are
  const hb = dubboFrame(2 ** 45 + 7, 0xe2, 0, Buffer.from([0x4e]));
  const ack = dubboCodec.encodeHeartbeatAck(hb, decode(hb));
  assert.equal(ack.toString('hex', 4, 12), hb.toString('hex', 4, 12));
  assert.equal(dubboCodec.nextId(0xffffffff), 1);
});

test('one-way requests (two-way bit clear) and one-way events', () => {
  const f = decode(dubboRequest(3, 'svc.A', 'm', { oneway: true }));
  assert.equal(f.isOneway, true);
  assert.equal(f.isTwoWay, false);
  const ev = decode(dubboFrame(4, 0xa2, 0, Buffer.from([0x4e])));
  assert.equal(ev.isHeartbeat, true);
  assert.equal(ev.isOneway, true);
});

test('error responses: Dubbo statuses per ErrorKind, body a hessian string dubbo-remoting decodes', () => {
  const expect: [ErrorKind, number][] = [
    [ErrorKind.NoRoute, STATUS_SERVICE_NOT_FOUND],
    [ErrorKind.Timeout, STATUS_CLIENT_TIMEOUT],
    [ErrorKind.ConnectionClosed, STATUS_SERVER_ERROR],
    [ErrorKind.Overflow, STATUS_SERVER_THREADPOOL_EXHAUSTED_ERROR],
    [ErrorKind.CodecError, STATUS_BAD_REQUEST],
  ];
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const remoting = require('dubbo-remoting/lib/protocol');
  for (const [kind, status] of expect) {
    assert.equal(dubboCodec.errorStatus(kind), status);
    const out = dubboCodec.encodeError(2, 2 ** 33 + 1, kind, `msg ${kind} ü`);
    const f = decode(out);
    assert.equal(f.status, status);
    assert.equal(f.requestId, 2 ** 33 + 1);
    assert.equal(f.isRequest, false);
    const res = remoting.decode(out, { reqs: new Map(), classCache: new Map() });
    assert.equal(res.data.status ?? res.status ?? f.status, status);
    readString(out, 16, out.length);
    assert.equal(hs.value, `msg ${kind} ü`);
  }
});

test('routing keys: null version, non-hessian2 and broken bodies answer CodecError (null)', () => {
  const nullVer = dubboRequest(1, 'svc.B', 'm', { version: null });
  const f = decode(nullVer);
  assert.equal(dubboCodec.getRouteKey(nullVer, f), 'svc.B');
  assert.equal(dubboCodec.getHeader(nullVer, f, new HeaderName('version')), undefined);
  const json = Buffer.from(nullVer);
  json[2] = 0xc6; // fastjson serialization: not readable for routing
  assert.equal(dubboCodec.getRouteKey(json, decode(json)), null);
  const broken = dubboFrame(1, 0xc2, 0, Buffer.from([0x05, 0x32, 0x2e]));
  assert.equal(dubboCodec.getRouteKey(broken, decode(broken)), null);
  // arguments that cannot be skipped make only attachment lookups fail
  const badArgs = dubboRequest(1, 'svc.C', 'm', { args: Buffer.from([0x40]) });
  const g = decode(badArgs);
  assert.equal(dubboCodec.getRouteKey(badArgs, g), 'svc.C');
  assert.equal(dubboCodec.getHeader(badArgs, g, new HeaderName('group')), null);
});

test('hessian2: strings in every length form, chunks, skipping objects/lists/maps', () => {
  for (const s of ['', 'a', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(1023), 'w'.repeat(1024), 'é世🚀', 'q'.repeat(70_000)]) {
    const b = encodeString(s);
    assert.equal(readString(b, 0, b.length), b.length, `length ${s.length}`);
    assert.equal(hs.value, s);
    assert.ok(readString(b, 0, b.length - 1) < 0, 'truncated');
  }
  // args encoded by hessian.js (the library the peers use) are skipped exactly
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const hessian = require('hessian.js');
  const values = [
    1, -1, 300, 70_000, 2 ** 40, 1.5, 0, true, false, null, 'str', new Date(1_700_000_000_000), Buffer.from('bin'),
    [1, 'two', [3]], { a: 1, b: 'c' }, { $class: 'com.example.Pojo', $: { name: 'n', n: { $class: 'int', $: 3 }, list: [1, 2] } },
    { $class: 'java.util.HashMap', $: { k: 'v' } }, { $class: 'long', $: 5 }, { $class: 'double', $: 2.25 },
  ];
  const enc = new hessian.EncoderV2();
  for (const v of values) enc.write(v);
  enc.write({ $class: 'com.example.Pojo', $: { name: 'again', n: { $class: 'int', $: 4 }, list: [] } }); // class ref reuse
  const buf: Buffer = enc.get();
  const st = new SkipState();
  let p = 0;
  for (let i = 0; i <= values.length; i++) {
    p = skipValue(buf, p, buf.length, st);
    assert.ok(p > 0, `value ${i}`);
  }
  assert.equal(p, buf.length);
  assert.equal(countJvmArgs('Ljava/lang/String;I[J[[Lcom/x/Y;Z'), 5);
  assert.equal(countJvmArgs(''), 0);
  assert.equal(countJvmArgs('Ljava/lang/String'), -1);
});
