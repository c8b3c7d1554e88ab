/**
 * Hot upgrade failure paths and edge cases (issue 14): no addon (a clear refusal), nobody to take
 * over from, disable_upgrade; the new process dies mid-hand-over (the old one keeps accepting,
 * nothing is lost, a later upgrade works); the old one is SIGKILLed during the connection
 * transfer (the new one keeps what it received); two upgrades back to back, the second with a
 * changed config (one more listener, a cluster moved to another upstream).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { CLI, startSidecar } from '../helpers/sidecar';
import { boltProxyConfig, fakeUpstream, rawClient, rawRequest, rawResponse, sleep, type BoltCollector } from '../helpers/sofa';
import { echoServer } from '../helpers/net';
import { mergeConfigs, startUpgrade, upgradeDirFor } from '../helpers/upgrade';

const SVC = 'com.example.UpgradeService';

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    // A process that should have exited but serves (a regression) must not hold the test file open.
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('close', (code) => {
      // after the pipes drained, unlike 'exit'
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

async function echoBolt() {
  return fakeUpstream((r) => r.sock.write(rawResponse(r.frame, r.buf)));
}

/** Sends one request on each client and waits for its answer; returns how many got a status-0 answer. */
async function roundTrip(clients: readonly BoltCollector[], id: number): Promise<number> {
  let ok = 0;
  await Promise.all(
    clients.map(async (c) => {
      if (c.closed) return;
      const n = c.frames.length;
      c.sock.write(rawRequest(id, SVC));
      await c.wait(n + 1, 5000).catch(() => {});
      if (c.frames.length > n && c.frames[n].frame.requestId === id && c.frames[n].frame.status === 0) ok++;
    }),
  );
  return ok;
}

/** New connections, one request each, every few ms until stopped: counts answered and failed. */
function connectLoop(port: number): { stop(): Promise<{ ok: number; failed: number }> } {
  let running = true;
  let ok = 0;
  let failed = 0;
  const loop = (async () => {
    for (let i = 1; running; i++) {
      try {
        const c = await rawClient(port);
        c.sock.write(rawRequest(i, SVC));
        await c.wait(1, 5000);
        if (c.frames[0]?.frame.status === 0) ok++;
        else failed++;
        c.sock.destroy();
      } catch {
        failed++;
      }
      await sleep(5);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ok, failed };
    },
  };
}

test('without the addon --upgrade refuses clearly: hand-over impossible', async () => {
  const r = await runCli(['start', '--upgrade'], { OUTRIGGER_NATIVE: '0', OUTRIGGER_UPGRADE_DIR: upgradeDirFor() });
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, /hot upgrade impossible: .*needs the native addon.*Node alone cannot send file descriptors between unrelated processes/);
  assert.match(r.out, /OUTRIGGER_NATIVE=0/);
});

test('--upgrade with nobody to take over from, or an old process with disable_upgrade: exits 1 naming the socket', async () => {
  const dir = upgradeDirFor();
  const r = await runCli(['start', '--upgrade'], { OUTRIGGER_UPGRADE_DIR: dir });
  assert.equal(r.code, 1, r.out);
  assert.ok(r.out.includes(`${path.join(dir, 'reconfig.sock')}: no running Outrigger listens there`), r.out);
  const up = await echoBolt();
  const old = await startSidecar(mergeConfigs([boltProxyConfig({ clusters: { bolt_service: [up.port] } })], { disable_upgrade: true }), { env: { OUTRIGGER_UPGRADE_DIR: dir } });
  try {
    assert.doesNotMatch(old.output(), /disable_upgrade.*ignored/);
    const r2 = await runCli(['start', '--upgrade'], { OUTRIGGER_UPGRADE_DIR: dir });
    assert.equal(r2.code, 1, r2.out);
    assert.match(r2.out, /no running Outrigger listens there/);
    assert.equal(fs.existsSync(path.join(dir, 'reconfig.sock')), false);
    assert.equal(await roundTrip([await rawClient(old.ports.get('bolt')!)], 7), 1);
  } finally {
    await old.terminate('SIGKILL');
    await up.close();
  }
});

