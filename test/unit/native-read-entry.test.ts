// How the native read path enters JS (native/read.cc OnCheck): a plain call per batch, whose
// process.nextTick callbacks and microtasks Node's own callback scope of the same check phase runs
// right after it; OUTRIGGER_NATIVE_READ_ENTRY=callback (one MakeCallback per call) is run again
// from test/integration/native-read-paths.test.ts. Either way, what a read's handler queues must
// run before the loop goes on: before a timer that is already due, before the next poll, and
// between two calls of one iteration (the chunk filled) before the next reads are delivered; and
// an exception thrown by such a tick still reaches 'uncaughtException' with the reads going on.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { native } from '../../src/native';
import { batchClock, nowMs } from '../../src/network/clock';
import { Connection, nativeReadStats, type ConnectionHandler } from '../../src/network/connection';

const skip = native.read === null || process.env.OUTRIGGER_NATIVE_READ === '0' ? 'no native read path' : false;

function handler(onData: (conn: Connection, start: number, end: number) => void): ConnectionHandler {
  return {
    onData: (conn, _buf, start, end) => onData(conn, start, end),
    onEnd: (conn) => conn.endWrite(),
    onClose() {},
    onHighWatermark() {},
    onLowWatermark() {},
  };
}

async function listen(h: ConnectionHandler): Promise<{ server: net.Server; port: number; conns: Connection[] }> {
  const conns: Connection[] = [];
  const server = net.createServer({ pauseOnConnect: true }, (s) => conns.push(Connection.accept(s, h, 65536)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port, conns };
}

async function connect(port: number): Promise<net.Socket> {
  const c = net.connect(port, '127.0.0.1');
  c.on('error', () => {});
  await once(c, 'connect');
  return c;
}

/** Blocks the loop for ms, so that everything the peers sent meanwhile is read in one iteration. */
function block(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    /* spin */
  }
}

