/**
 * native/crash.cc: an abort prints the aborting thread and its native stack before the process
 * ends by SIGABRT; OUTRIGGER_CRASH_REPORT=0 leaves the signal alone.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { addonPath } from '../../src/native/addon';

const skip = fs.existsSync(addonPath()) ? false : 'native addon not built';

function abortWithAddon(env: NodeJS.ProcessEnv): { signal: NodeJS.Signals | null; stderr: string } {
  const script = `require(${JSON.stringify(addonPath())}); process.abort();`;
  const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { signal: r.signal, stderr: r.stderr };
}

test('an abort prints the thread and its native stack, then the process ends by SIGABRT', { skip }, () => {
  const r = abortWithAddon({});
  assert.equal(r.signal, 'SIGABRT');
  const m = /\[outrigger\] fatal signal 6 \(abort\) in thread (\d+) '([^']*)' of process (\d+); native stack:\n([\s\S]*?)\[outrigger\] end of stack/.exec(r.stderr);
  assert.ok(m, r.stderr.slice(-2000));
  assert.equal(m[1], m[3], 'the main thread aborted (tid = pid)');
  assert.match(m[4], /abort/, 'the stack names abort()');
});

test('OUTRIGGER_CRASH_REPORT=0: no report, still SIGABRT', { skip }, () => {
  const r = abortWithAddon({ OUTRIGGER_CRASH_REPORT: '0' });
  assert.equal(r.signal, 'SIGABRT');
  assert.doesNotMatch(r.stderr, /\[outrigger\] fatal signal/);
});
