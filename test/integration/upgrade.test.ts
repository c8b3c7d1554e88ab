/**
 * Hot upgrade under load (issue 14): while a sofa-rpc-node client calls at ~2,000 calls/s over
 * its long-lived connection, a dubbo2.js client calls in a loop, wrk loads HTTP/1.1 and h2load
 * loads h2c, a second Outrigger takes over with `outrigger start --upgrade`. Nothing fails,
 * no Bolt/Dubbo client connection closes (they are handed over between requests), the old
 * process exits by itself long before graceful_timeout, and the new process's counters include
 * the old one's. Also: the unread bytes of a half-received request travel with its connection,
 * and the per-connection transfer cost is measured.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import { startSidecar, tcpProxyConfig } from '../helpers/sidecar';
import { echoServer } from '../helpers/net';
import * as path from 'node:path';
import { boltProxyConfig, fakeUpstream, rawClient, rawRequest, rawResponse, sleep, startSofaServer } from '../helpers/sofa';
import { closeDubbo2js, dubbo2js, dubboProxyConfig, java, startDubboProvider } from '../helpers/dubbo';
import { backend, httpConfig, run } from '../helpers/http';
import { mergeConfigs, runSofaLoad, startUpgrade, upgradeDirFor, watchClientSockets } from '../helpers/upgrade';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const SVC = 'com.example.UpgradeService';
const DSVC = 'com.example.DubboUpgrade';
const ECHO_PROTO = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'echo.proto');

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const missing = !has('wrk') ? 'wrk is not installed' : !has('h2load') ? 'h2load is not installed' : '';

/** A grpc-js server of test/fixtures/echo.proto (Unary and Bidi echo) and its client package. */
async function echoGrpc(): Promise<{ pkg: any; port: number; close(): void }> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(ECHO_PROTO, { keepCase: true, defaults: true })) as any;
  const server = new grpc.Server();
  server.addService(pkg.outrigger.test.Echo.service, {
    Unary(call: grpc.ServerUnaryCall<{ message: string }, unknown>, cb: grpc.sendUnaryData<unknown>) {
      cb(null, { message: `echo ${call.request.message}`, index: process.pid });
    },
    Bidi(call: grpc.ServerDuplexStream<{ message: string }, unknown>) {
      let i = 0;
      call.on('data', (r: { message: string }) => call.write({ message: `re: ${r.message}`, index: i++ }));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { pkg, port, close: () => server.forceShutdown() };
}

/** A bidi stream writing a message every 40 ms for `ms`: resolves with its status, what it sent and the replies. */
/**
 * A bidi stream that writes a message every 40 ms for at least `ms`, and, when `hold` is given,
 * until 300 ms after `hold` settles (so that "open across the hand-over" does not depend on how
 * long a loaded machine takes to get there).
 */
function bidiStream(client: any, ms: number, hold?: Promise<unknown>): { done: Promise<{ status: grpc.StatusObject; sent: string[]; replies: string[]; endAt: number }> } {
  const sent: string[] = [];
  const replies: string[] = [];
  const call = client.Bidi();
  const done = new Promise<{ status: grpc.StatusObject; sent: string[]; replies: string[]; endAt: number }>((resolve, reject) => {
    let status: grpc.StatusObject | undefined;
    let ended = false;
    const finish = (): void => {
      if (status !== undefined && ended) resolve({ status, sent, replies, endAt: Date.now() });
    };
    call.on('data', (r: { message: string }) => replies.push(r.message));
    call.on('status', (st: grpc.StatusObject) => {
      status = st;
      finish();
    });
    call.on('end', () => {
      ended = true;
      finish();
    });
    call.on('error', reject);
  });
  let held = hold === undefined;
  const release = (): void => void setTimeout(() => (held = true), 300);
  hold?.then(release, release);
  void (async () => {
    const until = Date.now() + ms;
    for (let i = 0; Date.now() < until || !held; i++) {
      sent.push(`m${i}`);
      call.write({ message: `m${i}` });
      await sleep(40);
    }
    call.end();
  })();
  return { done };
}

test('upgrade under load, to a changed config: 0 failed requests, Bolt/Dubbo connections survive, a gRPC stream finishes, old exits by itself, counters carried', { skip: missing || false, timeout: 120_000 }, async () => {
  const sofaServer = await startSofaServer({ [SVC]: { async echo(x: unknown) { return x; } } });
  const provider = await startDubboProvider({ [DSVC]: { async plus(a: number, b: number) { return a + b; } } });
  const web = await backend('web');
  const web2 = await backend('web2');
  const g = await echoGrpc();
  const cfg = mergeConfigs([
    boltProxyConfig({ clusters: { bolt_service: [sofaServer.port] } }),
    dubboProxyConfig({ clusters: { dubbo_service: [provider.port] }, listenerName: 'dubbo' }),
    httpConfig(
      [
        { name: 'h1', downstream: 'Http1', upstream: 'Http1', router: 'r' },
        { name: 'h2c', downstream: 'Http2', upstream: 'Http1', router: 'r' },
        { name: 'g', downstream: 'Http2', upstream: 'Http2', router: 'rg' },
      ],
      [
        { router_config_name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'web' } }] }] },
        { router_config_name: 'rg', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/outrigger.test.Echo/' }, route: { cluster_name: 'grpc' } }] }] },
      ],
      { web: [web.port], grpc: [g.port] },
    ),
  ]);
  // The new process's config: one more listener, and cluster `web` moved to another upstream.
  const changed = JSON.parse(JSON.stringify(cfg));
  const h1 = changed.servers[0].listeners.find((l: { name: string }) => l.name === 'h1');
  changed.servers[0].listeners.push({ ...JSON.parse(JSON.stringify(h1)), name: 'extra', address: '127.0.0.1:0' });
  changed.cluster_manager.clusters.find((c: { name: string }) => c.name === 'web').hosts = [{ address: `127.0.0.1:${web2.port}` }];
  const changedFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'upgrade-changed-')), 'config.json');
  fs.writeFileSync(changedFile, JSON.stringify(changed));
  const dir = upgradeDirFor();
  const old = await startSidecar(cfg, { env: { OUTRIGGER_UPGRADE_DIR: dir } });
  const bolt = old.ports.get('bolt')!;
  const dubbo = old.ports.get('dubbo')!;
  const watch = watchClientSockets([dubbo]);
  const d2 = dubbo2js(dubbo, DSVC, { plus: (a: number, b: number) => [java.int(a), java.int(b)] });
  const grpcClient = new g.pkg.outrigger.test.Echo(`127.0.0.1:${old.ports.get('g')}`, grpc.credentials.createInsecure());
  let next: Awaited<ReturnType<typeof startUpgrade>> | undefined;
  let tookOverSignal: () => void = () => undefined;
  try {
    assert.equal(await d2.svc.plus(1, 2).then((r: { res: number }) => r.res), 3);
    const LOAD_MS = 7000;
    // A gRPC bidi stream open across the upgrade (4 s, and on until the new process has taken over): it finishes on the old process.
    const stream = bidiStream(grpcClient, 4000, new Promise<void>((r) => (tookOverSignal = r)));
    const until = Date.now() + LOAD_MS;
    // ~2,000 calls/s from another process, each awaited (a failure or a wrong answer is counted).
    const sofaLoad = runSofaLoad(bolt, SVC, 2000, LOAD_MS);
    await sofaLoad.ready;
    const dubboStats = { ok: 0, failed: 0, errors: [] as string[], okAt: [] as number[] };
    const dubboLoad = (async () => {
      for (let i = 0; Date.now() < until; i++) {
        const r = await d2.svc.plus(i, 1);
        if (r.err === null && r.res === i + 1) {
          dubboStats.ok++;
          dubboStats.okAt.push(Date.now());
        } else {
          dubboStats.failed++;
          dubboStats.errors.push(String(r.err));
        }
      }
    })();
    // wrk's own timeout is 2 s: a request answered later is no failure of the hand-over, and on a
    // loaded machine one was (session 11, 'timeout 1'); 5 s as reload-load's.
    const wrk = run('wrk', ['-t1', '-c4', `-d${Math.round(LOAD_MS / 1000)}s`, '--timeout', '5s', `http://127.0.0.1:${old.ports.get('h1')}/`], 60_000);
    const h2 = run('h2load', ['-c', '2', '-m', '1', '--rps', '200', '-D', String(Math.round(LOAD_MS / 1000)), `http://127.0.0.1:${old.ports.get('h2c')}/`], 60_000);
    await sleep(2000);
    const before = await old.stats();
    const t0 = Date.now();
    next = await startUpgrade(dir, { args: ['--workers', '1', '-c', changedFile] }).finally(() => tookOverSignal());
    const tookOver = Date.now() - t0;
    const code = await old.exited;
    const oldExitMs = Date.now() - t0;
    assert.equal(code, 0, old.output());
    const report = await next.oldDone;
    const sofaStats = await sofaLoad.done;
    await dubboLoad;
    const [w, h] = await Promise.all([wrk, h2]);
    const st = await stream.done;
    console.log(`# upgrade: new serving ${tookOver} ms after its start, old exited ${oldExitMs} ms after it (${report.ms} ms after the hand-over), ${report.migrated} connections handed over`);
    console.log(`# load: sofa ${sofaStats.ok} ok / ${sofaStats.failed} failed (${Math.round((sofaStats.ok * 1000) / sofaStats.ms)} calls/s), dubbo2.js ${dubboStats.ok} ok / ${dubboStats.failed} failed (${dubboStats.okAt.filter((t) => t < t0).length} before the hand-over began)`);
    console.log(`# wrk: ${/Requests\/sec:.*/.exec(w.stdout)?.[0]}; ${/(\d+) requests in/.exec(w.stdout)?.[0]}`);
    console.log(`# h2load: ${/requests: .*/.exec(h.stdout)?.[0]}`);
    console.log(`# grpc stream: ${st.sent.length} messages, ${st.replies.length} replies, status ${st.status.code}`);

    assert.equal(st.status.code, grpc.status.OK, st.status.details);
    assert.deepEqual(st.replies, st.sent.map((m) => `re: ${m}`), 'every stream message echoed, in order');
    assert.ok(st.sent.length >= 10, `stream messages: ${st.sent.length}`);
    assert.ok(st.endAt > t0 + tookOver, 'the stream was still open when the new process took over');
    assert.equal(sofaStats.failed, 0, sofaStats.errors.slice(0, 5).join('; '));
    assert.ok(sofaStats.ok > 2000, `sofa calls: ${sofaStats.ok}`);
    assert.equal(sofaStats.closed, 0, 'a sofa-rpc-node connection closed');
    assert.ok(sofaStats.opened >= 1);
    assert.equal(dubboStats.failed, 0, dubboStats.errors.slice(0, 5).join('; '));
    // Calls answered both before the hand-over began and after (until the load's end, ~5 s later).
    // Not a count: the calls are sequential in this process, which also serves wrk's closed loop
    // (the web backend) and the sofa upstream: on a loaded machine fewer than 100 completed in 7 s
    // (session 10) though none failed. A connection stalled by the hand-over answers none after it.
    const dubboBefore = dubboStats.okAt.filter((t) => t < t0).length;
    assert.ok(dubboBefore >= 1 && dubboStats.ok - dubboBefore >= 1, `dubbo calls: ${dubboBefore} answered before the hand-over began, ${dubboStats.ok - dubboBefore} after`);
    assert.equal(w.code, 0, w.stderr);
    assert.doesNotMatch(w.stdout, /Socket errors|Non-2xx/, w.stdout);
    assert.match(h.stdout, / 0 failed, 0 errored/, h.stdout);
    assert.match(h.stdout, /status codes: \d+ 2xx, 0 3xx, 0 4xx, 0 5xx/, h.stdout);
    // Every Bolt/Dubbo client connection survived: none closed, and they were handed over.
    assert.equal(watch.closed(), 0, `${watch.closed()} of ${watch.opened()} client connections closed`);
    assert.ok(watch.opened() >= 1);
    assert.ok(report.clean && report.migrated >= watch.opened() + sofaStats.opened, `handed over ${report.migrated}, clients ${watch.opened()} + ${sofaStats.opened}`);
    // By itself, long before graceful_timeout (20 s): the RPC connections left, the HTTP ones drained.
    assert.ok(oldExitMs < 10_000, `old process exited after ${oldExitMs} ms`);
    // The new process's counters continue from the old one's.
    const after = await next.stats();
    const rq = (s: any, l: string): number => s.listeners[l].downstream_rq_total;
    assert.ok(rq(after, 'bolt') >= rq(before, 'bolt') + 1, `bolt rq ${rq(before, 'bolt')} -> ${rq(after, 'bolt')}`);
    assert.ok(rq(after, 'bolt') >= sofaStats.ok, `bolt rq ${rq(after, 'bolt')} < calls ${sofaStats.ok}`);
    assert.ok(rq(after, 'dubbo') >= dubboStats.ok + 1, `dubbo rq ${rq(after, 'dubbo')} < calls ${dubboStats.ok}`);
    assert.ok(after.clusters.web.upstream_rq_total >= before.clusters.web.upstream_rq_total);
    assert.equal(after.server.upgrade_state, 4);
    assert.ok(after.server.upgrade_connections_adopted >= 2);
    // The survivors still work on the new process.
    assert.equal((await d2.svc.plus(40, 2)).res, 42);
    assert.equal(watch.closed(), 0);
    // The changed config serves: the new listener, and `web` on its new upstream.
    const seen2 = web2.seen.length;
    const viaExtra = await fetch(`http://127.0.0.1:${next.ports.get('extra')}/extra`);
    assert.equal(viaExtra.status, 200);
    await viaExtra.text();
    const viaH1 = await fetch(`http://127.0.0.1:${old.ports.get('h1')}/moved`);
    assert.equal(viaH1.status, 200);
    await viaH1.text();
    assert.deepEqual(web2.seen.slice(seen2).map((r) => r.url), ['/extra', '/moved']);
  } finally {
    tookOverSignal();
    const tf = Date.now();
    watch.stop();
    grpcClient.close();
    d2.dubbo._socketWorker._retry = 0; // dubbo2.js reconnects a closed socket for a minute otherwise
    closeDubbo2js(d2.dubbo);
    await next?.terminate();
    await old.terminate('SIGKILL');
    await Promise.all([sofaServer.close(), provider.close(), web.close(), web2.close()]);
    g.close();
    console.log(`# teardown ${Date.now() - tf} ms`);
  }
});

