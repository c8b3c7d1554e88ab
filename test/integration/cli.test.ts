/** The `outrigger` command itself: validate, start on the embedded default config, signals, access log. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { close, connect, drainHash, echoServer } from '../helpers/net';
import { CLI, startSidecar, tcpProxyConfig } from '../helpers/sidecar';
import { upgradeDirFor } from '../helpers/upgrade';

function tmpFile(name: string, content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-cli-'));
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

test('validate: a good config exits 0, a bad one exits 1 naming the path and value', () => {
  const good = tmpFile('good.json', JSON.stringify(tcpProxyConfig({ upstreams: [8080] })));
  const ok = spawnSync(process.execPath, [CLI, 'validate', '-c', good], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /valid/);

  const cfg = tcpProxyConfig({ upstreams: [8080] }) as any;
  cfg.servers[0].listeners[0].address = 'abc';
  const bad = tmpFile('bad.json', JSON.stringify(cfg));
  const r = spawnSync(process.execPath, [CLI, 'validate', '-c', bad], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /servers\[0\]\.listeners\[0\]\.address: "abc" is not host:port/);

  const notJson = tmpFile('broken.json', '{"servers": [');
  const r2 = spawnSync(process.execPath, [CLI, 'validate', '-c', notJson], { encoding: 'utf8' });
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /JSON/i);
});

test('start refuses an invalid config with the error and exit code 2', () => {
  const cfg = tcpProxyConfig({ upstreams: [8080] }) as any;
  cfg.cluster_manager.clusters[0].lb_type = 'LB_NOPE';
  const bad = tmpFile('bad.json', JSON.stringify(cfg));
  const r = spawnSync(process.execPath, [CLI, 'start', '-c', bad], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /cluster_manager\.clusters\[0\]\.lb_type/);
});

test('start with no -c runs the embedded default config, prints where it listens, SIGTERM exits 0', { timeout: 30_000 }, async () => {
  // Its own upgrade directory (not the shared default <tmp>/outrigger).
  const env = { ...process.env, OUTRIGGER_UPGRADE_DIR: upgradeDirFor() };
  const proc = spawn(process.execPath, [CLI, 'start', '--admin-port', '0', '--log-level', 'warn'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d));
  proc.stderr.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no start line:\n${out}`)), 15_000);
    proc.stdout.on('data', () => {
      if (/admin on http/.test(out)) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  assert.match(out, /config .*src\/config\/default\.json/);
  assert.match(out, /listener local_tcp_proxy on 127\.0\.0\.1:2045/);
  const m = /admin on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)!;
  const ready = await fetch(`http://127.0.0.1:${m[1]}/ready`);
  assert.equal(ready.status, 200);
  proc.kill('SIGTERM');
  assert.equal(await exited, 0);
});

test('SIGINT exits promptly even with a live connection', { timeout: 30_000 }, async () => {
  const echo = await echoServer();
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [echo.port] }));
  const c = await connect(sc.ports.get('tcp')!);
  c.on('error', () => {});
  const t0 = Date.now();
  const code = await sc.terminate('SIGINT');
  assert.ok(Date.now() - t0 < 3000, 'exited within 3 s');
  assert.equal(code, 0);
  c.destroy();
  await close(echo.server);
});

test('per-listener access log records each proxied connection', { timeout: 30_000 }, async () => {
  const echo = await echoServer();
  const logPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-al-')), 'access.log');
  const sc = await startSidecar(tcpProxyConfig({ upstreams: [echo.port], accessLogPath: logPath }));
  try {
    const c = await connect(sc.ports.get('tcp')!);
    const got = drainHash(c);
    c.end('0123456789');
    assert.equal((await got).bytes, 10);
  } finally {
    await sc.terminate();
    await close(echo.server);
  }
  const log = fs.readFileSync(logPath, 'utf8');
  const lines = log.trim().split('\n');
  assert.equal(lines.length, 1, log);
  assert.ok(lines[0].includes(`127.0.0.1:${echo.port}`), `upstream host in ${lines[0]}`);
  assert.match(lines[0], /\b10\b/, 'byte counts in the line');
});

test('SIGHUP reloads the config: new listener, new upstream for new connections, live connection kept', { timeout: 30_000 }, async () => {
  const echoA = await echoServer();
  const echoB = await echoServer();
  const cfg = tcpProxyConfig({ upstreams: [echoA.port] }) as any;
  const sc = await startSidecar(cfg);
  try {
    const port = sc.ports.get('tcp')!;
    const live = await connect(port);
    live.setEncoding('utf8');
    let liveGot = '';
    live.on('data', (d: string) => (liveGot += d));
    live.write('one ');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(echoA.sockets.size, 1);

    // New snapshot: the cluster points at B, and a second listener appears.
    cfg.cluster_manager.clusters[0].hosts = [{ address: `127.0.0.1:${echoB.port}` }];
    const second = JSON.parse(JSON.stringify(cfg.servers[0].listeners[0]));
    second.name = 'tcp2';
    cfg.servers[0].listeners.push(second);
    fs.writeFileSync(sc.configPath, JSON.stringify(cfg));
    sc.proc.kill('SIGHUP');
    const t0 = Date.now();
    while (!/config reloaded[\s\S]*listener tcp2 on \S+:(\d+)/.test(sc.output())) {
      assert.ok(Date.now() - t0 < 10_000, `no reload line:\n${sc.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const port2 = Number(/listener tcp2 on \S+:(\d+)/.exec(sc.output())![1]);

    // The live connection still works and still goes to A.
    live.write('two');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(liveGot, 'one two');
    // New connections on both listeners go to B.
    for (const p of [port, port2]) {
      const c = await connect(p);
      const got = drainHash(c);
      c.end('x');
      assert.equal((await got).bytes, 1);
    }
    assert.equal(echoA.sockets.size, 1, 'A has only the live connection');
    const st = await sc.stats();
    assert.ok(st.listeners.tcp2.downstream_cx_total >= 1, 'the new listener has stats');

    // A broken file is refused and the running config stays.
    fs.writeFileSync(sc.configPath, '{"servers": [');
    sc.proc.kill('SIGHUP');
    // The log is asynchronous (flushed at least once a second).
    for (let i = 0; i < 60 && !/config rejected; keeping the running one/.test(sc.output()); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(sc.output(), /config rejected; keeping the running one/);
    const c = await connect(port);
    const got = drainHash(c);
    c.end('yz');
    assert.equal((await got).bytes, 2);
    live.destroy();
  } finally {
    await sc.terminate();
    await close(echoA.server);
    await close(echoB.server);
  }
});
