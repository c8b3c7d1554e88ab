// Tests of the harness's `bolt` workload: frame helpers, the Bolt backend, the load
// driver (closed loop with pipelining, open loop at a fixed rate) against the backend
// directly and through a relay that cuts every byte stream into small pieces, the peer
// configs, and the summary report. All on 127.0.0.1, a few seconds in total.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { threadId } from 'node:worker_threads';
import * as hdr from 'hdr-histogram-js';
import {
  BENCH_SERVICE,
  BOLT_ID_OFFSET,
  BoltFrameReader,
  boltFrameLength,
  boltHeartbeat,
  boltRequestTemplate,
  boltResponseTemplate,
} from '../../bench/load/bolt';
import { boltServer, type BoltServerStats } from '../../bench/bolt-backend';
import runTask from '../../bench/load/worker';
import type { LoadSpec, WorkerResult } from '../../bench/load/spec';
import { haproxyConfig, nginxConfig, outriggerConfig, proxyLayer } from '../../bench/peers/configs';
import { workloadByName } from '../../bench/workloads';
import { headline } from '../../bench/report/summary';
import { markdownReport } from '../../bench/report/markdown';
import { ratioTableText } from '../../bench/report/table';
import { parseArgs } from '../../bench/cli';
import { decodeFrame } from '../../src/protocol/bolt/decoder';
import { createBoltFrame } from '../../src/protocol/bolt/frame';
import { findHeader } from '../../src/protocol/bolt/header-map';
import type { CaseResult, PeerCaseResult, RunResult } from '../../bench/types';

function listen(srv: net.Server): Promise<number> {
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as net.AddressInfo).port)));
}

function close(srv: net.Server): Promise<void> {
  return new Promise((resolve) => srv.close(() => resolve()));
}

/** A relay that forwards both directions in pieces of 1..13 bytes (plus a few whole chunks). */
function choppingRelay(targetPort: number): net.Server {
  return net.createServer((down) => {
    const up = net.connect(targetPort, '127.0.0.1');
    down.setNoDelay(true);
    up.setNoDelay(true);
    let seed = 7;
    const chop = (from: net.Socket, to: net.Socket): void => {
      from.on('data', (d: Buffer) => {
        for (let off = 0; off < d.length; ) {
          seed = (seed * 1103515245 + 12345) & 0x7fffffff;
          const n = seed % 17 === 0 ? d.length - off : 1 + (seed % 13);
          to.write(d.subarray(off, Math.min(d.length, off + n)));
          off += n;
        }
      });
    };
    chop(down, up);
    chop(up, down);
    const kill = (): void => {
      down.destroy();
      up.destroy();
    };
    down.on('error', kill).on('close', kill);
    up.on('error', kill).on('close', kill);
  });
}

function spec(port: number, over: Partial<LoadSpec>): LoadSpec {
  return {
    kind: 'bolt', host: '127.0.0.1', port, connections: 10, threads: 1, messageSize: 1024,
    measureStart: Date.now() + 300, durationMs: 1000, proxyPids: [], backendPids: [], ...over,
  };
}

test('request template is a valid SOFARPC Bolt v1 request; response template parses by its header', () => {
  const req = boltRequestTemplate();
  assert.equal(req[0], 1); // proto
  assert.equal(req[1], 1); // type request
  assert.equal(req.readUInt16BE(2), 1); // cmdcode rpc request
  assert.equal(req[4], 1); // ver2
  assert.equal(req[9], 1); // codec hessian2
  assert.equal(req.readInt32BE(10), 3000); // timeout
  const classLen = req.readUInt16BE(14);
  assert.equal(req.subarray(22, 22 + classLen).toString(), 'com.alipay.sofa.rpc.core.request.SofaRequest');
  assert.equal(req.readUInt32BE(18), 1024);
  assert.equal(boltFrameLength(req, 0), req.length);
  // The project's decoder agrees and finds the routing headers.
  const f = createBoltFrame();
  assert.equal(decodeFrame(req, 0, req.length, 1 << 20, f), req.length);
  assert.equal(f.contentLen, 1024);
  const svc = findHeader(req, f.headerStart, f.headerStart + f.headerLen, 'service');
  assert.ok(Array.isArray(svc));
  assert.equal(req.subarray(svc[0], svc[1]).toString(), BENCH_SERVICE);
  const m = findHeader(req, f.headerStart, f.headerStart + f.headerLen, 'sofa_head_method_name');
  assert.ok(Array.isArray(m));
  assert.equal(req.subarray(m[0], m[1]).toString(), 'echo');

  const resp = boltResponseTemplate();
  assert.equal(resp[1], 0);
  assert.equal(resp.readUInt16BE(2), 2);
  assert.equal(resp.readUInt16BE(10), 0); // status
  const total = 20 + resp.readUInt16BE(12) + resp.readUInt16BE(14) + resp.readUInt32BE(16);
  assert.equal(total, resp.length);
  assert.equal(boltFrameLength(resp, 0), resp.length);
  assert.equal(boltFrameLength(resp.subarray(0, 19), 0), 0);
  assert.equal(boltFrameLength(Buffer.from([9, 9, 9]), 0), -1);
});

