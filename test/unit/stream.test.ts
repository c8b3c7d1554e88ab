/** Stream layer: frame reader (split reads, oversized), deadline wheel, multiplexed pool in process. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { FrameReader, type FrameSink } from '../../src/stream/frame-reader';
import { DeadlineWheel, TICK_MS, type DeadlineEntry } from '../../src/stream/deadlines';
import { boltCodec, type BoltXFrame } from '../../src/protocol/bolt/xcodec';
import { ERR_TOO_LARGE, ErrorKind, type XFrame } from '../../src/protocol/types';
import { encodeHeartbeatAck } from '../../src/protocol/bolt';
import { ClusterManager } from '../../src/upstream/cluster';
import { hostPool, type PendingRequest, type StreamReceiver } from '../../src/stream/upstream-pool';
import { fakeUpstream, rawRequest, rawResponse, sleep } from '../helpers/sofa';

class Sink implements FrameSink<BoltXFrame> {
  frames: { id: number; len: number; content: string }[] = [];
  errors: number[] = [];
  onFrame(buf: Buffer, f: BoltXFrame): boolean {
    this.frames.push({ id: f.requestId, len: f.frameLen, content: buf.toString('latin1', f.contentStart, f.contentEnd) });
    return true;
  }
  onDecodeError(code: number): void {
    this.errors.push(code);
  }
}

test('frame reader: every split of a stream of frames yields the same frames', () => {
  const frames = [rawRequest(1, 'a', { content: Buffer.from('one') }), encodeHeartbeatAck(1, 0, 2), rawRequest(3, 'svc', { content: Buffer.alloc(300, 0x41) }), rawRequest(4, 'b')];
  const all = Buffer.concat(frames);
  for (let cut1 = 0; cut1 <= all.length; cut1 += 3) {
    for (const cut2 of [cut1, Math.min(all.length, cut1 + 1), Math.min(all.length, cut1 + 21), all.length]) {
      const r = new FrameReader(boltCodec, 1 << 20);
      const s = new Sink();
      // Each read is a fresh copy placed at an offset, like views of a reused read chunk.
      for (const [a, b] of [[0, cut1], [cut1, cut2], [cut2, all.length]]) {
        if (b <= a) continue;
        const chunk = Buffer.alloc(b - a + 10, 0xee);
        all.copy(chunk, 5, a, b);
        r.feed(chunk, 5, 5 + (b - a), s);
        chunk.fill(0xdd); // the read chunk is reused: the reader must not keep views of it
      }
      assert.deepEqual(s.errors, []);
      assert.deepEqual(s.frames.map((f) => f.id), [1, 2, 3, 4], `cuts ${cut1}/${cut2}`);
      assert.equal(s.frames[2].content, 'A'.repeat(300));
      assert.equal(r.buffered, 0);
    }
  }
});

test('frame reader: an oversized frame is refused from its header (nothing buffered)', () => {
  const r = new FrameReader(boltCodec, 1000);
  const s = new Sink();
  const big = rawRequest(1, 'a', { content: Buffer.alloc(2000) });
  r.feed(big, 0, 30, s);
  assert.deepEqual(s.errors, [ERR_TOO_LARGE]);
  assert.equal(r.buffered, 0);
  // also when the header itself is split
  const r2 = new FrameReader(boltCodec, 1000);
  const s2 = new Sink();
  r2.feed(big, 0, 10, s2);
  r2.feed(big, 10, 40, s2);
  assert.deepEqual(s2.errors, [ERR_TOO_LARGE]);
});

test('frame reader: an unknown protocol byte is a decode error', () => {
  const r = new FrameReader(boltCodec, 1000);
  const s = new Sink();
  r.feed(Buffer.from('GET / HTTP/1.1\r\n'), 0, 16, s);
  assert.equal(s.errors.length, 1);
  assert.ok(s.errors[0] < 0);
});

class Entry implements DeadlineEntry {
  deadline = 0;
  dlPrev: DeadlineEntry | null = null;
  dlNext: DeadlineEntry | null = null;
  dlSlot = 0;
  fired = -1;
  due = 0;
  onDeadline(now: number): void {
    this.fired = now;
  }
}

test('deadline wheel: fires due entries only, disarm is O(1), far deadlines survive turns', () => {
  const w = new DeadlineWheel();
  const now = Date.now();
  const a = new Entry();
  const b = new Entry();
  const c = new Entry();
  const far = new Entry();
  w.arm(a, now + 10);
  w.arm(b, now + 20);
  w.arm(c, now + 30);
  w.arm(far, now + 6000); // more than one turn (5.12 s)
  assert.equal(w.size, 4);
  w.disarm(b);
  w.sweep(now + 15);
  assert.ok(a.fired >= 0);
  assert.equal(b.fired, -1);
  assert.equal(c.fired, -1);
  w.sweep(now + 5200);
  assert.ok(c.fired >= 0);
  assert.equal(far.fired, -1, 'not due after one turn');
  w.sweep(now + 6010); // up to one tick late, never early
  assert.ok(far.fired >= 0);
  assert.equal(w.size, 0);
});

test('deadline wheel: random arms, disarms and sweeps fire exactly the due entries (slots in every word of the busy map, sweeps after long gaps)', () => {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let round = 0; round < 20; round++) {
    const w = new DeadlineWheel();
    const t0 = Date.now();
    let now = t0;
    const live = new Set<Entry>();
    for (let step = 0; step < 400; step++) {
      const op = rnd(10);
      if (op < 5) {
        const e = new Entry();
        e.due = now + 1 + rnd(5300);
        // Deadlines from the current tick to a little over one turn ahead (5.12 s): every slot, both sides of word edges.
        w.arm(e, e.due);
        live.add(e);
      } else if (op < 7 && live.size > 0) {
        const e = [...live][rnd(live.size)];
        w.disarm(e);
        live.delete(e);
      } else {
        // Small steps, and now and then a long gap (many empty slots to step over).
        now += rnd(10) === 0 ? 500 + rnd(3000) : rnd(40);
        w.sweep(now);
        for (const e of [...live]) {
          if (e.fired >= 0) {
            assert.ok(e.deadline === 0 && e.fired === now && e.due <= now, 'fired by this sweep when due (never early), disarmed');
            live.delete(e);
          }
        }
        // Up to one tick late (the tick of a deadline is its end), never more.
        for (const e of live) assert.ok(e.deadline > now - TICK_MS, `an entry due at +${e.deadline - t0} was not fired by the sweep at +${now - t0}`);
      }
      assert.equal(w.size, live.size);
    }
    now += 6000;
    w.sweep(now);
    for (const e of live) assert.ok(e.fired === now, 'everything fires once due');
    assert.equal(w.size, 0);
  }
});

test('deadline wheel: one timer for many requests with the same timeout, none created or cleared per request', async () => {
  const w = new DeadlineWheel();
  const created: number[] = [];
  const cleared: number[] = [];
  const g = globalThis as unknown as Record<string, (...a: unknown[]) => unknown>;
  const saved = { setTimeout: g.setTimeout, setInterval: g.setInterval, clearTimeout: g.clearTimeout, clearInterval: g.clearInterval };
  g.setTimeout = (...a: unknown[]) => (created.push(1), saved.setTimeout(...a));
  g.setInterval = (...a: unknown[]) => (created.push(1), saved.setInterval(...a));
  g.clearTimeout = (...a: unknown[]) => (cleared.push(1), saved.clearTimeout(...a));
  g.clearInterval = (...a: unknown[]) => (cleared.push(1), saved.clearInterval(...a));
  const e = new Entry();
  try {
    // A low request rate: each request is answered before the next one comes (the wheel empties each time).
    for (let i = 0; i < 100; i++) {
      w.arm(e, Date.now() + 3000);
      w.disarm(e);
    }
  } finally {
    Object.assign(g, saved);
  }
  assert.equal(w.size, 0);
  assert.equal(created.length, 1, 'one timer for the first request, reused by the later ones');
  assert.equal(cleared.length, 0);
});

test('deadline wheel: real timer fires due entries (an earlier deadline after a later one too), never early', async () => {
  const w = new DeadlineWheel();
  const late = new Entry();
  const soon = new Entry();
  const gone = new Entry();
  const t0 = Date.now();
  w.arm(late, t0 + 400);
  w.arm(gone, t0 + 30);
  w.disarm(gone); // the timer set for it fires for nothing and looks further
  w.arm(soon, t0 + 60);
  // Polled with a generous cap: a loaded machine delays timers, never makes them early.
  const until = async (cond: () => boolean): Promise<void> => {
    for (let i = 0; i < 500 && !cond(); i++) await sleep(10);
  };
  await until(() => soon.fired >= 0);
  assert.ok(soon.fired >= t0 + 60, `fired ${soon.fired - t0} ms after arming: never early`);
  if (late.fired === -1) assert.ok(w.timerSet, 'the timer waits for the entry left');
  await until(() => late.fired >= 0);
  assert.ok(late.fired >= t0 + 400, 'never early');
  assert.equal(gone.fired, -1);
  assert.equal(w.size, 0);
  assert.equal(w.timerSet, false, 'an empty wheel keeps no timer');
});

test('pool: ids per connection, responses out of order mapped back, oneway has no pending entry, timeout', async () => {
  const held: { frame: any; buf: Buffer; sock: any }[] = [];
  let answer = true;
  const up = await fakeUpstream((r) => {
    if (r.frame.type === 2 || !answer) return; // oneway, or told to stay silent
    held.push(r);
    if (held.length === 3) for (const h of [held[2], held[0], held[1]]) h.sock.write(rawResponse(h.frame, h.buf));
  });
  const counters = new Float64Array(4096);
  const cm = new ClusterManager(
    [
      {
        name: 'c', type: 'SIMPLE', lbType: 'LB_ROUNDROBIN', hosts: [{ address: { host: '127.0.0.1', port: up.port }, weight: 1 }],
        connectTimeoutMs: 1000, maxRequestPerConn: 1024, connBufferLimitBytes: 32768,
        circuitBreakers: { maxConnections: 0, maxPendingRequests: 0, maxRequests: 0, maxRetries: 0 },
      } as any,
    ],
    counters,
    { c: 100 },
  );
  const cluster = cm.get('c')!;
  const host = cluster.hosts[0];
  const pool = hostPool(host, cluster, boltCodec, { connectionsPerHost: 1, maxFrameSize: 1 << 20, keepaliveIntervalMs: 0, keepaliveTimeoutMs: 0 });
  const got: string[] = [];
  const errs: ErrorKind[] = [];
  const rx: StreamReceiver = {
    onUpstreamResponse(p: PendingRequest, buf: Buffer, f: XFrame) {
      const bf = f as BoltXFrame;
      got.push(`${bf.requestId}=${p.downId}:${buf.toString('latin1', bf.contentStart, bf.contentEnd)}`);
    },
    onUpstreamError(_p: PendingRequest, kind: ErrorKind) {
      errs.push(kind);
    },
  };
  const frame = boltCodec.newFrame();
  const send = (b: Buffer, timeout = 0) => {
    assert.equal(boltCodec.decode(b, 0, b.length, 1 << 20, frame), b.length);
    return pool.send(b, frame, rx, boltCodec.replyMeta(b, frame), timeout);
  };
  // Everyone uses downstream id 5: the pool must keep them apart.
  const p1 = send(rawRequest(5, 's', { content: Buffer.from('x') }));
  const p2 = send(rawRequest(5, 's', { content: Buffer.from('y') }));
  const ow = send(rawRequest(5, 's', { oneway: true }));
  const p3 = send(rawRequest(5, 's', { content: Buffer.from('z') }));
  assert.equal(ow, null, 'oneway: no pending entry');
  assert.ok(typeof p1 === 'object' && typeof p2 === 'object' && typeof p3 === 'object');
  assert.equal(pool.connectionCount, 1);
  for (let i = 0; i < 100 && got.length < 3; i++) await sleep(10);
  assert.deepEqual(got, ['5=5:z', '5=5:x', '5=5:y']);
  assert.deepEqual(up.requests.map((r) => r.frame.requestId), [1, 2, 3, 4], 'upstream ids allocated per connection');
  assert.equal(counters[100 + 6], 0, 'upstream_rq_active back to 0');
  // a request that is never answered times out through the wheel
  answer = false;
  const t0 = Date.now();
  send(rawRequest(6, 's'), 50);
  for (let i = 0; i < 100 && errs.length < 1; i++) await sleep(10);
  assert.deepEqual(errs, [ErrorKind.Timeout]);
  assert.ok(Date.now() - t0 >= 50);
  pool.closeAll();
  await up.close();
});
