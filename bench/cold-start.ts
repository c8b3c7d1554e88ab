/**
 * Issue 15, cold start: a sidecar restarts with every deploy, so what matters is how soon it
 * serves after its start and how its first seconds look. For each peer, with the same HTTP/1.1
 * reverse-proxy config (one worker/process):
 *   1. the time from spawn to the listener accepting;
 *   2. at once, h2load --h1 with C connections, closed loop, for S seconds: per-second requests,
 *      p50 / p99 / max latency (from h2load's per-request log);
 *   3. then the same run again on the now warm process, for comparison.
 *
 *   node dist/bench/cold-start.js [--conns 100] [--seconds 5] [--rounds 2] [--peers outrigger,outrigger-ref,haproxy]
 *
 * outrigger-ref runs the checkout named by OUTRIGGER_REF. Peers take turns, `rounds` times.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { backend } from '../test/helpers/http';
import { freePort, waitForPort } from './lib/net';
import { REPO_ROOT } from './lib/paths';
import { startPinned, stopAll, type Owned } from './lib/proc-spawn';
import { numOpt } from './lib/script';
import { haproxyConfig, outriggerConfig, type ConfigInput } from './peers/configs';

interface Second {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function start(peer: string, c: ConfigInput): Owned | string {
  const cfg = path.join(c.dir, 'config');
  switch (peer) {
    case 'outrigger':
    case 'outrigger-ref': {
      const root = peer === 'outrigger' ? REPO_ROOT : process.env.OUTRIGGER_REF;
      if (root === undefined) return 'set OUTRIGGER_REF to a built checkout';
      fs.writeFileSync(cfg, JSON.stringify(outriggerConfig(c)));
      return startPinned('any', process.execPath, [path.join(root, 'dist', 'src', 'cli.js'), 'start', '-c', cfg, '--workers', '1', '--log-level', 'warn'], { cwd: root });
    }
    case 'haproxy':
      fs.writeFileSync(cfg, haproxyConfig(c));
      return startPinned('any', 'haproxy', ['-db', '-f', cfg]);
    default:
      return `unknown peer ${peer}`;
  }
}

/** h2load --h1, closed loop; per-second buckets (from the run's start) of the per-request log. */
function load(port: number, conns: number, seconds: number, log: string): Promise<Second[]> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now() * 1000;
    const p = spawn('h2load', ['--h1', '-c', String(conns), '-t', '1', '-D', String(seconds), `--log-file=${log}`, `http://127.0.0.1:${port}/`], { stdio: 'ignore' });
    p.on('error', reject);
    p.on('exit', () => {
      const buckets: number[][] = Array.from({ length: seconds + 1 }, () => []);
      for (const line of fs.readFileSync(log, 'utf8').split('\n')) {
        const [startUs, status, us] = line.split('\t').map(Number);
        if (!(us! >= 0) || status !== 200) continue;
        const sec = Math.floor((startUs! - t0) / 1e6);
        if (sec >= 0 && sec < buckets.length) buckets[sec]!.push(us! / 1000);
      }
      resolve(
        buckets
          .filter((b) => b.length > 0)
          .map((b) => {
            b.sort((x, y) => x - y);
            const q = (f: number): number => b[Math.min(b.length - 1, Math.floor(f * b.length))]!;
            return { n: b.length, p50: q(0.5), p99: q(0.99), max: b[b.length - 1]! };
          }),
      );
    });
  });
}

async function once(peer: string, conns: number, seconds: number): Promise<{ readyMs: number; cold: Second[]; warm: Second[] } | string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cold-${peer}-`));
  const be = await backend('cold', (_req, res) => {
    res.setHeader('content-length', '1024');
    res.end(Buffer.alloc(1024, 120));
  });
  const c: ConfigInput = { mode: 'http1', port: await freePort(), backendPort: be.port, dir, adminPort: await freePort() };
  const t0 = Date.now();
  const proc = start(peer, c);
  if (typeof proc === 'string') {
    await be.close();
    return proc;
  }
  try {
    await waitForPort(c.port, { timeoutMs: 20_000, alive: () => proc.exited() }); // polls every 50 ms
    const readyMs = Date.now() - t0;
    const cold = await load(c.port, conns, seconds, path.join(dir, 'cold.log'));
    const warm = await load(c.port, conns, seconds, path.join(dir, 'warm.log'));
    return { readyMs, cold, warm };
  } finally {
    await proc.stop();
    await be.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (s: Second[]): string => s.map((x) => `${x.n} req p50 ${x.p50.toFixed(1)} p99 ${x.p99.toFixed(1)} max ${x.max.toFixed(0)}`).join(' | ');

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const conns = numOpt(argv, 'conns', 100);
  const seconds = numOpt(argv, 'seconds', 5);
  const rounds = numOpt(argv, 'rounds', 2);
  const pi = argv.indexOf('--peers');
  const peers = pi >= 0 ? argv[pi + 1]!.split(',') : ['outrigger', 'outrigger-ref', 'haproxy'];
  console.log(`cold start: h2load --h1 -c ${conns}, ${seconds} s right after the listener accepts, then ${seconds} s warm; latencies in ms per second of the run`);
  for (let r = 0; r < rounds; r++) {
    for (const peer of peers) {
      const res = await once(peer, conns, seconds);
      if (typeof res === 'string') {
        console.log(`${peer}: skipped (${res})`);
        continue;
      }
      console.log(`\n${peer} (round ${r + 1}): accepting ${res.readyMs} ms after spawn`);
      console.log(`  cold: ${fmt(res.cold)}`);
      console.log(`  warm: ${fmt(res.warm)}`);
    }
  }
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => void stopAll());
