// Tests of the harness's `dubbo` workload: request/response templates (checked with the
// project's Dubbo decoder), the Dubbo backend, the load driver (closed loop, open loop at
// a fixed rate) against the backend directly and through a relay that delivers every
// byte stream in small pieces, and the peer configs. All on 127.0.0.1, a few seconds.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as hdr from 'hdr-histogram-js';
import {
  DUBBO_BENCH_SERVICE,
  DUBBO_ID_LO_OFFSET,
  DubboFrameReader,
  dubboFrameLength,
  dubboHeartbeat,
  dubboRequestTemplate,
  dubboResponseTemplate,
} from '../../bench/load/dubbo';
import { dubboServer, type DubboServerStats } from '../../bench/dubbo-backend';
import runTask from '../../bench/load/worker';
import type { LoadSpec } from '../../bench/load/spec';
import { haproxyConfig, nginxConfig, outriggerConfig, proxyLayer } from '../../bench/peers/configs';
import { workloadByName } from '../../bench/workloads';
import { DubboXFrame, decodeDubboFrame, readAttachments, readLeadingStrings, readString, hs } from '../../src/protocol/dubbo';

function listen(srv: net.Server): Promise<number> {
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as net.AddressInfo).port)));
}

function close(srv: net.Server): Promise<void> {
  return new Promise((resolve) => srv.close(() => resolve()));
}

/** Forwards both ways, re-writing every chunk as writes of 5 bytes (so every header and body is split). */
function splittingRelay(targetPort: number): net.Server {
  return net.createServer((down) => {
    const up = net.connect(targetPort, '127.0.0.1');
    for (const [from, to] of [[down, up], [up, down]] as const) {
      from.setNoDelay(true);
      from.on('data', (d: Buffer) => {
        for (let off = 0; off < d.length; off += 5) to.write(d.subarray(off, off + 5));
      });
      const end = (): void => {
        down.destroy();
        up.destroy();
      };
      from.on('error', end).on('close', end);
    }
  });
}

function spec(port: number, over: Partial<LoadSpec>): LoadSpec {
  return {
    kind: 'dubbo', host: '127.0.0.1', port, connections: 10, threads: 1, messageSize: 1024,
    measureStart: Date.now() + 300, durationMs: 1000, proxyPids: [], backendPids: [], ...over,
  };
}

test('dubbo templates: a valid hessian2 two-way request and a status-20 RESPONSE_VALUE response', () => {
  const req = dubboRequestTemplate();
  assert.equal(req.readUInt16BE(0), 0xdabb);
  assert.equal(req[2], 0xc2); // request, two-way, hessian2
  assert.equal(dubboFrameLength(req, 0), req.length);
  assert.equal(dubboFrameLength(req.subarray(0, req.length - 1), 0), 0);
  assert.equal(dubboFrameLength(req.subarray(0, 10), 0), 0);
  assert.equal(dubboFrameLength(Buffer.from('GET / HTTP/1.1'), 0), -1);
  const f = new DubboXFrame();
  assert.equal(decodeDubboFrame(req, 0, req.length, 1 << 20, f), req.length);
  assert.ok(f.isRequest && f.isTwoWay && !f.isEvent);
  assert.ok(req.length > 16 + 1024 && req.length < 16 + 1200);
  assert.ok(readLeadingStrings(req, f));
  assert.equal(f.service, DUBBO_BENCH_SERVICE);
  assert.equal(f.method, 'echo');
  assert.equal(f.paramDesc, '[B');
  const att = new Map<string, string>();
  assert.ok(readAttachments(req, f, att));
  assert.equal(att.get('interface'), DUBBO_BENCH_SERVICE);

  const resp = dubboResponseTemplate();
  assert.equal(resp[2], 0x02);
  assert.equal(resp[3], 20);
  assert.equal(dubboFrameLength(resp, 0), resp.length);
  assert.equal(resp[16], 0x91); // int 1 = RESPONSE_VALUE
  assert.ok(readString(resp, 17, resp.length) === resp.length);
  assert.equal(hs.value?.length, 1024);
});

test('dubbo frame reader: the same frames whole, byte by byte or in odd pieces; garbage refused', () => {
  const frames: Buffer[] = [];
  for (let i = 1; i <= 4; i++) {
    const r = Buffer.from(dubboRequestTemplate({ argBytes: i * 100 }));
    r.writeUInt32BE(i, DUBBO_ID_LO_OFFSET);
    frames.push(r, dubboHeartbeat(100 + i));
  }
  const all = Buffer.concat(frames);
  for (const piece of [all.length, 1, 3, 16, 17, 999]) {
    const ids: number[] = [];
    const reader = new DubboFrameReader((b, off) => ids.push(b.readUInt32BE(off + DUBBO_ID_LO_OFFSET)));
    for (let off = 0; off < all.length; off += piece) assert.ok(reader.push(all.subarray(off, off + piece)));
    assert.deepEqual(ids, [1, 101, 2, 102, 3, 103, 4, 104], `piece ${piece}`);
    assert.equal(reader.pending(), 0);
  }
  assert.equal(new DubboFrameReader(() => assert.fail('no frame')).push(Buffer.from('hello world, not dubbo')), false);
});

