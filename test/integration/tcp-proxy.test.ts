/**
 * The TCP proxy end to end: the real CLI in a child process, real sockets on 127.0.0.1.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { close, connect, drainHash, echoServer, listen, pump, waitClose, waitPeerClose } from '../helpers/net';
import { rssOf, startSidecar, tcpProxyConfig } from '../helpers/sidecar';
import { loadBinding } from '../../src/native';

const MiB = 1024 * 1024;

async function bulkBothWays(workers: number, size: number): Promise<void> {
  let backendResult: Promise<[string, { hash: string; bytes: number }]> | undefined;
  const backend = net.createServer({ allowHalfOpen: true }, (s) => {
    backendResult = Promise.all([pump(s, size, 2), drainHash(s)]);
  });
  const bport = await listen(backend);
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [bport] }), { workers });
  try {
    const c = await connect(sc.ports.get('tcp')!);
    const [sentHash, received] = await Promise.all([pump(c, size, 1), drainHash(c)]);
    assert.ok(backendResult, 'backend got a connection');
    const [backendSent, backendReceived] = await backendResult!;
    assert.equal(backendReceived.bytes, size, 'all client bytes reached the backend');
    assert.equal(backendReceived.hash, sentHash, 'client -> backend stream intact');
    assert.equal(received.bytes, size, 'all backend bytes reached the client');
    assert.equal(received.hash, backendSent, 'backend -> client stream intact');
    c.destroy();
  } finally {
    assert.equal(await sc.terminate(), 0);
    await close(backend);
  }
}

test('256 MiB each way arrive intact through the proxy, one worker', { timeout: 180_000 }, () => bulkBothWays(1, 256 * MiB));

test('256 MiB each way arrive intact through the proxy, two workers', { timeout: 180_000 }, () => bulkBothWays(2, 256 * MiB));

test('5,000 concurrent connections all complete', { timeout: 120_000 }, async () => {
  const echo = await echoServer();
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [echo.port] }), { workers: 2 });
  try {
    const port = sc.ports.get('tcp')!;
    const N = 5000;
    const socks: net.Socket[] = [];
    // Open all of them first (in batches, so the listen backlog is not overrun), then talk.
    for (let i = 0; i < N; i += 250) {
      const batch = await Promise.all(Array.from({ length: Math.min(250, N - i) }, () => connect(port)));
      socks.push(...batch);
    }
    assert.equal(socks.length, N);
    // A client's connect completes in the kernel before the worker's accept: give the accepts
    // (not the assertion) a moment to catch up.
    let st = await sc.stats();
    for (let i = 0; i < 50 && st.listeners.tcp.downstream_cx_active < N; i++) {
      await new Promise((r) => setTimeout(r, 100));
      st = await sc.stats();
    }
    assert.equal(st.listeners.tcp.downstream_cx_active, N, 'all connections are open at once');
    const results = await Promise.all(
      socks.map(
        (s, i) =>
          new Promise<string>((resolve, reject) => {
            let got = '';
            s.setEncoding('utf8');
            s.on('data', (d: string) => (got += d));
            s.on('end', () => resolve(got));
            s.on('error', reject);
            s.end(`hello ${i}\n`);
          }),
      ),
    );
    const wrong = results.map((r, i) => (r === `hello ${i}\n` ? -1 : i)).filter((i) => i >= 0);
    if (wrong.length > 0) {
      const after = await sc.stats();
      assert.fail(`${wrong.length} connections got a wrong answer (first: #${wrong[0]} got ${JSON.stringify(results[wrong[0]])}); stats ${JSON.stringify(after.clusters)}`);
    }
  } finally {
    await sc.terminate();
    await close(echo.server);
  }
});

test('RSS stays bounded when the upstream reads slowly (watermarks pause the downstream)', { timeout: 120_000 }, async () => {
  let slowSock: net.Socket | undefined;
  let received = 0;
  const slow = net.createServer((s) => {
    slowSock = s;
    s.pause();
    // Read ~ 4 MiB/s: far slower than the client can push.
    const t = setInterval(() => {
      const d = s.read(64 * 1024) as Buffer | null;
      if (d) received += d.length;
      else s.read(0);
    }, 15);
    s.on('close', () => clearInterval(t));
    s.on('error', () => {});
  });
  const bport = await listen(slow);
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [bport], bufferLimit: 256 * 1024, clusterBufferLimit: 256 * 1024 }));
  try {
    const rss0 = rssOf(sc.pid);
    const c = await connect(sc.ports.get('tcp')!);
    c.on('error', () => {});
    // Offer 512 MiB; the client can only write as fast as the slow reader allows.
    let offered = 0;
    const big = Buffer.alloc(MiB, 7);
    const stopAt = Date.now() + 4000;
    let peak = rss0;
    let sample: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      const go = (): void => {
        while (Date.now() < stopAt && offered < 512 * MiB) {
          offered += big.length;
          if (!c.write(big)) {
            c.once('drain', go);
            return;
          }
        }
        resolve();
      };
      sample = setInterval(() => (peak = Math.max(peak, rssOf(sc.pid))), 100);
      go();
      setTimeout(resolve, 4500);
    });
    clearInterval(sample);
    peak = Math.max(peak, rssOf(sc.pid));
    const st = await sc.stats();
    // The client's own buffers hold what the proxy refused; the proxy holds at most its watermarks + socket buffers.
    assert.ok(st.listeners.tcp.downstream_cx_rx_paused >= 1, 'downstream reading was paused by the upstream watermark');
    const grew = peak - rss0;
    assert.ok(grew < 64 * MiB, `proxy RSS grew by ${(grew / MiB).toFixed(1)} MiB while the upstream was slow`);
    assert.ok(st.listeners.tcp.downstream_bytes_rx < 64 * MiB, `proxy read only what it could forward (${st.listeners.tcp.downstream_bytes_rx} bytes)`);
    assert.ok(received > 0, 'slow upstream received data');
    c.destroy();
  } finally {
    slowSock?.destroy();
    await sc.terminate();
    await close(slow);
  }
});

test('upstream down: downstream is closed promptly and connect failures are counted', { timeout: 30_000 }, async () => {
  // A port with nothing listening: connection refused.
  const tmp = net.createServer();
  const deadPort = await listen(tmp);
  await close(tmp);
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [deadPort], connectTimeout: '2s', maxConnectAttempts: 1 }));
  try {
    const t0 = Date.now();
    const c = await connect(sc.ports.get('tcp')!);
    c.on('error', () => {});
    c.resume();
    await waitPeerClose(c);
    const took = Date.now() - t0;
    assert.ok(took < 2000, `downstream closed after ${took} ms, within the 2 s connect timeout`);
    c.destroy();
    const st = await sc.stats();
    assert.equal(st.clusters.backend.upstream_cx_connect_fail, 1);
    // The proxy's own 'close' of the downstream socket may land a moment after the client saw it.
    let active = st.listeners.tcp.downstream_cx_active;
    for (let i = 0; i < 40 && active !== 0; i++) {
      await new Promise((r) => setTimeout(r, 25));
      active = (await sc.stats()).listeners.tcp.downstream_cx_active;
    }
    assert.equal(active, 0);
  } finally {
    await sc.terminate();
  }
});

test('connect timeout: an upstream that never answers the handshake closes the downstream after connect_timeout', { timeout: 30_000 }, async (t) => {
  let nb;
  try {
    nb = loadBinding('native');
  } catch (e) {
    t.skip(`needs the native addon to make a listening socket nobody accepts on: ${(e as Error).message}`);
    return;
  }
  // backlog 1 and nobody accepting: once the accept queue is full, SYNs are dropped.
  const { fd, port } = nb.listenReusePort('127.0.0.1', 0, 1);
  const fillers: net.Socket[] = [];
  try {
    for (let i = 0; i < 6; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      fillers.push(s);
    }
    await new Promise((r) => setTimeout(r, 200));
    const sc = await startSidecar(tcpProxyConfig({ upstreams: [port], connectTimeout: '500ms', maxConnectAttempts: 1 }));
    try {
      const t0 = Date.now();
      const c = await connect(sc.ports.get('tcp')!);
      c.on('error', () => {});
      c.resume();
      await waitPeerClose(c);
      const took = Date.now() - t0;
      assert.ok(took >= 400 && took < 2000, `downstream closed after ${took} ms (connect_timeout 500 ms)`);
      c.destroy();
      const st = await sc.stats();
      assert.equal(st.clusters.backend.upstream_cx_connect_timeout, 1);
      assert.equal(st.clusters.backend.upstream_cx_connect_fail, 1);
    } finally {
      await sc.terminate();
    }
  } finally {
    for (const s of fillers) s.destroy();
    nb.closeFd(fd);
  }
});

test('max_connect_attempts retries another host before giving up', { timeout: 30_000 }, async () => {
  const tmp = net.createServer();
  const deadPort = await listen(tmp);
  await close(tmp);
  const echo = await echoServer();
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [deadPort, echo.port], maxConnectAttempts: 2 }));
  try {
    for (let i = 0; i < 4; i++) {
      const c = await connect(sc.ports.get('tcp')!);
      const got = drainHash(c);
      c.end('x');
      const r = await got;
      assert.equal(r.bytes, 1, 'every connection reached the live host');
    }
    const st = await sc.stats();
    assert.ok(st.clusters.backend.upstream_cx_connect_fail >= 1, 'the dead host was tried');
  } finally {
    await sc.terminate();
    await close(echo.server);
  }
});

test('half-close both ways', { timeout: 30_000 }, async () => {
  // Backend: on client FIN, sends "bye" then FINs; keeps reading after its own FIN too.
  let backendGot = '';
  const backend = net.createServer({ allowHalfOpen: true }, (s) => {
    s.setEncoding('utf8');
    s.on('data', (d: string) => (backendGot += d));
    s.on('end', () => s.end('bye'));
  });
  const bport = await listen(backend);
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [bport] }));
  try {
    // client -> FIN first
    const c = await connect(sc.ports.get('tcp')!);
    c.setEncoding('utf8');
    let got = '';
    c.on('data', (d: string) => (got += d));
    const ended = new Promise<void>((r) => c.on('end', () => r()));
    c.end('hello');
    await ended;
    assert.equal(got, 'bye', 'after the client half-closed, the backend could still send');
    assert.equal(backendGot, 'hello');
    await waitClose(c);

    // backend -> FIN first: the client can still send after receiving FIN
    const backend2Got: string[] = [];
    const b2 = net.createServer({ allowHalfOpen: true }, (s) => {
      s.setEncoding('utf8');
      let acc = '';
      s.on('data', (d: string) => (acc += d));
      s.on('end', () => {
        backend2Got.push(acc);
        s.destroy();
      });
      s.end('early-fin');
    });
    const b2port = await listen(b2);
    const sc2 = await startSidecar(tcpProxyConfig({ upstreams: [b2port] }));
    try {
      const c2 = await connect(sc2.ports.get('tcp')!);
      c2.setEncoding('utf8');
      let got2 = '';
      c2.on('data', (d: string) => (got2 += d));
      await new Promise<void>((r) => c2.on('end', () => r()));
      assert.equal(got2, 'early-fin');
      c2.end('still-talking');
      await waitClose(c2);
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(backend2Got, ['still-talking'], 'bytes sent after the upstream FIN reached it');
    } finally {
      await sc2.terminate();
      await close(b2);
    }
  } finally {
    await sc.terminate();
    await close(backend);
  }
});

test('idle timeout closes both sides; traffic keeps a session alive', { timeout: 30_000 }, async () => {
  const echo = await echoServer();
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [echo.port], idleTimeout: '600ms' }));
  try {
    const busy = await connect(sc.ports.get('tcp')!);
    busy.resume();
    const idle = await connect(sc.ports.get('tcp')!);
    idle.resume();
    idle.write('x');
    const t0 = Date.now();
    const tick = setInterval(() => busy.write('ping'), 150);
    await waitPeerClose(idle);
    const took = Date.now() - t0;
    assert.ok(took >= 500 && took < 2500, `idle connection closed after ${took} ms`);
    assert.ok(!busy.readableEnded && !busy.destroyed, 'busy connection is still open');
    clearInterval(tick);
    await waitPeerClose(busy);
    idle.destroy();
    busy.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const st = await sc.stats();
    assert.ok(st.listeners.tcp.downstream_cx_idle_timeout >= 2);
    assert.equal(echo.sockets.size, 0, 'upstream sides were closed too');
  } finally {
    await sc.terminate();
    await close(echo.server);
  }
});

test('admin endpoints answer while traffic flows; Prometheus output parses', { timeout: 60_000 }, async () => {
  const echo = await echoServer();
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [echo.port] }), { workers: 2 });
  try {
    const port = sc.ports.get('tcp')!;
    let stop = false;
    let roundTrips = 0;
    const load = Array.from({ length: 8 }, async () => {
      const c = await connect(port);
      const msg = Buffer.alloc(4096, 1);
      while (!stop) {
        await new Promise<void>((resolve) => {
          let got = 0;
          const on = (d: Buffer): void => {
            got += d.length;
            if (got >= msg.length) {
              c.off('data', on);
              resolve();
            }
          };
          c.on('data', on);
          c.write(msg);
        });
        roundTrips++;
      }
      c.destroy();
    });
    await new Promise((r) => setTimeout(r, 300));
    const base = `http://127.0.0.1:${sc.adminPort}`;
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const [stats, prom, dump, ready] = await Promise.all([
        fetch(`${base}/api/v1/stats`).then((r) => r.json()),
        fetch(`${base}/stats/prometheus`).then(async (r) => ({ type: r.headers.get('content-type'), text: await r.text() })),
        fetch(`${base}/api/v1/config_dump`).then((r) => r.json()),
        fetch(`${base}/ready`).then((r) => r.status),
      ]);
      assert.ok(Date.now() - t0 < 2000, 'admin answered within 2 s under load');
      assert.equal(ready, 200);
      assert.ok((stats as any).listeners.tcp.downstream_cx_total >= 8);
      assert.ok((dump as any).servers || (dump as any).Servers, 'config_dump has the config');
      assert.match(prom.type ?? '', /text\/plain/);
      assertPrometheus(prom.text);
      assert.match(prom.text, /downstream_bytes_rx\S*\{[^}]*listener="tcp"[^}]*\} [0-9.e+]+/);
      await new Promise((r) => setTimeout(r, 100));
    }
    stop = true;
    await Promise.all(load);
    assert.ok(roundTrips > 50, `traffic flowed (${roundTrips} round trips)`);
  } finally {
    await sc.terminate();
    await close(echo.server);
  }
});

/** Checks every line against the Prometheus text exposition format (0.0.4). */
function assertPrometheus(text: string): void {
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const label = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
  const sample = new RegExp(`^${name}(\\{(${label})(,${label})*,?\\})? (-?[0-9.]+(e[+-]?[0-9]+)?|NaN|[+-]Inf)( -?[0-9]+)?$`);
  const typeLine = new RegExp(`^# TYPE ${name} (counter|gauge|histogram|summary|untyped)$`);
  const help = new RegExp(`^# HELP ${name} .*$`);
  let samples = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# TYPE')) assert.match(line, typeLine);
    else if (line.startsWith('# HELP')) assert.match(line, help);
    else if (line.startsWith('#')) continue;
    else {
      assert.match(line, sample, `bad sample line: ${line}`);
      samples++;
    }
  }
  assert.ok(samples > 10, 'has samples');
}

