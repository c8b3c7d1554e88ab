/** Config reader limits: hostile files get one clear line and exit 1, never a stack. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfig } from '../../src/config';
import { CLI } from '../helpers/sidecar';

function validate(name: string, content: string): { status: number | null; stdout: string; stderr: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-limits-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  try {
    return spawnSync(process.execPath, [CLI, 'validate', '-c', file], { encoding: 'utf8', timeout: 30_000 });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('validate on 100,000-deep JSON prints one clear line naming the limit and exits 1, no stack', () => {
  for (const doc of ['['.repeat(100_000) + ']'.repeat(100_000), `{"servers":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`]) {
    const r = validate('deep.json', doc);
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr.slice(0, 2000));
    assert.match(lines[0]!, /^error: the config nests objects and arrays deeper than 100 levels at line 1 column \d+ \(the limit\)$/);
    assert.doesNotMatch(r.stderr, /RangeError|at \S+ \(/);
  }
});

test('validate on a file over the size limit names the limit', () => {
  const r = validate('big.json', `{"servers":[],"pad":"${'x'.repeat(16 * 1024 * 1024 + 1)}"}`);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr.trim(), /^error: config file is \d+ bytes; the limit is 16777216 bytes$/);
});

test('parseConfig on a deeply nested decoded document throws a ConfigError, not a RangeError', () => {
  const root: Record<string, unknown> = {};
  let x = root;
  for (let i = 0; i < 100_000; i++) {
    const next: Record<string, unknown> = {};
    x['a'] = next;
    x = next;
  }
  assert.throws(() => parseConfig({ servers: [root] }), (e: Error) => e.name === 'ConfigError' && /deeper than 100 levels/.test(e.message));
});
