#!/usr/bin/env node
'use strict';
// Builds the optional native addon (build/Release/outrigger_native.node) with node-gyp.
// The addon is optional at run time: if the build fails, Outrigger uses its TypeScript
// fallbacks and says so at start. Set OUTRIGGER_SKIP_NATIVE_BUILD=1 to skip the build.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

if (process.env.OUTRIGGER_SKIP_NATIVE_BUILD === '1') {
  console.log('[outrigger] native addon build skipped (OUTRIGGER_SKIP_NATIVE_BUILD=1)');
  process.exit(0);
}
const root = path.join(__dirname, '..');
let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
} catch {
  console.warn('[outrigger] node-gyp not installed; native addon not built, TypeScript fallbacks will be used');
  process.exit(0);
}
const args = [gyp, 'rebuild'];
// Outside npm, node-gyp would try to download headers; the machine's own headers are enough.
const nodedir = process.env.npm_config_nodedir || (fs.existsSync('/usr/include/node/node.h') ? '/usr' : '');
if (nodedir) args.push(`--nodedir=${nodedir}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.warn('[outrigger] native addon build failed; TypeScript fallbacks will be used (OUTRIGGER_NATIVE=0 behaviour)');
}
process.exit(0);
