/**
 * native/splice.cc on its own: two real TCP connections whose server-side sockets (never read
 * by Node: created paused) are joined with spliceStart. What stop() hands back plus what each
 * side got must be exactly what was sent; the end callback reports both FINs and resets.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import { native } from '../../src/native';
import { socketFd } from '../../src/network/user-buffer';

const MiB = 1024 * 1024;
const sp = native.splice;
const skip = sp === null ? 'no splice in this binding (OUTRIGGER_NATIVE=0 or an old addon)' : false;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Ended = { id: number; side: number; errno: number };
/** End callbacks since the current test began (pair ids are reused once stopped). */
let ended: Ended[] = [];
if (sp !== null) sp.setCallback((id, side, errno) => ended.push({ id, side, errno }));

/** A client socket and the server's side of it, which Node never reads (pauseOnConnect). */
async function pairOf(): Promise<{ client: net.Socket; inner: net.Socket; close(): void }> {
  ended = [];
  const srv = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const inner = new Promise<net.Socket>((r) => srv.once('connection', r));
  const client = net.connect({ port: (srv.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise((r) => client.once('connect', r));
  const s = await inner;
  client.on('error', () => {});
  s.on('error', () => {});
  return { client, inner: s, close: () => srv.close() };
}

function closeAll(...pairs: { client: net.Socket; inner: net.Socket; close(): void }[]): void {
  for (const p of pairs) {
    p.client.destroy();
    p.inner.destroy();
    p.close();
  }
}

function collect(s: net.Socket): { bytes: Buffer[]; ended: Promise<void> } {
  const bytes: Buffer[] = [];
  s.on('data', (d: Buffer) => bytes.push(d));
  return { bytes, ended: new Promise((r) => s.once('end', r)) };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (const t0 = Date.now(); !cond(); await sleep(5)) if (Date.now() - t0 > 5000) assert.fail(`timed out: ${what}`);
}

test('forwards both ways, counts, and reports both FINs once forwarded', { skip }, async () => {
  const a = await pairOf();
  const b = await pairOf();
  const state = new Float64Array(6);
  const counters = new Float64Array(8);
  const id = sp!.start(socketFd(a.inner), socketFd(b.inner), state, counters, [0, 1, 2, 3, 4, 5], 65536);
  const toB = crypto.randomBytes(3 * MiB);
  const toA = crypto.randomBytes(2 * MiB + 17);
  const gotB = collect(b.client);
  const gotA = collect(a.client);
  a.client.end(toB);
  b.client.end(toA);
  await Promise.all([gotA.ended, gotB.ended]);
  assert.ok(Buffer.concat(gotB.bytes).equals(toB), 'A -> B byte-exact, then FIN');
  assert.ok(Buffer.concat(gotA.bytes).equals(toA), 'B -> A byte-exact, then FIN');
  await until(() => ended.some((e) => e.id === id), 'the end callback');
  assert.deepEqual(ended.find((e) => e.id === id), { id, side: 0, errno: 0 });
  assert.deepEqual(Array.from(state.subarray(0, 4)), [toB.length, toB.length, toA.length, toA.length]);
  assert.deepEqual(Array.from(counters.subarray(0, 4)), [toB.length, toB.length, toA.length, toA.length]);
  assert.deepEqual(sp!.stop(id), [null, null]);
  assert.throws(() => sp!.stop(id), /no such splice pair/);
  closeAll(a, b);
});

test('stop() hands back exactly the bytes still in the pipe; a reader that stops holds the sender back', { skip }, async () => {
  const a = await pairOf();
  const b = await pairOf();
  const state = new Float64Array(6);
  const id = sp!.start(socketFd(a.inner), socketFd(b.inner), state, new Float64Array(1), [-1, -1, -1, -1, -1, -1], 65536);
  b.client.pause(); // B's reader stops: the pipe and the socket buffers fill, then A is not read
  const sent = crypto.randomBytes(64 * MiB);
  a.client.write(sent);
  await sleep(500);
  const read1 = state[0];
  await sleep(300);
  assert.equal(state[0], read1, 'nothing read from A while B does not read');
  assert.ok(read1 < 48 * MiB, `read ${read1} bytes from A`);
  const [toB, toA] = sp!.stop(id);
  assert.equal(toA, null);
  assert.ok(toB !== null && toB.length === state[0] - state[1] && toB.length > 0, 'the pipe held bytes');
  // B's reader resumes; what it gets, then the leftover, then what A's socket still holds, is the stream.
  const gotB = collect(b.client);
  b.client.resume();
  await until(() => gotB.bytes.reduce((n, x) => n + x.length, 0) === state[1], 'B to read what was spliced');
  const rest = collect(a.inner);
  a.inner.resume();
  await until(() => state[0] + rest.bytes.reduce((n, x) => n + x.length, 0) === sent.length, 'the rest of A');
  assert.ok(Buffer.concat([...gotB.bytes, toB!, ...rest.bytes]).equals(sent), 'spliced + leftover + unread = sent, in order');
  closeAll(a, b);
});

test('a reset on one side ends the pair with that side and its errno', { skip }, async () => {
  const a = await pairOf();
  const b = await pairOf();
  const id = sp!.start(socketFd(a.inner), socketFd(b.inner), new Float64Array(6), new Float64Array(1), [-1, -1, -1, -1, -1, -1], 0);
  b.client.resetAndDestroy();
  a.client.write(crypto.randomBytes(MiB)); // forwarding to B fails, or reading B sees the reset first
  await until(() => ended.some((e) => e.id === id), 'the end callback');
  const e = ended.find((x) => x.id === id)!;
  assert.equal(e.side, 1, JSON.stringify(e));
  assert.ok(e.errno === 104 || e.errno === 32, `errno ${e.errno} (ECONNRESET or EPIPE)`);
  sp!.stop(id);
  closeAll(a, b);
});
