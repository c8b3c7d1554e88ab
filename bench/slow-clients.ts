/**
 * Issue 16, the slow-body attack as a standalone comparison: N clients each announce a 1 MiB
 * request body and send it at 1 byte/s through an HTTP/1.1 proxy, while a probe (node:http, a
 * fresh connection each, one every 100 ms) asks the same cluster for /ok. Prints probe count,
 * failures, p50/p99 latency and the proxy's RSS.
 *
 *   node dist/bench/slow-clients.js --proxy outrigger|mosn [--clients 500] [--seconds 15] [--body-bytes 1048576] [--body-rate-off]
 *
 * Outrigger answers a body slower than limits.min_request_body_rate with 408 (after ~5 s here);
 * --body-rate-off turns that off so that, as in MOSN, the slow clients stay for the whole probe.
 *
 * Both proxies get the same MOSN JSON config (one processor; MOSN also runs with GOMAXPROCS=1).
 * MOSN runs only when MOSN_BIN names its binary; otherwise the script says so and exits 0.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { backend, request } from '../test/helpers/http';
import { freePort, waitForPort } from './lib/net';
import { REPO_ROOT } from './lib/paths';
import { treeRssKiB } from './lib/proc';
import { startPinned, stopAll, type Owned } from './lib/proc-spawn';
import { outriggerConfig } from './peers/configs';

const PROBE_EVERY_MS = 100;
const PROBE_TIMEOUT_MS = 2000;

interface Options {
  proxy: 'outrigger' | 'mosn';
  clients: number;
  seconds: number;
  /** The announced Content-Length of each slow body (default 1 MiB). */
  bodyBytes: number;
  /** Outrigger only: `limits.min_request_body_rate: 0`, so that slow bodies are held like MOSN holds them. */
  bodyRateOff: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { proxy: 'outrigger', clients: 500, seconds: 15, bodyBytes: 1024 * 1024, bodyRateOff: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--body-rate-off') {
      o.bodyRateOff = true;
      continue;
    }
    const v = argv[++i];
    if (a === '--proxy' && (v === 'outrigger' || v === 'mosn')) o.proxy = v;
    else if (a === '--clients' && Number.isInteger(Number(v)) && Number(v) > 0) o.clients = Number(v);
    else if (a === '--seconds' && Number(v) > 0) o.seconds = Number(v);
    else if (a === '--body-bytes' && Number.isInteger(Number(v)) && Number(v) > 0) o.bodyBytes = Number(v);
    else throw new Error(`usage: slow-clients --proxy outrigger|mosn [--clients N] [--seconds S] [--body-bytes B] [--body-rate-off] (bad "${a} ${v ?? ''}")`);
  }
  return o;
}

/** The value at quantile q (0..1) of an ascending-sorted array. */
function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * q) - 1))] : NaN;
}

/** Opens n connections; each sends headers announcing a `bodyBytes` body, then nothing yet. */
async function openSlowClients(port: number, n: number, bodyBytes: number): Promise<{ socks: net.Socket[]; answers: Map<string, number[]> }> {
  // Status line of the proxy's answer -> seconds after the headers were sent.
  const answers = new Map<string, number[]>();
  const socks: net.Socket[] = [];
  // In batches of 50 so that the listen backlog is not the thing being measured.
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        }),
      ),
    );
    for (const s of batch) {
      s.on('error', () => undefined);
      // A response (e.g. 408) before the body is complete: the proxy cut the slow client off.
      const t0 = Date.now();
      s.once('data', (d: Buffer) => {
        const line = d.toString('latin1').split('\r\n', 1)[0];
        answers.set(line, [...(answers.get(line) ?? []), (Date.now() - t0) / 1000]);
      });
      s.write(`POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: ${bodyBytes}\r\n\r\n`);
      socks.push(s);
    }
  }
  return { socks, answers };
}