test('a half-received request travels with its connection; per-connection transfer cost', { timeout: 60_000 }, async () => {
  const up = await fakeUpstream((r) => r.sock.write(rawResponse(r.frame, r.buf)));
  const cfg = mergeConfigs([boltProxyConfig({ clusters: { bolt_service: [up.port] } })]);
  const dir = upgradeDirFor();
  const old = await startSidecar(cfg, { env: { OUTRIGGER_UPGRADE_DIR: dir } });
  const port = old.ports.get('bolt')!;
  const N = 200;
  const clients = await Promise.all(Array.from({ length: N }, () => rawClient(port)));
  let next: Awaited<ReturnType<typeof startUpgrade>> | undefined;
  try {
    // One request each, answered by the old process.
    clients.forEach((c, i) => c.sock.write(rawRequest(i + 1, SVC)));
    await Promise.all(clients.map((c) => c.wait(1)));
    for (const c of clients) assert.equal(c.frames[0].frame.status, 0);
    // The first half of a request on connection 0, held by the old process's frame reader.
    const req = rawRequest(5000, SVC);
    clients[0].sock.write(req.subarray(0, 20));
    await sleep(200);
    next = await startUpgrade(dir);
    const report = await next.oldDone;
    assert.equal(await old.exited, 0);
    assert.ok(report.migrated >= N, `handed over ${report.migrated} of ${N}`);
    console.log(`# ${N} idle Bolt connections handed over; old process exited ${report.ms} ms after the hand-over (${(report.ms / N).toFixed(2)} ms per connection, drain included)`);
    // The rest of the request: the new process joins it with the unread bytes it received.
    clients[0].sock.write(req.subarray(20));
    await clients[0].wait(2);
    assert.equal(clients[0].frames[1].frame.requestId, 5000);
    assert.equal(clients[0].frames[1].frame.status, 0);
    // Every connection is alive on the new process.
    clients.forEach((c, i) => c.sock.write(rawRequest(10_000 + i, SVC)));
    await Promise.all(clients.map((c, i) => c.wait(i === 0 ? 3 : 2)));
    for (const c of clients) assert.equal(c.closed, false);
    for (const c of clients) assert.ok(c.frames.every((f) => f.frame.status === 0));
  } finally {
    for (const c of clients) c.sock.destroy();
    await next?.terminate();
    await old.terminate('SIGKILL');
    await up.close();
  }
});


