/**
 * The `proxy` filter's phases, one behaviour per test, through the real CLI with raw Bolt
 * sockets on both sides (the fake upstream answers when and how the test says).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { encodeHeartbeat, STATUS_CONNECTION_CLOSED, STATUS_NO_PROCESSOR, STATUS_SERVER_THREADPOOL_BUSY, STATUS_TIMEOUT, PROTO_V2, encodeFrame, TYPE_REQUEST } from '../../src/protocol/bolt';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar';
import { boltProxyConfig, fakeUpstream, rawClient, rawRequest, rawResponse, sleep, type FakeUpstream } from '../helpers/sofa';

async function withProxy(
  up: FakeUpstream,
  opts: Partial<Parameters<typeof boltProxyConfig>[0]>,
  fn: (sc: RunningSidecar, port: number) => Promise<void>,
): Promise<void> {
  const sc = await startSidecar(boltProxyConfig({ clusters: { svc: [up.port] }, ...opts }));
  try {
    await fn(sc, sc.ports.get(opts.listenerName ?? 'bolt')!);
  } finally {
    assert.equal(await sc.terminate(), 0);
    await up.close();
  }
}

test('responses out of order are mapped back to the downstream ids (two clients, one upstream connection)', async () => {
  const held: { frame: any; buf: Buffer; sock: net.Socket }[] = [];
  const up = await fakeUpstream((r) => {
    held.push(r);
    if (held.length === 6) for (const h of held.reverse()) h.sock.write(rawResponse(h.frame, h.buf));
  });
  await withProxy(up, {}, async (sc, port) => {
    const a = await rawClient(port);
    const b = await rawClient(port);
    // Both clients use the same ids: the proxy must give them distinct upstream ids.
    for (const id of [7, 8, 9]) {
      a.sock.write(rawRequest(id, 'com.example.A:1.0', { content: Buffer.from(`a${id}`) }));
      b.sock.write(rawRequest(id, 'com.example.A:1.0', { content: Buffer.from(`b${id}`) }));
    }
    await Promise.all([a.wait(3), b.wait(3)]);
    for (const [c, tag] of [[a, 'a'], [b, 'b']] as const) {
      const got = c.frames.map((f) => `${f.frame.requestId}:${f.buf.toString('latin1', f.frame.contentStart, f.frame.contentEnd)}`).sort();
      assert.deepEqual(got, [`7:${tag}7`, `8:${tag}8`, `9:${tag}9`]);
    }
    assert.equal(up.sockets.size, 1, 'one multiplexed upstream connection');
    const ids = new Set(up.requests.map((r) => r.frame.requestId));
    assert.equal(ids.size, 6, 'upstream ids are unique on the connection');
    const st = await sc.stats();
    assert.equal(st.listeners.bolt.downstream_rs_success, 6);
    assert.equal(st.clusters.svc.upstream_rq_total, 6);
    a.sock.destroy();
    b.sock.destroy();
  });
});

test('no route -> NO_PROCESSOR; unknown cluster -> NO_PROCESSOR', async () => {
  const up = await fakeUpstream((r) => r.sock.write(rawResponse(r.frame, r.buf)));
  const routes = [
    { match: { headers: [{ name: 'service', value: 'com.example.Known:1.0' }] }, route: { cluster_name: 'svc' } },
    { match: { headers: [{ name: 'service', value: 'com.example.Ghost:1.0' }] }, route: { cluster_name: 'missing' } },
  ];
  await withProxy(up, { routes }, async (sc, port) => {
    const c = await rawClient(port);
    c.sock.write(rawRequest(1, 'com.example.Unknown:1.0'));
    c.sock.write(rawRequest(2, 'com.example.Ghost:1.0'));
    c.sock.write(rawRequest(3, 'com.example.Known:1.0'));
    await c.wait(3);
    const byId = new Map(c.frames.map((f) => [f.frame.requestId, f.frame.status]));
    assert.equal(byId.get(1), STATUS_NO_PROCESSOR);
    assert.equal(byId.get(2), STATUS_NO_PROCESSOR);
    assert.equal(byId.get(3), 0);
    assert.equal(up.requests.length, 1, 'only the routed request reached the upstream');
    const st = await sc.stats();
    assert.equal(st.listeners.bolt.downstream_rs_no_route, 2);
    c.sock.destroy();
  });
});

test('upstream timeout -> TIMEOUT response (Bolt timeout field); a late response is dropped', async () => {
  const up = await fakeUpstream((r) => {
    const content = r.buf.toString('latin1', r.frame.contentStart, r.frame.contentEnd);
    if (content === 'slow') setTimeout(() => r.sock.write(rawResponse(r.frame, r.buf)), 400);
    else r.sock.write(rawResponse(r.frame, r.buf));
  });
  await withProxy(up, {}, async (sc, port) => {
    const c = await rawClient(port);
    const t0 = Date.now();
    c.sock.write(rawRequest(1, 'com.example.A:1.0', { timeout: 100, content: Buffer.from('slow') }));
    await c.wait(1);
    const dt = Date.now() - t0;
    assert.equal(c.frames[0].frame.status, STATUS_TIMEOUT);
    assert.equal(c.frames[0].frame.requestId, 1);
    assert.ok(dt >= 95 && dt < 350, `timed out after ${dt} ms`);
    await sleep(450);
    assert.equal(c.frames.length, 1, 'the late response is not forwarded');
    c.sock.write(rawRequest(2, 'com.example.A:1.0', { timeout: 1000, content: Buffer.from('fast') }));
    await c.wait(2);
    assert.equal(c.frames[1].frame.status, 0);
    const st = await sc.stats();
    assert.equal(st.listeners.bolt.downstream_rs_timeout, 1);
    assert.equal(st.clusters.svc.upstream_rq_timeout, 1);
    assert.equal(st.clusters.svc.upstream_rs_unknown_id, 1);
    c.sock.destroy();
  });
});

test('route timeout applies when the request carries none', async () => {
  const up = await fakeUpstream(() => {});
  const routes = [{ match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: 'svc', timeout: '150ms' } }];
  await withProxy(up, { routes }, async (_sc, port) => {
    const c = await rawClient(port);
    const t0 = Date.now();
    c.sock.write(rawRequest(5, 'com.example.A:1.0'));
    await c.wait(1);
    assert.equal(c.frames[0].frame.status, STATUS_TIMEOUT);
    assert.ok(Date.now() - t0 >= 145);
    c.sock.destroy();
  });
});

test('circuit breaker max_requests -> SERVER_THREADPOOL_BUSY', async () => {
  const up = await fakeUpstream(() => {}); // never answers
  await withProxy(up, { circuitBreakers: { max_requests: 2 } }, async (sc, port) => {
    const c = await rawClient(port);
    for (let i = 1; i <= 4; i++) c.sock.write(rawRequest(i, 'com.example.A:1.0', { timeout: 3000 }));
    await c.wait(2);
    assert.deepEqual(
      c.frames.map((f) => [f.frame.requestId, f.frame.status]),
      [
        [3, STATUS_SERVER_THREADPOOL_BUSY],
        [4, STATUS_SERVER_THREADPOOL_BUSY],
      ],
    );
    const st = await sc.stats();
    assert.equal(st.listeners.bolt.downstream_rs_overflow, 2);
    assert.equal(st.clusters.svc.upstream_rq_pending_overflow, 2);
    c.sock.destroy();
  });
});

test('a frame that cannot be decoded closes only that connection', async () => {
  const up = await fakeUpstream((r) => r.sock.write(rawResponse(r.frame, r.buf)));
  await withProxy(up, {}, async (sc, port) => {
    const good = await rawClient(port);
    const bad = await rawClient(port);
    bad.sock.write(Buffer.from([0x01, 0x07, 0, 1, 1, 0, 0, 0, 1, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0])); // type 7
    await bad.closedP;
    good.sock.write(rawRequest(1, 'com.example.A:1.0'));
    await good.wait(1);
    assert.equal(good.frames[0].frame.status, 0);
    assert.equal(good.closed, false);
    const st = await sc.stats();
    assert.equal(st.listeners.bolt.downstream_decode_error, 1);
    good.sock.destroy();
  });
});

test('an oversized frame is rejected from its header, before its body is buffered', async () => {
  const up = await fakeUpstream((r) => r.sock.write(rawResponse(r.frame, r.buf)));
  await withProxy(up, { extendConfig: { max_frame_size: 4096 } }, async (sc, port) => {
    const c = await rawClient(port);
    const big = rawRequest(1, 'com.example.A:1.0', { content: Buffer.alloc(5000, 1) });
    c.sock.write(big.subarray(0, 30)); // header only: the length alone is enough to refuse it
    await c.closedP;
    const ok = await rawClient(port);
    ok.sock.write(rawRequest(2, 'com.example.A:1.0', { content: Buffer.alloc(3000, 2) }));
    await ok.wait(1);
    assert.equal(ok.frames[0].frame.status, 0);
    const st = await sc.stats();
    assert.equal(st.listeners.bolt.downstream_frame_too_large, 1);
    assert.equal(up.requests.length, 1);
    ok.sock.destroy();
  });
});

test('Auto picks v1 or v2 per connection by the first byte', async () => {
  const up = await fakeUpstream((r) => r.sock.write(rawResponse(r.frame, r.buf)));
  await withProxy(up, { downstreamProtocol: 'Auto' }, async (_sc, port) => {
    const v1 = await rawClient(port);
    const v2 = await rawClient(port);
    v1.sock.write(rawRequest(11, 'com.example.A:1.0'));
    v2.sock.write(rawRequest(22, 'com.example.A:1.0', { proto: PROTO_V2 }));
    await Promise.all([v1.wait(1), v2.wait(1)]);
    assert.equal(v1.frames[0].frame.proto, 1);
    assert.equal(v1.frames[0].frame.requestId, 11);
    assert.equal(v2.frames[0].frame.proto, 2);
    assert.equal(v2.frames[0].frame.requestId, 22);
    const protos = up.requests.map((r) => r.frame.proto).sort();
    assert.deepEqual(protos, [1, 2]);
    const junk = await rawClient(port);
    junk.sock.write('GET / HTTP/1.1\r\n\r\n');
    await junk.closedP;
    v1.sock.destroy();
    v2.sock.destroy();
  });
});

test('downstream heartbeats are answered by the proxy, never forwarded', async () => {
  const up = await fakeUpstream((r) => r.sock.write(rawResponse(r.frame, r.buf)));
  await withProxy(up, {}, async (sc, port) => {
    const c = await rawClient(port);
    c.sock.write(encodeHeartbeat(1, 41));
    c.sock.write(encodeFrame({ proto: PROTO_V2, ver1: 1, type: TYPE_REQUEST, cmdcode: 0, requestId: 42 }));
    await c.wait(2);
    assert.deepEqual(
      c.frames.map((f) => [f.frame.proto, f.frame.requestId, f.frame.isHeartbeat, f.frame.isRequest]),
      [
        [1, 41, true, false],
        [2, 42, true, false],
      ],
    );
    assert.equal(up.requests.length, 0, 'no heartbeat reached the upstream');
    assert.equal(up.sockets.size, 0, 'no upstream connection was even opened');
    assert.equal((await sc.stats()).listeners.bolt.downstream_rq_heartbeat, 2);
    c.sock.destroy();
  });
});

test('oneway requests are forwarded with no pending entry and get no response', async () => {
  const up = await fakeUpstream((r) => {
    if (!r.frame.isRequest || r.frame.type !== 2) r.sock.write(rawResponse(r.frame, r.buf));
  });
  await withProxy(up, {}, async (sc, port) => {
    const c = await rawClient(port);
    for (let i = 1; i <= 5; i++) c.sock.write(rawRequest(i, 'com.example.A:1.0', { oneway: true }));
    c.sock.write(rawRequest(100, 'com.example.A:1.0'));
    await c.wait(1);
    await sleep(100);
    assert.equal(c.frames.length, 1);
    assert.equal(c.frames[0].frame.requestId, 100);
    assert.equal(up.requests.filter((r) => r.frame.type === 2).length, 5);
    const st = await sc.stats();
    assert.equal(st.clusters.svc.upstream_rq_oneway, 5);
    assert.equal(st.clusters.svc.upstream_rq_active, 0, 'nothing pending');
    assert.equal(st.listeners.bolt.downstream_rq_active, 0);
    c.sock.destroy();
  });
});

test('requests pending on an upstream connection that dies get CONNECTION_CLOSED at once', async () => {
  const up = await fakeUpstream((r, all) => {
    if (all.requests.length === 3) r.sock.destroy();
  });
  await withProxy(up, {}, async (sc, port) => {
    const c = await rawClient(port);
    for (let i = 1; i <= 3; i++) c.sock.write(rawRequest(i, 'com.example.A:1.0', { timeout: 10_000 }));
    const t0 = Date.now();
    await c.wait(3);
    assert.ok(Date.now() - t0 < 2000);
    assert.deepEqual(
      c.frames.map((f) => f.frame.status),
      [STATUS_CONNECTION_CLOSED, STATUS_CONNECTION_CLOSED, STATUS_CONNECTION_CLOSED],
    );
    assert.deepEqual(c.frames.map((f) => f.frame.requestId).sort(), [1, 2, 3]);
    const st = await sc.stats();
    assert.equal(st.listeners.bolt.downstream_rs_cx_closed, 3);
    assert.equal(st.clusters.svc.upstream_rq_cx_closed, 3);
    c.sock.destroy();
  });
});

test('idle upstream connections get the proxy heartbeats; one left unanswered closes the connection', async () => {
  const up = await fakeUpstream((r) => r.sock.write(rawResponse(r.frame, r.buf)), { ackHeartbeats: false });
  await withProxy(up, { extendConfig: { keepalive_interval: '200ms', keepalive_timeout: '200ms' } }, async (sc, port) => {
    const c = await rawClient(port);
    c.sock.write(rawRequest(1, 'com.example.A:1.0'));
    await c.wait(1);
    const upSock = [...up.sockets][0];
    const closed = new Promise((r) => upSock.once('close', r));
    await closed;
    const hbs = up.requests.filter((r) => r.frame.isHeartbeat);
    assert.ok(hbs.length >= 1, 'a heartbeat was sent');
    assert.notEqual(hbs[0].frame.requestId, up.requests[0].frame.requestId, 'heartbeat id from the same counter');
    const st = await sc.stats();
    assert.equal(st.clusters.svc.upstream_cx_keepalive_fail, 1);
    // the next request opens a new connection
    c.sock.write(rawRequest(2, 'com.example.A:1.0'));
    await c.wait(2);
    assert.equal(c.frames[1].frame.status, 0);
    c.sock.destroy();
  });
});