test('the new process dies mid-hand-over: the old one keeps accepting, nothing is lost, a later upgrade works', { timeout: 60_000 }, async () => {
  const up = await echoBolt();
  const dir = upgradeDirFor();
  const old = await startSidecar(mergeConfigs([boltProxyConfig({ clusters: { bolt_service: [up.port] } })]), { env: { OUTRIGGER_UPGRADE_DIR: dir } });
  const port = old.ports.get('bolt')!;
  const live = await rawClient(port);
  let next: Awaited<ReturnType<typeof startUpgrade>> | undefined;
  try {
    const loop = connectLoop(port);
    await sleep(200);
    // It received the listening sockets, then dies (SIGKILL) before it serves.
    await assert.rejects(startUpgrade(dir, { env: { OUTRIGGER_TEST_HOOKS: '1', OUTRIGGER_TEST_UPGRADE_DIE: 'listeners' } }), /upgrade exited with null/);
    await sleep(500);
    const during = await loop.stop();
    assert.equal(during.failed, 0, `${during.failed} connection attempts failed`);
    assert.ok(during.ok > 10, `only ${during.ok} connections`);
    assert.equal(await roundTrip([live], 100), 1);
    const st = await old.stats();
    assert.equal(st.server.upgrade_state, 0, 'back to idle');
    // The old process still answers the upgrade socket: the next upgrade works.
    next = await startUpgrade(dir);
    assert.equal(await old.exited, 0);
    assert.equal((await next.oldDone).migrated >= 1, true);
    assert.equal(await roundTrip([live], 101), 1);
    assert.equal(live.closed, false);
  } finally {
    live.sock.destroy();
    await next?.terminate();
    await old.terminate('SIGKILL');
    await up.close();
  }
});

test('the old process killed (SIGKILL) during the connection transfer: the new one keeps what it received', { timeout: 60_000 }, async () => {
  const up = await echoBolt();
  const dir = upgradeDirFor();
  const old = await startSidecar(mergeConfigs([boltProxyConfig({ clusters: { bolt_service: [up.port] } })]), { env: { OUTRIGGER_UPGRADE_DIR: dir, OUTRIGGER_TEST_HOOKS: '1', OUTRIGGER_TEST_UPGRADE_OLD_DIE_AFTER: '5' } });
  const port = old.ports.get('bolt')!;
  const clients = await Promise.all(Array.from({ length: 20 }, () => rawClient(port)));
  let next: Awaited<ReturnType<typeof startUpgrade>> | undefined;
  try {
    assert.equal(await roundTrip(clients, 1), 20);
    next = await startUpgrade(dir);
    const report = await next.oldDone;
    assert.equal(await old.exited, null, 'the old process was killed');
    assert.equal(report.clean, false);
    assert.ok(report.migrated >= 5 && report.migrated < 20, `adopted ${report.migrated}`);
    await sleep(200);
    // Exactly the connections it received keep working; the others died with the old process.
    assert.equal(await roundTrip(clients, 2), report.migrated);
    const st = await next.stats();
    assert.equal(st.server.upgrade_state, 4);
    assert.equal(st.server.upgrade_connections_adopted, report.migrated);
    // And it serves new connections.
    assert.equal(await roundTrip([await rawClient(port)], 3), 1);
  } finally {
    for (const c of clients) c.sock.destroy();
    await next?.terminate();
    await old.terminate('SIGKILL');
    await up.close();
  }
});