/** One probe every 100 ms for `ms` (each on its own connection, 2 s timeout); latencies and failures. */
async function probe(port: number, ms: number): Promise<{ lat: number[]; failures: string[] }> {
  const lat: number[] = [];
  const failures: string[] = [];
  const one = async (): Promise<void> => {
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      const r = await Promise.race([
        request(port, '/ok'),
        new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timeout (${PROBE_TIMEOUT_MS} ms)`)), PROBE_TIMEOUT_MS))),
      ]);
      if (r.status !== 200) failures.push(`status ${r.status}`);
    } catch (e) {
      failures.push(e instanceof Error ? e.message : String(e));
    } finally {
      clearTimeout(timer);
    }
    lat.push(performance.now() - t0);
  };
  const pending: Promise<void>[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    pending.push(one());
    await new Promise((r) => setTimeout(r, PROBE_EVERY_MS));
  }
  await Promise.all(pending);
  return { lat, failures };
}

async function startProxy(o: Options, dir: string, port: number, backendPort: number): Promise<Owned | undefined> {
  const adminPort = await freePort();
  const config = { ...outriggerConfig({ mode: 'http1', port, backendPort, dir, adminPort }) } as { servers: Record<string, unknown>[] };
  const cfgPath = path.join(dir, 'config.json');
  if (o.proxy === 'outrigger') {
    fs.writeFileSync(cfgPath, JSON.stringify(o.bodyRateOff ? { ...config, limits: { min_request_body_rate: 0 } } : config, null, 2));
    return startPinned('any', process.execPath, [path.join(REPO_ROOT, 'dist', 'src', 'cli.js'), 'start', '-c', cfgPath]);
  }
  const bin = process.env.MOSN_BIN;
  if (!bin) return undefined;
  // MOSN's default log path is under /home/admin: log to stdout instead.
  config.servers[0] = { ...config.servers[0], default_log_path: 'stdout' };
  fs.writeFileSync(cfgPath, JSON.stringify(config, null, 2));
  return startPinned('any', bin, ['start', '-c', cfgPath], { env: { ...process.env, GOMAXPROCS: '1' }, cwd: dir });
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.proxy === 'mosn' && !process.env.MOSN_BIN) {
    console.log('MOSN is absent (set MOSN_BIN to a mosn binary to compare); nothing to do.');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slow-clients-'));
  const up = await backend('b', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  let proxy: Owned | undefined;
  let slow: net.Socket[] = [];
  let drip: NodeJS.Timeout | undefined;
  try {
    const port = await freePort();
    proxy = await startProxy(o, dir, port, up.port);
    if (!proxy) return;
    const p = proxy;
    await waitForPort(port, { timeoutMs: 15_000, alive: () => p.exited() && `${p.exited()}\n${p.output()}` });
    const warm = await request(port, '/ok');
    if (warm.status !== 200) throw new Error(`proxy answered ${warm.status} to a plain request:\n${p.output()}`);
    const rss0 = treeRssKiB([p.pid]);
    const clients = await openSlowClients(port, o.clients, o.bodyBytes);
    slow = clients.socks;
    drip = setInterval(() => {
      for (const s of slow) if (!s.destroyed) s.write('x');
    }, 1000);
    await new Promise((r) => setTimeout(r, 1500));
    let rssPeak = treeRssKiB([p.pid]);
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, treeRssKiB([p.pid]))), 500);
    const { lat, failures } = await probe(port, o.seconds * 1000);
    clearInterval(sampler);
    rssPeak = Math.max(rssPeak, treeRssKiB([p.pid]));
    const sorted = [...lat].sort((a, b) => a - b);
    const stillOpen = slow.filter((s) => !s.destroyed).length;
    const kinds = new Map<string, number>();
    for (const f of failures) kinds.set(f, (kinds.get(f) ?? 0) + 1);
    console.log(`proxy: ${o.proxy}${o.proxy === 'mosn' ? ` (${process.env.MOSN_BIN})` : ''}${o.bodyRateOff ? ' (min_request_body_rate 0)' : ''}, ${o.clients} slow clients (${o.bodyBytes}-byte body at 1 byte/s), probe every ${PROBE_EVERY_MS} ms for ${o.seconds} s`);
    console.log(`probes: ${lat.length}, failures: ${failures.length}${kinds.size ? ` (${[...kinds].map(([k, n]) => `${n}x ${k}`).join('; ')})` : ''}`);
    console.log(`latency: p50 ${quantile(sorted, 0.5).toFixed(1)} ms, p99 ${quantile(sorted, 0.99).toFixed(1)} ms, max ${quantile(sorted, 1).toFixed(1)} ms`);
    console.log(`proxy RSS: ${(rss0 / 1024).toFixed(0)} MiB before the attack, peak ${(rssPeak / 1024).toFixed(0)} MiB during it`);
    const answered = [...clients.answers].map(([line, t]) => `${t.length}x "${line}" after ${Math.min(...t).toFixed(1)}-${Math.max(...t).toFixed(1)} s`);
    console.log(`slow clients: ${stillOpen} still connected; answers from the proxy: ${answered.length ? answered.join('; ') : 'none'}`);
    if (p.exited()) console.log(`proxy ${p.exited()}:\n${p.output()}`);
  } finally {
    clearInterval(drip);
    for (const s of slow) s.destroy();
    await proxy?.stop();
    await stopAll();
    await up.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
