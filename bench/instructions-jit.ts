// Instructions per request by function, JIT-compiled JS included (issue #15, docs/rpc-low-rate.md).
//
// callgrind names V8's generated code by address only. A process started with --perf-basic-prof
// writes /tmp/perf-PID.map (start, size, name of every code object it makes, in order); this
// maps callgrind's addresses through it (the last object made that covers an address: code is
// freed and its addresses reused) and prints each function's own (exclusive) instructions per
// request. "JS:*f" is TurboFan code, "JS:^f" baseline (Sparkplug) code, whose property loads go
// through IC builtins (Builtins_LoadICBaseline and friends: counted apart, see --callers).
//
//   NODE_OPTIONS=--perf-basic-prof KEEP=/tmp/k node dist/bench/instructions-rpc.js bolt .
//   node dist/bench/instructions-jit.js /tmp/k/callgrind.bolt.<root>.<pid> 2000 [--top 60] [--callers REGEX]
//
// REQUESTS: how many requests the dump counted (instructions-rpc prints it). --callers REGEX: for
// each function matching REGEX, who calls it and how much (inclusive) per request.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

interface CodeEntry {
  start: number;
  end: number;
  name: string;
}

/** The perf map's entries, in the order the process wrote them. */
function readMap(file: string): CodeEntry[] {
  const out: CodeEntry[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
    if (m === null) continue;
    const start = parseInt(m[1], 16);
    out.push({ start, end: start + parseInt(m[2], 16), name: m[3] });
  }
  return out;
}

function namer(entries: readonly CodeEntry[]): (addr: number) => string {
  const memo = new Map<number, string>();
  return (addr) => {
    let n = memo.get(addr);
    if (n === undefined) {
      n = `?jit 0x${addr.toString(16)}`;
      for (const e of entries) if (addr >= e.start && addr < e.end) n = e.name; // the latest wins
      memo.set(addr, n);
    }
    return n;
  };
}

/** A callgrind_annotate function label with its JIT address (if any) replaced by the code's name. */
function label(fn: string, name: (addr: number) => string): string {
  const m = /\?\?\?:0x([0-9a-f]{6,})(?: \(\S+\))? \[\?\?\?\]/.exec(fn);
  return m !== null ? `JIT ${name(parseInt(m[1], 16))}` : fn.slice(0, 120);
}

function annotate(file: string, extra: readonly string[]): string {
  const r = spawnSync('callgrind_annotate', ['--threshold=100', ...extra, file], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`callgrind_annotate failed: ${r.stderr}`);
  return r.stdout;
}

function main(): void {
  const argv = process.argv.slice(2);
  const file = argv[0];
  const requests = Number(argv[1]);
  const opt = (k: string): string | undefined => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  if (file === undefined || !(requests > 0)) {
    process.stderr.write('usage: node dist/bench/instructions-jit.js CALLGRIND_DUMP REQUESTS [--top N] [--callers REGEX]\n');
    process.exitCode = 2;
    return;
  }
  const pid = /(\d+)$/.exec(path.basename(file))?.[1];
  const mapFile = opt('--map') ?? `/tmp/perf-${pid ?? ''}.map`;
  const name = namer(readMap(mapFile));
  const callers = opt('--callers');
  if (callers !== undefined) {
    const re = new RegExp(callers);
    for (const block of annotate(file, ['--tree=caller', '--inclusive=yes']).split('\n\n')) {
      const lines = block.split('\n').filter((l) => l.trim() !== '');
      const target = lines.find((l) => l.includes(' *  '));
      if (target === undefined || !re.test(label(target.slice(target.indexOf('*') + 3), name))) continue;
      process.stdout.write(`== ${label(target.slice(target.indexOf('*') + 3), name)}\n`);
      for (const l of lines) {
        const m = /^\s*([\d,]+) .*<\s+(.*)$/.exec(l);
        if (m !== null) process.stdout.write(`  ${Math.round(Number(m[1].replace(/,/g, '')) / requests).toString().padStart(8)}  ${label(m[2], name)}\n`);
      }
    }
    return;
  }
  const totals = new Map<string, number>();
  for (const l of annotate(file, ['--inclusive=no']).split('\n')) {
    const m = /^\s*([\d,]+) \([^)]*\)\s+(.*)$/.exec(l);
    // The process's and its threads' roots are listed with everything under them: not functions of their own.
    if (m === null || /PROGRAM TOTALS|\(below main\)|libc-start|start_thread|clone\.S|node::Start\(|\?\?\?:main |NodeMainInstance::Run|SpinEventLoopInternal|ld-linux/.test(m[2])) continue;
    const k = label(m[2], name);
    totals.set(k, (totals.get(k) ?? 0) + Number(m[1].replace(/,/g, '')));
  }
  const top = Number(opt('--top') ?? 60);
  const rows = [...totals].sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [k, v] of rows) process.stdout.write(`${Math.round(v / requests).toString().padStart(8)}  ${k}\n`);
}

main();