test('dubbo backend: N requests answered once each with matching 8-byte ids, status 20; heartbeats acked; split frames', async () => {
  const stats: DubboServerStats = { requests: 0, heartbeats: 0, protocolErrors: 0 };
  const srv = dubboServer(1024, stats);
  const port = await listen(srv);
  try {
    const n = 100;
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const r = Buffer.from(dubboRequestTemplate());
      r.writeUInt32BE(i & 1, 4); // high half used too
      r.writeUInt32BE(1000 + i, DUBBO_ID_LO_OFFSET);
      parts.push(r);
    }
    parts.push(dubboHeartbeat(77));
    const all = Buffer.concat(parts);
    const got: { hi: number; lo: number; status: number; event: boolean }[] = [];
    const s = net.connect(port, '127.0.0.1');
    const reader = new DubboFrameReader((b, off) =>
      got.push({ hi: b.readUInt32BE(off + 4), lo: b.readUInt32BE(off + 8), status: b[off + 3], event: (b[off + 2] & 0x20) !== 0 }),
    );
    s.on('data', (d: Buffer) => assert.ok(reader.push(d)));
    await new Promise<void>((r) => s.once('connect', () => r()));
    // odd pieces, some writes carrying several frames
    for (let off = 0; off < all.length; off += 700) s.write(all.subarray(off, off + 700));
    for (let i = 0; i < 200 && got.length < n + 1; i++) await new Promise((r) => setTimeout(r, 10));
    s.destroy();
    assert.equal(got.length, n + 1);
    for (let i = 0; i < n; i++) assert.deepEqual(got[i], { hi: i & 1, lo: 1000 + i, status: 20, event: false });
    assert.deepEqual(got[n], { hi: 0, lo: 77, status: 20, event: true });
    assert.deepEqual(stats, { requests: n, heartbeats: 1, protocolErrors: 0 });
  } finally {
    await close(srv);
  }
});

test('dubbo closed-loop driver: requests answered with their ids, directly and through a splitting relay', async () => {
  const srv = dubboServer();
  const port = await listen(srv);
  const relay = splittingRelay(port);
  const rport = await listen(relay);
  try {
    const direct = await runTask({ spec: spec(port, { connections: 10 }), connections: 10 });
    assert.equal(direct.errors, 0, direct.firstError);
    assert.ok(direct.ops > 500, `ops ${direct.ops}`);
    assert.ok(direct.bytes >= direct.ops * 1024);
    const piped = await runTask({ spec: spec(rport, { connections: 4, pipeline: 4, durationMs: 700 }), connections: 4 });
    assert.equal(piped.errors, 0, piped.firstError);
    assert.ok(piped.ops > 50, `ops ${piped.ops}`);
  } finally {
    await close(relay);
    await close(srv);
  }
});

test('dubbo open-loop driver paces the asked rate (±15 %)', async () => {
  const srv = dubboServer();
  const port = await listen(srv);
  try {
    const rate = 1000;
    const durationMs = 1500;
    const r = await runTask({ spec: spec(port, { kind: 'dubbo-rate', rate, connections: 20, durationMs }), connections: 20 });
    assert.equal(r.errors, 0, r.firstError);
    const achieved = (r.ops * 1000) / durationMs;
    assert.ok(Math.abs(achieved - rate) <= 0.15 * rate, `achieved ${achieved}/s for ${rate}/s`);
    assert.ok(r.lagHistogram);
    const lag = hdr.decodeFromCompressedBase64(r.lagHistogram!);
    assert.ok(lag.totalCount > 0.8 * (rate * durationMs) / 1000);
  } finally {
    await close(srv);
  }
});

test('dubbo workload and peers: Outrigger dubbo proxy routing on service (L7); HAProxy and nginx TCP (L4)', () => {
  const w = workloadByName('dubbo')!;
  assert.deepEqual(w.needs, ['dubbo']);
  assert.deepEqual(
    w.cases({}).map((c) => [c.id, c.kind, c.connections, c.pipeline, c.rate, c.backend]),
    [['dubbo max c=200', 'dubbo', 200, 1, undefined, 'dubbo'], ['dubbo 2000/s c=200', 'dubbo-rate', 200, undefined, 2000, 'dubbo']],
  );
  const o = JSON.stringify(outriggerConfig({ mode: 'dubbo', port: 1, backendPort: 2, dir: '/tmp' }));
  assert.match(o, /"downstream_protocol":"dubbo","upstream_protocol":"dubbo","router_config_name":"dubbo_router"/);
  assert.match(o, new RegExp(`"headers":\\[\\{"name":"service","value":"${DUBBO_BENCH_SERVICE.replace(/\./g, '\\.')}"\\}\\]`));
  assert.match(haproxyConfig({ mode: 'dubbo', port: 1, backendPort: 2, dir: '/tmp' }), /mode tcp/);
  assert.match(nginxConfig({ mode: 'dubbo', port: 1, backendPort: 2, dir: '/tmp' }, '/x/ngx_stream_module.so'), /stream \{/);
  assert.equal(proxyLayer('outrigger', 'dubbo'), 'L7');
  assert.equal(proxyLayer('haproxy', 'dubbo'), 'L4');
  assert.equal(proxyLayer('direct', 'dubbo'), undefined);
});
