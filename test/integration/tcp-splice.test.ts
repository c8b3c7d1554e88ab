/**
 * tcp_proxy's kernel-side forwarding (splice(2) through one pipe per direction, native/splice.cc):
 * once a session has moved OUTRIGGER_SPLICE_AFTER bytes through JS, its bytes go socket -> pipe
 * -> socket. Real sockets through the CLI in a child process (one worker on the main thread, so
 * its pipes are visible in /proc/<pid>/fd): byte-exact transfer both ways, half-close each way,
 * resets, a slow reader, stats and access-log counts.
 *
 * tcp-splice-fallback.test.ts runs the same cases with OUTRIGGER_NATIVE=0 (the JS path, no pipes).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { close, drainHash, listen, pump, waitPeerClose } from '../helpers/net';
import { rssOf, startSidecar, tcpProxyConfig, type RunningSidecar, type TcpProxyOpts } from '../helpers/sidecar';
import { startUpgrade, upgradeDirFor } from '../helpers/upgrade';
import { native } from '../../src/native';

const MiB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** The sidecar (a child with this process's environment) splices when the addon has it. */
const EXPECT_SPLICE = process.env.OUTRIGGER_NATIVE !== '0' && native.splice !== null;
const ENV = { OUTRIGGER_SPLICE_AFTER: String(64 * 1024) };

