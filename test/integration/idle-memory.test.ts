/**
 * Issue 15, idle memory of `outrigger start` on the embedded default config (a tcp_proxy and a
 * Bolt listener): what the process holds once it serves, read by a preloaded probe
 * (test/helpers/idle-probe.ts). The young generation grown while starting is given back
 * (src/startup-memory.ts), then glibc's free pages (malloc_trim), TurboFan (held off while the modules load) optimizes again, and the
 * Node modules only other configs need (HTTP/1.1, HTTP/2) are not loaded. With the default settings
 * (no collection after the start) the idle process is within issue 15's 50 MB: the node
 * executable's file pages the start touched left the resident set, and only part came back.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_CONFIG } from '../../src/cli';
import { native } from '../../src/native';
import { startSidecar } from '../helpers/sidecar';
import { until } from '../helpers/wait';

interface Probe {
  newSpaceBytes: number;
  builtins: string[];
  threads: number;
  turbofan: boolean;
  mallocTrims: number;
  exeReleases: number;
  exeReleasedKiB: number;
  rssKiB: number;
  anonKiB: number;
  exeKiB: number;
}

/** The default config on ports 0, started with the probe preloaded; `probe()` asks for its JSON. */
async function startProbed(env: NodeJS.ProcessEnv): Promise<{ probe: () => Promise<Probe>; end: () => Promise<void> }> {
  const doc = JSON.parse(fs.readFileSync(DEFAULT_CONFIG, 'utf8')) as { servers: { listeners: { address: string }[] }[]; admin: unknown };
  for (const l of doc.servers[0]!.listeners) l.address = '127.0.0.1:0';
  doc.admin = { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idle-memory-'));
  const out = path.join(dir, 'probe.json');
  const probe = path.join(__dirname, '..', 'helpers', 'idle-probe.js');
  const sc = await startSidecar(doc, { env: { NODE_OPTIONS: `--require ${probe}`, OUTRIGGER_IDLE_PROBE_OUT: out, ...env } });
  return {
    async probe() {
      sc.proc.kill('SIGUSR2');
      await until('probe output', 10_000, () => fs.existsSync(out) && fs.statSync(out).size > 0);
      return JSON.parse(fs.readFileSync(out, 'utf8')) as Probe;
    },
    async end() {
      await sc.terminate();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('default config at idle (collection after the start, executable pages kept): young generation at its minimum, TurboFan on again, no HTTP modules loaded', { timeout: 60_000 }, async () => {
  const sc = await startProbed({ OUTRIGGER_STARTUP_GC: '1', OUTRIGGER_KEEP_EXE_PAGES: '1' });
  try {
    await new Promise((r) => setTimeout(r, 1500)); // the collection after the start runs on the next turn
    const p = await sc.probe();
    // V8's minimum young generation is 2 x 1 MiB semi-spaces; a start without the collection leaves 8 MiB or more.
    assert.ok(p.newSpaceBytes > 0 && p.newSpaceBytes <= 2 * 1024 * 1024, `new space ${p.newSpaceBytes} bytes after the start`);
    assert.equal(p.turbofan, true, 'a hot function reaches TurboFan once the sidecar serves');
    assert.equal(p.mallocTrims, 1, 'malloc_trim once after the start (after the collection)');
    assert.equal(p.exeReleases, 0, "OUTRIGGER_KEEP_EXE_PAGES=1: the executable's pages stay");
    for (const m of ['http', 'http2', '_http_server', 'internal/http2/core']) assert.ok(!p.builtins.includes(m), `node:${m} loaded at idle`);
    // Bare Node's 7 threads (main, V8's 4 platform threads, 2 of its own) and libuv's pool: no worker
    // thread or second isolate (pino transports, piscina, a data-plane thread).
    const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    assert.ok(p.threads <= 7 + pool, `${p.threads} threads`);
  } finally {
    await sc.end();
  }
});

test('default config, default settings: idle RSS within 50 MB, the executable\'s start pages out of it', { timeout: 60_000, skip: native.kind !== 'native' && 'needs the addon' }, async () => {
  const sc = await startProbed({});
  try {
    await new Promise((r) => setTimeout(r, 3000)); // bench/memory.ts reads the idle RSS 3 s after the start
    const p = await sc.probe();
    assert.equal(p.exeReleases, 1, "the executable's pages released once after the start");
    // ~35 MB were resident then (the dynamic linker's tables, snapshot, builtins, compiler); ~12 MB come back at idle.
    assert.ok(p.exeReleasedKiB > 8 * 1024, `${p.exeReleasedKiB} KiB of the executable were resident after the start`);
    assert.ok(p.exeKiB < p.exeReleasedKiB * 0.75, `${p.exeKiB} KiB of the executable resident at idle, ${p.exeReleasedKiB} KiB after the start`);
    assert.ok(p.rssKiB > 0 && p.rssKiB <= 50 * 1024, `idle RSS ${p.rssKiB} KiB (anonymous ${p.anonKiB}, executable ${p.exeKiB})`);
  } finally {
    await sc.end();
  }
});
