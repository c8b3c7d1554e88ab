/**
 * Issue 15, memory: each proxy's idle RSS, then its cost per idle downstream connection, in one
 * run with the same HTTP/1.1 reverse-proxy config (one worker/process/thread each).
 *
 *   node dist/bench/memory.js [--conns 10000] [--settle 25] [--peers outrigger,outrigger-threads,outrigger-ref,haproxy,nginx,mosn]
 *
 * For each peer: start it, wait 3 s, read its RSS (the whole process tree); open N TCP
 * connections that send nothing (what a listener costs per accepted, idle connection); then send
 * one keep-alive GET on each and read the answer (an idle HTTP/1.1 connection after a request,
 * which includes whatever the proxy keeps per upstream connection). RSS after each step, divided
 * by N. `--settle S` reads the idle RSS once more S seconds after the start, before the
 * connections: V8's memory reducer shrinks a Node process's young generation and compacts old
 * space by itself after ~10-20 s without allocations, so the 3 s figure is the start's peak and
 * the settled one what an idle sidecar keeps. "anonymous" is the RssAnon part of the idle RSS at
 * 3 s (the processes' own memory; the rest is file pages: executables, libraries, shared with
 * other processes and the page cache). `outrigger-default` is the embedded default config (`npm start`), listener ports moved
 * (`outrigger-default-ref`: the same in OUTRIGGER_REF; `outrigger-default-keep`: with
 * OUTRIGGER_KEEP_STARTUP_MEMORY=1, i.e. without src/startup-memory.ts's TurboFan hold, malloc_trim
 * and release of the node executable's start pages; `outrigger-default-keepexe`: with
 * OUTRIGGER_KEEP_EXE_PAGES=1, only that release off).
 * `outrigger-threads` runs the one worker in a worker thread (--worker-threads), `outrigger-semi1`
 * with node --max-semi-space-size=1: the one-isolate mode and the young-generation size measured.
 *
 * outrigger-ref runs the checkout named by OUTRIGGER_REF; MOSN runs when MOSN_BIN names a binary
 * (one processor, GOMAXPROCS=1). Absent peers are listed as skipped.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { backend } from '../test/helpers/http';
import { freePort, waitForPort } from './lib/net';
import { REPO_ROOT } from './lib/paths';
import { processTree, treeRssKiB } from './lib/proc';
import { startPinned, stopAll, type Owned } from './lib/proc-spawn';
import { haproxyConfig, nginxConfig, outriggerConfig, type ConfigInput } from './peers/configs';

const mb = (kib: number | undefined): string => (kib === undefined || Number.isNaN(kib) ? '-' : `${(kib / 1024).toFixed(1)} MB`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Row {
  peer: string;
  idleKiB: number;
  idleAnonKiB?: number;
  settledKiB?: number;
  perIdleConnB?: number;
  perHttpConnB?: number;
  note?: string;
}

/** Resident anonymous KiB (RssAnon) of a process tree: its own memory, without file pages. */
function treeAnonKiB(roots: number[]): number {
  let sum = 0;
  for (const p of processTree(roots)) {
    try {
      const m = /^RssAnon:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) sum += Number(m[1]);
    } catch {
      // exited meanwhile
    }
  }
  return sum;
}

