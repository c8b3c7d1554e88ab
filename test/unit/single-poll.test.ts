// The event loop of a thread that carries connections polls once per wakeup: Node's idle-time
// metrics (which make libuv call epoll_pwait with timeout 0 before every sleep) are switched
// off with the first Connection, unless OUTRIGGER_LOOP_IDLE_METRICS=1. Seen from JavaScript:
// performance.eventLoopUtilization() stops counting idle time once they are off.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { addonLoadError, native } from '../../src/native';
import { singleCpuScavenge } from '../../src/network/connection';

const CONNECTION = path.join(__dirname, '..', '..', 'src', 'network', 'connection.js');

// A fresh thread (its own loop): accepts one connection through Connection.accept, then sleeps
// 150 ms on a timer and reports the idle time the loop counted meanwhile.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const { performance } = require('node:perf_hooks');
const { Connection } = require(workerData.connection);
const handler = { onData() {}, onEnd() {}, onClose() {}, onHighWatermark() {}, onLowWatermark() {} };
const server = net.createServer({ pauseOnConnect: true }, (s) => {
  const conn = Connection.accept(s, handler, 65536);
  const before = performance.eventLoopUtilization();
  setTimeout(() => {
    const d = performance.eventLoopUtilization(before);
    parentPort.postMessage({ idleMs: d.idle });
    conn.destroy();
    client.destroy();
    server.close();
  }, 150);
});
let client;
server.listen(0, '127.0.0.1', () => {
  client = net.connect(server.address().port, '127.0.0.1');
  client.on('error', () => {});
});
`;

async function idleWhileSleeping(env: NodeJS.ProcessEnv): Promise<number> {
  const w = new Worker(WORKER, { eval: true, env, workerData: { connection: CONNECTION } });
  const exited = once(w, 'exit');
  const [msg] = (await once(w, 'message')) as [{ idleMs: number }];
  await exited;
  return msg.idleMs;
}

describe('event loop: one poll per wakeup', { skip: native.kind !== 'native' ? `addon not loaded: ${addonLoadError()?.message}` : false }, () => {
  it('a thread with connections stops the idle-time metrics (no zero-timeout poll before each sleep)', async () => {
    const env = { ...process.env };
    delete env.OUTRIGGER_LOOP_IDLE_METRICS;
    const idle = await idleWhileSleeping(env);
    assert.ok(idle < 20, `idle time still counted: ${idle} ms over a 150 ms sleep`);
  });

  it('OUTRIGGER_LOOP_IDLE_METRICS=1 keeps them', async () => {
    const idle = await idleWhileSleeping({ ...process.env, OUTRIGGER_LOOP_IDLE_METRICS: '1' });
    assert.ok(idle > 100, `idle time not counted: ${idle} ms over a 150 ms sleep`);
  });

  it('singlePoll reports whether the metrics were on, once per loop', () => {
    // This thread may already have had a Connection (other tests in the process): call twice.
    native.singlePoll();
    assert.equal(native.singlePoll(), false);
  });
});

// A pinned sidecar (one CPU) scavenges without V8's helper threads: they would share that CPU
// with the thread waiting for them (a 2 ms scavenge measured ~20 ms).
const PINNED = `
const net = require('node:net');
const { Connection, scavengeSingleThreaded } = require(process.argv[1]);
const handler = { onData() {}, onEnd() {}, onClose() {}, onHighWatermark() {}, onLowWatermark() {} };
const before = scavengeSingleThreaded();
const server = net.createServer({ pauseOnConnect: true }, (s) => {
  const conn = Connection.accept(s, handler, 65536);
  process.stdout.write(JSON.stringify({ before, after: scavengeSingleThreaded() }));
  conn.destroy();
  client.destroy();
  server.close();
});
let client;
server.listen(0, '127.0.0.1', () => {
  client = net.connect(server.address().port, '127.0.0.1');
  client.on('error', () => {});
});
`;

function scavengeIn(pinned: boolean, env: NodeJS.ProcessEnv): { before: boolean; after: boolean } {
  const args = ['-e', PINNED, CONNECTION];
  const r = pinned ? spawnSync('taskset', ['-c', '0', process.execPath, ...args], { env, encoding: 'utf8', timeout: 20_000 }) : spawnSync(process.execPath, args, { env, encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { before: boolean; after: boolean };
}

describe('scavenges on one CPU', () => {
  it('singleCpuScavenge: helpers off on one CPU, on otherwise; OUTRIGGER_PARALLEL_SCAVENGE overrides', () => {
    assert.equal(singleCpuScavenge(1, undefined), true);
    assert.equal(singleCpuScavenge(2, undefined), false);
    assert.equal(singleCpuScavenge(1, '1'), false);
    assert.equal(singleCpuScavenge(8, '0'), true);
  });

  it('a process pinned to one CPU turns parallel scavenges off with its first connection', { skip: spawnSync('taskset', ['-c', '0', 'true']).status !== 0 ? 'no taskset' : false }, () => {
    const env = { ...process.env };
    delete env.OUTRIGGER_PARALLEL_SCAVENGE;
    assert.deepEqual(scavengeIn(true, env), { before: false, after: true });
    assert.deepEqual(scavengeIn(true, { ...env, OUTRIGGER_PARALLEL_SCAVENGE: '1' }), { before: false, after: false });
    if (os.availableParallelism() > 1) assert.deepEqual(scavengeIn(false, env), { before: false, after: false });
  });
});
