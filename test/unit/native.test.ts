// Tests of the native IO binding: every primitive runs against the addon AND the TypeScript
// fallback on the same inputs (the native half is skipped only if the addon did not build).
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { addonLoadError, loadBinding, parseCpuList } from '../../src/native';
import type { BindingKind, NativeBinding } from '../../src/native';

const MODULE = path.join(__dirname, '..', '..', 'src', 'native', 'index.js');

function tryLoad(kind: BindingKind): NativeBinding | undefined {
  try {
    return loadBinding(kind);
  } catch {
    return undefined;
  }
}

const tick = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const fdOf = (s: net.Socket): number => (s as unknown as { _handle: { fd: number } })._handle.fd;

/** What `peer` receives, as text, once at least n characters have arrived. */
function peerText(peer: net.Socket, n: number): Promise<string> {
  return new Promise<string>((resolve) => {
    let s = '';
    peer.on('data', (d: Buffer) => {
      s += d.toString();
      if (s.length >= n) resolve(s);
    });
  });
}

async function tcpPair(): Promise<{ client: net.Socket; peer: net.Socket; close(): void }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect(port, '127.0.0.1');
  await once(client, 'connect');
  const [peer] = await accepted;
  server.close();
  client.on('error', () => {});
  peer.on('error', () => {});
  return {
    client,
    peer,
    close() {
      client.destroy();
      peer.destroy();
    },
  };
}

/** Remaining part of bufs after `written` bytes, as fresh views (test-side bookkeeping). */
/**
 * The error a write function throws on a connection whose peer has reset it (up to 50 tries, 5 ms
 * apart); undefined if none did.
 */
async function resetWriteError(write: (fd: number, chunk: Buffer) => void): Promise<NodeJS.ErrnoException | undefined> {
  const pair = await tcpPair();
  try {
    const fd = fdOf(pair.client);
    // Stop Node reading the client: a read error would make Node close the fd under us.
    (pair.client as unknown as { _handle: { readStop(): number } })._handle.readStop();
    pair.peer.resetAndDestroy();
    await sleep(20);
    const chunk = Buffer.alloc(65536, 1);
    for (let i = 0; i < 50; i++) {
      try {
        write(fd, chunk);
      } catch (e) {
        return e as NodeJS.ErrnoException;
      }
      await sleep(5);
    }
    return undefined;
  } finally {
    pair.close();
  }
}

function remainder(bufs: Uint8Array[], written: number): Uint8Array[] {
  let i = 0;
  while (i < bufs.length && written >= bufs[i].byteLength) written -= bufs[i++].byteLength;
  if (i === bufs.length) return [];
  return [bufs[i].subarray(written), ...bufs.slice(i + 1)];
}

/** ~16 MiB in 3000+ buffers: views with odd offsets into one large ArrayBuffer, plus empty ones. */
function makePayload(): { bufs: Uint8Array[]; total: number; digest: string } {
  const backing = crypto.randomBytes(20 << 20);
  const bufs: Uint8Array[] = [];
  let off = 7;
  let total = 0;
  let i = 0;
  while (total < 16 << 20) {
    const len = i % 97 === 0 ? 0 : 1 + ((i * 7919) % 11000);
    // Buffer views (byteOffset != 0) into the big ArrayBuffer, and a few plain Uint8Array views.
    const b = i % 5 === 0 ? new Uint8Array(backing.buffer, backing.byteOffset + off, len) : backing.subarray(off, off + len);
    bufs.push(b);
    total += len;
    off += len + (i % 3);
    i++;
  }
  const h = crypto.createHash('sha256');
  for (const b of bufs) h.update(b);
  return { bufs, total, digest: h.digest('hex') };
}

function receiveAll(peer: net.Socket, total: number): Promise<string> {
  const h = crypto.createHash('sha256');
  let got = 0;
  return new Promise((resolve, reject) => {
    peer.on('data', (d: Buffer) => {
      h.update(d);
      got += d.length;
      if (got === total) resolve(h.digest('hex'));
      else if (got > total) reject(new Error(`received ${got} > ${total} bytes`));
    });
    peer.on('end', () => reject(new Error(`peer ended after ${got}/${total} bytes`)));
  });
}

function runWorker<T>(code: string, workerData: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData });
    w.once('message', (m: T) => resolve(m));
    w.once('error', reject);
    w.once('exit', (c) => reject(new Error(`worker exited (${c}) without a message`)));
  });
}