test('frame reader: same frames whether fed whole, byte by byte or in odd pieces; garbage is refused', () => {
  const frames: Buffer[] = [];
  for (let i = 1; i <= 5; i++) {
    const r = Buffer.from(boltRequestTemplate({ contentLength: i * 100 }));
    r.writeUInt32BE(i, BOLT_ID_OFFSET);
    frames.push(r, boltHeartbeat(100 + i));
  }
  const all = Buffer.concat(frames);
  for (const piece of [all.length, 1, 3, 7, 1000]) {
    const ids: number[] = [];
    const reader = new BoltFrameReader((b, off, len) => {
      ids.push(b.readUInt32BE(off + BOLT_ID_OFFSET));
      assert.ok(len === 22 || len > 100);
    });
    for (let off = 0; off < all.length; off += piece) assert.ok(reader.push(all.subarray(off, off + piece)));
    assert.deepEqual(ids, [1, 101, 2, 102, 3, 103, 4, 104, 5, 105], `piece ${piece}`);
    assert.equal(reader.pending(), 0);
  }
  const bad = new BoltFrameReader(() => assert.fail('no frame expected'));
  assert.equal(bad.push(Buffer.from('GET / HTTP/1.1\r\n\r\n')), false);
});

test('backend answers every request (ids echoed, 1 KiB SofaResponse) and heartbeats, across split and batched frames', async () => {
  const stats: BoltServerStats = { requests: 0, heartbeats: 0, protocolErrors: 0 };
  const srv = boltServer(1024, stats);
  const port = await listen(srv);
  try {
    const n = 200;
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const r = Buffer.from(boltRequestTemplate());
      r.writeUInt32BE((0xfffffff0 + i) >>> 0, BOLT_ID_OFFSET); // also crosses the u32 wrap
      parts.push(r);
      if (i % 50 === 0) parts.push(boltHeartbeat(1_000_000 + i));
    }
    const all = Buffer.concat(parts);
    const got = new Map<number, { status: number; len: number; cmd: number }>();
    const s = net.connect(port, '127.0.0.1');
    const reader = new BoltFrameReader((b, off, len) => {
      got.set(b.readUInt32BE(off + BOLT_ID_OFFSET), { status: b.readUInt16BE(off + 10), len, cmd: b.readUInt16BE(off + 2) });
    });
    s.on('data', (d: Buffer) => assert.ok(reader.push(d)));
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    // first half in 5-byte pieces (split headers), the rest in one write (many frames per read)
    const half = Math.floor(all.length / 2);
    for (let off = 0; off < half; off += 5) s.write(all.subarray(off, Math.min(half, off + 5)));
    s.write(all.subarray(half));
    const want = n + Math.ceil(n / 50);
    for (let i = 0; i < 200 && got.size < want; i++) await new Promise((r) => setTimeout(r, 10));
    s.destroy();
    assert.equal(got.size, want);
    for (let i = 0; i < n; i++) {
      const r = got.get((0xfffffff0 + i) >>> 0);
      assert.ok(r, `response for request ${i}`);
      assert.equal(r.status, 0);
      assert.equal(r.cmd, 2);
      assert.ok(r.len > 1024 + 20);
    }
    for (let i = 0; i < n; i += 50) assert.deepEqual(got.get(1_000_000 + i), { status: 0, len: 20, cmd: 0 });
    assert.deepEqual(stats, { requests: n, heartbeats: n / 50, protocolErrors: 0 });
  } finally {
    await close(srv);
  }
});

test('closed-loop driver: every request answered with its id, directly and through a relay that splits frames', async () => {
  const stats: BoltServerStats = { requests: 0, heartbeats: 0, protocolErrors: 0 };
  const srv = boltServer(1024, stats);
  const port = await listen(srv);
  const relay = choppingRelay(port);
  const relayPort = await listen(relay);
  try {
    const direct: WorkerResult = await runTask({ spec: spec(port, { pipeline: 4, durationMs: 700 }), connections: 10 });
    assert.equal(direct.errors, 0, direct.firstError);
    assert.ok(direct.ops > 500, `ops ${direct.ops}`);
    assert.equal(direct.bytes % direct.ops, 0); // whole responses only
    assert.ok(direct.histogram);

    const chopped = await runTask({ spec: spec(relayPort, { pipeline: 3, connections: 4, durationMs: 700 }), connections: 4 });
    assert.equal(chopped.errors, 0, chopped.firstError);
    assert.ok(chopped.ops > 50, `ops ${chopped.ops}`);
    assert.equal(stats.protocolErrors, 0);
  } finally {
    await close(relay);
    await close(srv);
  }
});

