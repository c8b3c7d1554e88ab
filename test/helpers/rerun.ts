/**
 * Runs compiled test files again in a child `node --test` with extra environment (e.g. Node's TLS
 * path: OUTRIGGER_NATIVE_TLS=0), and asserts that they all passed.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

export async function rerunWith(files: readonly string[], extraEnv: NodeJS.ProcessEnv): Promise<void> {
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    // A test run of its own: without the parent runner's context variable (it would refuse to nest).
    const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv };
    delete env.NODE_TEST_CONTEXT;
    const c = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-force-exit', ...files], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', (code) => resolve({ code, out }));
  });
  assert.equal(r.code, 0, failureLines(r.out));
  assert.match(r.out, /# fail 0/);
}

/** Each failed test's line and the 24 lines after it (its multi-line error and expected/actual), at most 120. */
function failureLines(out: string): string {
  const lines = out.split('\n');
  const kept: string[] = [];
  for (let i = 0; i < lines.length && kept.length < 120; i++) {
    if (/^\s*not ok/.test(lines[i])) kept.push(...lines.slice(i, i + 25));
  }
  return kept.length > 0 ? kept.join('\n') : lines.slice(-40).join('\n');
}