test('two upgrades back to back, the second with a changed config (one more listener, a cluster moved)', { timeout: 60_000 }, async () => {
  const up1 = await echoBolt();
  const up2 = await echoBolt();
  const echo = await echoServer();
  const dir = upgradeDirFor();
  const base = mergeConfigs([boltProxyConfig({ clusters: { bolt_service: [up1.port] } })]);
  const old = await startSidecar(base, { env: { OUTRIGGER_UPGRADE_DIR: dir } });
  const port = old.ports.get('bolt')!;
  const live = await rawClient(port);
  let n1: Awaited<ReturnType<typeof startUpgrade>> | undefined;
  let n2: Awaited<ReturnType<typeof startUpgrade>> | undefined;
  try {
    for (let i = 1; i <= 10; i++) assert.equal(await roundTrip([live], i), 1);
    n1 = await startUpgrade(dir); // the old process's config
    assert.equal(await old.exited, 0);
    for (let i = 11; i <= 20; i++) assert.equal(await roundTrip([live], i), 1);
    const changed = JSON.parse(JSON.stringify(base)) as any;
    changed.cluster_manager.clusters[0].hosts = [{ address: `127.0.0.1:${up2.port}` }];
    changed.servers[0].listeners.push({ name: 'extra', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'echo' } }] }] });
    changed.cluster_manager.clusters.push({ name: 'echo', type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: [{ address: `127.0.0.1:${echo.port}` }] });
    const file = path.join(dir, 'changed.json');
    fs.writeFileSync(file, JSON.stringify(changed));
    n2 = await startUpgrade(dir, { args: ['-c', file] });
    assert.equal(await n1.exited, 0);
    assert.equal((await n2.oldDone).clean, true);
    assert.equal(n2.ports.get('bolt'), port);
    const before2 = up2.requests.length;
    for (let i = 21; i <= 30; i++) assert.equal(await roundTrip([live], i), 1);
    assert.equal(up2.requests.length - before2, 10, 'the moved cluster serves the handed-over connection');
    assert.equal(live.closed, false);
    // The added listener serves.
    const s = net.connect(n2.ports.get('extra')!, '127.0.0.1');
    const got = await new Promise<string>((resolve) => {
      s.once('data', (d) => resolve(d.toString()));
      s.write('ping');
    });
    s.destroy();
    assert.equal(got, 'ping');
    // Counters continue across both upgrades.
    const st = await n2.stats();
    assert.ok(st.listeners.bolt.downstream_rq_total >= 30, `bolt rq ${st.listeners.bolt.downstream_rq_total}`);
  } finally {
    live.sock.destroy();
    await n2?.terminate();
    await n1?.terminate();
    await old.terminate('SIGKILL');
    await Promise.all([up1.close(), up2.close(), new Promise<void>((r) => echo.server.close(() => r()))]);
    for (const sck of echo.sockets) sck.destroy();
  }
});

test('a process of another user on the upgrade socket is refused and logged; the running one keeps serving', { timeout: 30_000 }, async () => {
  const up = await echoBolt();
  const dir = upgradeDirFor();
  // Test hook: the old process sees every peer as uid 4242 (the test runs as one user).
  const old = await startSidecar(mergeConfigs([boltProxyConfig({ clusters: { bolt_service: [up.port] } })]), { env: { OUTRIGGER_UPGRADE_DIR: dir, OUTRIGGER_TEST_HOOKS: '1', OUTRIGGER_TEST_UPGRADE_PEER_UID: '4242' } });
  try {
    const r = await runCli(['start', '--upgrade'], { OUTRIGGER_UPGRADE_DIR: dir });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /upgrade failed: .*refused: only a process of the same user \(or root\) may take over/);
    const st = await old.stats();
    assert.equal(st.server.upgrade_peers_refused, 1);
    assert.equal(st.server.upgrade_state, 0);
    const logged = /hot upgrade refused: the process that connected is not of this user: pid \d+ runs as uid 4242/;
    for (let i = 0; i < 100 && !logged.test(old.output()); i++) await sleep(20); // the log is written asynchronously
    assert.match(old.output(), logged);
    assert.equal(await roundTrip([await rawClient(old.ports.get('bolt')!)], 9), 1);
  } finally {
    await old.terminate('SIGKILL');
    await up.close();
  }
});
