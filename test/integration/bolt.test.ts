/**
 * SOFARPC through Outrigger with real peers: a sofa-rpc-node@2.10.0 client calling a
 * sofa-rpc-node server via the real CLI, configured in the shape of MOSN's sofarpc samples.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { startSidecar } from '../helpers/sidecar';
import { BoltCollector, boltProxyConfig, fakeUpstream, rawClient, rawRequest, rawResponse, sleep, sofaClient, sofaEncoder, startSofaServer, encodeHeartbeat } from '../helpers/sofa';
import { STATUS_CONNECTION_CLOSED } from '../../src/protocol/bolt';

const SVC = 'com.example.TestService';

function services(onewayHits: string[]) {
  return {
    [SVC]: {
      async plus(a: number, b: number) {
        return a + b;
      },
      async echo(x: unknown) {
        return x;
      },
      async fail(msg: string) {
        throw new Error(`server says ${msg}`);
      },
      async slow(ms: number) {
        await sleep(ms);
        return ms;
      },
      async note(s: string) {
        onewayHits.push(s);
        return null;
      },
    },
  };
}

test('sofa-rpc-node client -> Outrigger -> sofa-rpc-node server', { timeout: 90_000 }, async (t) => {
  const onewayHits: string[] = [];
  const server = await startSofaServer(services(onewayHits));
  const sc = await startSidecar(boltProxyConfig({ clusters: { bolt_service: [server.port] } }));
  const port = sc.ports.get('bolt')!;
  const client = sofaClient(port);
  try {
    const consumer = await client.consumer(SVC);

    await t.test('plain call', async () => {
      assert.equal(await consumer.invoke('plus', [1, 2], { responseTimeout: 3000 }), 3);
    });

    await t.test('Hessian objects and unicode strings', async () => {
      const s = 'héllo, 世界 🚀 Ωμέγα';
      assert.equal(await consumer.invoke('echo', [{ $class: 'java.lang.String', $: s }], { responseTimeout: 3000 }), s);
      const obj = {
        $class: 'java.util.HashMap',
        $: { name: { $class: 'java.lang.String', $: 'Zoë' }, count: { $class: 'int', $: 42 }, tags: { $class: 'java.util.ArrayList', $: [{ $class: 'java.lang.String', $: 'a' }, { $class: 'java.lang.String', $: '日本' }] } },
      };
      const back = await consumer.invoke('echo', [obj], { responseTimeout: 3000 });
      assert.deepEqual(back, { name: 'Zoë', count: 42, tags: ['a', '日本'] });
      const big = 'x'.repeat(200_000) + '末';
      assert.equal(await consumer.invoke('echo', [{ $class: 'java.lang.String', $: big }], { responseTimeout: 5000 }), big);
    });

    await t.test('errors thrown by the server reach the client', async () => {
      await assert.rejects(consumer.invoke('fail', [{ $class: 'java.lang.String', $: 'no' }], { responseTimeout: 3000 }), (e: Error) => {
        assert.match(e.message, /server says no/);
        return true;
      });
    });

    await t.test('1,000 concurrent calls over one client connection, all answered correctly', async () => {
      const N = 1000;
      const t0 = Date.now();
      const results = await Promise.all(Array.from({ length: N }, (_, i) => consumer.invoke('plus', [i, 1000], { responseTimeout: 20_000 })));
      const ms = Date.now() - t0;
      results.forEach((r, i) => assert.equal(r, i + 1000));
      t.diagnostic(`1,000 concurrent calls in ${ms} ms`);
      const st = await sc.stats();
      assert.equal(st.listeners.bolt.downstream_cx_active, 1, 'one client connection');
      assert.equal(st.clusters.bolt_service.upstream_cx_active, 1, 'one upstream connection');
    });

    await t.test('oneway calls (sofa-bolt-node encoder) reach the server; nothing comes back', async () => {
      const sock = net.connect({ port, host: '127.0.0.1' });
      await new Promise((r) => sock.once('connect', r));
      const got: Buffer[] = [];
      sock.on('data', (d) => got.push(d));
      const enc = sofaEncoder();
      enc.pipe(sock);
      for (let i = 0; i < 3; i++) {
        enc.writeRequest(100 + i, { oneway: true, serverSignature: `${SVC}:1.0`, methodName: 'note', args: [{ $class: 'java.lang.String', $: `ow${i}` }], timeout: 3000, requestProps: { service: `${SVC}:1.0` } });
      }
      for (let i = 0; i < 50 && onewayHits.length < 3; i++) await sleep(20);
      assert.deepEqual(onewayHits.sort(), ['ow0', 'ow1', 'ow2']);
      await sleep(100);
      assert.equal(got.length, 0, 'no response to oneway requests');
      sock.destroy();
    });

    await t.test('Bolt v2 with CRC from the real sofa-bolt-node encoder: id rewritten, CRC recomputed both ways', async () => {
      const sock = net.connect({ port, host: '127.0.0.1' });
      await new Promise((r) => sock.once('connect', r));
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const bolt = require('sofa-bolt-node');
      const dec = bolt.decoder({ sentReqs: new Map([[7, { req: { methodName: 'plus' } }]]) });
      const res = new Promise<any>((resolve) => dec.on('response', resolve));
      sock.pipe(dec);
      const enc = sofaEncoder({ boltVersion: 2, crcEnable: true });
      enc.pipe(sock);
      enc.writeRequest(7, { serverSignature: `${SVC}:1.0`, methodName: 'plus', args: [{ $class: 'int', $: 20 }, { $class: 'int', $: 22 }], timeout: 3000, requestProps: { service: `${SVC}:1.0` } });
      const r = await res;
      assert.equal(r.packetId, 7);
      assert.equal(r.data.appResponse, 42);
      sock.destroy();
    });

    await t.test('a call after the client heartbeat (real client heartbeat path, idle time shortened)', async () => {
      const conns = [...client.client.connectionManager.connections.values()];
      assert.equal(conns.length, 1);
      const conn = conns[0];
      conn.options.maxIdleTime = 50; // sofa-rpc-node default: 30 s
      await sleep(100);
      const before = (await sc.stats()).listeners.bolt.downstream_rq_heartbeat;
      conn.heartbeat(); // what the client's 30 s health timer calls
      for (let i = 0; i < 50; i++) {
        if ((await sc.stats()).listeners.bolt.downstream_rq_heartbeat > before) break;
        await sleep(20);
      }
      assert.equal((await sc.stats()).listeners.bolt.downstream_rq_heartbeat, before + 1, 'the proxy answered the heartbeat');
      assert.equal(await consumer.invoke('plus', [2, 3], { responseTimeout: 3000 }), 5);
      // And a raw heartbeat frame from a test socket gets an ack.
      const raw = await rawClient(port);
      raw.sock.write(encodeHeartbeat(1, 9));
      await raw.wait(1);
      assert.equal(raw.frames[0].frame.isHeartbeat, true);
      assert.equal(raw.frames[0].frame.requestId, 9);
      raw.sock.destroy();
    });

    const st = await sc.stats();
    assert.equal(st.listeners.bolt.downstream_decode_error, 0);
    assert.ok(st.listeners.bolt.downstream_rs_success >= 1006);
    assert.ok(st.listeners.bolt.downstream_rs_error >= 1, 'the thrown error came back as a non-success status');
  } finally {
    await client.close();
    assert.equal(await sc.terminate(), 0);
    await server.close();
  }
});

test('a drain FINs an idle Bolt connection; a request that crosses the FIN is not sent upstream (it could never be answered)', { timeout: 30_000 }, async () => {
  const up = await fakeUpstream((r) => r.sock.write(rawResponse(r.frame, r.buf)));
  const sc = await startSidecar(boltProxyConfig({ clusters: { up: [up.port] } }));
  // allowHalfOpen: the client can still send after the proxy's FIN, as one whose request was on the wire.
  const sock = net.connect({ port: sc.ports.get('bolt')!, host: '127.0.0.1', allowHalfOpen: true });
  const c = new BoltCollector(sock);
  try {
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(rawRequest(1, SVC));
    await c.wait(1);
    assert.equal(c.frames[0].frame.status, 0);
    const ended = new Promise<void>((r) => sock.once('end', () => r()));
    process.kill(sc.pid, 'SIGTERM'); // drain: nothing in flight here, so the proxy FINs at once
    await ended;
    sock.write(rawRequest(2, SVC));
    await sleep(500);
    assert.deepEqual(up.requests.filter((r) => !r.frame.isHeartbeat).map((r) => r.frame.requestId), [1], 'the request sent after the FIN reached the upstream');
    assert.equal(c.frames.length, 1);
  } finally {
    sock.destroy();
    assert.equal(await sc.exited, 0, sc.output());
    await up.close();
  }
});

test('upstream killed mid-load: pending calls get CONNECTION_CLOSED, other clusters keep working', { timeout: 60_000 }, async () => {
  const onewayHits: string[] = [];
  const healthy = await startSofaServer(services(onewayHits));
  // The doomed upstream takes requests and dies after 200 of them without answering.
  const doomed = await fakeUpstream((r, all) => {
    if (all.requests.length === 200) for (const s of all.sockets) s.destroy();
  });
  const routes = [
    { match: { headers: [{ name: 'service', value: 'com.example.Doomed:1.0' }] }, route: { cluster_name: 'doomed' } },
    { match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: 'healthy' } },
  ];
  const sc = await startSidecar(boltProxyConfig({ clusters: { healthy: [healthy.port], doomed: [doomed.port] }, routes }));
  const port = sc.ports.get('bolt')!;
  const client = sofaClient(port);
  try {
    const consumer = await client.consumer(SVC);
    const raw = await rawClient(port);
    for (let i = 1; i <= 300; i++) raw.sock.write(rawRequest(i, 'com.example.Doomed:1.0', { timeout: 30_000 }));
    const healthyCalls = Promise.all(Array.from({ length: 200 }, (_, i) => consumer.invoke('plus', [i, 1], { responseTimeout: 10_000 })));
    await raw.wait(200, 10_000);
    const closedOnes = raw.frames.filter((f) => f.frame.status === STATUS_CONNECTION_CLOSED);
    assert.ok(closedOnes.length >= 200, `${closedOnes.length} CONNECTION_CLOSED`);
    const ids = new Set(raw.frames.map((f) => f.frame.requestId));
    assert.equal(ids.size, raw.frames.length, 'each request answered once');
    (await healthyCalls).forEach((r, i) => assert.equal(r, i + 1));
    assert.equal(await consumer.invoke('plus', [40, 2], { responseTimeout: 3000 }), 42);
    const st = await sc.stats();
    assert.ok(st.clusters.doomed.upstream_rq_cx_closed >= 200);
    assert.equal(st.clusters.healthy.upstream_rq_cx_closed, 0);
    raw.sock.destroy();
  } finally {
    await client.close();
    assert.equal(await sc.terminate(), 0);
    await healthy.close();
    await doomed.close();
  }
});