function which(bin: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/local/sbin'])) {
    const p = path.join(d, bin);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

/** How to start one peer on `c` (port, backendPort, dir), or why it cannot run. */
function starter(peer: string, c: ConfigInput, extraPort: number): (() => Owned) | string {
  const writeJson = (o: object): string => {
    const p = path.join(c.dir, 'config.json');
    fs.writeFileSync(p, JSON.stringify(o, null, 2));
    return p;
  };
  switch (peer) {
    case 'outrigger':
    case 'outrigger-threads':
    case 'outrigger-semi1':
    case 'outrigger-ref': {
      const root = peer === 'outrigger-ref' ? process.env.OUTRIGGER_REF : REPO_ROOT;
      if (root === undefined) return 'set OUTRIGGER_REF to a built checkout';
      const cfg = writeJson(outriggerConfig(c));
      const args = [path.join(root, 'dist', 'src', 'cli.js'), 'start', '-c', cfg, '--workers', '1', '--log-level', 'warn', ...(peer === 'outrigger-threads' ? ['--worker-threads'] : [])];
      const env = peer === 'outrigger-semi1' ? { ...process.env, NODE_OPTIONS: '--max-semi-space-size=1' } : undefined;
      return () => startPinned('any', process.execPath, args, { cwd: root, env });
    }
    case 'outrigger-default':
    case 'outrigger-default-keep':
    case 'outrigger-default-keepexe':
    case 'outrigger-default-ref': {
      const root = peer === 'outrigger-default-ref' ? process.env.OUTRIGGER_REF : REPO_ROOT;
      if (root === undefined) return 'set OUTRIGGER_REF to a built checkout';
      const doc = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'src', 'config', 'default.json'), 'utf8')) as { servers: { listeners: { address: string }[] }[]; admin?: unknown };
      // Listener ports moved: the TCP proxy listener to `extraPort`, the Bolt one to `port`.
      doc.servers[0]!.listeners.forEach((l, i) => (l.address = `127.0.0.1:${i === 0 ? extraPort : c.port}`));
      doc.admin = { address: { socket_address: { address: '127.0.0.1', port_value: c.adminPort } } };
      const cfg = writeJson(doc);
      const keep: Record<string, NodeJS.ProcessEnv> = { 'outrigger-default-keep': { OUTRIGGER_KEEP_STARTUP_MEMORY: '1' }, 'outrigger-default-keepexe': { OUTRIGGER_KEEP_EXE_PAGES: '1' } };
      const env = keep[peer] ? { ...process.env, ...keep[peer] } : undefined;
      return () => startPinned('any', process.execPath, [path.join(root, 'dist', 'src', 'cli.js'), 'start', '-c', cfg, '--log-level', 'warn'], { cwd: root, env });
    }
    case 'haproxy': {
      const bin = which('haproxy');
      if (bin === undefined) return 'haproxy not installed';
      const cfg = path.join(c.dir, 'haproxy.cfg');
      fs.writeFileSync(cfg, haproxyConfig(c));
      return () => startPinned('any', bin, ['-db', '-f', cfg]);
    }
    case 'nginx': {
      const bin = which('nginx');
      if (bin === undefined) return 'nginx not installed';
      const cfg = path.join(c.dir, 'nginx.conf');
      fs.writeFileSync(cfg, nginxConfig(c, undefined));
      return () => startPinned('any', bin, ['-p', c.dir, '-e', path.join(c.dir, 'error.log'), '-c', cfg]);
    }
    case 'mosn': {
      const bin = process.env.MOSN_BIN;
      if (!bin) return 'MOSN_BIN not set';
      const doc = outriggerConfig(c) as { servers: Record<string, unknown>[] };
      doc.servers[0]!['default_log_path'] = 'stdout';
      const cfg = writeJson(doc);
      return () => startPinned('any', bin, ['start', '-c', cfg], { env: { ...process.env, GOMAXPROCS: '1' }, cwd: c.dir });
    }
    default:
      return `unknown peer ${peer}`;
  }
}

async function openIdle(port: number, n: number): Promise<net.Socket[]> {
  const socks: net.Socket[] = [];
  for (let i = 0; i < n; i += 200) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(200, n - i) }, () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        }),
      ),
    );
    for (const s of batch) s.on('error', () => undefined);
    socks.push(...batch);
  }
  return socks;
}

/** One keep-alive GET on every socket, 200 at a time; resolves when every answer arrived. */
async function oneRequestEach(socks: net.Socket[]): Promise<number> {
  let failed = 0;
  for (let i = 0; i < socks.length; i += 200) {
    await Promise.all(
      socks.slice(i, i + 200).map(
        (s) =>
          new Promise<void>((resolve) => {
            let got = '';
            const t = setTimeout(() => { failed++; s.removeListener('data', on); resolve(); }, 10_000);
            const on = (d: Buffer): void => {
              got += d.toString('latin1');
              const h = got.indexOf('\r\n\r\n');
              const m = /content-length:\s*(\d+)/i.exec(got);
              if (h >= 0 && m && got.length >= h + 4 + Number(m[1])) {
                clearTimeout(t);
                s.removeListener('data', on);
                if (!got.startsWith('HTTP/1.1 200')) failed++;
                resolve();
              }
            };
            s.on('data', on);
            s.write('GET /idle HTTP/1.1\r\nHost: bench\r\n\r\n');
          }),
      ),
    );
  }
  return failed;
}

