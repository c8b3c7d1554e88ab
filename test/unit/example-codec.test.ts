// The example protocol of docs/codec-api.md (MiniRPC, src/protocol/example): the codec alone,
// then through the real CLI, where it gets routing, multiplexing over one upstream connection,
// load balancing, timeouts, heartbeats and error answers only by implementing XCodec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { encodeMiniRpc, KIND_ONEWAY, KIND_PING, KIND_PONG, KIND_REQUEST, KIND_RESPONSE, miniRpcCodec } from '../../src/protocol/example/xcodec';
import { ErrorKind, ERR_TOO_LARGE, getCodec, HeaderName, NEED_MORE } from '../../src/protocol/types';
import { startSidecar } from '../helpers/sidecar';
import { listen } from '../helpers/net';
import { dubboProxyConfig } from '../helpers/dubbo';

test('MiniRPC codec: framing, ids, routing key, own frames', () => {
  assert.equal(getCodec('minirpc'), miniRpcCodec);
  const req = encodeMiniRpc(KIND_REQUEST, 0, 7, 'echo.v1', Buffer.from('hi'));
  assert.equal(miniRpcCodec.detect(req, 0, 1), undefined);
  assert.equal(miniRpcCodec.detect(req, 0, 2), true);
  assert.equal(miniRpcCodec.frameLength(req, 0, 10, 1 << 20), NEED_MORE);
  assert.equal(miniRpcCodec.frameLength(req, 0, 14, 1 << 20), req.length);
  assert.equal(miniRpcCodec.frameLength(req, 0, 14, 16), ERR_TOO_LARGE);
  assert.ok(miniRpcCodec.frameLength(Buffer.from('GET / HTTP/1.1\r\n'), 0, 16, 1 << 20) < 0);
  const f = miniRpcCodec.newFrame();
  assert.equal(miniRpcCodec.decode(req, 0, req.length, 1 << 20, f), req.length);
  assert.equal(f.requestId, 7);
  assert.equal(f.isRequest, true);
  assert.equal(miniRpcCodec.getRouteKey(req, f), 'echo.v1');
  assert.equal(miniRpcCodec.getHeader(req, f, new HeaderName('service')), 'echo.v1');
  miniRpcCodec.setRequestId(req, f, 0xabcdef01);
  assert.equal(req.readUInt32BE(4), 0xabcdef01);
  const ow = encodeMiniRpc(KIND_ONEWAY, 0, 1, 's', Buffer.alloc(0));
  miniRpcCodec.decode(ow, 0, ow.length, 1 << 20, f);
  assert.equal(f.isOneway, true);
  const ping = miniRpcCodec.encodeHeartbeat(5);
  miniRpcCodec.decode(ping, 0, ping.length, 1 << 20, f);
  assert.equal(f.isHeartbeat, true);
  const pong = miniRpcCodec.encodeHeartbeatAck(ping, f);
  assert.equal(pong[2], KIND_PONG);
  const err = miniRpcCodec.encodeError(0, 9, ErrorKind.Timeout, 'late');
  miniRpcCodec.decode(err, 0, err.length, 1 << 20, f);
  assert.equal(f.isSuccess, false);
  assert.equal(f.requestId, 9);
  assert.equal(err.toString('utf8', 14), 'late');
});

/** A MiniRPC server: answers "<name>:<payload>" unless the payload is "slow" (never answers). */
async function miniServer(name: string): Promise<{ port: number; server: net.Server; conns: number }> {
  const st = { port: 0, server: null as unknown as net.Server, conns: 0 };
  st.server = net.createServer((s) => {
    st.conns++;
    let pending = Buffer.alloc(0);
    s.on('data', (d) => {
      pending = Buffer.concat([pending, d]);
      for (;;) {
        const len = miniRpcCodec.frameLength(pending, 0, pending.length, 1 << 20);
        if (len <= 0 || len > pending.length) break;
        const f = miniRpcCodec.newFrame();
        miniRpcCodec.decode(pending, 0, len, 1 << 20, f);
        const payload = pending.toString('utf8', 14 + f.serviceLen, len);
        if (f.kind === KIND_PING) s.write(encodeMiniRpc(KIND_PONG, 0, f.requestId, '', Buffer.alloc(0)));
        else if (f.kind === KIND_REQUEST && payload !== 'slow') s.write(encodeMiniRpc(KIND_RESPONSE, 0, f.requestId, '', Buffer.from(`${name}:${payload}`)));
        pending = pending.subarray(len);
      }
    });
    s.on('error', () => {});
  });
  st.port = await listen(st.server);
  return st;
}