test('a crashed worker is restarted and the listener keeps serving', { timeout: 60_000 }, async () => {
  const echo = await echoServer();
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [echo.port] }), { workers: 2, env: { OUTRIGGER_TEST_HOOKS: '1' } });
  try {
    const port = sc.ports.get('tcp')!;
    sc.proc.kill('SIGUSR2');
    // Wait for the crash to be logged (a fixed 1.5 s was too short on a loaded machine; the line
    // is written synchronously now), then for the restart to be done (a fixed 1 s was too short
    // on a loaded machine too): the crashed worker's stats removed and two workers live again.
    // In fallback mode (OUTRIGGER_NATIVE=0) one worker thread runs whatever was asked for (the
    // threads could share a listening socket only as one descriptor, closed by the first thread
    // that stops): the new one rebinds the listener, and until then connections are refused.
    // With the addon the main thread holds the listening socket: nothing is refused.
    const crashed = /worker exited; restarting|worker crashed/;
    // The signal is sent once more if 5 s pass with no crash line (a test-hook message lost on a
    // loaded machine was seen twice in suite runs, never reproduced alone); a crash that happened
    // but was not logged still fails below, on worker_restarts === 1.
    let resent = false;
    for (const t0 = Date.now(); !crashed.test(sc.output()) && Date.now() - t0 < 15_000; ) {
      if (!resent && Date.now() - t0 > 5_000 && sc.proc.exitCode === null) {
        resent = true;
        sc.proc.kill('SIGUSR2');
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.match(sc.output(), crashed, `no crash line (SIGUSR2 sent ${resent ? 'twice' : 'once'}; sidecar exit ${sc.proc.exitCode}/${sc.proc.signalCode}); output:\n${sc.output().slice(-4000)}`);
    const fallback = process.env.OUTRIGGER_NATIVE === '0';
    const workers = fallback ? 1 : 2;
    const removed = 1;
    if (fallback) assert.match(sc.output(), /1 worker thread instead of the workers asked for/, 'the clamp is said');
    // Admin stats during the restart; a failed fetch says why (a dead sidecar shows its exit and
    // output), and is tried again while the sidecar lives (a loaded machine, a stale pooled socket).
    const serverStats = async (): Promise<{ workers: number; workers_removed: number }> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return (await sc.stats()).server;
        } catch (e) {
          const alive = sc.proc.exitCode === null && sc.proc.signalCode === null;
          if (alive && attempt < 3) {
            await new Promise((res) => setTimeout(res, 200));
            continue;
          }
          if (!alive) await Promise.race([sc.closed, new Promise((res) => setTimeout(res, 2000))]); // the text an abort printed
          throw new Error(`after the crash: ${(e as Error).message}; output:\n${sc.output().slice(-6000)}`, { cause: e });
        }
      }
    };
    let server = await serverStats();
    for (const t0 = Date.now(); (server.workers !== workers || server.workers_removed !== removed) && Date.now() - t0 < 15_000; ) {
      await new Promise((res) => setTimeout(res, 50));
      server = await serverStats();
    }
    assert.deepEqual([server.workers, server.workers_removed], [workers, removed], 'the workers were restarted');
    if (fallback) {
      // The new worker is counted before it has bound the listener again: refused until then.
      for (const t0 = Date.now(); ; ) {
        const ok = await connect(port).then((c) => (c.destroy(), true), () => false);
        if (ok) break;
        assert.ok(Date.now() - t0 < 15_000, 'the listener is bound again within 15 s');
        await new Promise((res) => setTimeout(res, 50));
      }
    }
    for (let i = 0; i < 40; i++) {
      const c = await connect(port);
      const got = drainHash(c);
      c.end('abc');
      assert.equal((await got).bytes, 3);
    }
    const st = await sc.stats();
    assert.equal(st.server.worker_restarts, 1, 'restart counted in stats');
    // The drain ends it cleanly (an abort while the workers stop would be a signal here).
    const code = await sc.terminate();
    assert.deepEqual([code, sc.proc.signalCode], [0, null], sc.output().slice(-4000));
  } finally {
    await sc.terminate();
    await close(echo.server);
  }
});

test('SIGTERM drains: stops accepting, live connections finish, exit 0', { timeout: 60_000 }, async () => {
  const echo = await echoServer();
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [echo.port] }));
  const port = sc.ports.get('tcp')!;
  const live = await connect(port);
  live.setEncoding('utf8');
  let got = '';
  live.on('data', (d: string) => (got += d));
  live.write('before ');
  await new Promise((r) => setTimeout(r, 100));
  sc.proc.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  // New connections are refused now.
  await assert.rejects(connect(port), /ECONNREFUSED|ECONNRESET/);
  // The live one still works.
  live.write('after');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(got, 'before after');
  assert.equal(sc.proc.exitCode, null, 'still running while a connection is live');
  live.end();
  const code = await sc.exited;
  assert.equal(code, 0);
  await close(echo.server);
});
