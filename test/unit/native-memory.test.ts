// malloc_trim and the executable's page release from the addon (native/memory.cc via src/native/memory.ts), and their no-op fallbacks.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { native } from '../../src/native';
import { fallbackMallocControl, mallocControl } from '../../src/native/memory';

const MODULE = path.join(__dirname, '..', '..', 'src', 'native', 'memory.js');

/** Resident anonymous memory of this process (KiB). */
function rssAnonKiB(): number {
  const m = /RssAnon:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Resident KiB of the executable's read-only private mappings (smaps), and whether any holds a written page. */
function exePages(): { kib: number; written: boolean } {
  const exe = fs.readlinkSync('/proc/self/exe');
  let kib = 0;
  let written = false;
  let mine = false;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+(?:\s+(.*))?$/.exec(line);
    if (head !== null) mine = (head[2] ?? '') === exe && head[1] === 'r-xp';
    else if (mine && line.startsWith('Rss:')) kib += Number(/(\d+)/.exec(line)![1]);
    else if (mine && line.startsWith('Anonymous:')) written ||= Number(/(\d+)/.exec(line)![1]) > 0;
  }
  return { kib, written };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('mallocControl', () => {
  it('native: trim() gives the free pages inside the malloc heap back to the kernel', { skip: native.kind !== 'native' || process.platform !== 'linux' }, async () => {
    const mc = mallocControl();
    assert.equal(mc.native, true);
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    // 4,000 malloc'd 16 KiB backing stores, written (resident); every other one freed leaves
    // holes between live chunks that free() alone keeps (only the heap's top is trimmed by it).
    let bufs: (Buffer | null)[] = [];
    for (let i = 0; i < 4000; i++) bufs.push(Buffer.allocUnsafeSlow(16 * 1024).fill(i & 0xff));
    for (let i = 0; i < bufs.length; i += 2) bufs[i] = null;
    for (let i = 0; i < 3; i++) {
      gc();
      await sleep(100); // V8 frees array buffers' memory on a background thread after the collection
    }
    mc.trim(); // whatever this process had before the test
    const kept = bufs.filter((b) => b !== null).length;
    bufs = bufs.map((b, i) => (i % 4 === 1 ? null : b)); // half of the live ones: new holes
    for (let i = 0; i < 3; i++) {
      gc();
      await sleep(100);
    }
    const before = rssAnonKiB();
    assert.equal(mc.trim(), true);
    const after = rssAnonKiB();
    // 1,000 holes of 16 KiB: ~12 KiB of whole pages each; at least half of that must have gone.
    assert.ok(before - after >= 6000, `RssAnon ${before} -> ${after} KiB after malloc_trim (${kept} buffers kept)`);
    assert.ok(bufs.every((b, i) => b === null || b[0] === (i & 0xff)), 'live buffers keep their bytes');
  });

  it("native: releaseExecutablePages() takes the executable's code pages out of the resident set; the process runs on", { skip: native.kind !== 'native' || process.platform !== 'linux' }, () => {
    const mc = mallocControl();
    const before = exePages();
    assert.ok(before.kib > 1024 && !before.written, `${before.kib} KiB of node's code resident`);
    const released = mc.releaseExecutablePages();
    const after = exePages(); // reading smaps maps some code back: far less than was there
    assert.ok(released >= before.kib, `released ${released} KiB, ${before.kib} KiB of code were resident`);
    assert.ok(after.kib < before.kib / 2, `code resident ${before.kib} -> ${after.kib} KiB`);
    // Code and read-only data come back on use: compile, run, a builtin module not loaded yet.
    assert.equal(new Function('a', 'b', 'return a * b + 1')(6, 7), 43);
    assert.equal(JSON.parse(JSON.stringify({ x: [1, 'é'] })).x[1], 'é');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    assert.equal((require('node:punycode') as { encode(s: string): string }).encode('mañana'), 'maana-pta');
  });

  it('fallback: trim() is a no-op returning false, releaseExecutablePages() 0', () => {
    assert.equal(fallbackMallocControl.native, false);
    assert.equal(fallbackMallocControl.trim(), false);
    assert.equal(fallbackMallocControl.releaseExecutablePages(), 0);
    const r = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(MODULE)}).mallocControl(); process.stdout.write(JSON.stringify([m.native, m.trim(), m.releaseExecutablePages()]))`], {
      env: { ...process.env, OUTRIGGER_NATIVE: '0' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [false, false, 0]);
  });
});
