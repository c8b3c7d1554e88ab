// Dubbo 2.x frames for the `dubbo` workload: the request the load generator sends, the
// response the backend answers with, and the frame length used to cut a byte stream into
// frames (FrameReader from ./bolt). Wire layout: /work/shared/PROTOCOLS.md section 4
// (16-byte header: magic 0xdabb, flag, status, 8-byte id, 4-byte body length).
//
// Frames are built once with the project's Dubbo helpers (hessian2 string encoder, id
// writer, heartbeat encoders); per request only the 8-byte id is rewritten. Ids stay
// below 2^32 here, so the driver writes the low half (offset 8) and checks the high
// half of answers is 0.
import {
  FLAG_EVENT,
  FLAG_REQUEST,
  FLAG_TWOWAY,
  HEADER_SIZE,
  MAGIC_HIGH,
  MAGIC_LOW,
  OFF_BODY_LEN,
  OFF_FLAG,
  OFF_ID,
  OFF_STATUS,
  SERIALIZATION_HESSIAN2,
  STATUS_OK,
} from '../../src/protocol/dubbo/constants';
import { dubboFrameLength as codecFrameLength, encodeDubboHeartbeat, encodeDubboHeartbeatAck, writeDubboId } from '../../src/protocol/dubbo/frame';
import { encodeString } from '../../src/protocol/dubbo/hessian';
import { FrameReader } from './bolt';

export { FLAG_EVENT, FLAG_REQUEST, FLAG_TWOWAY, HEADER_SIZE as DUBBO_HEADER, OFF_FLAG, OFF_ID, OFF_STATUS, STATUS_OK };

/** The service path Outrigger routes on (MOSN's `service` key is the path). */
export const DUBBO_BENCH_SERVICE = 'com.example.BenchService';
export const DUBBO_BENCH_VERSION = '1.0.0';
export const DUBBO_BENCH_METHOD = 'echo';
/** argument bytes of requests and string characters of responses ("1 KiB bodies") */
export const DUBBO_BODY = 1024;
/** offset of the low 32 bits of the 8-byte id */
export const DUBBO_ID_LO_OFFSET = OFF_ID + 4;
/** largest frame either side accepts; anything larger is a protocol error here */
export const DUBBO_MAX_FRAME = 1 << 20;
/** hessian2 response body type: a value follows (RESPONSE_VALUE) */
export const DUBBO_RESPONSE_VALUE = 1;

const hessianInt = (n: number): Buffer => Buffer.from([0x90 + n]); // compact int, -16..47
const hessianBinary = (b: Buffer): Buffer => {
  // one final chunk: 'B' u16 length bytes (compact forms for short values are optional)
  const h = Buffer.from([0x42, b.length >> 8, b.length & 0xff]);
  return Buffer.concat([h, b]);
};

function frame(flag: number, status: number, id: number, body: Buffer): Buffer {
  const b = Buffer.alloc(HEADER_SIZE + body.length);
  b[0] = MAGIC_HIGH;
  b[1] = MAGIC_LOW;
  b[OFF_FLAG] = flag;
  b[OFF_STATUS] = status;
  writeDubboId(b, 0, id);
  b.writeUInt32BE(body.length, OFF_BODY_LEN);
  body.copy(b, HEADER_SIZE);
  return b;
}

export interface DubboRequestOptions {
  service?: string;
  method?: string;
  /** argument bytes (a hessian2 byte[]) */
  argBytes?: number;
}

/**
 * A two-way hessian2 request (id 0): dubbo version, service path, service version, method,
 * descriptor `[B`, one byte[] argument, attachments {path, interface, version}.
 */
export function dubboRequestTemplate(o: DubboRequestOptions = {}): Buffer {
  const service = o.service ?? DUBBO_BENCH_SERVICE;
  const att: [string, string][] = [['path', service], ['interface', service], ['version', DUBBO_BENCH_VERSION]];
  const body = Buffer.concat([
    encodeString('2.0.2'),
    encodeString(service),
    encodeString(DUBBO_BENCH_VERSION),
    encodeString(o.method ?? DUBBO_BENCH_METHOD),
    encodeString('[B'),
    hessianBinary(Buffer.alloc(o.argBytes ?? DUBBO_BODY, 0x71)),
    Buffer.from([0x48]), // 'H' untyped map
    ...att.flatMap(([k, v]) => [encodeString(k), encodeString(v)]),
    Buffer.from([0x5a]), // 'Z'
  ]);
  return frame(FLAG_REQUEST | FLAG_TWOWAY | SERIALIZATION_HESSIAN2, 0, 0, body);
}

/** A response (id 0, status 20 OK): RESPONSE_VALUE then a hessian2 string of `chars` characters. */
export function dubboResponseTemplate(chars = DUBBO_BODY): Buffer {
  const body = Buffer.concat([hessianInt(DUBBO_RESPONSE_VALUE), encodeString('r'.repeat(chars))]);
  return frame(SERIALIZATION_HESSIAN2, STATUS_OK, 0, body);
}

/** A heartbeat request (event, two-way, body `N`). */
export const dubboHeartbeat = (id: number): Buffer => encodeDubboHeartbeat(id);
/** The answer to the heartbeat at `off` in `buf` (event response, status 20, same id). */
export const dubboHeartbeatAck = (buf: Buffer, off: number): Buffer => encodeDubboHeartbeatAck(buf, off, buf[off + OFF_FLAG] & 0x1f);

/**
 * Length of the complete frame starting at `off`, 0 when more bytes are needed, or -1
 * when the bytes there are not a Dubbo frame (bad magic, length over DUBBO_MAX_FRAME).
 */
export function dubboFrameLength(buf: Buffer, off: number): number {
  const n = codecFrameLength(buf, off, buf.length, DUBBO_MAX_FRAME);
  if (n < 0) return -1;
  return buf.length - off < n ? 0 : n; // the codec gives the length once the header is in
}

/** FrameReader for Dubbo frames. */
export class DubboFrameReader extends FrameReader {
  constructor(onFrame: (buf: Buffer, off: number, len: number) => void) {
    super(dubboFrameLength, onFrame);
  }
}