test('a Bolt connection that always has a request in flight moves too: its reads are held until what it sent is answered', { timeout: 60_000 }, async () => {
  // The upstream answers each request 20 ms after it; the client keeps two in flight (the next
  // goes out when one is answered), so the old process never finds the connection between
  // requests by itself. Before the hold, it stayed there until graceful_timeout (20 s) cut it.
  const up = await fakeUpstream((r) => void setTimeout(() => r.sock.write(rawResponse(r.frame, r.buf)), 20));
  const dir = upgradeDirFor();
  const old = await startSidecar(mergeConfigs([boltProxyConfig({ clusters: { bolt_service: [up.port] } })]), { env: { OUTRIGGER_UPGRADE_DIR: dir } });
  const c = await rawClient(old.ports.get('bolt')!);
  let closed = false;
  c.sock.on('close', () => (closed = true));
  let sent = 0;
  let answered = 0;
  let stop = false;
  const send = (): void => {
    if (!stop) c.sock.write(rawRequest(++sent, SVC));
  };
  // After the collector's own 'data' listener: c.frames holds this read's answers.
  c.sock.on('data', () => {
    for (; answered < c.frames.length; answered++) send();
  });
  let next: Awaited<ReturnType<typeof startUpgrade>> | undefined;
  try {
    send();
    await sleep(10);
    send();
    await sleep(300);
    next = await startUpgrade(dir);
    const report = await Promise.race([next.oldDone, sleep(10_000).then(() => null)]);
    assert.ok(report !== null, `the old process still held the busy connection 10 s after the hand-over (${answered} answered)`);
    assert.equal(report.migrated, 1);
    assert.equal(await old.exited, 0);
    // Still talking, now through the new process.
    const before = answered;
    await sleep(500);
    assert.ok(answered >= before + 4, `answered ${before} -> ${answered} in 500 ms after the move`);
    stop = true;
    await c.wait(sent, 5000);
    assert.equal(closed, false, 'the client connection closed');
    assert.deepEqual(c.frames.map((f) => f.frame.requestId), Array.from({ length: sent }, (_, i) => i + 1), 'each request answered once, in order');
    assert.ok(c.frames.every((f) => f.frame.status === 0));
    const st = await next.stats();
    assert.ok(st.listeners.bolt.downstream_rq_total >= sent, `bolt rq ${st.listeners.bolt.downstream_rq_total} < ${sent} sent (counters carried)`);
  } finally {
    c.sock.destroy();
    await next?.terminate();
    await old.terminate('SIGKILL');
    await up.close();
  }
});

