/**
 * Idle memory: modules that only some configs or the first request need are loaded on first
 * use, not at start. undici (~9 MB of RSS per thread) is needed only by the undici HTTP/1.1
 * engine; hdr-histogram-js (~16 MB per thread) only once a latency is recorded or merged; the
 * xDS modules (~15 MB) only for an xDS config.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

const DIST_SRC = path.resolve(__dirname, '../../src');

test('the sidecar modules load neither undici nor hdr-histogram-js until they are used', () => {
  const probe = `
    for (const m of ['server', 'extensions', 'network/listener', 'http/downstream-h1', 'http/upstream-h1', 'upstream/cluster', 'admin/server']) {
      require(${JSON.stringify(DIST_SRC)} + '/' + m + '.js');
    }
    const loaded = Object.keys(require.cache);
    const has = (name) => loaded.some((k) => k.includes('/node_modules/' + name + '/'));
    const before = { undici: has('undici'), hdr: has('hdr-histogram-js') };
    const { HistogramRecorder } = require(${JSON.stringify(DIST_SRC)} + '/stats/histograms.js');
    new HistogramRecorder(true).record(1, 1000);
    const after = { hdr: Object.keys(require.cache).some((k) => k.includes('/node_modules/hdr-histogram-js/')) };
    process.stdout.write(JSON.stringify({ before, after }));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', probe], { encoding: 'utf8' })) as { before: { undici: boolean; hdr: boolean }; after: { hdr: boolean } };
  assert.deepEqual(out.before, { undici: false, hdr: false });
  assert.equal(out.after.hdr, true, 'recording a latency loads hdr-histogram-js');
});

test('the CLI loads the xDS modules (YAML, gRPC, protobuf) only for a YAML file or an xDS config', () => {
  const probe = `
    require(${JSON.stringify(DIST_SRC)} + '/cli.js');
    const loaded = Object.keys(require.cache);
    process.stdout.write(JSON.stringify(['yaml', '@grpc/grpc-js', 'protobufjs'].filter((m) => loaded.some((k) => k.includes('/node_modules/' + m + '/')))));
  `;
  assert.deepEqual(JSON.parse(execFileSync(process.execPath, ['-e', probe], { encoding: 'utf8' })), []);
});
