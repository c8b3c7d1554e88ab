/**
 * Hot upgrade leftovers (issue 14): the new process dies (SIGKILL) after it took over, while the
 * old one still drains: the old one takes the listeners back (connection attempts made right
 * after the kill succeed, with curl and sofa-rpc-node), keeps what it still has, counts it, and a
 * later upgrade works. A moved connection is not a destroyed one. Long-lived streams still open
 * at graceful_timeout are counted as cut, in the old process's final report.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import * as path from 'node:path';
import { startSidecar } from '../helpers/sidecar';
import { backend, httpConfig, run } from '../helpers/http';
import { boltProxyConfig, fakeUpstream, rawClient, rawRequest, rawResponse, sleep, startSofaServer } from '../helpers/sofa';
import { mergeConfigs, startUpgrade, upgradeDirFor } from '../helpers/upgrade';

const SVC = 'com.example.Echo'; // the service test/helpers/sofa-peer.ts calls
const SOFA_PEER = path.join(__dirname, '..', 'helpers', 'sofa-peer.js');

/** One sofa-rpc-node call on a new connection, from its own process (RpcClient.close() leaves a 30 s timer behind). */
async function sofaCall(port: number, arg: string): Promise<string> {
  const r = await run(process.execPath, [SOFA_PEER, 'client', `127.0.0.1:${port}`, arg], 15_000);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}
const ROUTER = [{ router_config_name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'web' } }] }] }];

async function curl(port: number, path: string): Promise<string> {
  const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `http://127.0.0.1:${port}${path}`], 10_000);
  return r.stdout;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test('the new process is SIGKILLed after it took over: the old one takes the listeners back, keeps serving, and a later upgrade works', { timeout: 60_000 }, async () => {
  const sofaServer = await startSofaServer({ [SVC]: { async echo(x: string) { return `srv:${x}`; } } });
  let release: () => void = () => {};
  const web = await backend('web', (req, res) => {
    if (req.url === '/slow') {
      release = () => res.end('slow done');
      return;
    }
    res.end('ok');
  });
  const cfg = mergeConfigs([boltProxyConfig({ clusters: { bolt_service: [sofaServer.port] } }), httpConfig([{ name: 'h1', downstream: 'Http1', upstream: 'Http1', router: 'r' }], ROUTER, { web: [web.port] })]);
  const dir = upgradeDirFor();
  const old = await startSidecar(cfg, { env: { OUTRIGGER_UPGRADE_DIR: dir } });
  const h1 = old.ports.get('h1')!;
  const bolt = old.ports.get('bolt')!;
  let n2: Awaited<ReturnType<typeof startUpgrade>> | undefined;
  try {
    // A request in flight keeps the old process draining after the hand-over.
    const slow = new Promise<{ status: number; body: string }>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: h1, path: '/slow', agent: false }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });
    await until('the slow request upstream', () => web.seen.some((r) => r.url === '/slow'));
    const n1 = await startUpgrade(dir);
    n1.proc.kill('SIGKILL');
    await n1.exited;
    // Right after the kill, before the old process even noticed: nothing is refused.
    for (let i = 0; i < 5; i++) assert.equal(await curl(h1, `/after-kill-${i}`), '200');
    for (let i = 0; i < 3; i++) assert.equal(await sofaCall(bolt, `c${i}`), `srv:c${i}`);
    // What it still had is served to the end (its drain was cancelled: no graceful_timeout cut).
    release();
    const s = await slow;
    assert.deepEqual(s, { status: 200, body: 'slow done' });
    await until('the old process to report the resume', async () => (await old.stats().catch(() => null))?.server?.upgrade_resumed === 1);
    const st = await old.stats();
    assert.equal(st.server.upgrade_state, 0, 'serving, no hand-over in progress');
    await until('the resume log line', () => /the new process died after it took over; this process takes the listeners back/.test(old.output()));
    assert.equal(old.proc.exitCode, null);
    // A later upgrade works, and the new process serves both protocols.
    n2 = await startUpgrade(dir);
    assert.equal(await old.exited, 0);
    assert.equal((await n2.oldDone).clean, true);
    assert.equal(await curl(h1, '/after-second'), '200');
    assert.equal(await sofaCall(bolt, 'last'), 'srv:last');
  } finally {
    await n2?.terminate();
    await old.terminate('SIGKILL');
    await web.close();
    await sofaServer.close();
  }
});

test('a moved connection is not counted as destroyed; the new process counts it as adopted and active', { timeout: 60_000 }, async () => {
  const up = await fakeUpstream((r) => r.sock.write(rawResponse(r.frame, r.buf)));
  const dir = upgradeDirFor();
  const old = await startSidecar(mergeConfigs([boltProxyConfig({ clusters: { bolt_service: [up.port] } })]), { env: { OUTRIGGER_UPGRADE_DIR: dir } });
  const port = old.ports.get('bolt')!;
  const clients = await Promise.all(Array.from({ length: 10 }, () => rawClient(port)));
  let next: Awaited<ReturnType<typeof startUpgrade>> | undefined;
  try {
    for (const [i, c] of clients.entries()) {
      c.sock.write(rawRequest(i + 1, SVC));
      await c.wait(1, 5000);
    }
    next = await startUpgrade(dir);
    assert.equal(await old.exited, 0);
    const done = await next.oldDone;
    assert.equal(done.migrated, 10);
    const l = (await next.stats()).listeners.bolt;
    assert.equal(l.downstream_cx_destroy, 0, 'no connection was destroyed (the old totals are carried over)');
    assert.equal(l.downstream_cx_total, 10);
    assert.equal(l.downstream_cx_active, 10);
    assert.equal((await next.stats()).server.upgrade_connections_adopted, 10);
    for (const c of clients) assert.equal(c.closed, false);
  } finally {
    for (const c of clients) c.sock.destroy();
    await next?.terminate();
    await old.terminate('SIGKILL');
    await up.close();
  }
});

test('a long-lived stream still open at graceful_timeout is cut and counted: stats, final log line, done report', { timeout: 60_000 }, async () => {
  const web = await backend('web', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: first\n\n'); // and never ends
  });
  const cfg = mergeConfigs([httpConfig([{ name: 'h1', downstream: 'Http1', upstream: 'Http1', router: 'r' }], ROUTER, { web: [web.port] })]) as { servers: { graceful_timeout: string }[] };
  cfg.servers[0].graceful_timeout = '1s';
  const dir = upgradeDirFor();
  const old = await startSidecar(cfg, { env: { OUTRIGGER_UPGRADE_DIR: dir } });
  let next: Awaited<ReturnType<typeof startUpgrade>> | undefined;
  try {
    const ended = new Promise<void>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: old.ports.get('h1')!, path: '/events', agent: false }, (res) => {
          res.on('data', () => {});
          res.on('error', () => resolve());
          res.on('close', () => resolve());
        })
        .on('error', () => resolve());
      setTimeout(() => reject(new Error('stream not cut')), 10_000).unref();
    });
    await until('the stream upstream', () => web.seen.length === 1);
    next = await startUpgrade(dir);
    const done = await next.oldDone;
    await ended;
    assert.equal(await old.exited, 0);
    assert.equal(done.cut, 1, next.output());
    await until('the final log line', () => /1 long-lived connection\(s\) still open at graceful_timeout were cut/.test(old.output()));
    assert.equal((await next.stats()).server.upgrade_old_connections_cut, 1);
  } finally {
    await next?.terminate();
    await old.terminate('SIGKILL');
    await web.close();
  }
});