const PIN_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { loadBinding } = require(workerData.mod);
const b = loadBinding(workerData.kind);
const before = b.getThreadAffinity();
const ok = b.pinThread(workerData.cpu);
const after = b.getThreadAffinity();
const afterProc = loadBinding('fallback').getThreadAffinity();
const tooBig = b.pinThread(4096);
parentPort.postMessage({ before, ok, after, afterProc, tooBig });
`;

const ACCEPT_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
let accepted = 0;
const server = net.createServer((s) => { accepted++; s.on('error', () => {}); s.end('w' + workerData.id); });
server.on('error', (e) => parentPort.postMessage({ error: e.message }));
server.listen({ fd: workerData.fd }, () => parentPort.postMessage({ ready: true }));
parentPort.on('message', () => server.close(() => { parentPort.postMessage({ accepted }); parentPort.close(); }));
`;

const SINK_WORKER = `
const { parentPort } = require('node:worker_threads');
const net = require('node:net');
const crypto = require('node:crypto');
const server = net.createServer((s) => {
  const h = crypto.createHash('sha256');
  let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => { parentPort.postMessage({ n, digest: h.digest('hex') }); server.close(); });
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
`;

/** Buffers a worker's messages so none is lost between awaits. */
function inbox<T>(w: Worker): () => Promise<T> {
  const queue: T[] = [];
  const waiting: ((m: T) => void)[] = [];
  w.on('message', (m: T) => {
    const r = waiting.shift();
    if (r) r(m);
    else queue.push(m);
  });
  return () => (queue.length ? Promise.resolve(queue.shift() as T) : new Promise<T>((r) => waiting.push(r)));
}

/** Opens n connections one after another; returns the greeting each one got ('w0', 'w1', 'm'). */
async function connectLoop(port: number, n: number, host = '127.0.0.1'): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = net.connect(port, host);
    c.setEncoding('latin1');
    let data = '';
    c.on('data', (d: string) => (data += d));
    await once(c, 'end');
    c.destroy();
    out.push(data);
  }
  return out;
}

describe('native binding loader', () => {
  it('loadBinding returns bindings with the right kind, rejects bad kinds', () => {
    assert.equal(loadBinding('fallback').kind, 'fallback');
    const n = tryLoad('native');
    if (n) assert.equal(n.kind, 'native');
    else assert.throws(() => loadBinding('native'), /native addon unavailable/);
    assert.throws(() => loadBinding('bogus' as BindingKind), TypeError);
  });

  it('OUTRIGGER_NATIVE selects the binding at load', () => {
    // Keep --require preloads so the child sees the same module environment as this process.
    const preload = process.execArgv.filter(
      (a, i, all) => a === '-r' || a === '--require' || all[i - 1] === '-r' || all[i - 1] === '--require',
    );
    const probe = (v: string) =>
      spawnSync(process.execPath, [...preload, '-e', `process.stdout.write(require(${JSON.stringify(MODULE)}).native.kind)`], {
        env: { ...process.env, OUTRIGGER_NATIVE: v },
        encoding: 'utf8',
      });
    const off = probe('0');
    assert.equal(off.status, 0, off.stderr);
    assert.equal(off.stdout, 'fallback');
    assert.equal(off.stderr, '');
    const bad = probe('maybe');
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /OUTRIGGER_NATIVE must be/);
    const on = probe('1');
    const auto = probe('auto');
    if (tryLoad('native')) {
      assert.equal(on.stdout, 'native', on.stderr);
      assert.equal(auto.stdout, 'native', auto.stderr);
      assert.equal(auto.stderr, '');
    } else {
      assert.notEqual(on.status, 0);
      assert.equal(auto.stdout, 'fallback');
      assert.match(auto.stderr, /^\[outrigger\] native addon not loaded .*\n$/);
    }
  });

  it('parseCpuList', () => {
    assert.deepEqual(parseCpuList('0-3,8,10-11\n'), [0, 1, 2, 3, 8, 10, 11]);
    assert.deepEqual(parseCpuList('5'), [5]);
    assert.throws(() => parseCpuList('x'));
  });
});

