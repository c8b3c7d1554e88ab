/**
 * Process lifecycle with the real CLI (`node dist/src/cli.js start -c FILE`): a start that fails
 * at any step (a second instance on the same address, a listener port or the admin port held
 * by a plain socket, in native and fallback mode) exits non-zero in under 2 s with one line
 * naming the address, no stack, and leaves no socket open; SIGTERM ends a process while it
 * starts and, sent again, while it drains.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, startSidecar, tcpProxyConfig } from '../helpers/sidecar';
import { upgradeDirFor } from '../helpers/upgrade';
import { deadPort } from '../helpers/http';
import { close, echoServer, listen } from '../helpers/net';

/** Whether `port` can be listened on now (nothing holds it). */
async function portFree(port: number): Promise<boolean> {
  const s = net.createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function configFile(listenPort: number, adminPort: number, extra: Record<string, unknown> = {}): string {
  const cfg = tcpProxyConfig({ upstreams: [1] }) as { servers: Record<string, unknown>[]; admin: unknown };
  const l = (cfg.servers[0].listeners as Record<string, unknown>[])[0];
  l.address = `127.0.0.1:${listenPort}`;
  Object.assign(cfg.servers[0], extra);
  cfg.admin = { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-life-'));
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(cfg));
  return file;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
  stderr: string;
  stdout: string;
}

/** Runs `start -c file` to its exit (killed after 10 s: a failure of the test). */
function runStart(file: string, env: NodeJS.ProcessEnv = {}, onSpawn?: (kill: (s: NodeJS.Signals) => void, out: () => string) => void): Promise<Run> {
  const t0 = Date.now();
  // Its own upgrade directory (not the shared default <tmp>/outrigger, which other processes on the machine use).
  const p = spawn(process.execPath, [CLI, 'start', '-c', file], { env: { ...process.env, OUTRIGGER_UPGRADE_DIR: upgradeDirFor(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const killer = setTimeout(() => p.kill('SIGKILL'), 10_000);
  if (onSpawn) onSpawn((s) => p.kill(s), () => stdout);
  return new Promise((resolve) => {
    let ms = 0;
    p.on('exit', () => (ms = Date.now() - t0));
    // 'close' comes after the pipes drained ('exit' can come before the last output).
    p.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, ms, stderr, stdout });
    });
  });
}

function assertCleanFailure(r: Run, address: string): void {
  assert.notEqual(r.code, 0, `exit code: ${r.code} ${r.signal}\n${r.stderr}`);
  assert.equal(r.signal, null, 'exited by itself');
  assert.ok(r.ms < 2000, `exited after ${r.ms} ms`);
  const lines = r.stderr.trim().split('\n').filter((x) => !x.startsWith('[outrigger] native addon not loaded'));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^outrigger: start failed: /);
  assert.ok(lines[0].includes(address), `names ${address}: ${lines[0]}`);
  assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at |sonic boom/i, 'no stack trace');
}

test('a second instance on the same listener address refuses to start (the first keeps serving); only a deliberate hand-over shares it', async () => {
  const echo = await echoServer();
  const first = await startSidecar(tcpProxyConfig({ upstreams: [echo.port] }));
  try {
    const port = first.ports.get('tcp') as number;
    const adminPort = await deadPort();
    const r = await runStart(configFile(port, adminPort));
    assertCleanFailure(r, `127.0.0.1:${port}`);
    assert.match(r.stderr, /address already in use/);
    assert.ok(await portFree(adminPort), 'the admin port it opened is released');
    // every connection still reaches the first instance
    for (let i = 0; i < 4; i++) {
      const s = net.connect({ port, host: '127.0.0.1' });
      const got = await new Promise<string>((resolve) => {
        s.on('connect', () => s.write('ping'));
        s.once('data', (d) => resolve(d.toString()));
        s.on('error', () => resolve('error'));
      });
      s.destroy();
      assert.equal(got, 'ping');
    }
  } finally {
    await first.terminate();
    for (const s of echo.sockets) s.destroy();
    await close(echo.server);
  }
  // A deliberate hand-over: OUTRIGGER_REUSE_PORT=1 on both processes.
  const a = await startSidecar(tcpProxyConfig({ upstreams: [1] }), { env: { OUTRIGGER_REUSE_PORT: '1' } });
  try {
    const port = a.ports.get('tcp') as number;
    const second = await runStart(configFile(port, await deadPort()), { OUTRIGGER_REUSE_PORT: '1' }, (kill, out) => {
      const t = setInterval(() => {
        if (out().includes('admin on')) kill('SIGTERM');
      }, 50);
      setTimeout(() => clearInterval(t), 5000);
    });
    assert.match(second.stdout, /started/, second.stderr);
  } finally {
    await a.terminate();
  }
});

