// What reading the incoming trace context costs per unsampled Dubbo request (issue 13): the
// tracing step's look for `traceparent` / SOFATracer ids, as it was (the attachments decoded into
// a Map: every argument skipped, every pair read) and as it is (one search of the body for the
// keys' bytes, attachments left alone when neither is there).
//
//   node dist/bench/tracing-dubbo-scan.js [--rounds 5] [--n 200000]
//
// In one process, rounds alternate between the two; ns per request, median of the rounds.
import { dubboCodec, type DubboXFrame } from '../src/protocol/dubbo/xcodec';
import { encodeString } from '../src/protocol/dubbo/hessian';
import { HeaderName, type XCodec, type XFrame } from '../src/protocol/types';
import { extract } from '../src/tracing/context';
import { mayCarryTraceContext } from '../src/tracing/dubbo';
import type { FilterStream } from '../src/api/stream-filter';
import { numOpt } from './lib/script';

const args = process.argv.slice(2);
const ROUNDS = numOpt(args, 'rounds', 5);
const N = numOpt(args, 'n', 200_000);
const codec = dubboCodec as unknown as XCodec;

/** A request like dubbo2.js / Dubbo Java send: a POJO-ish argument and a dozen attachments. */
function request(): Buffer {
  const parts = [encodeString('2.0.2'), encodeString('com.example.OrderService'), encodeString('1.0.0'), encodeString('placeOrder'), encodeString('Ljava/lang/String;Ljava/util/Map;')];
  parts.push(encodeString('order-4711'));
  parts.push(Buffer.from([0x48]));
  for (let i = 0; i < 8; i++) parts.push(encodeString(`item${i}`), encodeString(`sku-${i}-${'x'.repeat(20)}`));
  parts.push(Buffer.from([0x5a]));
  const att: Record<string, string> = {
    path: 'com.example.OrderService', interface: 'com.example.OrderService', version: '1.0.0', group: 'prod', timeout: '3000',
    application: 'checkout', 'remote.application': 'web', input: '512', side: 'consumer', dubbo: '2.0.2', pid: '4242', timestamp: '1700000000000',
  };
  parts.push(Buffer.from([0x48]));
  for (const [k, v] of Object.entries(att)) parts.push(encodeString(k), encodeString(v));
  parts.push(Buffer.from([0x5a]));
  const body = Buffer.concat(parts);
  const h = Buffer.alloc(16);
  h[0] = 0xda;
  h[1] = 0xbb;
  h[2] = 0xc2;
  h.writeUInt32BE(1, 8);
  h.writeUInt32BE(body.length, 12);
  return Buffer.concat([h, body]);
}

const buf = request();
const frame = codec.newFrame() as unknown as DubboXFrame;
const names = new Map<string, HeaderName>();
const stream = {
  protocol: 'dubbo', codec, buf, frame,
  header: (n: string) => {
    let hn = names.get(n);
    if (hn === undefined) names.set(n, (hn = new HeaderName(n)));
    return codec.getHeader(buf, frame as unknown as XFrame, hn) ?? undefined;
  },
} as unknown as FilterStream;
const read = (n: string): string | undefined => stream.header(n);

/** 0: no tracing (decode and route key only), 1: attachments decoded, 2: key scan. */
function round(mode: number): number {
  let found = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    codec.decode(buf, 0, buf.length, 1 << 20, frame as unknown as XFrame); // a new request: nothing read yet
    codec.getRouteKey(buf, frame as unknown as XFrame); // routing read the leading strings, as the proxy does
    const inc = mode === 0 || (mode === 2 && !mayCarryTraceContext(stream)) ? undefined : extract(read, true);
    if (inc !== undefined) found++;
  }
  const ns = Number(process.hrtime.bigint() - t0) / N;
  if (found !== 0) throw new Error('no request carries a context');
  return ns;
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
for (let m = 0; m < 3; m++) round(m); // warm-up
const ns: number[][] = [[], [], []];
for (let r = 0; r < ROUNDS; r++) for (let m = 0; m < 3; m++) ns[m].push(round(m));
const [base, decoded, scan] = ns.map(median);
console.log(`dubbo, ${buf.length}-byte request, ${N} x ${ROUNDS} rounds, ns per request (median): frame decode + route key ${base.toFixed(0)}; ` +
  `+ trace context read by decoding the attachments ${decoded.toFixed(0)} (tracing adds ${(decoded - base).toFixed(0)}); ` +
  `+ by the key scan ${scan.toFixed(0)} (tracing adds ${(scan - base).toFixed(0)})`);
