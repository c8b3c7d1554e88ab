// The `h2` and `http1` loads through nghttp2's h2load (Debian nghttp2-client; `--h1` for http1) when it is installed:
// a C client costs the shared client CPU far less than node:http2, leaving it to the
// backend. h2load runs in timing mode (warm-up until the window starts, then the window)
// with a per-request log; the log gives every request's start and duration, from which
// requests ending inside the window are counted and their latencies recorded, exactly as
// the Node drivers do. BENCH_H2_DRIVER=node forces the Node drivers (node:http2, raw HTTP/1.1 sockets) instead.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import * as hdr from 'hdr-histogram-js';
import type { LoadSpec, WorkerResult } from './spec';

let found: string | null | undefined;
/** Path of h2load, or undefined when missing or BENCH_H2_DRIVER=node. */
export function h2loadBin(): string | undefined {
  if (process.env.BENCH_H2_DRIVER === 'node') return undefined;
  if (found === undefined) {
    const r = spawnSync('h2load', ['--version'], { encoding: 'utf8', timeout: 5000 });
    found = r.status === 0 ? 'h2load' : null;
  }
  return found ?? undefined;
}

/** Which driver the h2 workload uses here, for reports. */
export function h2DriverName(): string {
  const bin = h2loadBin();
  if (!bin) return 'node:http2 client';
  const v = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000 }).stdout?.trim().split('\n')[0] ?? 'h2load';
  return v;
}

/** Parses h2load's per-request log: one row per request, start µs since epoch, status, duration µs. */
export function parseH2loadLog(text: string, winStartMs: number, winEndMs: number, bodyBytes: number): WorkerResult {
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const res: WorkerResult = { ops: 0, bytes: 0, errors: 0, connectFailures: 0, histogram: '' };
  for (const line of text.split('\n')) {
    const [startS, statusS, durS] = line.split('\t');
    if (!durS) continue;
    const endMs = (Number(startS) + Number(durS)) / 1000;
    if (endMs < winStartMs || endMs >= winEndMs) continue;
    // h2load logs status 0 for a stream whose response head came during its warm-up (it records
    // statuses only once measuring): not an error (real failures are in its summary, counted below).
    if (statusS === '0' && Number(startS) / 1000 < winStartMs) continue;
    if (Number(statusS) !== 200) {
      res.errors++;
      res.firstError ??= `h2load: status ${statusS}`;
      continue;
    }
    res.ops++;
    res.bytes += bodyBytes;
    hist.recordValue(Math.max(1, Math.round(Number(durS))));
  }
  res.histogram = hist.totalCount > 0 ? hdr.encodeIntoCompressedBase64(hist) : '';
  hist.destroy();
  return res;
}

/** Runs h2load for the spec's connections x streams (http1: `--h1`, one in flight each) until the window ends. */
export async function runH2load(spec: LoadSpec, bin: string): Promise<WorkerResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-h2load-'));
  const log = path.join(dir, 'requests.tsv');
  try {
    const warm = Math.max(10, Math.round(spec.measureStart - Date.now()));
    const h1 = spec.kind === 'http1';
    const args = [
      ...(h1 ? ['--h1'] : []),
      // http1: one request in flight per connection (no pipelining), like the Node driver; threads as asked.
      '-c', String(spec.connections), '-m', String(h1 ? 1 : (spec.streams ?? 100)), '-t', String(Math.max(1, Math.min(spec.threads, spec.connections))),
      `--warm-up-time=${warm}ms`, '-D', `${Math.round(spec.durationMs) + 300}ms`, // alive past the window end, when the CPU is sampled
      '--log-file', log, '-H', 'user-agent: outrigger-bench',
      `http://${spec.host}:${spec.port}/`,
    ];
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      child.on('exit', (c) => resolve(c));
      child.on('error', () => resolve(-1));
    });
    const res = parseH2loadLog(fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '', spec.measureStart, spec.measureStart + spec.durationMs, 1024);
    // "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
    const m = /requests: .*?(\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
    const failed = m ? Number(m[1]) + Number(m[2]) + Number(m[3]) : 0;
    if (failed > 0) {
      res.errors += failed;
      res.firstError ??= `h2load: ${m![0]}`;
    }
    if (code !== 0) {
      res.errors++;
      res.firstError ??= `h2load exited ${code}: ${out.trim().split('\n').slice(-3).join(' ')}`;
    }
    res.note = `driver ${h2DriverName()}`;
    return res;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