async function measure(peer: string, conns: number, settleS: number): Promise<Row> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mem-${peer}-`));
  const be = await backend('mem', (_req, res) => {
    res.setHeader('content-length', '2');
    res.end('ok');
  });
  const port = await freePort();
  const c: ConfigInput = { mode: 'http1', port, backendPort: be.port, dir, adminPort: await freePort() };
  const start = starter(peer, c, await freePort());
  if (typeof start === 'string') {
    await be.close();
    return { peer, idleKiB: NaN, note: `skipped: ${start}` };
  }
  const proc = start();
  try {
    await waitForPort(port, { timeoutMs: 15_000, alive: () => proc.exited() });
    await sleep(3000);
    const idleKiB = treeRssKiB([proc.pid]);
    const idleAnonKiB = treeAnonKiB([proc.pid]);
    let settledKiB: number | undefined;
    if (settleS > 3) {
      await sleep(settleS * 1000 - 3000);
      settledKiB = treeRssKiB([proc.pid]);
    }
    if (peer.startsWith('outrigger-default')) return { peer, idleKiB, idleAnonKiB, settledKiB, note: 'no HTTP listener: idle RSS only' };
    const socks = await openIdle(port, conns);
    await sleep(2000);
    const withIdle = treeRssKiB([proc.pid]);
    const failed = await oneRequestEach(socks);
    await sleep(2000);
    const withHttp = treeRssKiB([proc.pid]);
    for (const s of socks) s.destroy();
    return {
      peer,
      idleKiB,
      idleAnonKiB,
      settledKiB,
      perIdleConnB: ((withIdle - idleKiB) * 1024) / conns,
      perHttpConnB: ((withHttp - idleKiB) * 1024) / conns,
      note: failed > 0 ? `${failed} requests failed` : undefined,
    };
  } finally {
    await proc.stop();
    await be.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  let conns = 10_000;
  let settleS = 0;
  let peers = ['outrigger-default', 'outrigger-default-keepexe', 'outrigger-default-keep', 'outrigger-default-ref', 'outrigger', 'outrigger-threads', 'outrigger-semi1', 'outrigger-ref', 'haproxy', 'nginx', 'mosn'];
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--conns' && Number(argv[i + 1]) > 0) conns = Number(argv[i + 1]);
    else if (argv[i] === '--settle' && Number(argv[i + 1]) > 3) settleS = Number(argv[i + 1]);
    else if (argv[i] === '--peers' && argv[i + 1]) peers = argv[i + 1]!.split(',');
    else throw new Error(`usage: memory [--conns N] [--settle S (> 3)] [--peers a,b,...] (bad "${argv[i]}")`);
  }
  const rows: Row[] = [];
  for (const p of peers) {
    rows.push(await measure(p, conns, settleS));
    const r = rows[rows.length - 1]!;
    console.log(`${r.peer}: idle ${mb(r.idleKiB)} (anonymous ${mb(r.idleAnonKiB)})${r.settledKiB !== undefined ? `, ${mb(r.settledKiB)} after ${settleS} s` : ''}${r.note ? ` (${r.note})` : ''}`);
  }
  const f = (b: number | undefined): string => (b === undefined ? '-' : `${(b / 1024).toFixed(1)} KB`);
  const settled = settleS > 3 ? ` idle RSS after ${settleS} s |` : '';
  console.log(`\n| peer | idle RSS (3 s) | anonymous (3 s) |${settled} per idle connection | per idle HTTP/1.1 connection after one request |\n|---|---|---|${settled ? '---|' : ''}---|---|`);
  for (const r of rows) {
    const s = settled ? ` ${mb(r.settledKiB)} |` : '';
    console.log(`| ${r.peer} | ${mb(r.idleKiB)} | ${mb(r.idleAnonKiB)} |${s} ${f(r.perIdleConnB)} | ${f(r.perHttpConnB)} |${r.note ? ` ${r.note}` : ''}`);
  }
  console.log(`\n${conns} connections; RSS of each proxy's process tree.`);
}

main()
  .catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 1;
  })
  .finally(() => void stopAll());
