// Plaintext upstream connections on a bare fd (issue 15, OUTRIGGER_UPSTREAM_FD, on by default):
// dialConnection (src/upstream/connect.ts, the one path to every upstream) opens them with the
// addon's non-blocking connect (native/listen.cc connectTcp) as an FdSocket read by the thread's
// native read watcher batch. Checked here, in this process:
// - the path taken: no TCP handle is made per upstream connection (only the test's own server's
//   accepted sockets make one; net.connect would make a second one per connection), and the
//   addon read the replies;
// - echo, the upstream's local address, half-close both ways (our FIN reaches the server while
//   its bytes still arrive; its FIN gives onEnd);
// - connect refused: onClose with ECONNREFUSED, never onConnect; connect timeout: onTimeout
//   fires on a SYN nobody answers;
// - back-pressure both ways: 16 MiB written to a server that does not read yet wait in the
//   Connection/FdSocket (high watermark) and arrive intact once it reads; a 16 MiB reply while
//   reading is paused stays in the kernel (the server's writes back up) and arrives intact on resume;
//   on a new connection and on one that has its own poll (after OUTRIGGER_OWNED_POLL_AFTER reads it
//   leaves the addon's epoll set of owned fds: counted by readStats()[5], exactly when);
// - OUTRIGGER_UPSTREAM_FD=0 in a child process keeps net.connect.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import * as path from 'node:path';
import { native } from '../../src/native';
import { nativeReadStats, ownedPollAfter, type Connection, type ConnectionHandler } from '../../src/network/connection';
import { isFdSocket } from '../../src/network/user-buffer';
import { dialConnection, upstreamOnFd } from '../../src/upstream/connect';

const skip = upstreamOnFd('127.0.0.1') ? false : 'native connect / owned-fd reads not available';

interface Events {
  connected: boolean;
  ended: boolean;
  closed: Promise<Error | undefined>;
  data: Buffer[];
  high: number;
  low: number;
  timeouts: number;
}

/** A handler recording what happens to one upstream connection (copies of the reads). */
function recorder(onData?: (c: Connection) => void): { h: ConnectionHandler; ev: Events } {
  let done: (e: Error | undefined) => void = () => {};
  const ev: Events = { connected: false, ended: false, closed: new Promise((r) => (done = r)), data: [], high: 0, low: 0, timeouts: 0 };
  const h: ConnectionHandler = {
    onConnect() {
      ev.connected = true;
    },
    onData(c, buf, start, end) {
      ev.data.push(Buffer.from(buf.subarray(start, end)));
      if (onData !== undefined) onData(c);
    },
    onEnd() {
      ev.ended = true;
    },
    onClose(_c, err) {
      done(err);
    },
    onHighWatermark() {
      ev.high++;
    },
    onLowWatermark() {
      ev.low++;
    },
    onTimeout(c) {
      ev.timeouts++;
      c.destroy(Object.assign(new Error('upstream connect timeout'), { code: 'ETIMEDOUT' }));
    },
  };
  return { h, ev };
}

const received = (ev: Events): number => ev.data.reduce((n, b) => n + b.length, 0);

