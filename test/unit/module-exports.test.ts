// The exports objects of the modules on the request path stay in V8's fast mode (issue #15).
//
// TypeScript compiles a value re-export (`export { X }` of an imported X, or `export { X } from`)
// to `exports.X = void 0` first and an accessor defined over that data property later; that
// redefinition turns the module's exports object into a dictionary. Optimized code cannot inline
// a load from a dictionary-mode object, so every `limits_1.limits` or `limits_1.rpcTimeoutMs` read
// by the RPC proxy was a LoadIC builtin call per request (found in a callgrind profile of
// sendAttempt and HostPool.send, docs/rpc-low-rate.md session 14). This checks every module of
// the request path's directories in a child process with --allow-natives-syntax
// (%HasFastProperties); barrels (index.js) are excluded: the request path imports from the
// modules themselves.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const DIST_SRC = path.join(__dirname, '..', '..', 'src');
const DIRS = ['network', 'proxy', 'stream', 'upstream', 'protocol', 'router', 'overload', 'stats', 'filters'];

function modules(dir: string, out: string[]): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) modules(p, out);
    else if (e.name.endsWith('.js') && e.name !== 'index.js') out.push(p);
  }
  return out;
}

test('the request path modules keep fast (non-dictionary) exports objects', () => {
  const files: string[] = [];
  for (const d of DIRS) if (fs.existsSync(path.join(DIST_SRC, d))) modules(path.join(DIST_SRC, d), files);
  assert.ok(files.length > 50, `found ${files.length} modules`);
  const script =
    'const out = [];' +
    'for (const f of JSON.parse(process.argv[1])) {' +
    '  const m = require(f);' +
    '  if (!%HasFastProperties(m)) out.push(f);' +
    '}' +
    'process.stdout.write(JSON.stringify(out));';
  const slow = JSON.parse(execFileSync(process.execPath, ['--allow-natives-syntax', '-e', script, JSON.stringify(files)], { encoding: 'utf8' })) as string[];
  assert.deepEqual(
    slow.map((f) => path.relative(DIST_SRC, f)),
    [],
    'these modules re-export a value: import it from its own module, or export a const',
  );
});
