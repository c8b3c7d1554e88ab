/**
 * Reloads apply without side effects and without touching what did not change (issues 11, 12):
 *   - a commit is all or nothing: a reload that cannot bind one of its new listeners, or whose
 *     commit fails on one worker after the new listeners were bound, leaves every worker and
 *     every socket as before (checked by traffic and by connecting to the new ports);
 *   - a changed access_logs takes effect on reload;
 *   - filter chains are versioned one by one: a keep-alive connection of a chain that did not
 *     change is untouched when a chain is added, a route-only change reaches it in place, and a
 *     changed chain's connection is closed gracefully (its goodbye).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { backend, deadPort, type Backend } from '../helpers/http';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar';

interface Opts {
  cluster?: string;
  extraListeners?: { name: string; port: number }[];
  accessLog?: string;
  extraChain?: boolean;
  /** A filter_chain_match on the HTTP chain (a chain config change that still matches 127.0.0.1). */
  httpMatch?: boolean;
  drain?: string;
}

function config(a: Backend, b: Backend, o: Opts = {}): Record<string, unknown> {
  const httpChain = {
    ...(o.httpMatch ? { filter_chain_match: { source_prefix_ranges: [{ address_prefix: '127.0.0.0', prefix_len: 8 }] } } : {}),
    filters: [{ type: 'proxy', config: { downstream_protocol: 'Http1', router_config_name: 'r' } }],
  };
  const chains: Record<string, unknown>[] = [httpChain];
  if (o.extraChain) {
    chains.push({ filter_chain_match: { source_prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: 8 }] }, filters: [{ type: 'tcp_proxy', config: { cluster: 'a' } }] });
  }
  const tcp = (name: string, port: number): Record<string, unknown> => ({
    name,
    address: `127.0.0.1:${port}`,
    bind_port: true,
    filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'a' } }] }],
  });
  return {
    servers: [
      {
        default_log_level: 'INFO',
        ...(o.drain ? { graceful_timeout: o.drain } : {}),
        routers: [{ router_config_name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: o.cluster ?? 'a' } }] }] }],
        listeners: [
          { name: 'web', address: '127.0.0.1:0', bind_port: true, filter_chains: chains, ...(o.accessLog ? { access_logs: [{ log_path: o.accessLog, log_format: '%upstream_host%' }] } : {}) },
          ...(o.extraListeners ?? []).map((l) => tcp(l.name, l.port)),
        ],
      },
    ],
    cluster_manager: {
      clusters: ['a', 'b'].map((name) => ({ name, type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: [{ address: `127.0.0.1:${(name === 'a' ? a : b).port}` }] })),
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
  };
}

async function reload(sc: RunningSidecar, cfg: Record<string, unknown>, expect: RegExp): Promise<string> {
  fs.writeFileSync(sc.configPath, JSON.stringify(cfg));
  const mark = sc.output().length;
  sc.proc.kill('SIGHUP');
  const t0 = Date.now();
  while (!expect.test(sc.output().slice(mark))) {
    assert.ok(Date.now() - t0 < 15_000, `no ${expect} in:\n${sc.output().slice(mark)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return sc.output().slice(mark);
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

/** GET on a keep-alive agent: status, backend, the local port of the connection, whether the answer closes it. */
function get(port: number, agent: http.Agent): Promise<{ backend: string; local: number; close: boolean; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const rq = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      const socket = res.socket;
      res.resume();
      res.on('end', () => resolve({ backend: String(res.headers['x-backend']), local: socket.localPort ?? 0, close: res.headers.connection === 'close', socket }));
    });
    rq.on('error', reject);
  });
}

async function answeredBy(port: number, n: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add((await get(port, new http.Agent({ keepAlive: false }))).backend);
  return seen;
}

test('a reload whose second new listener cannot bind closes the first one again and keeps serving the running config', { timeout: 60_000 }, async () => {
  const a = await backend('a');
  const b = await backend('b');
  const free = await deadPort();
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
  const held = (holder.address() as net.AddressInfo).port;
  const sc = await startSidecar(config(a, b));
  try {
    const port = sc.ports.get('web')!;
    const out = await reload(sc, config(a, b, { cluster: 'b', extraListeners: [{ name: 'n1', port: free }, { name: 'n2', port: held }] }), /reload failed/);
    assert.match(out, /n2/);
    assert.ok(await refused(free), 'the listener the failed reload opened is closed again');
    assert.deepEqual([...(await answeredBy(port, 4))], ['a'], 'the running routes stay');
    // The same listener can be added by a later reload (its address was not leaked).
    holder.close();
    await reload(sc, config(a, b, { cluster: 'b', extraListeners: [{ name: 'n1', port: free }] }), /"msg":"config reloaded"/);
    assert.equal(await refused(free), false);
    assert.deepEqual([...(await answeredBy(port, 4))], ['b']);
  } finally {
    holder.close();
    await sc.terminate();
    await a.close();
    await b.close();
  }
});

test('a commit that fails on one worker after the new listeners were bound: every worker runs the previous version again', { timeout: 60_000 }, async () => {
  const a = await backend('a');
  const b = await backend('b');
  const free = await deadPort();
  const sc = await startSidecar(config(a, b), { workers: 2, env: { OUTRIGGER_TEST_HOOKS: '1', OUTRIGGER_TEST_FAIL_COMMIT: '1' } });
  try {
    const port = sc.ports.get('web')!;
    const out = await reload(sc, config(a, b, { cluster: 'b', extraListeners: [{ name: 'n1', port: free }] }), /reload failed/);
    assert.match(out, /commit failure requested by test hook/);
    assert.match(out, /every worker runs the previous version again/);
    assert.ok(await refused(free), 'the new listener is closed on every worker');
    // 24 fresh connections spread over both workers: all on the previous routes.
    assert.deepEqual([...(await answeredBy(port, 24))], ['a']);
  } finally {
    await sc.terminate();
    await a.close();
    await b.close();
  }
});

test('a changed access_logs path takes effect on reload', { timeout: 60_000 }, async () => {
  const a = await backend('a');
  const b = await backend('b');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-alog-'));
  const one = path.join(dir, 'one.log');
  const two = path.join(dir, 'two.log');
  const sc = await startSidecar(config(a, b, { accessLog: one }));
  try {
    const port = sc.ports.get('web')!;
    await answeredBy(port, 2);
    await reload(sc, config(a, b, { accessLog: two }), /"msg":"config reloaded"/);
    await answeredBy(port, 3);
    const t0 = Date.now();
    while (!(fs.existsSync(two) && fs.readFileSync(two, 'utf8').trim().split('\n').length >= 3)) {
      assert.ok(Date.now() - t0 < 5000, `no 3 lines in ${two}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(fs.readFileSync(one, 'utf8').trim().split('\n').length, 2, 'the old file got only the requests before the reload');
  } finally {
    await sc.terminate();
    await a.close();
    await b.close();
  }
});