async function eventually(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function listen(onConn: (s: net.Socket) => void): Promise<net.Server> {
  return new Promise((resolve) => {
    const srv = net.createServer({ allowHalfOpen: true }, onConn);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

const portOf = (srv: net.Server): number => (srv.address() as net.AddressInfo).port;

test('plaintext upstream connections are bare fds: no TCP handle per connection; echo, local address, half-close both ways', { skip, timeout: 60_000 }, async () => {
  const serverEnds: Promise<void>[] = [];
  const srv = await listen((s) => {
    s.on('data', (d) => s.write(d));
    // Our FIN: the server has read everything, answers once more, then ends its side.
    serverEnds.push(new Promise((r) => s.on('end', () => {
      s.end('bye');
      r();
    })));
  });
  let tcpHandles = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'TCPWRAP') tcpHandles++;
    },
  });
  const readsBefore = nativeReadStats()[1];
  try {
    hook.enable();
    const N = 6;
    for (let i = 0; i < N; i++) {
      const { h, ev } = recorder();
      const conn = dialConnection('127.0.0.1', portOf(srv), h, 1 << 20, 5000, null);
      assert.ok(isFdSocket(conn.socket), 'an FdSocket carries the connection');
      const msg = Buffer.from(`ping ${i}`);
      conn.write(msg, 0, msg.length); // gathered while connecting, sent once connected
      await eventually('the echo', () => received(ev) >= msg.length);
      assert.ok(ev.connected);
      assert.equal(Buffer.concat(ev.data).toString(), `ping ${i}`);
      assert.equal(conn.socket.localAddress, '127.0.0.1');
      assert.ok((conn.socket.localPort ?? 0) > 0);
      conn.endWrite();
      await eventually('the server to see our FIN', () => serverEnds.length === i + 1);
      await serverEnds[i];
      const err = await ev.closed; // its 'bye' and FIN: both directions done
      assert.equal(err, undefined);
      assert.ok(ev.ended, 'the upstream FIN gave onEnd');
      assert.equal(Buffer.concat(ev.data).toString(), `ping ${i}bye`, 'bytes after our FIN still arrived');
    }
    hook.disable();
    // The server's accepted sockets only: net.connect would make one more per connection.
    assert.equal(tcpHandles, N, `TCP handles made for ${N} upstream connections`);
    assert.ok(nativeReadStats()[1] > readsBefore, 'the addon read the replies');
  } finally {
    hook.disable();
    srv.close();
  }
});

test('connect refused: onClose with ECONNREFUSED, no onConnect', { skip, timeout: 30_000 }, async () => {
  const srv = await listen(() => {});
  const port = portOf(srv);
  await new Promise((r) => srv.close(r)); // nobody listens there now
  const { h, ev } = recorder();
  const conn = dialConnection('127.0.0.1', port, h, 1 << 20, 5000, null);
  const b = Buffer.from('lost');
  conn.write(b, 0, b.length);
  const err = (await ev.closed) as NodeJS.ErrnoException;
  assert.ok(err !== undefined, 'closed with an error');
  assert.equal(err.code, 'ECONNREFUSED');
  assert.equal(err.syscall, 'connect');
  assert.equal(ev.connected, false);
  assert.equal(conn.state, 'closed');
});

test('connect timeout: a SYN nobody answers ends in onTimeout after the connect timeout', { skip, timeout: 30_000 }, async () => {
  // backlog 1 and nobody accepting: once the accept queue is full, SYNs are dropped.
  const { fd, port } = native.listenTcp('127.0.0.1', 0, 1, false);
  const fillers: net.Socket[] = [];
  try {
    for (let i = 0; i < 6; i++) fillers.push(net.connect(port, '127.0.0.1').on('error', () => {}));
    await new Promise((r) => setTimeout(r, 200));
    const { h, ev } = recorder();
    const t0 = Date.now();
    dialConnection('127.0.0.1', port, h, 1 << 20, 300, null);
    const err = (await ev.closed) as NodeJS.ErrnoException;
    const took = Date.now() - t0;
    assert.equal(ev.timeouts, 1);
    assert.equal(err.code, 'ETIMEDOUT');
    assert.equal(ev.connected, false);
    assert.ok(took >= 250 && took < 3000, `timed out after ${took} ms (300 ms asked)`);
  } finally {
    for (const s of fillers) s.destroy();
    native.closeFd(fd);
  }
});

