/** The config layer imports no layer above it: filters register their validators into it (src/extensions.ts). */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const CONFIG_DIR = path.join(__dirname, '..', '..', '..', 'src', 'config');
/**
 * The only modules outside src/config it may use: TLS material loading, a leaf (node builtins and
 * config/types), and the stream filter contract (src/api/stream-filter.ts: the validators of
 * stream filter kinds; a leaf that imports nothing).
 */
const ALLOWED_OUTSIDE = new Set(['../tls/material', '../api/stream-filter']);

test('src/config imports only itself, node builtins and the TLS material leaf', () => {
  const files = fs.readdirSync(CONFIG_DIR).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length > 10, 'parse.ts is split by section');
  const bad: string[] = [];
  for (const f of files) {
    const text = fs.readFileSync(path.join(CONFIG_DIR, f), 'utf8');
    // `import … from 'x'`, `export … from 'x'` (lists may span lines, never parentheses), `import 'x'`.
    for (const m of text.matchAll(/^(?:import|export)\b[^;()'"]*?\bfrom\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]/gm)) {
      const spec = (m[1] ?? m[2])!;
      if (spec.startsWith('node:') || spec.startsWith('./') || ALLOWED_OUTSIDE.has(spec)) continue;
      bad.push(`${f}: ${spec}`);
    }
  }
  assert.deepEqual(bad, []);
  const material = fs.readFileSync(path.join(CONFIG_DIR, '..', 'tls', 'material.ts'), 'utf8');
  for (const m of material.matchAll(/from\s*['"]([^'"]+)['"]/g)) assert.ok(m[1]!.startsWith('node:') || m[1] === '../config/types', `tls/material imports ${m[1]}`);
  const api = fs.readFileSync(path.join(CONFIG_DIR, '..', 'api', 'stream-filter.ts'), 'utf8');
  assert.doesNotMatch(api, /^(?:import|export)\b[^;()'"]*?\bfrom\s*['"]|^import\s*['"]/m, 'api/stream-filter imports nothing');
});
