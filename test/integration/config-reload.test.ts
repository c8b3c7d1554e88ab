/**
 * Config as one transaction (src/server.ts reload, src/worker/snapshot.ts): a file that a worker
 * would refuse is refused before any worker sees it, a version is committed only when every
 * worker built it, and `outrigger validate` refuses what SIGHUP refuses. Checked with traffic on
 * two workers.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { backend, httpConfig, request, type Backend } from '../helpers/http';
import { CLI, startSidecar, type RunningSidecar } from '../helpers/sidecar';

function routes(first: Record<string, unknown>, cluster: string): Record<string, unknown>[] {
  return [
    {
      router_config_name: 'r',
      virtual_hosts: [{ name: 'vh', domains: ['*'], routers: [first, { match: { prefix: '/' }, route: { cluster_name: cluster } }] }],
    },
  ];
}

function config(a: Backend, b: Backend, first: Record<string, unknown>, cluster: string): Record<string, unknown> {
  return httpConfig([{ name: 'web', downstream: 'Http1', router: 'r' }], routes(first, cluster), { a: [a.port], b: [b.port] });
}

const HARMLESS = { match: { path: '/never' }, route: { cluster_name: 'a' } };
const BAD_REGEX = { match: { regex: '^/(unclosed' }, route: { cluster_name: 'b' } };

/** 24 requests on fresh connections (SO_REUSEPORT spreads them over both workers): which backends answered. */
async function answeredBy(port: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < 24; i++) {
    const r = await request(port, `/x${i}`);
    assert.equal(r.status, 200, r.body);
    seen.add(String(r.headers['x-backend']));
  }
  return seen;
}

async function waitFor(sc: RunningSidecar, re: RegExp, from: number): Promise<void> {
  const t0 = Date.now();
  while (!re.test(sc.output().slice(from))) {
    assert.ok(Date.now() - t0 < 15_000, `no ${re} in:\n${sc.output().slice(from)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('SIGHUP with a route regex that does not compile: both workers keep serving the old routes; validate refuses the file with its path', { timeout: 90_000 }, async () => {
  const a = await backend('a');
  const b = await backend('b');
  const sc = await startSidecar(config(a, b, HARMLESS, 'a'), { workers: 2, args: ['--log-level', 'info'], env: { OUTRIGGER_TEST_HOOKS: '1' } });
  try {
    const port = sc.ports.get('web')!;
    assert.deepEqual([...(await answeredBy(port))], ['a']);

    const bad = config(a, b, BAD_REGEX, 'b');
    fs.writeFileSync(sc.configPath, JSON.stringify(bad));
    const mark = sc.output().length;
    sc.proc.kill('SIGHUP');
    await waitFor(sc, /reload failed/, mark);
    assert.deepEqual([...(await answeredBy(port))], ['a'], 'every worker still routes with the running config');
    const dump = (await (await fetch(`http://127.0.0.1:${sc.adminPort}/api/v1/config_dump`)).json()) as Record<string, unknown>;
    assert.doesNotMatch(JSON.stringify(dump), /unclosed/, 'config_dump shows the running config');

    assert.match(sc.output().slice(mark), /servers\[0\]\.routers\[0\]\.virtual_hosts\[0\]\.routers\[0\]\.match\.regex/, 'the log names the JSON path');

    // `validate` refuses the same file, naming the path.
    const v = spawnSync(process.execPath, [CLI, 'validate', '-c', sc.configPath], { encoding: 'utf8' });
    assert.equal(v.status, 1, v.stdout + v.stderr);
    assert.match(v.stderr, /servers\[0\]\.routers\[0\]\.virtual_hosts\[0\]\.routers\[0\]\.match\.regex: bad regex "\^\/\(unclosed"/);

    // A worker that restarts now starts with the running version, not the refused file.
    const mark1 = sc.output().length;
    sc.proc.kill('SIGUSR2'); // test hook: worker 0 crashes
    await waitFor(sc, /worker exited; restarting[\s\S]*worker ready/, mark1);
    assert.doesNotMatch(sc.output().slice(mark1), /rejected config|restart(ing)? .*failed/);
    assert.deepEqual([...(await answeredBy(port))], ['a']);

    // A good file is then committed on both workers.
    fs.writeFileSync(sc.configPath, JSON.stringify(config(a, b, HARMLESS, 'b')));
    const mark2 = sc.output().length;
    sc.proc.kill('SIGHUP');
    await waitFor(sc, /"msg":"config reloaded"/, mark2);
    assert.deepEqual([...(await answeredBy(port))], ['b'], 'every worker routes with the new config');
    assert.match(sc.output().slice(mark2), /"rebuilt":\{"listeners":\["web"\],"clusters":\[\]\}/, 'a route change rebuilds its listener only');

    // Changing one cluster rebuilds that cluster only; the listener reaches it through the cluster manager.
    const moved = config(a, b, HARMLESS, 'b') as { cluster_manager: { clusters: { name: string; hosts: { address: string }[] }[] } };
    moved.cluster_manager.clusters.find((c) => c.name === 'b')!.hosts = [{ address: `127.0.0.1:${a.port}` }];
    fs.writeFileSync(sc.configPath, JSON.stringify(moved));
    const mark3 = sc.output().length;
    sc.proc.kill('SIGHUP');
    await waitFor(sc, /"msg":"config reloaded"/, mark3);
    assert.match(sc.output().slice(mark3), /"rebuilt":\{"listeners":\[\],"clusters":\["b"\]\}/);
    assert.deepEqual([...(await answeredBy(port))], ['a'], 'cluster b now points at backend a');
  } finally {
    await sc.terminate();
    await a.close();
    await b.close();
  }
});