function collect(sock: net.Socket): { frames: { id: number; status: number; kind: number; payload: string }[]; wait(n: number): Promise<void> } {
  const frames: { id: number; status: number; kind: number; payload: string }[] = [];
  let pending = Buffer.alloc(0);
  sock.on('data', (d) => {
    pending = Buffer.concat([pending, d]);
    for (;;) {
      const len = miniRpcCodec.frameLength(pending, 0, pending.length, 1 << 20);
      if (len <= 0 || len > pending.length) break;
      const f = miniRpcCodec.newFrame();
      miniRpcCodec.decode(pending, 0, len, 1 << 20, f);
      frames.push({ id: f.requestId, status: f.status, kind: f.kind, payload: pending.toString('utf8', 14 + f.serviceLen, len) });
      pending = pending.subarray(len);
    }
  });
  return {
    frames,
    async wait(n: number) {
      for (let i = 0; i < 250 && frames.length < n; i++) await new Promise((r) => setTimeout(r, 20));
    },
  };
}

test('MiniRPC through the proxy: routing, load balancing, multiplexing, timeouts, heartbeats, errors', { timeout: 30_000 }, async () => {
  const a1 = await miniServer('a1');
  const a2 = await miniServer('a2');
  const routes = [
    { match: { headers: [{ name: 'service', value: 'echo.v1' }] }, route: { cluster_name: 'echo', timeout: '200ms' } },
  ];
  const cfg = dubboProxyConfig({ clusters: { echo: [a1.port, a2.port] }, routes, downstreamProtocol: 'minirpc', listenerName: 'mini' });
  const sc = await startSidecar(cfg);
  const port = sc.ports.get('mini')!;
  try {
    const socks = await Promise.all([0, 1].map(() => new Promise<net.Socket>((r) => { const s = net.connect({ port, host: '127.0.0.1' }, () => r(s)); })));
    const cs = socks.map(collect);
    for (let i = 1; i <= 20; i++) for (const s of socks) s.write(encodeMiniRpc(KIND_REQUEST, 0, i, 'echo.v1', Buffer.from(`p${i}`)));
    socks[0].write(encodeMiniRpc(KIND_REQUEST, 0, 100, 'nowhere', Buffer.from('x')));
    socks[0].write(encodeMiniRpc(KIND_REQUEST, 0, 101, 'echo.v1', Buffer.from('slow')));
    socks[0].write(encodeMiniRpc(KIND_PING, 0, 102, '', Buffer.alloc(0)));
    await cs[0].wait(23);
    await cs[1].wait(20);
    for (const c of cs) {
      const ok = c.frames.filter((f) => f.kind === KIND_RESPONSE && f.status === 0);
      assert.equal(ok.length, 20);
      for (const f of ok) assert.match(f.payload, new RegExp(`^a[12]:p${f.id}$`), 'each client gets its own id back');
    }
    const byId = new Map(cs[0].frames.map((f) => [f.id, f]));
    assert.equal(byId.get(100)!.status, miniRpcCodec.errorStatus(ErrorKind.NoRoute));
    assert.equal(byId.get(101)!.status, miniRpcCodec.errorStatus(ErrorKind.Timeout));
    assert.equal(byId.get(102)!.kind, KIND_PONG);
    const payloads = [...cs[0].frames, ...cs[1].frames].map((f) => f.payload);
    assert.ok(payloads.some((p) => p.startsWith('a1:')) && payloads.some((p) => p.startsWith('a2:')), 'both hosts served (load balancing)');
    assert.equal(a1.conns, 1, 'one multiplexed connection per host');
    assert.equal(a2.conns, 1);
    const st = await sc.stats();
    assert.equal(st.listeners.mini.downstream_rs_success, 40);
    assert.equal(st.listeners.mini.downstream_rs_timeout, 1);
    assert.equal(st.listeners.mini.downstream_rs_no_route, 1);
    assert.equal(st.listeners.mini.downstream_rq_heartbeat, 1);
    for (const s of socks) s.destroy();
  } finally {
    assert.equal(await sc.terminate(), 0);
    a1.server.close();
    a2.server.close();
  }
});