function pipesOf(pid: number): number {
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('pipe:')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  for (const t0 = Date.now(); !cond(); ) {
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * After the session moved more than OUTRIGGER_SPLICE_AFTER bytes: with the addon, its two pipes
 * (four fds) appear; on the JS path no pipe ever does.
 */
async function waitSpliced(sc: RunningSidecar, baseline: number): Promise<void> {
  if (EXPECT_SPLICE) return until('the session to be spliced (two more pipes)', () => pipesOf(sc.pid) === baseline + 4);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(pipesOf(sc.pid), baseline, 'no pipes on the JS path');
}

/** Polls the admin stats until pred holds; returns them. */
async function statsWhen(sc: RunningSidecar, what: string, pred: (st: any) => boolean): Promise<any> {
  for (const t0 = Date.now(); ; ) {
    const st = await sc.stats();
    if (pred(st)) return st;
    if (Date.now() - t0 > 5000) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(st.listeners)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Reads exactly n bytes, then leaves the socket paused (resume() it after adding a 'data' listener). */
function readBytes(s: net.Socket, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer): void => {
      parts.push(d);
      got += d.length;
      if (got >= n) {
        s.off('data', onData);
        s.pause();
        const all = Buffer.concat(parts);
        if (all.length > n) s.unshift(all.subarray(n));
        resolve(all.subarray(0, n));
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.resume();
  });
}

/** A sidecar proxying to a backend with no connection handler (tests take its sockets); `baseline`: its pipes at start. */
async function withProxy(fn: (sc: RunningSidecar, backend: net.Server, baseline: number) => Promise<void>, opts: Partial<TcpProxyOpts> = {}, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const backend = net.createServer({ allowHalfOpen: true });
  const bport = await listen(backend);
  const sc = await startSidecar(tcpProxyConfig({ ...opts, upstreams: [bport] }), { env: { ...ENV, ...env } });
  try {
    await fn(sc, backend, pipesOf(sc.pid));
  } finally {
    assert.equal(await sc.terminate(), 0);
    await close(backend);
  }
}

/**
 * A client connection through the proxy and the backend's side of it, once spliced: 1 MiB goes
 * from `first` to the other end before (both sockets are left paused).
 */
async function splicedPair(sc: RunningSidecar, backend: net.Server, baseline: number, first: 'client' | 'backend'): Promise<{ c: net.Socket; b: net.Socket }> {
  const accepted = new Promise<net.Socket>((resolve) => backend.once('connection', resolve));
  const c = await connect(sc.ports.get('tcp')!);
  const b = await accepted;
  c.on('error', () => {});
  b.on('error', () => {});
  const [from, to] = first === 'client' ? [c, b] : [b, c];
  from.write(Buffer.alloc(MiB, 1));
  await readBytes(to, MiB);
  await waitSpliced(sc, baseline);
  return { c, b };
}

test('spliced bulk: 48 MiB each way arrive intact; two pipes while it runs, none after; stats and access log count every byte', { timeout: 120_000 }, async () => {
  const size = 48 * MiB;
  let backendResult: Promise<[string, { hash: string; bytes: number }]> | undefined;
  const backend = net.createServer({ allowHalfOpen: true }, (s) => {
    backendResult = Promise.all([pump(s, size, 12), drainHash(s)]);
  });
  const bport = await listen(backend);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'splice-'));
  const logPath = path.join(dir, 'access.log');
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [bport], accessLogPath: logPath }), { env: ENV });
  try {
    const baseline = pipesOf(sc.pid);
    const c = await connect(sc.ports.get('tcp')!);
    let maxPipes = baseline;
    const sampler = setInterval(() => (maxPipes = Math.max(maxPipes, pipesOf(sc.pid))), 5);
    const [sentHash, received] = await Promise.all([pump(c, size, 11), drainHash(c)]);
    clearInterval(sampler);
    const [backendSent, backendReceived] = await backendResult!;
    assert.equal(backendReceived.bytes, size);
    assert.equal(backendReceived.hash, sentHash, 'client -> backend stream intact');
    assert.equal(received.bytes, size);
    assert.equal(received.hash, backendSent, 'backend -> client stream intact');
    assert.equal(maxPipes - baseline, EXPECT_SPLICE ? 4 : 0, 'one pipe per direction while spliced');
    c.destroy();
    await until('the pipes to be closed', () => pipesOf(sc.pid) === baseline);
    const st = await statsWhen(sc, 'the session to end', (x) => x.listeners.tcp.downstream_cx_active === 0);
    assert.equal(st.listeners.tcp.downstream_bytes_rx, size, 'listener bytes received');
    assert.equal(st.listeners.tcp.downstream_bytes_tx, size, 'listener bytes sent');
    assert.equal(st.clusters.backend.upstream_bytes_tx, size, 'cluster bytes sent');
    assert.equal(st.clusters.backend.upstream_bytes_rx, size, 'cluster bytes received');
    await until('the access log line', () => fs.existsSync(logPath) && fs.readFileSync(logPath, 'utf8').includes(String(size)));
    const line = fs.readFileSync(logPath, 'utf8');
    assert.ok(line.split(String(size)).length - 1 >= 2, `access log counts both directions: ${line}`);
  } finally {
    assert.equal(await sc.terminate(), 0);
    await close(backend);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('spliced half-close each way: FIN forwarded once drained, the other direction keeps flowing', { timeout: 60_000 }, async () => {
  await withProxy(async (sc, backend, baseline) => {
    // 1. The client half-closes first; the backend then answers 2 MiB and half-closes.
    {
      const { c, b } = await splicedPair(sc, backend, baseline, 'client');
      const backendGot = drainHash(b);
      const clientGot = drainHash(c);
      b.resume();
      c.resume();
      c.end(Buffer.alloc(MiB, 2));
      const bg = await backendGot; // 'end' seen by the backend: the FIN was forwarded
      assert.equal(bg.bytes, MiB, 'every byte before the client FIN reached the backend');
      const sent = await pump(b, 2 * MiB, 5);
      const cg = await clientGot;
      assert.equal(cg.bytes, 2 * MiB);
      assert.equal(cg.hash, sent, 'the backend could still send after the client half-closed');
      await until('pipes closed', () => pipesOf(sc.pid) === baseline);
      await waitPeerClose(c);
    }
    // 2. The backend half-closes first; the client keeps sending, then half-closes.
    {
      const { c, b } = await splicedPair(sc, backend, baseline, 'backend');
      const clientGot = drainHash(c);
      const backendGot = drainHash(b);
      c.resume();
      b.resume();
      b.end(Buffer.alloc(1000, 4));
      const cg = await clientGot;
      assert.equal(cg.bytes, 1000, 'every byte before the backend FIN reached the client');
      const sent = await pump(c, 3 * MiB, 6);
      const bg = await backendGot;
      assert.equal(bg.bytes, 3 * MiB);
      assert.equal(bg.hash, sent, 'bytes sent after the upstream FIN reached it');
      await until('pipes closed', () => pipesOf(sc.pid) === baseline);
    }
  });
});

test('spliced resets: an upstream reset closes the client, a client reset closes the upstream', { timeout: 60_000 }, async () => {
  await withProxy(async (sc, backend, baseline) => {
    for (const who of ['upstream', 'client'] as const) {
      const { c, b } = await splicedPair(sc, backend, baseline, 'client');
      c.resume();
      b.resume();
      const t0 = Date.now();
      if (who === 'upstream') {
        b.resetAndDestroy();
        await waitPeerClose(c);
      } else {
        c.resetAndDestroy();
        await waitPeerClose(b);
      }
      assert.ok(Date.now() - t0 < 2000, `the ${who} reset reached the other side promptly`);
      await until('pipes closed', () => pipesOf(sc.pid) === baseline);
      c.destroy();
      b.destroy();
    }
    await statsWhen(sc, 'both sessions to end', (x) => x.listeners.tcp.downstream_cx_active === 0);
  });
});

test('spliced slow reader: the upstream is held back (memory bounded) and nothing is lost once the client reads', { timeout: 120_000 }, async () => {
  await withProxy(async (sc, backend, baseline) => {
    const { c, b } = await splicedPair(sc, backend, baseline, 'backend'); // the client stays paused
    const rss0 = rssOf(sc.pid);
    // The backend offers 512 MiB as fast as the path takes it.
    const total = 512 * MiB;
    const sent = pump(b, total, 9);
    const accepted1 = (): number => b.bytesWritten - b.writableLength;
    await new Promise((r) => setTimeout(r, 2000));
    const a1 = accepted1();
    await new Promise((r) => setTimeout(r, 1000));
    const a2 = accepted1();
    assert.ok(a2 < total / 4, `the backend could only hand ${(a2 / MiB).toFixed(1)} MiB to the kernel`);
    assert.ok(a2 - a1 < MiB, `nothing moves while the client does not read (${a2 - a1} bytes in 1 s)`);
    const grew = rssOf(sc.pid) - rss0;
    assert.ok(grew < 64 * MiB, `proxy RSS grew ${(grew / MiB).toFixed(1)} MiB`);
    const got = drainHash(c); // the client reads again: everything arrives
    c.resume();
    const hash = await sent;
    const g = await got;
    assert.equal(g.bytes, total);
    assert.equal(g.hash, hash);
    c.destroy();
  });
});

test('spliced idle timeout: bytes moved by the kernel keep the session alive; once idle, both sides close', { timeout: 60_000 }, async () => {
  await withProxy(
    async (sc, backend, baseline) => {
      const { c, b } = await splicedPair(sc, backend, baseline, 'client');
      b.resume();
      c.resume();
      let closed = false;
      c.on('close', () => (closed = true));
      // 1.8 s of traffic, three idle timeouts' worth: the session stays open.
      for (const t0 = Date.now(); Date.now() - t0 < 1800; ) {
        c.write(Buffer.alloc(4096, 7));
        await sleep(100);
      }
      assert.equal(closed, false, 'a session with traffic was closed as idle');
      const t1 = Date.now();
      await Promise.all([waitPeerClose(c), waitPeerClose(b)]);
      const took = Date.now() - t1;
      assert.ok(took >= 400 && took < 3000, `idle session closed after ${took} ms`);
      const st = await statsWhen(sc, 'the idle timeout', (x) => x.listeners.tcp.downstream_cx_active === 0);
      assert.ok(st.listeners.tcp.downstream_cx_idle_timeout >= 1);
      await until('pipes closed', () => pipesOf(sc.pid) === baseline);
      c.destroy();
      b.destroy();
    },
    { idleTimeout: '600ms' },
  );
});

test('spliced SIGTERM drain: no new connections, the live spliced one keeps forwarding until it ends, exit 0', { timeout: 60_000 }, async () => {
  const backend = net.createServer({ allowHalfOpen: true });
  const bport = await listen(backend);
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [bport] }), { env: ENV });
  try {
    const { c, b } = await splicedPair(sc, backend, pipesOf(sc.pid), 'client');
    sc.proc.kill('SIGTERM');
    await sleep(500);
    await assert.rejects(connect(sc.ports.get('tcp')!), /ECONNREFUSED|ECONNRESET/);
    const backendGot = drainHash(b);
    const clientGot = drainHash(c);
    b.resume();
    c.resume();
    const [up, down] = await Promise.all([pump(c, 4 * MiB, 21), pump(b, 4 * MiB, 22)]);
    const [bg, cg] = await Promise.all([backendGot, clientGot]);
    assert.equal(bg.hash, up, 'client -> backend intact during the drain');
    assert.equal(cg.hash, down, 'backend -> client intact during the drain');
    assert.equal(await sc.exited, 0);
  } finally {
    await sc.terminate();
    await close(backend);
  }
});