const MODES = [
  ['native', {}],
  ['fallback', { OUTRIGGER_NATIVE: '0' }],
] as const;

test('a listener port or the admin port held (plain socket, another instance; native and fallback): exits 1 in < 2 s naming it, other port released', async () => {
  const other = await startSidecar(tcpProxyConfig({ upstreams: [1] }));
  const holder = net.createServer();
  const held = await listen(holder);
  try {
    for (const [mode, env] of MODES) {
      // listener port taken: the admin port it opened is released
      const adminPort = await deadPort();
      const r = await runStart(configFile(held, adminPort), env);
      assertCleanFailure(r, `127.0.0.1:${held}`);
      assert.ok(await portFree(adminPort), `${mode}: admin port released`);
      // the same with the log in a file (pino's exit flush used to throw "sonic boom is not ready yet")
      const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-life-log-'));
      const rl = await runStart(configFile(held, await deadPort(), { default_log_path: path.join(logDir, 'outrigger.log') }), env);
      assertCleanFailure(rl, `127.0.0.1:${held}`);
      fs.rmSync(logDir, { recursive: true, force: true });
      // admin port taken: the listener port it opened is released
      for (const taken of [held, other.adminPort]) {
        const port = await deadPort();
        const r2 = await runStart(configFile(port, taken), env);
        assertCleanFailure(r2, `127.0.0.1:${taken}`);
        assert.ok(await portFree(port), `${mode}: listener port released`);
      }
    }
  } finally {
    await close(holder);
    await other.terminate();
  }
});

test('SIGTERM ends the process in every state: while starting, and (sent again) while draining', async () => {
  const p0 = await deadPort();
  const a0 = await deadPort();
  const r = await runStart(configFile(p0, a0, { processor: 2 }), {}, (kill) => setTimeout(() => kill('SIGTERM'), 150));
  assert.ok(r.ms < 2000, `exited after ${r.ms} ms`);
  assert.doesNotMatch(r.stdout, /started/, 'the signal came before the start finished');
  assert.ok(await portFree(p0));
  assert.ok(await portFree(a0));
  const echo = await echoServer();
  const cfg = tcpProxyConfig({ upstreams: [echo.port] }) as { servers: Record<string, unknown>[] };
  cfg.servers[0].graceful_timeout = '60s';
  const sc = await startSidecar(cfg);
  const port = sc.ports.get('tcp') as number;
  const s = net.connect({ port, host: '127.0.0.1' });
  s.on('error', () => {});
  try {
    await new Promise<void>((resolve) => {
      s.on('connect', () => s.write('x'));
      s.once('data', () => resolve());
    });
    sc.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(sc.proc.exitCode, null, 'still draining a live connection');
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    await sc.exited;
    assert.ok(Date.now() - t0 < 2000, `second SIGTERM ended it after ${Date.now() - t0} ms`);
    assert.ok(await portFree(port));
    assert.ok(await portFree(sc.adminPort));
  } finally {
    s.destroy();
    await sc.terminate('SIGKILL');
    for (const x of echo.sockets) x.destroy();
    await close(echo.server);
  }
});