// Run twice: on a new connection (its fd still in the thread's epoll set of owned fds; the 16 MiB
// reply moves it to its own poll while it flows) and on one that has answered ECHOES round trips
// first, one read each, so that it has its own uv_poll before the first byte of back-pressure
// (native/read.cc OwnPoll: the write interest and the pause then go through that handle).
const ECHOES = 24;
for (const echoes of [0, ECHOES]) {
  const what = echoes === 0 ? 'a new connection' : `a connection after ${echoes} round trips (its own poll)`;
  test(`back-pressure both ways on ${what}: writes the server does not read wait and arrive intact; a paused read leaves the reply in the kernel`, { skip, timeout: 60_000 }, async () => {
    const SIZE = 16 << 20;
    const big = crypto.randomBytes(SIZE);
    let server: net.Socket | null = null;
    let echoing = echoes > 0;
    const got: Buffer[] = [];
    let gotBytes = 0;
    const srv = await listen((s) => {
      server = s;
      if (!echoing) s.pause(); // reads nothing until told
      s.on('data', (d) => {
        if (echoing) {
          s.write(d);
          return;
        }
        got.push(d);
        gotBytes += d.length;
      });
    });
    try {
      const { h, ev } = recorder();
      const conn = dialConnection('127.0.0.1', portOf(srv), h, 1 << 20, 5000, null);
      await eventually('the connection', () => ev.connected && server !== null);
      const ownPolls = (): number => nativeReadStats()[5];
      const ownBefore = ownPolls();
      for (let i = 0; i < echoes; i++) {
        const msg = Buffer.from(`ping ${i}`);
        conn.write(msg, 0, msg.length);
        await eventually('the echo', () => received(ev) >= msg.length); // one read per round trip
        ev.data.length = 0;
        // Moved after exactly ownedPollAfter reads (0: never).
        const moved = ownedPollAfter !== 0 && i + 1 >= ownedPollAfter ? 1 : 0;
        assert.equal(ownPolls() - ownBefore, moved, `its own poll after ${i + 1} reads (OUTRIGGER_OWNED_POLL_AFTER ${ownedPollAfter})`);
      }
      echoing = false;
      (server as unknown as net.Socket).pause();

      // Upstream direction: the kernel takes a few MiB at most; the rest waits in the FdSocket.
      for (let off = 0; off < SIZE; off += 1 << 20) conn.write(big, off, off + (1 << 20));
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(ev.high >= 1, 'the high watermark was reported');
      assert.ok(conn.queued() > 0 && conn.socket.writableLength > 0, 'bytes wait in the FdSocket');
      (server as unknown as net.Socket).resume();
      await eventually('the server to read everything', () => gotBytes >= SIZE, 30_000);
      assert.ok(Buffer.concat(got).equals(big), 'the upstream got every byte in order');
      await eventually('the low watermark', () => ev.low >= 1);
      assert.equal(conn.queued(), 0);

      // Downstream direction: paused, the reply backs up into the server's socket.
      conn.pauseRead();
      const s = server as unknown as net.Socket;
      s.write(big);
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(s.writableLength > 0, 'the server cannot write it all: our side does not read');
      const before = received(ev);
      assert.ok(before < SIZE, `read ${before} bytes while paused`);
      conn.resumeRead();
      await eventually('the whole reply', () => received(ev) >= SIZE, 30_000);
      assert.ok(Buffer.concat(ev.data).equals(big), 'the reply arrived intact');
      if (ownedPollAfter !== 0) assert.equal(ownPolls() - ownBefore, 1, 'the reply\'s reads moved it to its own poll (once)');
      // Its FIN after its own poll: onEnd, then our end closes both ways.
      s.end();
      await eventually('the upstream FIN', () => ev.ended);
      conn.endWrite();
      assert.equal(await ev.closed, undefined);
    } finally {
      srv.close();
    }
  });
}

test('OUTRIGGER_UPSTREAM_FD=0 keeps net.connect for plaintext upstreams; host names and a source address always do', { skip, timeout: 30_000 }, () => {
  const mod = path.join(__dirname, '..', '..', 'src', 'upstream', 'connect.js');
  const probe = `const c = require(${JSON.stringify(mod)}); process.stdout.write(String(c.upstreamOnFd('127.0.0.1')))`;
  const run = (env: NodeJS.ProcessEnv): string => execFileSync(process.execPath, ['-e', probe], { env: { ...process.env, ...env } }).toString();
  assert.equal(run({ OUTRIGGER_UPSTREAM_FD: '0' }), 'false');
  assert.equal(run({ OUTRIGGER_UPSTREAM_FD: '1' }), 'true');
  assert.equal(upstreamOnFd('localhost'), false);
  assert.equal(upstreamOnFd('127.0.0.1', '127.0.0.1'), false);
});