test('a tcp_proxy connection moves between exchanges: the client sees no close, the new process opens its own upstream', { timeout: 60_000 }, async () => {
  const echo = await echoServer();
  const dir = upgradeDirFor();
  const old = await startSidecar(tcpProxyConfig({ upstreams: [echo.port] }), { env: { OUTRIGGER_UPGRADE_DIR: dir } });
  const port = old.ports.get('tcp')!;
  const sock = net.connect(port, '127.0.0.1');
  let closed = false;
  sock.on('close', () => (closed = true));
  let got = '';
  sock.on('data', (d: Buffer) => (got += d.toString()));
  let next: Awaited<ReturnType<typeof startUpgrade>> | undefined;
  try {
    await new Promise<void>((r) => sock.once('connect', () => r()));
    let n = 0;
    let stop = false;
    // Request/response exchanges with quiet gaps, before, during and after the upgrade.
    const talk = (async () => {
      while (!stop) {
        const line = `ping ${n++}\n`;
        const want = got.length + line.length;
        sock.write(line);
        const t = Date.now();
        while (got.length < want && Date.now() - t < 5000 && !closed) await sleep(2);
        await sleep(30);
      }
    })();
    await sleep(300);
    const upstreamsBefore = echo.sockets.size;
    next = await startUpgrade(dir);
    const report = await next.oldDone;
    assert.equal(await old.exited, 0);
    await sleep(300);
    stop = true;
    await talk;
    assert.equal(closed, false, 'the client connection closed');
    assert.equal(got, Array.from({ length: n }, (_, i) => `ping ${i}\n`).join(''));
    assert.ok(report.migrated >= 1, `handed over ${report.migrated}`);
    assert.equal(upstreamsBefore, 1);
    const st = await next.stats();
    assert.ok(st.clusters.backend.upstream_cx_total >= 2, 'the new process connected upstream itself');
    assert.equal(st.listeners.tcp.downstream_cx_total, 1, 'one client connection in all');
  } finally {
    sock.destroy();
    await next?.terminate();
    await old.terminate('SIGKILL');
    for (const s of echo.sockets) s.destroy();
    await new Promise<void>((r) => echo.server.close(() => r()));
  }
});

