/**
 * The hot-upgrade channel (src/upgrade/channel.ts) over the addon's fd passing
 * (native/fdpass.cc): messages with fds, messages larger than one packet, EOF, malformed input.
 */
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Channel, ChannelClosed } from '../../src/upgrade/channel';
import { fdPass, type FdPass } from '../../src/upgrade/fdpass';
import { connectToRunning } from '../../src/upgrade/new';

const fp = fdPass();
const skip = typeof fp === 'string' ? fp : false;

function pair(f: FdPass): { a: Channel; b: Channel; close(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-chan-'));
  const p = path.join(dir, 's.sock');
  const l = f.fdListen(p, 4);
  const c = f.fdConnect(p);
  const s = f.fdAccept(l);
  assert.ok(s >= 0);
  f.closeFd(l);
  const a = new Channel(f, c);
  const b = new Channel(f, s);
  return {
    a,
    b,
    close() {
      a.close();
      b.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('a message with file descriptors: the receiver reads through them', { skip }, async () => {
  const f = fp as FdPass;
  const { a, b, close } = pair(f);
  const file = path.join(os.tmpdir(), `outrigger-chan-${process.pid}.txt`);
  fs.writeFileSync(file, 'handed over');
  const fd1 = fs.openSync(file, 'r');
  const fd2 = fs.openSync(file, 'r');
  try {
    a.send({ t: 'listeners', names: ['x', 'y'] }, [fd1, fd2]);
    const r = await b.recv(2000);
    assert.ok(r !== null);
    assert.deepEqual(r.msg, { t: 'listeners', names: ['x', 'y'] });
    assert.equal(r.fds.length, 2);
    assert.ok(!r.fds.includes(fd1) && !r.fds.includes(fd2), 'new descriptors in the receiver');
    const buf = Buffer.alloc(32);
    const n = fs.readSync(r.fds[0], buf, 0, 32, 0);
    assert.equal(buf.toString('utf8', 0, n), 'handed over');
    for (const x of r.fds) f.closeFd(x);
  } finally {
    fs.closeSync(fd1);
    fs.closeSync(fd2);
    fs.rmSync(file, { force: true });
    close();
  }
});

test('a message larger than one packet arrives whole; nothing pending gives null', { skip }, async () => {
  const { a, b, close } = pair(fp as FdPass);
  try {
    assert.equal(await b.recv(20), null);
    // Two packets (one thread sends and receives here: the whole message must fit the socket buffer).
    const big = 'z'.repeat(100_000) + 'end';
    a.send({ t: 'state', config: big });
    a.send({ t: 'next' });
    const r = await b.recv(2000);
    assert.equal(r?.msg.config, big);
    assert.equal((await b.recv(2000))?.msg.t, 'next');
  } finally {
    close();
  }
});

test('EOF and malformed messages end the channel with ChannelClosed; expect() reports a refusal', { skip }, async () => {
  const f = fp as FdPass;
  {
    const { a, b, close } = pair(f);
    a.send({ t: 'error', message: 'disable_upgrade is set' });
    await assert.rejects(b.expect('state', 1000), /hand-over refused by the running process: disable_upgrade is set/);
    a.close();
    await assert.rejects(b.recv(1000), ChannelClosed);
    close();
  }
  {
    const { a, b, close } = pair(f);
    f.fdSend(a.fd, Buffer.from('\u0000not json'), [], 1000);
    await assert.rejects(b.recv(1000), /malformed message/);
    f.fdSend(a.fd, Buffer.from('\u0000{"no":"type"}'), [], 1000);
    close();
  }
  {
    const { a, b, close } = pair(f);
    a.send({ t: 'other' });
    await assert.rejects(b.expect('state', 1000), /expected "state", got "other"/);
    await assert.rejects(b.expect('state', 50), /no "state" within 50 ms/);
    close();
  }
});

test('the addon refuses bad arguments with a JS error', { skip }, () => {
  const f = fp as FdPass;
  assert.throws(() => f.fdConnect('x'.repeat(200)), /unix socket path must be/);
  assert.throws(() => f.fdSend(0, Buffer.alloc(0), [], 0), /payload must be 1 to 65536 bytes/);
  assert.throws(() => f.fdSend(0, Buffer.alloc(1), [-1], 0), /non-negative integers/);
  assert.throws(() => f.fdConnect(path.join(os.tmpdir(), 'outrigger-nobody-here.sock')), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
});

test('a listener whose backlog is full fails fdConnect with EAGAIN at once; connectToRunning waits it out', { skip, timeout: 60_000 }, async () => {
  // Run in a child: the old blocking connect waited for an accept that never came, and a thread
  // blocked in connect() cannot be timed out from inside.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-chan-'));
  const p = path.join(dir, 's.sock');
  const script = `
    const { fdPass } = require(${JSON.stringify(path.join(__dirname, '../../src/upgrade/fdpass'))});
    const f = fdPass();
    const l = f.fdListen(${JSON.stringify(p)}, 1);
    const held = [];
    let code = null;
    for (let i = 0; i < 20 && code === null; i++) {
      try { held.push(f.fdConnect(${JSON.stringify(p)})); } catch (e) { code = e.code; }
    }
    process.stdout.write(JSON.stringify({ code, connected: held.length }));
  `;
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 15_000, encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(r.signal, null, `the probe was killed after 15 s: a connect blocked (${r.stderr})`);
  const got = JSON.parse(r.stdout) as { code: string | null; connected: number };
  assert.equal(got.code, 'EAGAIN', r.stdout);
  assert.ok(got.connected >= 1 && got.connected <= 3, `backlog 1 takes 1-2 connections, got ${got.connected}`);

  // The upgrade client retries a busy socket until the running process accepts.
  const f = fp as FdPass;
  const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-chan-'));
  const p2 = path.join(dir2, 'reconfig.sock');
  const l = f.fdListen(p2, 1);
  const held: number[] = [];
  for (;;) {
    try {
      held.push(f.fdConnect(p2));
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'EAGAIN');
      break;
    }
  }
  const t0 = Date.now();
  const pending = connectToRunning(f, dir2);
  setTimeout(() => {
    for (let s = f.fdAccept(l); s >= 0; s = f.fdAccept(l)) f.closeFd(s); // the running process accepts at last
  }, 300);
  const ch = await pending;
  assert.ok(Date.now() - t0 >= 250, 'it connected only once the backlog had room');
  ch.close();
  for (const fd of held) f.closeFd(fd);
  f.closeFd(l);
  fs.rmSync(dir2, { recursive: true, force: true });
});
