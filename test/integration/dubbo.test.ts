/**
 * Dubbo through Outrigger with real peers: a dubbo2.js@2.3.9 DirectlyDubbo consumer and a
 * sofa-rpc-node consumer with dubbo-remoting@2.1.4, both calling a dubbo-remoting provider via
 * the real CLI, configured in the shape of MOSN's examples/codes/dubbo client_config.json.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { startSidecar } from '../helpers/sidecar';
import { sleep } from '../helpers/sofa';
import { closeDubbo2js, dubbo2js, dubboProxyConfig, dubboRawClient, dubboRequest, java, sofaDubboClient, startDubboProvider } from '../helpers/dubbo';
import { STATUS_OK } from '../../src/protocol/dubbo';

const SVC = 'com.example.DemoService';

function services(hits: string[]) {
  return {
    [SVC]: {
      async plus(a: number, b: number) {
        return a + b;
      },
      async echo(s: string) {
        return s;
      },
      async fail(msg: string) {
        throw new Error(`provider says ${msg}`);
      },
      async note(s: string) {
        hits.push(s);
        return null;
      },
    },
  };
}

test('dubbo2.js and sofa-rpc-node (dubbo-remoting) consumers -> Outrigger -> dubbo-remoting provider', { timeout: 90_000 }, async (t) => {
  const hits: string[] = [];
  const provider = await startDubboProvider(services(hits));
  const sc = await startSidecar(dubboProxyConfig({ clusters: { clientCluster: [provider.port] } }));
  const port = sc.ports.get('clientListener')!;
  const sofaClient = sofaDubboClient(port);
  const d2 = dubbo2js(port, SVC, {
    plus: (a: number, b: number) => [java.int(a), java.int(b)],
    echo: (s: string) => [java.String(s)],
    fail: (s: string) => [java.String(s)],
  });
  try {
    const consumer = await sofaClient.consumer(SVC);

    await t.test('sofa-rpc-node + dubbo-remoting: plain call, unicode, large string', async () => {
      assert.equal(await consumer.invoke('plus', [{ $class: 'int', $: 1 }, { $class: 'int', $: 2 }], { responseTimeout: 3000 }), 3);
      const s = 'héllo, 世界 🚀';
      assert.equal(await consumer.invoke('echo', [{ $class: 'java.lang.String', $: s }], { responseTimeout: 3000 }), s);
      const big = 'y'.repeat(300_000);
      assert.equal(await consumer.invoke('echo', [{ $class: 'java.lang.String', $: big }], { responseTimeout: 5000 }), big);
    });

    await t.test('dubbo2.js DirectlyDubbo: calls through the proxy', async () => {
      const r = await d2.svc.plus(20, 22);
      assert.equal(r.err, null, String(r.err));
      assert.equal(r.res, 42);
      const e = await d2.svc.echo('dubbo2.js ✓');
      assert.equal(e.res, 'dubbo2.js ✓');
    });

    await t.test('a method that throws: the provider error reaches both consumers', async () => {
      await assert.rejects(consumer.invoke('fail', [{ $class: 'java.lang.String', $: 'no' }], { responseTimeout: 3000 }), /provider says no/);
      const r = await d2.svc.fail('nope');
      assert.ok(r.err instanceof Error, 'dubbo2.js sees an error');
      assert.match(String(r.err.message ?? r.err), /provider says nope/);
    });

    await t.test('concurrent calls: 500 from each consumer at once, one upstream connection', async () => {
      const N = 500;
      const t0 = Date.now();
      const [a, b] = await Promise.all([
        Promise.all(Array.from({ length: N }, (_, i) => consumer.invoke('plus', [{ $class: 'int', $: i }, { $class: 'int', $: 1000 }], { responseTimeout: 20_000 }))),
        Promise.all(Array.from({ length: N }, (_, i) => d2.svc.plus(i, 7))),
      ]);
      t.diagnostic(`${2 * N} concurrent calls in ${Date.now() - t0} ms`);
      a.forEach((r: number, i: number) => assert.equal(r, i + 1000));
      b.forEach((r: { res: number; err: unknown }, i: number) => assert.equal(r.res, i + 7));
      const st = await sc.stats();
      assert.equal(st.listeners.clientListener.downstream_cx_active, 2, 'two client connections');
      assert.equal(st.clusters.clientCluster.upstream_cx_active, 1, 'one multiplexed upstream connection');
    });

    await t.test('heartbeats: the real clients\' heartbeat frames are answered by the proxy', async () => {
      const before = (await sc.stats()).listeners.clientListener.downstream_rq_heartbeat;
      // sofa-rpc-node's idle heartbeat (dubbo-remoting heartbeat encoder), idle time shortened
      const conn = [...sofaClient.client.connectionManager.connections.values()][0];
      conn.options.maxIdleTime = 10;
      await sleep(30);
      conn.heartbeat();
      // dubbo2.js's own heartbeat frame (sent every 180 s by its socket worker), on a raw socket
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const hb = require('dubbo2.js/es7/heartbeat').default.encode() as Buffer;
      const raw = await dubboRawClient(port);
      raw.sock.write(hb);
      await raw.wait(1);
      const ack = raw.frames[0].frame;
      assert.equal(ack.isEvent, true);
      assert.equal(ack.isRequest, false);
      assert.equal(ack.status, STATUS_OK);
      assert.equal(ack.requestId, hb.readUInt32BE(8));
      assert.deepEqual(raw.frames[0].buf.subarray(16), Buffer.from([0x4e]), 'body is the serialized null Java sends');
      raw.sock.destroy();
      for (let i = 0; i < 50; i++) {
        if ((await sc.stats()).listeners.clientListener.downstream_rq_heartbeat >= before + 2) break;
        await sleep(20);
      }
      assert.equal((await sc.stats()).listeners.clientListener.downstream_rq_heartbeat, before + 2);
      assert.equal(await consumer.invoke('plus', [{ $class: 'int', $: 2 }, { $class: 'int', $: 3 }], { responseTimeout: 3000 }), 5);
    });

    await t.test('one-way request (two-way bit clear): reaches the provider, no pending entry, no response', async () => {
      const raw = await dubboRawClient(port);
      raw.sock.write(dubboRequest(77, SVC, 'note', { oneway: true, args: Buffer.from([0x03, 0x6f, 0x77, 0x31]) }));
      for (let i = 0; i < 50 && hits.length < 1; i++) await sleep(20);
      assert.deepEqual(hits, ['ow1']);
      await sleep(100);
      assert.equal(raw.frames.length, 0);
      const st = await sc.stats();
      assert.equal(st.listeners.clientListener.downstream_rq_oneway, 1);
      assert.equal(st.clusters.clientCluster.upstream_rq_active, 0, 'no pending request left behind');
      raw.sock.destroy();
    });

    const st = await sc.stats();
    assert.equal(st.listeners.clientListener.downstream_decode_error, 0);
  } finally {
    closeDubbo2js(d2.dubbo);
    await sofaClient.close();
    assert.equal(await sc.terminate(), 0);
    await provider.close();
  }
});