test('a grpc-js bidi stream open across the upgrade finishes on the old process with status OK; unary calls keep succeeding', { timeout: 90_000 }, async () => {
  const eg = await echoGrpc();
  const { pkg } = eg;
  const gport = eg.port;
  const cfg = mergeConfigs([
    httpConfig(
      [{ name: 'g', downstream: 'Http2', upstream: 'Http2', router: 'r' }],
      [{ router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/outrigger.test.Echo/' }, route: { cluster_name: 'grpc' } }] }] }],
      { grpc: [gport] },
    ),
  ]);
  const dir = upgradeDirFor();
  const old = await startSidecar(cfg, { env: { OUTRIGGER_UPGRADE_DIR: dir } });
  const target = `127.0.0.1:${old.ports.get('g')}`;
  // Separate channels (no shared subchannel pool): one carries the stream, the other the unary calls.
  const streamClient = new pkg.outrigger.test.Echo(target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  const unaryClient = new pkg.outrigger.test.Echo(target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  const unary = (m: string): Promise<string> =>
    new Promise((resolve, reject) => unaryClient.Unary({ message: m }, { deadline: Date.now() + 5000 }, (e: Error | null, r: { message: string }) => (e ? reject(e) : resolve(r.message))));
  let next: Awaited<ReturnType<typeof startUpgrade>> | undefined;
  try {
    assert.equal(await unary('warm'), 'echo warm');
    // The stream: one message every 40 ms for 4 s, each echoed; the upgrade happens 1 s in.
    const STREAM_MS = 4000;
    const stream = bidiStream(streamClient, STREAM_MS);
    // Unary calls, each awaited, before, during and after the upgrade.
    const uni = { ok: 0, failed: 0, errors: [] as string[] };
    let stopUnary = false;
    const unaryLoop = (async () => {
      for (let i = 0; !stopUnary; i++) {
        try {
          if ((await unary(`u${i}`)) === `echo u${i}`) uni.ok++;
          else uni.failed++;
        } catch (e) {
          uni.failed++;
          uni.errors.push(String(e));
        }
        await sleep(10);
      }
    })();
    await sleep(1000);
    const t0 = Date.now();
    next = await startUpgrade(dir, { args: ['--workers', '1'] });
    const okAtTakeOver = uni.ok;
    const code = await old.exited;
    const oldExitAt = Date.now();
    assert.equal(code, 0, old.output());
    const report = await next.oldDone;
    const { status, sent, replies, endAt: streamEndAt } = await stream.done;
    // Unary calls after the old process is gone: they reach the new one.
    await sleep(300);
    stopUnary = true;
    await unaryLoop;
    for (let i = 0; i < 5; i++) assert.equal(await unary(`after${i}`), `echo after${i}`);
    console.log(`# grpc: stream ${replies.length} messages over ${STREAM_MS} ms, old exited ${oldExitAt - t0} ms after the upgrade started (${streamEndAt ? oldExitAt - streamEndAt : '?'} ms after the stream ended); unary ${uni.ok} ok / ${uni.failed} failed`);

    assert.equal(status.code, grpc.status.OK, status.details);
    assert.deepEqual(replies, sent.map((m) => `re: ${m}`), 'every stream message echoed, in order');
    assert.ok(sent.length > 50, `stream messages: ${sent.length}`);
    assert.equal(uni.failed, 0, uni.errors.slice(0, 5).join('; '));
    assert.ok(uni.ok > okAtTakeOver, 'unary calls succeeded after the take-over');
    // The old process kept the stream's connection until the stream ended, then left by itself,
    // long before graceful_timeout (20 s).
    assert.ok(oldExitAt >= streamEndAt, 'the old process exited before the stream ended');
    assert.ok(oldExitAt - t0 >= STREAM_MS - 1000 - 200, `old process exited ${oldExitAt - t0} ms after the upgrade, before the stream could end`);
    assert.ok(oldExitAt - t0 < 10_000, `old process exited after ${oldExitAt - t0} ms`);
    assert.ok(report.clean, 'upgrade complete');
    const st = await next.stats();
    assert.equal(st.server.upgrade_state, 4);
    assert.ok(st.listeners.g.downstream_rq_total > okAtTakeOver, `g rq ${st.listeners.g.downstream_rq_total}`);
  } finally {
    streamClient.close();
    unaryClient.close();
    await next?.terminate();
    await old.terminate('SIGKILL');
    eg.close();
  }
});