test('a worker that fails to build a version: it is dropped on every worker, the log names the worker and the error', { timeout: 90_000 }, async () => {
  const a = await backend('a');
  const b = await backend('b');
  const sc = await startSidecar(config(a, b, HARMLESS, 'a'), {
    workers: 2,
    args: ['--log-level', 'info'],
    env: { OUTRIGGER_TEST_HOOKS: '1', OUTRIGGER_TEST_FAIL_PREPARE: '1' },
  });
  try {
    const port = sc.ports.get('web')!;
    assert.deepEqual([...(await answeredBy(port))], ['a']);
    fs.writeFileSync(sc.configPath, JSON.stringify(config(a, b, HARMLESS, 'b')));
    const mark = sc.output().length;
    sc.proc.kill('SIGHUP');
    await waitFor(sc, /reload failed/, mark);
    const log = sc.output().slice(mark);
    assert.match(log, /"worker":1[^\n]*prepare failure requested by test hook|prepare failure requested by test hook[^\n]*"worker":1/);
    assert.match(log, /config reload aborted; every worker keeps the running version/);
    // Worker 0 built the version too, but it was not committed there either.
    assert.deepEqual([...(await answeredBy(port))], ['a']);
  } finally {
    await sc.terminate();
    await a.close();
    await b.close();
  }
});

test('validate: a route regex that does not compile is refused with its JSON path (it used to pass and fail in the worker)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-validate-'));
  const file = path.join(dir, 'bad.json');
  const cfg = httpConfig([{ name: 'web', downstream: 'Http1', router: 'r' }], routes(BAD_REGEX, 'a'), { a: [8080], b: [8081] });
  fs.writeFileSync(file, JSON.stringify(cfg));
  const v = spawnSync(process.execPath, [CLI, 'validate', '-c', file], { encoding: 'utf8' });
  // `start` refuses it the same way, before any worker runs.
  const s = spawnSync(process.execPath, [CLI, 'start', '-c', file, '--admin-port', '0'], { encoding: 'utf8', timeout: 20_000 });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(v.status, 1, v.stdout + v.stderr);
  assert.match(v.stderr, /^error: servers\[0\]\.routers\[0\]\.virtual_hosts\[0\]\.routers\[0\]\.match\.regex: bad regex/m);
  assert.equal(s.status, 2, s.stdout + s.stderr);
  assert.match(s.stderr, /servers\[0\]\.routers\[0\]\.virtual_hosts\[0\]\.routers\[0\]\.match\.regex: bad regex/);
  assert.doesNotMatch(s.stdout, /worker ready/);
});