test('open-loop driver paces the asked rate (±15 %) and records send lateness', async () => {
  const srv = boltServer();
  const port = await listen(srv);
  try {
    const rate = 1000;
    const durationMs = 1500;
    const r = await runTask({ spec: spec(port, { kind: 'bolt-rate', rate, connections: 20, durationMs }), connections: 20 });
    assert.equal(r.errors, 0, r.firstError);
    const achieved = r.ops / (durationMs / 1000);
    assert.ok(Math.abs(achieved - rate) <= 0.15 * rate, `achieved ${achieved}/s for ${rate}/s`);
    assert.ok(r.lagHistogram);
    const lag = hdr.decodeFromCompressedBase64(r.lagHistogram!);
    assert.ok(lag.totalCount > 0.8 * (rate * durationMs) / 1000);
    lag.destroy();
    // two threads' shares add up: each paces connections/total of the rate
    const half = await runTask({ spec: spec(port, { kind: 'bolt-rate', rate, connections: 20, durationMs: 1000 }), connections: 10 });
    assert.ok(Math.abs(half.ops - rate / 2) <= 0.15 * (rate / 2), `half share ${half.ops}`);
  } finally {
    await close(srv);
  }
});

test('open-loop driver with a trace: every answered request of the window, its send time (CLOCK_MONOTONIC) and latency', async () => {
  const srv = boltServer();
  const port = await listen(srv);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-trace-'));
  try {
    const trace = path.join(dir, 'lat');
    const before = Number(process.hrtime.bigint()) / 1e6;
    const r = await runTask({ spec: spec(port, { kind: 'bolt-rate', rate: 500, connections: 5, durationMs: 800, trace }), connections: 5 });
    const after = Number(process.hrtime.bigint()) / 1e6;
    assert.equal(r.errors, 0, r.firstError);
    const b = fs.readFileSync(`${trace}.${threadId}`);
    const rec = new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8);
    assert.equal(rec.length, 2 * r.ops, 'one record (send time, latency) per counted request');
    assert.ok(r.ops > 200, `${r.ops} requests`);
    for (let i = 0; i < rec.length; i += 2) {
      assert.ok(rec[i] > before && rec[i] < after, `send time ${rec[i]} within the run (${before}-${after})`);
      assert.ok(rec[i + 1] > 0 && rec[i] + rec[i + 1] <= after, `latency ${rec[i + 1]} ms`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await close(srv);
  }
});

test('bolt peers: Outrigger L7 proxy filter routing on service; HAProxy and nginx forward TCP (L4)', () => {
  const cfg = outriggerConfig({ mode: 'bolt', port: 1000, backendPort: 2000, dir: '/tmp/x' }) as {
    servers: { listeners: { filter_chains: { filters: { type: string; config: Record<string, unknown> }[] }[] }[]; routers: unknown[] }[];
  };
  const f = cfg.servers[0].listeners[0].filter_chains[0].filters;
  assert.deepEqual(f, [
    { type: 'proxy', config: { downstream_protocol: 'bolt', upstream_protocol: 'bolt', router_config_name: 'bolt_router' } },
  ]);
  assert.deepEqual(cfg.servers[0].routers, [
    {
      router_config_name: 'bolt_router',
      virtual_hosts: [
        { name: 'bench', domains: ['*'], routers: [{ match: { headers: [{ name: 'service', value: BENCH_SERVICE }] }, route: { cluster_name: 'backend' } }] },
      ],
    },
  ]);
  assert.match(haproxyConfig({ mode: 'bolt', port: 1000, backendPort: 2000, dir: '/tmp/x' }), /mode tcp/);
  const ngx = nginxConfig({ mode: 'bolt', port: 1000, backendPort: 2000, dir: '/tmp/x' }, '/m/ngx_stream_module.so');
  assert.match(ngx, /stream \{/);
  assert.match(ngx, /load_module \/m\/ngx_stream_module\.so;/);
  assert.equal(proxyLayer('outrigger', 'bolt'), 'L7');
  assert.equal(proxyLayer('haproxy', 'bolt'), 'L4');
  assert.equal(proxyLayer('nginx', 'bolt'), 'L4');
  assert.equal(proxyLayer('direct', 'bolt'), undefined);

  const w = workloadByName('bolt')!;
  assert.equal(w.pending, undefined);
  assert.deepEqual(
    w.cases({}).map((c) => [c.id, c.kind, c.connections, c.pipeline, c.rate]),
    [['bolt max c=200', 'bolt', 200, 1, undefined], ['bolt 2000/s c=200', 'bolt-rate', 200, undefined, 2000]],
  );
  assert.deepEqual(
    w.cases({ connections: 50, rate: 500, pipeline: 8 }).map((c) => c.id),
    ['bolt max c=50 k=8', 'bolt 500/s c=50'],
  );
  const a = parseArgs(['bolt', '--rate', '3000', '--pipeline', '2']);
  assert.equal(a.rate, 3000);
  assert.equal(a.pipeline, 2);
});

function p(peer: string, layer: 'L4' | 'L7' | undefined, tp: number, p99: number, cpu?: number): PeerCaseResult {
  return {
    peer, ...(layer ? { layer } : {}), status: 'ok', rounds: [], throughput: tp, throughputMin: tp, throughputMax: tp,
    latency: { count: 10, meanUs: p99 / 3, p50Us: p99 / 4, p90Us: p99 / 2, p99Us: p99, p999Us: p99 * 2, maxUs: p99 * 3, curve: [[50, p99 / 4], [99, p99]] },
    proxyCpuPerUnit: cpu, proxyCpuCores: cpu === undefined ? undefined : 0.5, peakRssKiB: cpu === undefined ? undefined : 30720, bottleneck: 'neither',
  };
}

test('bolt summary: max rate, latency at the fixed rate, CPU per 1k, RSS, ratios vs haproxy and direct; L4 marked', () => {
  const max: CaseResult = {
    id: 'bolt max c=200', unit: 'req/s', cpuUnit: 'CPU s / 1k req', connections: 200, pipeline: 1,
    peers: [p('outrigger', 'L7', 30_000, 9000, 0.03), p('haproxy', 'L4', 20_000, 12_000, 0.02), p('nginx', 'L4', 25_000, 10_000, 0.02), p('direct', undefined, 40_000, 6000)],
  };
  const fixed: CaseResult = {
    id: 'bolt 2000/s c=200', unit: 'req/s', cpuUnit: 'CPU s / 1k req', connections: 200, rate: 2000,
    peers: [p('outrigger', 'L7', 2000, 400, 0.08), p('haproxy', 'L4', 2000, 200, 0.05), p('nginx', 'L4', 2000, 300, 0.05), p('direct', undefined, 2000, 100)],
  };
  fixed.peers[0].sendLag = { ...fixed.peers[0].latency!, p50Us: 110, p99Us: 900 };
  const h = headline({ name: 'bolt', description: 'd', status: 'ok', notes: [], cases: [max, fixed] })!;
  assert.ok(h);
  const row = (name: string): Record<string, string> => Object.fromEntries(h.header.map((k, i) => [k, h.rows.find((r) => r[0].startsWith(name))![i]]));
  const o = row('outrigger');
  assert.equal(o.peer, 'outrigger (L7)');
  assert.equal(o['max rate'], '30.0k req/s');
  assert.equal(o['max ÷haproxy'], '1.50×');
  assert.equal(o['max ÷direct'], '0.75×');
  assert.equal(o['p99 at 2,000/s ÷haproxy'], '2.00×');
  assert.equal(o['p99 at 2,000/s ÷direct'], '4.00×');
  assert.equal(o['p99 at 2,000/s'], '400 µs');
  assert.equal(o['CPU s / 1k req (max)'], '0.0300');
  assert.equal(o['peak RSS'], '30.0 MiB');
  assert.equal(row('haproxy').peer, 'haproxy (L4)');
  assert.equal(row('nginx').peer, 'nginx (L4)');
  assert.equal(row('direct').peer, 'direct');

  const run: RunResult = {
    meta: {
      date: '2026-11-22T00:00:00.000Z', host: 't', cpus: 2, cpuModel: 'c', node: 'v20', command: 'npm run bench -- bolt',
      placement: { proxy: '0', client: '1', pinned: true }, durationS: 3, warmupS: 1, rounds: 2, threads: 1, quick: true,
    },
    peers: [],
    workloads: [{ name: 'bolt', description: 'bolt', status: 'ok', notes: [], cases: [max, fixed] }],
  };
  const md = markdownReport(run);
  assert.match(md, /### Summary/);
  assert.match(md, /haproxy \(L4\)/);
  assert.match(md, /Layers: outrigger L7, haproxy L4, nginx L4/);
  assert.match(md, /Generator send lateness p50 \/ p99: outrigger 110 µs \/ 900 µs/);
  const text = ratioTableText(run);
  assert.match(text, /== bolt summary ==/);
  assert.match(text, /p99÷haproxy/); // fixed-rate case compares p99, not the (equal) rates
});