for (const kind of ['native', 'fallback'] as const) {
  const b = tryLoad(kind);
  const skip = b ? false : `native addon did not build/load: ${addonLoadError()?.message.split('\n')[0] ?? '?'}`;

  describe(`${kind} binding`, { skip }, () => {
    const bind = b as NativeBinding;

    describe('slab pool', () => {
      it('acquire/release reuses the same chunk object', () => {
        const pool = bind.createSlabPool({ chunkSize: 4096, chunksPerSlab: 4, initialSlabs: 1, maxSlabs: 2 });
        assert.equal(pool.memory, kind === 'native' ? 'mmap' : 'js');
        assert.equal(pool.chunkSize, 4096);
        assert.deepEqual([pool.total, pool.available, pool.overflow, pool.slabs], [4, 4, 0, 1]);
        const a = pool.acquire();
        assert.ok(Buffer.isBuffer(a));
        assert.equal(a.length, 4096);
        assert.equal(pool.available, 3);
        pool.release(a);
        assert.equal(pool.available, 4);
        assert.equal(pool.acquire(), a, 'LIFO reuse hands back the same Buffer object');
        const c = pool.acquire();
        assert.notEqual(c, a);
        assert.equal(c.buffer, a.buffer, 'chunks of one slab share its ArrayBuffer');
        assert.equal(Math.abs(c.byteOffset - a.byteOffset), 4096);
      });

      it('grows by whole slabs up to maxSlabs, then overflows', () => {
        const pool = bind.createSlabPool({ chunkSize: 1000, chunksPerSlab: 3, initialSlabs: 1, maxSlabs: 3 });
        const got: Buffer[] = [];
        for (let i = 0; i < 3; i++) got.push(pool.acquire());
        assert.deepEqual([pool.slabs, pool.total, pool.available], [1, 3, 0]);
        got.push(pool.acquire());
        assert.deepEqual([pool.slabs, pool.total, pool.available], [2, 6, 2]);
        while (got.length < 9) got.push(pool.acquire());
        assert.deepEqual([pool.slabs, pool.total, pool.available, pool.overflow], [3, 9, 0, 0]);
        assert.equal(new Set(got).size, 9);
        assert.equal(new Set(got.map((g) => g.buffer)).size, 3, 'three slabs');
        const o1 = pool.acquire();
        const o2 = pool.acquire();
        assert.deepEqual([pool.slabs, pool.total, pool.overflow], [3, 9, 2]);
        assert.equal(o1.length, 1000);
        assert.ok(!got.some((g) => g.buffer === o1.buffer), 'overflow buffer is not slab memory');
        pool.release(o1);
        assert.throws(() => pool.release(o1), /not a chunk of this pool/);
        for (const g of got) pool.release(g);
        pool.release(o2);
        assert.deepEqual([pool.available, pool.total, pool.overflow], [9, 9, 2]);
      });

      it('detects double release and foreign buffers', () => {
        const pool = bind.createSlabPool({ chunkSize: 512, chunksPerSlab: 8, maxSlabs: 1 });
        const other = bind.createSlabPool({ chunkSize: 512, chunksPerSlab: 8, maxSlabs: 1 });
        const a = pool.acquire();
        const x = other.acquire();
        assert.throws(() => pool.release(Buffer.alloc(512)), /not a chunk of this pool/);
        assert.throws(() => pool.release(x), /not a chunk of this pool/);
        assert.throws(() => pool.release(a.subarray(0, 256)), /not a chunk/);
        assert.throws(() => pool.release(a.subarray(256)), /not a chunk/);
        pool.release(a);
        assert.throws(() => pool.release(a), /double release/);
        assert.equal(pool.available, 8);
        assert.throws(() => bind.createSlabPool({ chunkSize: 0 }), RangeError);
        assert.throws(() => bind.createSlabPool({ chunkSize: 10, initialSlabs: 3, maxSlabs: 2 }), RangeError);
      });

      it('chunk contents are isolated', () => {
        const pool = bind.createSlabPool({ chunkSize: 4096, chunksPerSlab: 16, maxSlabs: 2 });
        const chunks: Buffer[] = [];
        for (let i = 0; i < 32; i++) {
          const c = pool.acquire();
          c.fill(i + 1);
          chunks.push(c);
        }
        chunks.forEach((c, i) => {
          assert.equal(c.length, 4096);
          assert.ok(c.every((v) => v === i + 1), `chunk ${i} was overwritten by a neighbour`);
        });
      });

      it('steady-state acquire/release does not grow the pool', () => {
        const pool = bind.createSlabPool({ chunkSize: 16384, chunksPerSlab: 64, maxSlabs: 4 });
        const live: Buffer[] = [];
        for (let round = 0; round < 20000; round++) {
          live.push(pool.acquire());
          if (live.length > 50) pool.release(live.shift() as Buffer);
        }
        assert.deepEqual([pool.slabs, pool.overflow], [1, 0]);
      });
    });

    describe('writev', () => {
      it('writes >8 MiB of many buffers (views, >IOV_MAX) to a TCP socket through EAGAIN', async (t) => {
        const { bufs, total, digest } = makePayload();
        assert.ok(bufs.length > 2048 && total >= 16 << 20);
        const pair = await tcpPair();
        try {
          const received = receiveAll(pair.peer, total);
          const fd = fdOf(pair.client);
          let rest = bufs;
          let written = 0;
          let partial = 0;
          let zeros = 0;
          let calls = 0;
          while (written < total) {
            const want = rest.reduce((s, x) => s + x.byteLength, 0);
            const n = bind.writev(fd, rest, rest.length);
            calls++;
            assert.ok(Number.isInteger(n) && n >= 0 && n <= want, `bad count ${n}`);
            written += n;
            if (n === 0) zeros++;
            else if (n < want) {
              partial++;
              // The call ended on EAGAIN: the buffer is still full right now.
              const r = remainder(rest, n);
              assert.equal(bind.writev(fd, r, r.length), 0);
            }
            rest = remainder(rest, n);
            if (written < total) await tick();
          }
          assert.equal(written, total);
          assert.ok(partial >= 1, 'the socket buffer must fill at least once');
          assert.equal(await received, digest);
          assert.ok(calls > 1);
          t.diagnostic(`${bufs.length} buffers, ${total} bytes: ${calls} calls, ${partial} partial, ${zeros} EAGAIN-only`);
        } finally {
          pair.close();
        }
      });

      it('keeps writing after short writes while a worker thread drains the peer', async (t) => {
        const { bufs, total, digest } = makePayload();
        const sink = new Worker(SINK_WORKER, { eval: true });
        const recv = inbox<{ port?: number; n?: number; digest?: string }>(sink);
        try {
          const { port } = await recv();
          const client = net.connect(port as number, '127.0.0.1');
          client.on('error', () => {});
          await once(client, 'connect');
          const fd = fdOf(client);
          // Synchronous loop: the event loop never runs, the worker reads concurrently, so a single
          // writev call sees short writes followed by more progress (exercising mid-buffer resumes).
          let rest = bufs;
          let written = 0;
          let calls = 0;
          const deadline = Date.now() + 20000;
          while (written < total && Date.now() < deadline) {
            const n = bind.writev(fd, rest, rest.length);
            calls++;
            written += n;
            rest = remainder(rest, n);
          }
          assert.equal(written, total);
          client.end();
          const r = await recv();
          assert.equal(r.n, total);
          assert.equal(r.digest, digest);
          client.destroy();
          t.diagnostic(`${calls} writev calls for ${total} bytes`);
        } finally {
          await sink.terminate();
        }
      });

      it('partial write + hand the remainder to socket.write keeps byte order', async () => {
        const { bufs, total, digest } = makePayload();
        const pair = await tcpPair();
        try {
          const received = receiveAll(pair.peer, total);
          const n = bind.writev(fdOf(pair.client), bufs, bufs.length);
          assert.ok(n > 0 && n < total, `first writev wrote ${n} of ${total}`);
          for (const r of remainder(bufs, n)) if (r.byteLength) pair.client.write(Buffer.from(r));
          assert.equal(await received, digest);
        } finally {
          pair.close();
        }
      });

      it('honours count, skips empty buffers, validates arguments', async () => {
        const pair = await tcpPair();
        try {
          const fd = fdOf(pair.client);
          const big = Buffer.from('..hello, world!..');
          const parts = [big.subarray(2, 8), Buffer.alloc(0), big.subarray(8, 15), Buffer.from('NOT SENT')];
          const got = peerText(pair.peer, 13);
          assert.equal(bind.writev(fd, parts, 0), 0);
          assert.equal(bind.writev(fd, parts, 3), 13);
          assert.equal(await got, 'hello, world!');
          assert.throws(() => bind.writev(fd, parts, 5), RangeError);
          assert.throws(() => bind.writev(-1, parts, 1), RangeError);
          assert.throws(() => bind.writev(fd, ['str' as unknown as Uint8Array], 1), TypeError);
        } finally {
          pair.close();
        }
      });

      it('throws an Error with a code when the peer has reset the connection', async (t) => {
        const err = await resetWriteError((fd, chunk) => bind.writev(fd, [chunk], 1));
        assert.ok(err instanceof Error, 'writev must fail on a reset connection');
        assert.ok(err.code === 'EPIPE' || err.code === 'ECONNRESET', `code ${err.code}`);
        t.diagnostic(`error code ${err.code}: ${err.message}`);
      });
    });

    describe('writeRange', () => {
      it('writes one range of a buffer, through EAGAIN, validates arguments, throws with a code on reset', async () => {
        const pair = await tcpPair();
        try {
          const fd = fdOf(pair.client);
          const big = Buffer.from('..hello, world!..');
          const got = peerText(pair.peer, 13);
          assert.equal(bind.writeRange(fd, big, 2, 2), 0);
          assert.equal(bind.writeRange(fd, big, 2, 15), 13);
          assert.equal(await got, 'hello, world!');
          assert.throws(() => bind.writeRange(fd, big, 2, big.length + 1), RangeError);
          assert.throws(() => bind.writeRange(fd, big, 5, 4), RangeError);
          assert.throws(() => bind.writeRange(-1, big, 0, 1), RangeError);
          assert.throws(() => bind.writeRange(fd, 'str' as unknown as Uint8Array, 0, 1), TypeError);
        } finally {
          pair.close();
        }
        // A range larger than the socket buffers: a short count (EAGAIN), then the rest later, in order.
        const { bufs, total, digest } = makePayload();
        const all = Buffer.concat(bufs);
        const pair2 = await tcpPair();
        try {
          const received = receiveAll(pair2.peer, total);
          const fd = fdOf(pair2.client);
          let off = 0;
          let partial = 0;
          while (off < total) {
            const n = bind.writeRange(fd, all, off, total);
            assert.ok(Number.isInteger(n) && n >= 0 && n <= total - off, `bad count ${n}`);
            if (n < total - off) partial++;
            off += n;
            if (off < total) await tick();
          }
          assert.ok(partial >= 1, 'the socket buffer must fill at least once');
          assert.equal(await received, digest);
        } finally {
          pair2.close();
        }
        const err = await resetWriteError((fd, chunk) => bind.writeRange(fd, chunk, 0, chunk.length));
        assert.ok(err instanceof Error, 'writeRange must fail on a reset connection');
        assert.ok(err.code === 'EPIPE' || err.code === 'ECONNRESET', `code ${err.code}`);
      });
    });

    describe('writevRanges', () => {
      it('writes ranges of several buffers in order, through EAGAIN, validates arguments, throws with a code on reset', async () => {
        const pair = await tcpPair();
        try {
          const fd = fdOf(pair.client);
          const a = Buffer.from('xxhello');
          const b = Buffer.from(', ');
          const c = Buffer.from('--world!--');
          const got = peerText(pair.peer, 13);
          const bufs = [a, b, a, c, c];
          const starts = [2, 0, 3, 2, 0];
          const ends = [7, 2, 3, 8, 5];
          // Taken off the binding, as the IO context (src/network/io.ts) uses it: no `this`.
          const writevRanges = bind.writevRanges;
          assert.equal(writevRanges(fd, bufs, starts, ends, 0), 0);
          // An empty range (a[3, 3)) adds nothing; only the first `count` entries are written.
          assert.equal(writevRanges(fd, bufs, starts, ends, 4), 13);
          assert.equal(await got, 'hello, world!');
          assert.throws(() => bind.writevRanges(fd, bufs, starts, ends, 6), RangeError);
          assert.throws(() => bind.writevRanges(fd, bufs, starts, [7, 2], 3), RangeError);
          assert.throws(() => bind.writevRanges(fd, [a], [0], [a.length + 1], 1), RangeError);
          assert.throws(() => bind.writevRanges(fd, [a], [4], [3], 1), RangeError);
          assert.throws(() => bind.writevRanges(fd, [a], [-1], [3], 1), RangeError);
          assert.throws(() => bind.writevRanges(fd, [a], [0.5], [3], 1), RangeError);
          assert.throws(() => bind.writevRanges(-1, [a], [0], [1], 1), RangeError);
          assert.throws(() => bind.writevRanges(fd, ['str' as unknown as Uint8Array], [0], [1], 1), TypeError);
          assert.throws(() => bind.writevRanges(fd, a as unknown as Uint8Array[], [0], [1], 1), TypeError);
        } finally {
          pair.close();
        }
        // Ranges larger than the socket buffers: a short count (EAGAIN), then the rest later, in order.
        const { bufs, total, digest } = makePayload();
        const pair2 = await tcpPair();
        try {
          const received = receiveAll(pair2.peer, total);
          const fd = fdOf(pair2.client);
          // Each buffer whole, as ranges; after a short write the rest continues from inside one.
          const rest = [...bufs];
          const starts = bufs.map(() => 0);
          const ends = bufs.map((x) => x.length);
          let off = 0;
          let partial = 0;
          while (off < total) {
            const n = bind.writevRanges(fd, rest, starts, ends, rest.length);
            assert.ok(Number.isInteger(n) && n >= 0 && n <= total - off, `bad count ${n}`);
            if (n < total - off) partial++;
            off += n;
            let left = n;
            while (left > 0 && left >= ends[0] - starts[0]) {
              left -= ends[0] - starts[0];
              rest.shift();
              starts.shift();
              ends.shift();
            }
            if (left > 0) starts[0] += left;
            if (off < total) await tick();
          }
          assert.ok(partial >= 1, 'the socket buffer must fill at least once');
          assert.equal(await received, digest);
        } finally {
          pair2.close();
        }
        const err = await resetWriteError((fd, chunk) => bind.writevRanges(fd, [chunk, chunk], [0, 100], [chunk.length, chunk.length], 2));
        assert.ok(err instanceof Error, 'writevRanges must fail on a reset connection');
        assert.ok(err.code === 'EPIPE' || err.code === 'ECONNRESET', `code ${err.code}`);
      });
    });

    describe('writevArgs', () => {
      it('writes up to four ranges given as arguments in order, through EAGAIN, validates them, throws with a code on reset', async () => {
        const pair = await tcpPair();
        try {
          const fd = fdOf(pair.client);
          const a = Buffer.from('xxhello');
          const c = Buffer.from('--world!--');
          const got = peerText(pair.peer, 15);
          // Taken off the binding, as the IO context (src/network/io.ts) uses it: no `this`.
          const writevArgs = bind.writevArgs;
          assert.equal(writevArgs(fd, 0), 0);
          // Ranges past the count are not read (c[2, 99) would be out of range); an empty range adds nothing.
          assert.equal(writevArgs(fd, 2, a, 2, 7, a, 3, 3, c, 2, 99), 5);
          assert.equal(writevArgs(fd, 4, Buffer.from(', '), 0, 2, c, 2, 8, a, 0, 0, c, 8, 10), 10);
          assert.equal(await got, 'hello, world!--');
          assert.throws(() => writevArgs(fd, 5, a, 0, 1, a, 0, 1, a, 0, 1, a, 0, 1), RangeError);
          assert.throws(() => writevArgs(fd, 2, a, 0, 1), RangeError); // three arguments per range
          assert.throws(() => writevArgs(fd, 1, a, 0, a.length + 1), RangeError);
          assert.throws(() => writevArgs(fd, 1, a, 4, 3), RangeError);
          assert.throws(() => writevArgs(fd, 1, a, -1, 3), RangeError);
          assert.throws(() => writevArgs(fd, 1, a, 0.5, 3), RangeError);
          assert.throws(() => writevArgs(fd, 1.5, a, 0, 3), RangeError);
          assert.throws(() => writevArgs(-1, 1, a, 0, 1), RangeError);
          assert.throws(() => writevArgs(fd, 2, a, 0, 1, 'str' as unknown as Uint8Array, 0, 1), TypeError);
        } finally {
          pair.close();
        }
        // Four ranges larger than the socket buffers: a short count (EAGAIN), then the rest later, in order.
        const big = crypto.randomBytes(4 << 20);
        const pair2 = await tcpPair();
        try {
          const received = receiveAll(pair2.peer, big.length);
          const fd = fdOf(pair2.client);
          const q = big.length / 4;
          let off = 0;
          let partial = 0;
          while (off < big.length) {
            // The rest as up to four ranges of one buffer, cut at the quarters.
            const cuts = [off];
            for (let k = 1; k <= 4; k++) if (k * q > off) cuts.push(k * q);
            const r: (Buffer | number)[] = [];
            for (let k = 0; k + 1 < cuts.length; k++) r.push(big, cuts[k], cuts[k + 1]);
            const n = (bind.writevArgs as (...args: unknown[]) => number)(fd, cuts.length - 1, ...r);
            assert.ok(Number.isInteger(n) && n >= 0 && n <= big.length - off, `bad count ${n}`);
            if (n < big.length - off) partial++;
            off += n;
            if (off < big.length) await tick();
          }
          assert.ok(partial >= 1, 'the socket buffer must fill at least once');
          assert.equal(await received, crypto.createHash('sha256').update(big).digest('hex'));
        } finally {
          pair2.close();
        }
        const err = await resetWriteError((fd, chunk) => bind.writevArgs(fd, 2, chunk, 0, chunk.length, chunk, 100, chunk.length));
        assert.ok(err instanceof Error, 'writevArgs must fail on a reset connection');
        assert.ok(err.code === 'EPIPE' || err.code === 'ECONNRESET', `code ${err.code}`);
      });
    });

    // The addon writes sockets with send/sendmsg (no VFS layer); anything else (ENOTSOCK) gets
    // write/writev: a regular file here.
    it('writeRange and writev write a descriptor that is not a socket', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-writev-'));
      const file = path.join(dir, 'out');
      const fd = fs.openSync(file, 'w');
      try {
        assert.equal(bind.writeRange(fd, Buffer.from('..hello'), 2, 7), 5);
        const parts = [Buffer.from(', '), Buffer.alloc(0), Buffer.from('world')];
        assert.equal(bind.writev(fd, parts, 3), 7);
      } finally {
        fs.closeSync(fd);
      }
      assert.equal(fs.readFileSync(file, 'latin1'), 'hello, world');
      fs.rmSync(dir, { recursive: true });
    });

    // The addon's raw exports (ExportRaw, native/errors.cc) take the usual call themselves and hand
    // anything else (a number that is not an int32 value, e.g. -0 or 2.5) to the N-API callbacks they
    // replaced: what those accepted is still accepted, with the same result.
    it('writeRange, writevRanges and h1Head.parse take integral numbers that are not int32 values as before', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-raw-'));
      const file = path.join(dir, 'out');
      const fd = fs.openSync(file, 'w');
      try {
        assert.equal(bind.writeRange(fd, Buffer.from('..ab'), -0, 2), 2);
        assert.equal(bind.writeRange(fd, Buffer.from('abcd'), 2, 4), 2);
        assert.throws(() => bind.writeRange(fd, Buffer.from('abcd'), 2.5, 4), RangeError);
        const wr = bind.writevRanges as (...args: unknown[]) => number;
        const bufs = [Buffer.from('..ef'), Buffer.from('gh')];
        assert.equal(wr(fd, bufs, [-0, 0], [2, 2], 2), 4); // -0 is not an int32 value: the N-API twin
        assert.equal(wr(fd, bufs, [2, 0], [4, -0], -0 + 2, 'a sixth argument'), 2); // (ignored, as before)
        assert.equal(wr(fd, bufs, [2], [4], 2 ** 0), 2);
        // eslint-disable-next-line no-sparse-arrays
        assert.throws(() => wr(fd, bufs, [, 0], [2, 2], 2), RangeError); // a hole reads as undefined
        assert.throws(() => wr(fd, bufs, [2.5], [4], 1), RangeError);
        assert.throws(() => wr(fd, bufs, [0], [4], 1.5), RangeError);
        assert.throws(() => wr(fd, bufs, [0], [4]), RangeError); // no count
        const wa = bind.writevArgs as (...args: unknown[]) => number;
        assert.equal(wa(fd, 2, bufs[0], -0, 2, bufs[1], 0, 2), 4); // -0: the N-API twin
        assert.equal(wa(fd, -0 + 1, bufs[0], 2, 4, 'not read'), 2);
        assert.throws(() => wa(fd, 1, bufs[0], 2.5, 4), RangeError);
      } finally {
        fs.closeSync(fd);
      }
      assert.equal(fs.readFileSync(file, 'latin1'), '..cd..ghefef..ghef');
      fs.rmSync(dir, { recursive: true });
      const h1 = bind.h1Head;
      if (h1 === undefined) return; // the fallback has no native head scanner
      const io = new Int32Array(1 << 16);
      h1.setup(io);
      io[0] = 1; // a request
      io[1] = 100; // at most 100 fields
      const head = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\nrest');
      const ab = new Uint8Array(head).buffer;
      const end = head.length - 4;
      assert.equal(h1.parse(ab, 0, 0, head.length), end);
      // napi_get_value_int32 truncated a fraction: the same head.
      assert.equal(h1.parse(ab, -0, 0.5, head.length + 0.5), end);
    });

    describe('thread affinity', () => {
      it('pinThread in a worker pins only that worker', async () => {
        const mainBefore = bind.getThreadAffinity();
        assert.deepEqual(mainBefore, loadBinding('fallback').getThreadAffinity());
        assert.ok(mainBefore.length >= 1);
        const cpu = mainBefore[mainBefore.length - 1];
        const r = await runWorker<{ before: number[]; ok: boolean; after: number[]; afterProc: number[]; tooBig: boolean }>(
          PIN_WORKER,
          { mod: MODULE, kind, cpu },
        );
        assert.deepEqual(r.before, mainBefore);
        assert.equal(r.tooBig, false, 'cpu >= nprocs is impossible');
        if (kind === 'native') {
          assert.equal(r.ok, true);
          assert.deepEqual(r.after, [cpu]);
          assert.deepEqual(r.afterProc, [cpu], '/proc/thread-self agrees with pthread_getaffinity_np');
        } else {
          assert.equal(r.ok, false, 'the fallback cannot pin');
          assert.deepEqual(r.after, mainBefore);
        }
        assert.deepEqual(bind.getThreadAffinity(), mainBefore, 'main thread unaffected');
        assert.throws(() => bind.pinThread(-1), RangeError);
        assert.throws(() => bind.pinThread(1.5), RangeError);
      });
    });

    describe('listening sockets', () => {
      it('listenReusePort twice on one port: both bind and accept (fallback: ENOSYS / EADDRINUSE)', async (t) => {
        if (kind === 'fallback') {
          assert.throws(() => bind.listenReusePort('127.0.0.1', 0, 16), { code: 'ENOSYS' });
          assert.throws(() => bind.dupFd(0), { code: 'ENOSYS' });
          const first = await bind.openListenSocket('127.0.0.1', 0, 16);
          await assert.rejects(bind.openListenSocket('127.0.0.1', first.port, 16), { code: 'EADDRINUSE' });
          await first.close();
          return;
        }
        const a = bind.listenReusePort('127.0.0.1', 0, 64);
        const c = bind.listenReusePort('127.0.0.1', a.port, 64);
        assert.ok(a.port > 0);
        assert.equal(c.port, a.port);
        assert.notEqual(c.fd, a.fd);
        const counts = [0, 0];
        const servers = [a.fd, c.fd].map((fd, i) =>
          net.createServer((s) => {
            counts[i]++;
            s.end(`s${i}`);
          }).listen({ fd }),
        );
        await Promise.all(servers.map((s) => (s.listening ? undefined : once(s, 'listening'))));
        const greetings = await connectLoop(a.port, 40);
        assert.equal(greetings.length, 40);
        assert.ok(greetings.every((g) => g === 's0' || g === 's1'));
        assert.equal(counts[0] + counts[1], 40);
        t.diagnostic(`SO_REUSEPORT split: ${counts[0]} / ${counts[1]}`);
        // The servers own (and close) the fds now.
        await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
        assert.throws(() => bind.listenReusePort('not-an-ip', 0, 1), TypeError);
        assert.throws(() => bind.listenReusePort('127.0.0.1', 70000, 1), RangeError);
      });

      it('listenReusePort binds IPv6 literals', { skip: !net.isIPv6('::1') }, async () => {
        if (kind === 'fallback') {
          const s = await bind.openListenSocket('::1', 0, 8);
          assert.equal(s.owner, 'server');
          s.server?.on('connection', (c) => c.end('m'));
          assert.deepEqual(await connectLoop(s.port, 2, '::1'), ['m', 'm']);
          await s.close();
          return;
        }
        const r = bind.listenReusePort('[::1]', 0, 8);
        const server = net.createServer((c) => c.end('v6')).listen({ fd: r.fd });
        if (!server.listening) await once(server, 'listening');
        assert.deepEqual(await connectLoop(r.port, 2, '::1'), ['v6', 'v6']);
        assert.equal((server.address() as net.AddressInfo).family, 'IPv6');
        await new Promise((res) => server.close(res));
      });

      it('openListenSocket fd adopted by two worker threads: every connection is accepted', async (t) => {
        const ls = await bind.openListenSocket('127.0.0.1', 0, 128);
        assert.equal(ls.owner, kind === 'native' ? 'native' : 'server');
        let ownerAccepted = 0;
        // Fallback: the owning net.Server accepts too.
        ls.server?.on('connection', (s) => {
          ownerAccepted++;
          s.end('m');
        });
        // Native: each worker gets its own dup (its net.Server closes the fd it listens on).
        const fds = kind === 'native' ? [bind.dupFd(ls.fd), bind.dupFd(ls.fd)] : [ls.fd, ls.fd];
        if (kind === 'native') assert.ok(fds[0] !== ls.fd && fds[1] !== ls.fd && fds[0] !== fds[1]);
        type Msg = { ready?: boolean; error?: string; accepted?: number };
        const workers = fds.map((fd, id) => new Worker(ACCEPT_WORKER, { eval: true, workerData: { fd, id } }));
        const next = workers.map((w) => inbox<Msg>(w));
        try {
          for (const recv of next) {
            const m = await recv();
            assert.equal(m.error, undefined);
            assert.equal(m.ready, true);
          }
          const n = 60;
          const greetings = await connectLoop(ls.port, n);
          assert.equal(greetings.length, n);
          const byWorker = greetings.filter((g) => g === 'w0' || g === 'w1').length;
          const byOwner = greetings.filter((g) => g === 'm').length;
          assert.equal(byWorker + byOwner, n, `unexpected greetings: ${greetings.join(',')}`);
          assert.equal(byOwner, ownerAccepted);
          if (kind === 'native') assert.equal(byWorker, n);
          assert.ok(byWorker > 0, 'the workers accepted connections');
          const accepted: number[] = [];
          for (let i = 0; i < workers.length; i++) {
            workers[i].postMessage('close');
            const m = await next[i]();
            accepted.push(m.accepted ?? -1);
          }
          assert.equal(accepted[0] + accepted[1], byWorker);
          t.diagnostic(`accepted: worker0 ${accepted[0]}, worker1 ${accepted[1]}, owner ${byOwner}`);
        } finally {
          await Promise.all(workers.map((w) => w.terminate()));
          await ls.close();
        }
      });
    });
  });
}
