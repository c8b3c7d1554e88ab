/**
 * Preloaded (`node --require`) into an `outrigger start` process by test/integration/idle-memory:
 * on SIGUSR2 it writes what the process holds at idle to OUTRIGGER_IDLE_PROBE_OUT (JSON): the
 * Node built-in modules loaded, the thread count, V8's young-generation size, and whether a
 * function made hot now reaches TurboFan (the optimizer held while starting is on again), and
 * how often the start called malloc_trim and released the executable's pages (src/native/memory.ts,
 * wrapped here before the CLI loads), what that release found resident, and what the process holds
 * now: VmRSS, RssAnon and the executable's resident read-only pages (/proc/self/smaps).
 */
import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import { mallocControl } from '../../src/native/memory';

const out = process.env.OUTRIGGER_IDLE_PROBE_OUT;

let mallocTrims = 0;
let exeReleases = 0;
let exeReleasedKiB = 0;
if (out !== undefined) {
  // The CLI's own copy of the module (same file, so the same cached control object).
  const mc = mallocControl();
  const trim = mc.trim;
  mc.trim = () => (mallocTrims++, trim());
  const release = mc.releaseExecutablePages;
  mc.releaseExecutablePages = () => (exeReleases++, (exeReleasedKiB = release()));
}

/** A /proc/self/status field in KiB. */
function statusKiB(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : -1;
}

/** Resident KiB of the executable's read-only private mappings. */
function exeResidentKiB(): number {
  const exe = fs.readlinkSync('/proc/self/exe');
  let kib = 0;
  let mine = false;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+(?:\s+(.*))?$/.exec(line);
    if (head !== null) mine = (head[2] ?? '') === exe && head[1]!.startsWith('r-') && head[1]!.endsWith('p');
    else if (mine && line.startsWith('Rss:')) kib += Number(/(\d+)/.exec(line)![1]);
  }
  return kib;
}

/** V8's optimization status bit of a TurboFan-compiled function (src/runtime/runtime.h, OptimizationStatus). */
const TURBOFANNED = 1 << 6;

function hot(n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += (i * 7) % 13;
  return s;
}

/** Runs `hot` until V8 optimizes it with TurboFan (concurrently), at most `ms`. */
function warm(status: (f: unknown) => number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  return new Promise((resolve) => {
    const step = (): void => {
      for (let i = 0; i < 2000; i++) hot(200);
      if ((status(hot) & TURBOFANNED) !== 0) return resolve(true);
      if (Date.now() > end) return resolve(false);
      setTimeout(step, 5);
    };
    step();
  });
}

if (out !== undefined) {
  process.on('SIGUSR2', () => {
    const newSpace = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    const builtins = (process as unknown as { moduleLoadList: string[] }).moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length));
    const threads = fs.readdirSync('/proc/self/task').length;
    const memory = { rssKiB: statusKiB('VmRSS'), anonKiB: statusKiB('RssAnon'), exeKiB: exeResidentKiB() };
    v8.setFlagsFromString('--allow-natives-syntax');
    const status = new Function('f', 'return %GetOptimizationStatus(f)') as (f: unknown) => number;
    void warm(status, 5000).then((turbofan) => {
      fs.writeFileSync(out, JSON.stringify({ newSpaceBytes: newSpace?.space_size ?? -1, builtins, threads, turbofan, mallocTrims, exeReleases, exeReleasedKiB, ...memory }));
    });
  });
}