const NO_FDPASS = process.env.OUTRIGGER_NATIVE === '0' ? 'hot upgrade needs the addon (fd passing)' : false;

test('hot upgrade: a spliced tcp_proxy session moves between exchanges; the client sees no close', { skip: NO_FDPASS, timeout: 90_000 }, async () => {
  const backend = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s); // echo
  });
  const bport = await listen(backend);
  const dir = upgradeDirFor();
  const old = await startSidecar(tcpProxyConfig({ upstreams: [bport] }), { env: { ...ENV, OUTRIGGER_UPGRADE_DIR: dir } });
  const sock = await connect(old.ports.get('tcp')!);
  let closed = false;
  sock.on('close', () => (closed = true));
  let got = 0;
  const hash = drainHash(sock);
  sock.on('data', (d: Buffer) => (got += d.length));
  let next: Awaited<ReturnType<typeof startUpgrade>> | undefined;
  try {
    const baseline = pipesOf(old.pid);
    let sent = 0;
    const exchange = async (bytes: Buffer): Promise<void> => {
      sent += bytes.length;
      sock.write(bytes);
      for (const t = Date.now(); got < sent && Date.now() - t < 5000 && !closed; ) await sleep(2);
    };
    await exchange(Buffer.alloc(MiB, 1));
    await waitSpliced(old, baseline);
    const sentHash = (await import('node:crypto')).createHash('sha1');
    sentHash.update(Buffer.alloc(MiB, 1));
    let stop = false;
    let n = 0;
    const talk = (async () => {
      while (!stop && !closed) {
        const b = Buffer.alloc(8192, n++ & 0xff);
        sentHash.update(b);
        await exchange(b);
        await sleep(30);
      }
    })();
    await sleep(200);
    next = await startUpgrade(dir);
    const report = await next.oldDone;
    assert.equal(await old.exited, 0);
    await sleep(300);
    stop = true;
    await talk;
    assert.equal(closed, false, 'the client connection closed');
    assert.equal(got, sent, 'every exchange answered');
    assert.ok(report.migrated >= 1, `handed over ${report.migrated}`);
    sock.end();
    const h = await hash;
    assert.equal(h.hash, sentHash.digest('hex'), 'the echoed stream is intact across the hand-over');
  } finally {
    sock.destroy();
    await next?.terminate();
    await old.terminate('SIGKILL');
    await close(backend);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
