// npm run bench -- [workloads...] [--peers a,b,c] [--duration S] [--connections N] [--quick] ...
import * as path from 'node:path';
import { DEFAULT_PEERS, PEERS, peerByName, outriggerFeatures } from './peers';
import { WORKLOADS, workloadByName } from './workloads';
import { runBench, type BenchOptions } from './runner';
import { ratioTableText } from './report/table';
import { writeResults } from './report/write';
import { RESULTS_DIR } from './lib/paths';
import { killAllSync, placement, stopAll } from './lib/proc-spawn';

export const USAGE = `Usage: npm run bench -- [workload ...] [options]

Runs each workload against every peer in one run, interleaved over rounds
(A B C, B C A, ...), and prints a ratio table. Results go to bench/results/.

Workloads (default: all; those needing unbuilt features are skipped with a message):
${WORKLOADS.map((w) => `  ${w.name.padEnd(14)} ${w.pending ? '[pending] ' : ''}${w.description} (needs: ${w.needs.join(', ')})`).join('\n')}

Options:
  --peers LIST        comma-separated, default ${DEFAULT_PEERS.join(',')}
                      (known: ${PEERS.map((p) => p.name + (p.hidden ? ' [test]' : '')).join(', ')})
  --duration S        measured seconds per peer per round (default 10, --quick 3)
  --warmup S          warm-up seconds before each window (default 2, --quick 1)
  --rounds N          interleaved rounds (default 3, --quick 2)
  --connections N     override the connection count of every case
  --rate N            fixed request rate of open-loop cases (bolt, dubbo; default 2000 req/s)
  --pipeline K        bolt/dubbo max-rate case: requests in flight per connection (default 1)
  --streams K         http2/grpc: streams in flight per connection (default 100 / 10)
  --threads N         load-generator worker threads, h2load -t for http1/http2
                      (default 1; all on the client CPU)
  --quick             short run (CI)
  --out DIR           results directory (default bench/results)
  --no-write          print only, write no files
  -h, --help          this text

Environment:
  ENVOY_BIN           Envoy binary (else \`envoy\` on PATH; without one Envoy is skipped)
  MOSN_BIN            MOSN binary (else \`mosn\` on PATH; without one MOSN is skipped)
  OUTRIGGER_FEATURES  Outrigger features to assume built (default: tcp_proxy, plus
                      bolt, dubbo, tls, http1, http2 when \`outrigger validate\`
                      accepts the bolt / dubbo / tls / http1 / http2 workload config)
  BENCH_H2_DRIVER     node: drive http1 and http2 with Node clients instead of h2load

Placement: proxy pinned to CPU 0, backend + load generator to the other CPU(s)
(taskset). Exit status 1 when a workload errors (a peer failed to start or a run
had errors), 2 on bad arguments; never because of a ratio.`;

export interface CliArgs extends Omit<BenchOptions, 'command' | 'progress'> {
  out: string;
  write: boolean;
  help: boolean;
}

