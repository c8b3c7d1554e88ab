// Tests of the `node-http-proxy` reference peer: it starts (pinned like the other peers)
// against the real bench backend, proxies HTTP/1.1 with http-proxy and h2c with http2-proxy
// (to the backend's HTTP/1.1 listener), and declines the modes it cannot proxy.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { peerByName } from '../../bench/peers';
import { startBackend } from '../../bench/load/run';

function get1(port: number): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (d: Buffer) => (bytes += d.length));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      })
      .on('error', reject);
  });
}

async function get2(port: number, n: number): Promise<{ status: number; bytes: number }[]> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const one = (): Promise<{ status: number; bytes: number }> =>
      new Promise((resolve, reject) => {
        const s = session.request({ ':path': '/' });
        let status = 0;
        let bytes = 0;
        s.on('response', (h) => (status = Number(h[':status'])));
        s.on('data', (d: Buffer) => (bytes += d.length));
        s.on('end', () => resolve({ status, bytes }));
        s.on('error', reject);
        s.end();
      });
    return await Promise.all(Array.from({ length: n }, one));
  } finally {
    session.close();
  }
}

test('node-http-proxy peer: http1 and http2 only, with reasons for the rest', () => {
  const p = peerByName('node-http-proxy')!;
  assert.ok(p, 'peer registered');
  assert.equal(p.unavailable(), undefined, 'http-proxy and http2-proxy are installed (devDependencies)');
  assert.equal(p.unsupported('http1'), undefined);
  assert.equal(p.unsupported('http2'), undefined);
  assert.match(p.unsupported('grpc') ?? '', /HTTP\/1\.1 only/);
  for (const m of ['tcp', 'bolt', 'dubbo', 'tls'] as const) assert.ok(p.unsupported(m), m);
  assert.match(p.version(), /^http-proxy 1\.18\.\d+, http2-proxy \d+\.\d+\.\d+, node v/);
  assert.match(p.description, /http2-proxy/);
});

test('node-http-proxy peer proxies HTTP/1.1 (http-proxy) and h2c (http2-proxy -> HTTP/1.1 upstream) to the backend', async () => {
  const backend = await startBackend();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-nhp-test-'));
  const p = peerByName('node-http-proxy')!;
  const h1 = await p.start({ mode: 'http1', backendPort: backend.ports.http, dir });
  // backendPort is the h2c listener, as the runner passes it: the peer must use http1BackendPort
  // (an HTTP/1.1 request to the h2c listener fails, which would show up as 502 here).
  const h2 = await p.start({ mode: 'http2', backendPort: backend.ports.h2, http1BackendPort: backend.ports.http, dir });
  try {
    assert.equal(h1.pids.length, 1);
    for (let i = 0; i < 3; i++) assert.deepEqual(await get1(h1.port), { status: 200, bytes: 1024 });
    const answers = await get2(h2.port, 20);
    assert.deepEqual(answers, Array.from({ length: 20 }, () => ({ status: 200, bytes: 1024 })));
  } finally {
    await h1.stop();
    await h2.stop();
    await backend.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('node-http-proxy peer answers 502 when the upstream refuses', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-nhp-test-'));
  const p = peerByName('node-http-proxy')!;
  // Port 1 on 127.0.0.1: nothing listens there (connection refused).
  const h1 = await p.start({ mode: 'http1', backendPort: 1, dir });
  const h2 = await p.start({ mode: 'http2', backendPort: 1, http1BackendPort: 1, dir });
  try {
    assert.equal((await get1(h1.port)).status, 502);
    assert.equal((await get2(h2.port, 1))[0].status, 502);
  } finally {
    await h1.stop();
    await h2.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