test('filter chains versioned one by one: an added chain or a route change leaves a live connection alone; a changed chain closes it gracefully', { timeout: 60_000 }, async () => {
  const a = await backend('a');
  const b = await backend('b');
  const sc = await startSidecar(config(a, b, { drain: '3s' }));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const port = sc.ports.get('web')!;
    const first = await get(port, agent);
    assert.equal(first.backend, 'a');
    let closed = false;
    first.socket.once('close', () => (closed = true));

    // (1) A chain is added to the listener: the connection on the unchanged chain is not touched.
    await reload(sc, config(a, b, { drain: '3s', extraChain: true }), /"msg":"config reloaded"/);
    await new Promise((r) => setTimeout(r, 300));
    const second = await get(port, agent);
    assert.equal(second.local, first.local, 'same connection');
    assert.equal(second.close, false);

    // (2) Only the route changes: the same connection routes with the new table.
    await reload(sc, config(a, b, { drain: '3s', extraChain: true, cluster: 'b' }), /"msg":"config reloaded"/);
    await new Promise((r) => setTimeout(r, 300));
    const third = await get(port, agent);
    assert.equal(third.local, first.local, 'still the same connection');
    assert.equal(third.backend, 'b', 'a route-only change reaches live connections');
    assert.equal(closed, false);

    // (3) The HTTP chain itself changes: its idle keep-alive connection is closed (its goodbye); new connections work.
    await reload(sc, config(a, b, { drain: '3s', extraChain: true, cluster: 'b', httpMatch: true }), /"msg":"config reloaded"/);
    const t0 = Date.now();
    while (!closed) {
      assert.ok(Date.now() - t0 < 2000, 'the connection of the changed chain was not closed within the drain time');
      await new Promise((r) => setTimeout(r, 50));
    }
    const fourth = await get(port, agent);
    assert.notEqual(fourth.local, first.local);
    assert.equal(fourth.backend, 'b');
  } finally {
    agent.destroy();
    await sc.terminate();
    await a.close();
    await b.close();
  }
});

test('a TCP connection of a changed chain is closed after the drain time (TCP has no goodbye), not before', { timeout: 60_000 }, async () => {
  const a = await backend('a');
  const b = await backend('b');
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  const echoPort = (echo.address() as net.AddressInfo).port;
  const withTcp = (match: boolean): Record<string, unknown> => {
    const c = config(a, b, { drain: '3000ms' }) as { servers: { listeners: unknown[] }[]; cluster_manager: { clusters: unknown[] } };
    c.servers[0]!.listeners.push({
      name: 'tcp',
      address: '127.0.0.1:0',
      bind_port: true,
      filter_chains: [{ ...(match ? { filter_chain_match: { source_prefix_ranges: [{ address_prefix: '127.0.0.0', prefix_len: 8 }] } } : {}), filters: [{ type: 'tcp_proxy', config: { cluster: 'echo' } }] }],
    });
    c.cluster_manager.clusters.push({ name: 'echo', type: 'SIMPLE', lb_type: 'LB_ROUNDROBIN', hosts: [{ address: `127.0.0.1:${echoPort}` }] });
    return c;
  };
  const sc = await startSidecar(withTcp(false));
  try {
    const s = net.connect({ host: '127.0.0.1', port: sc.ports.get('tcp')! });
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write('ping');
    await new Promise<void>((r) => s.once('data', () => r()));
    let closedAt = 0;
    s.on('close', () => (closedAt = Date.now()));
    s.on('error', () => {});
    const t0 = Date.now();
    await reload(sc, withTcp(true), /"msg":"config reloaded"/);
    // Timed from before the reload: the log line that says it is done can come up to a second
    // late (asynchronous log flushing), so "500 ms after the line" may already be past the drain.
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + 1500 - Date.now())));
    assert.equal(closedAt, 0, 'still open within the drain time');
    s.write('pong');
    await new Promise<void>((r) => s.once('data', () => r()));
    while (closedAt === 0) {
      assert.ok(Date.now() - t0 < 8000, 'not closed after the drain time');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(closedAt - t0 >= 2900, `closed after ${closedAt - t0} ms, before the drain time`);
  } finally {
    await sc.terminate();
    echo.close();
    await a.close();
    await b.close();
  }
});