export function parseArgs(argv: string[]): CliArgs {
  const a: CliArgs = {
    workloads: [],
    peers: DEFAULT_PEERS,
    durationS: 10,
    warmupS: 2,
    rounds: 3,
    threads: 1,
    quick: false,
    out: RESULTS_DIR,
    write: true,
    help: false,
  };
  let duration: number | undefined;
  let warmup: number | undefined;
  let rounds: number | undefined;
  const num = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min) throw new Error(`${flag} needs a number ≥ ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i];
    const [flag, inline] = t.startsWith('--') && t.includes('=') ? [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)] : [t, undefined];
    const val = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '-h':
      case '--help':
        a.help = true;
        break;
      case '--peers':
        a.peers = (val() ?? '').split(',').map((s) => s.trim()).filter(Boolean);
        break;
      case '--duration':
        duration = num(flag, val(), 0.1);
        break;
      case '--warmup':
        warmup = num(flag, val(), 0);
        break;
      case '--rounds':
        rounds = Math.floor(num(flag, val(), 1));
        break;
      case '--connections':
        a.connections = Math.floor(num(flag, val(), 1));
        break;
      case '--rate':
        a.rate = num(flag, val(), 1);
        break;
      case '--pipeline':
        a.pipeline = Math.floor(num(flag, val(), 1));
        break;
      case '--streams':
        a.streams = Math.floor(num(flag, val(), 1));
        break;
      case '--threads':
        a.threads = Math.floor(num(flag, val(), 1));
        break;
      case '--quick':
        a.quick = true;
        break;
      case '--out':
        a.out = path.resolve(val() ?? '.');
        break;
      case '--no-write':
        a.write = false;
        break;
      default:
        if (t.startsWith('-')) throw new Error(`unknown option ${t}`);
        for (const w of t.split(',')) if (w) a.workloads.push(w);
    }
  }
  if (a.workloads.length === 0) a.workloads = WORKLOADS.map((w) => w.name);
  for (const w of a.workloads) if (!workloadByName(w)) throw new Error(`unknown workload ${w} (known: ${WORKLOADS.map((x) => x.name).join(', ')})`);
  if (a.peers.length === 0) throw new Error('--peers is empty');
  for (const p of a.peers) if (!peerByName(p)) throw new Error(`unknown peer ${p} (known: ${PEERS.map((x) => x.name).join(', ')})`);
  a.workloads = [...new Set(a.workloads)];
  a.peers = [...new Set(a.peers)];
  a.durationS = duration ?? (a.quick ? 3 : 10);
  a.warmupS = warmup ?? (a.quick ? 1 : 2);
  a.rounds = rounds ?? (a.quick ? 2 : 3);
  return a;
}

/** Progress on stderr: a rewritten status line on a terminal, plain lines otherwise. */
function progressPrinter(): (msg: string, done: number, total: number) => void {
  const t0 = Date.now();
  const tty = process.stderr.isTTY;
  return (msg, done, total) => {
    const pct = total ? Math.floor((done / total) * 100) : 100;
    const el = ((Date.now() - t0) / 1000).toFixed(0);
    const line = `[${String(pct).padStart(3)}% ${done}/${total} ${el}s] ${msg}`;
    if (tty) process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns || 120) - 1)}`);
    else process.stderr.write(line + '\n');
  };
}

export async function main(argv: string[]): Promise<number> {
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const place = placement();
  process.stderr.write(
    `bench: workloads ${args.workloads.join(', ')}; peers ${args.peers.join(', ')}; ${args.rounds} round(s) x (${args.warmupS}s warm-up + ${args.durationS}s); ` +
      `proxy CPU ${place.proxy}, client CPU ${place.client}${place.pinned ? '' : ' (not pinned)'}; Outrigger features: ${[...outriggerFeatures()].join(', ')}\n`,
  );
  const onSignal = (): void => {
    killAllSync();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAllSync);
  const tick = progressPrinter();
  let result;
  try {
    result = await runBench({ ...args, command: `npm run bench -- ${argv.join(' ')}`.trim(), progress: tick });
  } finally {
    await stopAll();
    if (process.stderr.isTTY) process.stderr.write('\n');
  }
  process.stdout.write(ratioTableText(result) + '\n');
  if (args.write) {
    const w = writeResults(result, args.out);
    process.stdout.write(`\nwrote ${path.relative(process.cwd(), w.markdown)}, ${path.relative(process.cwd(), w.json)}, ${w.svgs.map((s) => path.relative(process.cwd(), s)).join(', ')}\n`);
  }
  const errors = result.workloads.filter((w) => w.status === 'error');
  if (errors.length) {
    process.stderr.write(`bench: ${errors.length} workload(s) errored: ${errors.map((w) => `${w.name} (${w.message})`).join('; ')}\n`);
    return 1;
  }
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
      killAllSync();
      process.exit(1);
    },
  );
}
