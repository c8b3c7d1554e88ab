// The tracing work of one sampled Bolt request, without the proxy around it (issue 13):
//   node dist/bench/sampled-trace-cost.js [--requests 20000] [--rounds 5] [--base /work/wt/base/dist] [--no-export] [--child-span]
// Per request what the stream pipeline does for a sampled Bolt request: the server span
// (ActiveTrace.start), the client span (--child-span: start_child_span; else one span) and the upstream frame carrying `traceparent`
// (rpcAttempt), both spans ended (end); then the batched OTLP/HTTP protobuf export to a collector
// in a child process, waited for (flush), so the encoding and the posts are counted. CPU of this
// process (user + system) over the requests. --no-export: tracing without a collector (spans
// made, propagated and ended, not exported): the request path alone. With --base, the same from another build's dist,
// rounds alternating, so that before and after come from one run on one machine.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { firstLine, numOpt, strOpt } from './lib/script';

const args = process.argv.slice(2);
const N = numOpt(args, 'requests', 20000);
const ROUNDS = numOpt(args, 'rounds', 5);
const BASE = strOpt(args, 'base');
const NO_EXPORT = args.includes('--no-export');
const CHILD_SPAN = args.includes('--child-span');

interface Build {
  readonly name: string;
  run(collector: string): Promise<number>;
}

function load(name: string, dist: string): Build {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const idx = require(path.join(dist, 'src/tracing/index.js')) as typeof import('../src/tracing/index');
  const { encodeFrame } = require(path.join(dist, 'src/protocol/bolt/encoder.js')) as typeof import('../src/protocol/bolt/encoder');
  const { boltCodec } = require(path.join(dist, 'src/protocol/bolt/xcodec.js')) as typeof import('../src/protocol/bolt/xcodec');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const buf = encodeFrame({
    proto: 1,
    type: 1,
    cmdcode: 1,
    ver2: 1,
    requestId: 7,
    codec: 11,
    switch: 0,
    timeout: 3000,
    className: Buffer.from('com.alipay.sofa.rpc.core.request.SofaRequest'),
    headers: new Map([
      ['service', 'com.example.EchoService:1.0'],
      ['sofa_head_method_name', 'echo'],
    ]),
    content: Buffer.alloc(1024, 0x61),
  });
  const codec = boltCodec as unknown as import('../src/protocol/types').XCodec;
  const frame = codec.newFrame();
  if (codec.decode(buf, 0, buf.length, 1 << 20, frame) <= 0) throw new Error('bench frame does not decode');
  return {
    name,
    async run(collector) {
      idx.applyTracing({ driver: 'sofatracer', collector: NO_EXPORT ? '' : collector, encoding: 'protobuf', samplingRatio: 1, batchSize: 512, batchIntervalMs: 1000, maxQueueSize: 2048, serviceName: 'bench', propagators: ['tracecontext'], startChildSpan: CHILD_SPAN });
      const t = idx.workerTracing();
      if (t === null) throw new Error('tracing not applied');
      const c0 = process.cpuUsage();
      for (let i = 0; i < N; i++) {
        const tr = idx.ActiveTrace.start(t, 'com.example.EchoService:1.0/echo', undefined, { protocol: 'bolt', 'peer.address': '127.0.0.1:40000', 'rpc.service': 'com.example.EchoService:1.0', 'rpc.method': 'echo' });
        const w = tr.rpcAttempt('127.0.0.1:12200', 'bolt_backend', codec, buf, frame, 1 << 20);
        if (w === null) throw new Error('no traced frame');
        tr.end(0, undefined, false);
        // Let the batches go out as they fill (the proxy returns to its event loop between reads).
        if (i % 256 === 255) await new Promise((r) => setImmediate(r));
      }
      await idx.flushTracing();
      const c = process.cpuUsage(c0);
      return (c.user + c.system) / N;
    },
  };
}

/** The bytes the collector has received so far. */
async function received(url: string): Promise<number> {
  const res = await fetch(url);
  return Number(await res.text());
}

async function main(): Promise<void> {
  const col = spawn(
    process.execPath,
    [
      '-e',
      // Counts the bytes of the OTLP bodies; GET answers the count (a build that drops spans exports fewer bytes).
      "let n=0;const s=require('http').createServer((q,r)=>{if(q.method==='GET'){r.end(String(n));return}q.on('data',(d)=>{n+=d.length});q.on('end',()=>{r.writeHead(200,{'content-type':'application/x-protobuf'});r.end()})});s.listen(0,'127.0.0.1',()=>console.log('port '+s.address().port))",
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const m = await firstLine(col, /port (\d+)/);
    const url = `http://127.0.0.1:${m[1]}/v1/traces`;
    const builds = [load('this', path.join(__dirname, '..'))];
    if (BASE !== undefined) builds.push(load('base', path.resolve(BASE)));
    const res = new Map<string, number[]>(builds.map((b) => [b.name, []]));
    for (let r = 0; r <= ROUNDS; r++) {
      const order = r % 2 === 0 ? builds : [...builds].reverse();
      for (const b of order) {
        const before = await received(url);
        const us = await b.run(url);
        const bytes = (await received(url)) - before;
        if (r > 0) res.get(b.name)?.push(us);
        console.log(`round ${r} ${b.name}: ${us.toFixed(2)} µs CPU per sampled request, ${(bytes / N).toFixed(0)} OTLP bytes exported per request${r === 0 ? ' (warm-up)' : ''}`);
      }
    }
    for (const [name, v] of res) {
      const s = [...v].sort((a, b) => a - b);
      console.log(`${name}: median ${s[s.length >> 1].toFixed(2)} µs (${s[0].toFixed(2)}..${s[s.length - 1].toFixed(2)})`);
    }
  } finally {
    col.kill();
  }
}

void main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
