/**
 * One-isolate mode (src/worker/inline.ts): with one worker the data plane runs on the main
 * thread, with the same messages as a worker thread. Checked in process (reload, stats, stop,
 * nothing left open, a second sidecar in the process gets a thread, `threads` forces one) and
 * through the CLI (a crash ends the process; --worker-threads costs a second isolate).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { Sidecar } from '../../src/server';
import { parseConfig } from '../../src/config';
import { backend, httpConfig, request, type Backend } from '../helpers/http';
import { anonRssOf, rssOf, startSidecar } from '../helpers/sidecar';

function config(a: Backend, b: Backend, cluster: 'a' | 'b'): Record<string, unknown> {
  const routers = [{ router_config_name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: cluster } }] }] }];
  return httpConfig([{ name: 'web', downstream: 'Http1', router: 'r' }], routers, { a: [a.port], b: [b.port] });
}

/** Handles this process has open, by kind (sockets, servers, timers, watchers). */
function openHandles(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}

function sidecar(cfg: Record<string, unknown>, threads?: boolean): Sidecar {
  return new Sidecar({ config: parseConfig(cfg), workers: 1, adminPort: 0, logLevel: 'error', threads });
}

test('one worker runs on the main thread: it serves, reloads, counts, and stops leaving nothing open; a second sidecar gets a thread', { timeout: 60_000 }, async () => {
  const a = await backend('a');
  const b = await backend('b');
  const before = openHandles();
  const sc = sidecar(config(a, b, 'a'));
  try {
    await sc.start();
    assert.equal(sc.workerThreads().length, 1);
    assert.ok(!(sc.workerThreads()[0] instanceof Worker), 'the data plane is not a worker thread');
    assert.equal(sc.oneIsolate, true);
    const port = sc.listeners()[0]!.port;
    assert.equal((await request(port, '/1')).headers['x-backend'], 'a');
    // The two-phase reload (prepare, commit, settle) through the in-process channel.
    await sc.reload(parseConfig(config(a, b, 'b')));
    assert.equal((await request(port, '/2')).headers['x-backend'], 'b');
    // A second sidecar in this process cannot run inline too: it gets a worker thread.
    const other = sidecar(config(a, b, 'a'));
    await other.start();
    try {
      assert.ok(other.workerThreads()[0] instanceof Worker, 'a second data plane runs in a thread');
      assert.equal((await request(other.listeners()[0]!.port, '/3')).headers['x-backend'], 'a');
    } finally {
      await other.stop();
    }
    // Counters and histograms reach the admin as from a thread.
    const st = (await (await fetch(`http://127.0.0.1:${sc.adminPort}/api/v1/stats`)).json()) as { server: { config_version: number }; routes: Record<string, { rq_total: number }> };
    assert.equal(st.server.config_version, 2);
    assert.equal(st.routes['r.vh.0']?.rq_total, 2, JSON.stringify(st.routes));
  } finally {
    await sc.stop();
    await a.close();
    await b.close();
  }
  // What the data plane opened (listeners, upstream connections, timers) closed with it.
  await new Promise((r) => setImmediate(r));
  const after = openHandles();
  for (const kind of ['TCPSocketWrap', 'TCPServerWrap', 'Timeout', 'FSEventWrap']) {
    assert.ok((after.get(kind) ?? 0) <= (before.get(kind) ?? 0), `${kind} left open: ${JSON.stringify([...after])} (before ${JSON.stringify([...before])})`);
  }
  // A fresh data plane starts inline again once the first one ended; `threads` forces a thread.
  const again = sidecar(config(a, b, 'a'));
  const forced = sidecar(config(a, b, 'a'), true);
  try {
    await again.start();
    await forced.start();
    assert.equal(again.oneIsolate, true);
    assert.ok(forced.workerThreads()[0] instanceof Worker, 'threads: true runs the one worker in a thread');
  } finally {
    await forced.stop();
    await again.stop();
  }
});

test('CLI, one worker: a crash of the data plane ends the process with a fatal log line; --worker-threads costs a second isolate', { timeout: 60_000 }, async () => {
  const a = await backend('a');
  const b = await backend('b');
  try {
    const inline = await startSidecar(config(a, b, 'a'), { env: { OUTRIGGER_TEST_HOOKS: '1' } });
    const threads = await startSidecar(config(a, b, 'a'), { args: ['--worker-threads'] });
    try {
      assert.match(inline.output(), /1 worker\(s\) \(on the main thread\)/);
      assert.doesNotMatch(threads.output(), /on the main thread/);
      await new Promise((r) => setTimeout(r, 500));
      // The second isolate's cost is its own memory (RssAnon): since the start releases the node
      // executable's file pages (src/startup-memory.ts), total RSS depends on which pages each
      // process has touched again by now (measured: 16.4-16.8 MB anonymous, 7.8-8.2 MB total).
      const saved = anonRssOf(threads.pid) - anonRssOf(inline.pid);
      console.log(`# one isolate saves ${(saved / 1048576).toFixed(1)} MB anonymous, ${((rssOf(threads.pid) - rssOf(inline.pid)) / 1048576).toFixed(1)} MB of RSS`);
      assert.ok(saved > 8 * 1024 * 1024, `one isolate saves ${(saved / 1048576).toFixed(1)} MB of anonymous memory`);
    } finally {
      await threads.terminate();
    }
    inline.proc.kill('SIGUSR2'); // test hook: the data plane throws an uncaught exception
    assert.equal(await inline.exited, 1, 'the process ends (its supervisor restarts it)');
    const fatal = inline.output().split('\n').find((l) => l.includes('"level":60')) ?? '';
    assert.match(fatal, /uncaught exception in the process/);
    assert.match(fatal, /crash requested by test hook/);
  } finally {
    await a.close();
    await b.close();
  }
});
