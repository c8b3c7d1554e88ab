import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { L, StatsLayout } from '../../src/stats/layout';
import { StatsHub } from '../../src/stats/aggregate';
import { PROMETHEUS_CONTENT_TYPE, startAdmin, type AdminServer } from '../../src/admin/server';
import { REDACTED, redactSecrets } from '../../src/admin/redact';

async function get(port: number, p: string, init?: RequestInit): Promise<{ status: number; type: string; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${p}`, init);
  return { status: r.status, type: r.headers.get('content-type') ?? '', body: await r.text() };
}

function listenNode(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

test('admin endpoints over HTTP', async (t) => {
  const layout = new StatsLayout();
  const hub = new StatsHub(layout, { version: '1.2.3' });
  const lb = layout.listenerBase('ingress');
  const w = new Float64Array(hub.addWorker(0));
  w[lb + L.CX_TOTAL] = 42;
  let ready = false;
  const secretDoc = {
    servers: [{ listeners: [{ name: 'ingress', tls: { cert_chain: 'CERT', private_key: '-----BEGIN PRIVATE KEY-----abc' } }] }],
    admin: { password: 'hunter2', nested: [{ privateKey: 'k2' }] },
  };
  const admin = await startAdmin({ port: 0 }, { stats: hub, configDump: () => secretDoc, ready: () => ready });
  t.after(() => admin.close());
  assert.ok(admin.port > 0, 'port 0 resolves to a real port');
  assert.equal(admin.host, '127.0.0.1', 'default bind is loopback');

  const stats = await get(admin.port, '/api/v1/stats');
  assert.equal(stats.status, 200);
  assert.match(stats.type, /^application\/json/);
  const js = JSON.parse(stats.body);
  assert.equal(js.listeners.ingress.downstream_cx_total, 42);
  assert.equal(js.server.version, '1.2.3');

  const prom = await get(admin.port, '/stats/prometheus');
  assert.equal(prom.status, 200);
  assert.equal(prom.type, PROMETHEUS_CONTENT_TYPE);
  assert.match(prom.type, /^text\/plain; version=0\.0\.4/);
  assert.match(prom.body, /^outrigger_listener_downstream_cx_total\{listener="ingress"\} 42$/m);
  const prom2 = await get(admin.port, '/api/v1/stats?format=prometheus');
  assert.equal(prom2.type, PROMETHEUS_CONTENT_TYPE);

  const dump = await get(admin.port, '/api/v1/config_dump');
  assert.equal(dump.status, 200);
  assert.ok(!dump.body.includes('PRIVATE KEY'), 'private key redacted');
  assert.ok(!dump.body.includes('hunter2'));
  assert.ok(!dump.body.includes('k2'));
  const d = JSON.parse(dump.body);
  assert.equal(d.servers[0].listeners[0].tls.private_key, REDACTED);
  assert.equal(d.servers[0].listeners[0].tls.cert_chain, 'CERT');
  assert.equal(secretDoc.admin.password, 'hunter2', 'input not mutated');

  let r = await get(admin.port, '/ready');
  assert.equal(r.status, 503);
  assert.equal(r.body.trim(), 'not ready');
  ready = true;
  r = await get(admin.port, '/ready');
  assert.equal(r.status, 200);
  assert.equal(r.body.trim(), 'ready');

  const idx = await get(admin.port, '/');
  assert.equal(idx.status, 200);
  assert.ok(Object.keys(JSON.parse(idx.body).endpoints).includes('/stats/prometheus'));

  const nf = await get(admin.port, '/nope');
  assert.equal(nf.status, 404);
  assert.match(nf.type, /^application\/json/);
  assert.equal(JSON.parse(nf.body).error, 'not found');
  const post = await get(admin.port, '/api/v1/stats', { method: 'POST', body: 'x' });
  assert.equal(post.status, 404);
});

test('a function stats source, async config dump, and handler errors', async (t) => {
  let fail = false;
  const admin = await startAdmin(
    { host: '127.0.0.1', port: 0 },
    {
      stats: () => {
        if (fail) throw new Error('boom');
        return { listeners: { a: { downstream_cx_total: 1 } }, server: { workers: 1 } };
      },
      configDump: async () => ({ tls_context: { private_key: 'SECRET' } }),
      ready: () => true,
    },
  );
  t.after(() => admin.close());
  const s = await get(admin.port, '/api/v1/stats');
  assert.equal(JSON.parse(s.body).listeners.a.downstream_cx_total, 1);
  const p = await get(admin.port, '/stats/prometheus');
  assert.match(p.body, /^outrigger_listener_downstream_cx_total\{listener="a"\} 1$/m);
  const d = await get(admin.port, '/api/v1/config_dump');
  assert.ok(!d.body.includes('SECRET'));
  fail = true;
  const e = await get(admin.port, '/api/v1/stats');
  assert.equal(e.status, 500);
});

/** True when /proc/net/tcp lists a LISTEN socket on 127.0.0.1:port. */
function listeningInProc(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const rows = fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1);
  return rows.some((row) => {
    const f = row.trim().split(/\s+/);
    return f.length > 3 && f[1].endsWith(':' + hex) && f[3] === '0A';
  });
}

test('close() frees the port', async () => {
  // Without connections: another (non-SO_REUSEPORT) socket can bind the port afterwards.
  const a = await startAdmin({ port: 0 }, { stats: () => ({}), configDump: () => ({}), ready: () => true });
  assert.equal(listeningInProc(a.port), true);
  a.close();
  assert.equal(listeningInProc(a.port), false);
  const s = await listenNode(a.port);
  await new Promise<void>((r) => s.close(() => r()));

  // After serving (server-side TIME_WAIT may linger): the listen socket is gone and connects fail.
  const admin: AdminServer = await startAdmin({ port: 0 }, { stats: () => ({}), configDump: () => ({}), ready: () => true });
  const port = admin.port;
  assert.equal((await get(port, '/ready')).status, 200);
  admin.close();
  admin.close(); // idempotent
  assert.equal(listeningInProc(port), false);
  await assert.rejects(get(port, '/ready'));
});

test('listen failure rejects with a clear error', async () => {
  const s = await listenNode(0);
  const port = (s.address() as net.AddressInfo).port;
  try {
    await assert.rejects(startAdmin({ port }, { stats: () => ({}), configDump: () => ({}), ready: () => true }), /admin: cannot listen/);
  } finally {
    await new Promise<void>((r) => s.close(() => r()));
  }
});

test('uWS admin in a worker thread closes cleanly and the thread exits on its own', async () => {
  const serverJs = path.join(__dirname, '..', '..', 'src', 'admin', 'server.js');
  const code = `
    const { parentPort } = require('node:worker_threads');
    const { startAdmin } = require(${JSON.stringify(serverJs)});
    startAdmin({ port: 0 }, { stats: () => ({ ok: 1 }), configDump: () => ({}), ready: () => true }).then((admin) => {
      parentPort.postMessage({ port: admin.port });
      parentPort.once('message', () => {
        admin.close();
        parentPort.postMessage({ closed: true });
        parentPort.unref();
      });
    });
  `;
  const worker = new Worker(code, { eval: true });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (m: { port: number }) => resolve(m.port));
    worker.once('error', reject);
  });
  // A keep-alive connection stays open in undici's pool while we ask it to close.
  const r = await get(port, '/api/v1/stats');
  assert.equal(JSON.parse(r.body).ok, 1);
  worker.postMessage('close');
  const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), 5000).unref());
  const code2 = await Promise.race([exited, timeout]);
  if (code2 === 'timeout') {
    await worker.terminate();
    assert.fail('worker did not exit after close()');
  }
  assert.equal(code2, 0);
  await assert.rejects(get(port, '/ready'));
});

test('redactSecrets handles cycles, arrays and maps', () => {
  const a: Record<string, unknown> = { x: 1, Private_Key: 'p', list: [{ secret: 's' }, 2] };
  a.self = a;
  const m = new Map<string, unknown>([['password', 'pw'], ['ok', 'y']]);
  const out = redactSecrets({ a, m }) as any;
  assert.equal(out.a.Private_Key, REDACTED);
  assert.equal(out.a.list[0].secret, REDACTED);
  assert.equal(out.a.list[1], 2);
  assert.equal(out.a.self, '[circular]');
  assert.deepEqual(out.m, { password: REDACTED, ok: 'y' });
});