describe('native read batch: queued ticks and microtasks', { skip }, () => {
  it('run right after the batch: before a setImmediate and a timer it scheduled', async () => {
    const log: string[] = [];
    let first = true;
    let timerDone: () => void = () => {};
    const done = new Promise<void>((r) => (timerDone = r));
    const { server, port, conns } = await listen(
      handler(() => {
        if (!first) return;
        first = false;
        log.push('data');
        process.nextTick(() => {
          log.push('tick');
          void Promise.resolve().then(() => log.push('micro from tick'));
        });
        void Promise.resolve().then(() => log.push('micro'));
        queueMicrotask(() => process.nextTick(() => log.push('tick from micro')));
        setImmediate(() => log.push('immediate'));
        // Due by the next iteration's timers phase: had the queues not been drained in this
        // iteration's check phase, the tick would wait for the timers' JS and log after 'timer'
        // (and the immediate would run in the next iteration's check phase, after it too).
        setTimeout(() => {
          log.push('timer');
          timerDone();
        }, 0);
        block(5);
      }),
    );
    const client = await connect(port);
    while (conns.length === 0) await new Promise((r) => setImmediate(r));
    client.write('x');
    await done;
    assert.deepEqual(log, ['data', 'tick', 'micro', 'micro from tick', 'tick from micro', 'immediate', 'timer']);
    client.destroy();
    for (const c of conns) c.destroy();
    server.close();
  });

  it('between two calls of one iteration (a full chunk), before the next reads', async () => {
    const N = 6;
    const SIZE = 20_000; // three reads fill the 64 KiB chunk past its 16 KiB minimum room
    const log: string[] = [];
    let expecting = 0;
    const { server, port, conns } = await listen(
      handler((conn, start, end) => {
        const i = conns.indexOf(conn);
        log.push(`data ${i} ${end - start}`);
        process.nextTick(() => log.push(`tick ${i}`));
        void Promise.resolve().then(() => log.push(`micro ${i}`));
        expecting -= end - start;
      }),
    );
    const clients: net.Socket[] = [];
    for (let i = 0; i < N; i++) {
      clients.push(await connect(port));
      while (conns.length <= i) await new Promise((r) => setImmediate(r));
    }
    const fullBefore = nativeReadStats()[3];
    expecting = N * SIZE;
    const payload = Buffer.alloc(SIZE, 0x61);
    for (const c of clients) c.write(payload);
    block(50); // every peer's bytes are in the kernel: the next poll reports all N sockets at once
    while (expecting > 0) await new Promise((r) => setImmediate(r));
    assert.ok(nativeReadStats()[3] > fullBefore, 'the chunk filled: the batch was split into calls');
    // Every read's tick and microtask come before the next call's first read. Within one call the
    // reads come first (they share the call), so: the reads of a call, then its ticks, then its
    // microtasks, and no read after a tick of a later call.
    const calls: string[][] = [];
    let cur: string[] = [];
    for (const e of log) {
      if (e.startsWith('data') && cur.length > 0 && !cur[cur.length - 1].startsWith('data')) {
        calls.push(cur);
        cur = [];
      }
      cur.push(e);
    }
    calls.push(cur);
    assert.ok(calls.length >= 2, `more than one call: ${log.join(', ')}`);
    for (const c of calls) {
      const reads = c.filter((e) => e.startsWith('data')).map((e) => e.split(' ')[1]);
      assert.deepEqual(
        c.filter((e) => !e.startsWith('data')),
        [...reads.map((r) => `tick ${r}`), ...reads.map((r) => `micro ${r}`)],
        `each call's ticks and microtasks before the next call: ${log.join(', ')}`,
      );
    }
    for (const c of clients) c.destroy();
    for (const c of conns) c.destroy();
    server.close();
  });

  it("an exception thrown by a tick the batch queued reaches 'uncaughtException'; the reads go on", () => {
    // In a child: node:test reports any uncaught exception of its own process as a failure.
    const conn = JSON.stringify(path.join(__dirname, '../../src/network/connection'));
    const script = `
      const net = require('node:net');
      const { Connection } = require(${conn});
      const seen = [];
      process.on('uncaughtException', (e) => seen.push('uncaught ' + e.message));
      const server = net.createServer({ pauseOnConnect: true }, (s) => {
        Connection.accept(s, {
          onData(c, buf, start, end) {
            const text = buf.toString('latin1', start, end);
            seen.push('data ' + text);
            if (text === 'boom') process.nextTick(() => { throw new Error('thrown by a tick'); });
            if (text === 'after') { console.log(JSON.stringify(seen)); process.exit(0); }
          },
          onEnd() {}, onClose() {}, onHighWatermark() {}, onLowWatermark() {},
        }, 65536);
      });
      server.listen(0, '127.0.0.1', () => {
        const c = net.connect(server.address().port, '127.0.0.1', () => {
          c.write('boom');
          setTimeout(() => c.write('after'), 50);
        });
      });
      setTimeout(() => { console.log(JSON.stringify(seen)); process.exit(1); }, 15000);
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000, env: process.env });
    assert.equal(r.status, 0, `child: ${r.stdout} ${r.stderr}`);
    assert.deepEqual(JSON.parse(r.stdout.trim()), ['data boom', 'uncaught thrown by a tick', 'data after']);
  });
});

/**
 * A child whose batch function (the binding's, no Connection: a Connection contains its
 * handler's exceptions) throws on "boom": with `handled`, an 'uncaughtException' listener records
 * it and the client then sends "after". Its stdout: the JSON of what it saw. Two clients send
 * "boom" and "two" in the same iteration: a throw ends the call, a read not taken yet stays in
 * the kernel for the next one.
 */
function throwingChild(handled: boolean): ReturnType<typeof spawnSync> {
  const nativePath = JSON.stringify(path.join(__dirname, '../../src/native'));
  const script = `
    const net = require('node:net');
    const nr = require(${nativePath}).native.read;
    const seen = [];
    ${handled ? "process.on('uncaughtException', (e) => seen.push('uncaught ' + e.message + ' ' + (e instanceof Error)));" : ''}
    const buf = Buffer.alloc(64 * 1024);
    const st = new Int32Array(3);
    nr.setup(buf, st, (first) => {
      for (let id = first; id >= 0; id = st[2] === 0 ? -1 : nr.next()) {
        const text = buf.toString('latin1', st[0], st[0] + st[1]);
        seen.push('data ' + text);
        if (text === 'boom') throw new Error('thrown in the batch');
        if (text === 'after') { console.log(JSON.stringify(seen)); process.exit(0); }
      }
    });
    const accepted = [];
    const server = net.createServer({ pauseOnConnect: true }, (s) => {
      accepted.push(s);
      nr.watch(s._handle.fd);
      if (accepted.length === 2) go();
    });
    const clients = [];
    function go() {
      // Both in the kernel before the loop polls: one iteration reports both sockets.
      clients[0].write('boom');
      clients[1].write('two');
      const end = Date.now() + 30; while (Date.now() < end) {}
      setTimeout(() => clients[0].write('after'), 50);
    }
    server.listen(0, '127.0.0.1', () => {
      for (let i = 0; i < 2; i++) clients.push(net.connect(server.address().port, '127.0.0.1'));
    });
    setTimeout(() => { console.log(JSON.stringify(seen)); process.exit(3); }, 15000);
  `;
  return spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000, env: process.env });
}

describe('native read batch: an exception thrown by the batch function', { skip }, () => {
  // native/read.cc CallBatch: the batch is called with V8's API; the exception must be reported
  // as napi_call_function's caller reported it (napi_fatal_exception).
  it("reaches 'uncaughtException' as the Error thrown; the reads go on", () => {
    const r = throwingChild(true);
    assert.equal(r.status, 0, `child: ${String(r.stdout)} ${String(r.stderr)}`);
    const seen = JSON.parse(String(r.stdout).trim()) as string[];
    const at = seen.indexOf('data boom');
    assert.ok(at >= 0, seen.join(', '));
    assert.equal(seen[at + 1], 'uncaught thrown in the batch true', seen.join(', '));
    // "two" was read before the throw or left in the kernel and read in a later iteration.
    assert.deepEqual(seen.filter((e) => e !== 'data boom' && !e.startsWith('uncaught')).sort(), ['data after', 'data two']);
  });

  it('without a listener ends the process as an uncaught exception: exit status 1, the error on stderr', () => {
    const r = throwingChild(false);
    assert.equal(r.status, 1, `child: ${String(r.stdout)} ${String(r.stderr)}`);
    assert.match(String(r.stderr), /Error: thrown in the batch/);
    assert.equal(String(r.stdout), '');
  });
});

describe('native read batch: the clock', { skip }, () => {
  it("lends the addon's time (Date.now()'s clock, whole ms) to nowMs() for the batch, Date.now() outside it", async () => {
    const stamps: number[] = [];
    const { server, port, conns } = await listen(
      handler(() => {
        const before = Date.now();
        stamps.push(before, nowMs(), batchClock[0]);
      }),
    );
    const client = await connect(port);
    try {
      while (conns.length === 0) await new Promise((r) => setImmediate(r));
      const sent = Date.now();
      client.write('x');
      while (stamps.length === 0) await new Promise((r) => setImmediate(r));
      const [now, lent, written] = stamps;
      assert.equal(lent, written, 'nowMs() in the batch is what the addon wrote');
      assert.ok(Number.isInteger(lent), `whole ms: ${lent}`);
      assert.ok(lent >= sent && lent <= now, `the batch's time ${lent} is between the send (${sent}) and the handler (${now})`);
      const outside = nowMs();
      assert.ok(outside >= now && outside <= Date.now(), 'outside a batch: Date.now()');
    } finally {
      client.destroy();
      for (const c of conns) c.destroy();
      server.close();
    }
  });
});
