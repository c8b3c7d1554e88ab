/**
 * Idle memory: modules that only some configs or the first request need are loaded on first
 * use, not at start. undici (~9 MB of RSS per thread) is needed only by the undici HTTP/1.1
 * engine; hdr-histogram-js (~16 MB per thread, 150-250 ms to load and start) only on the main
 * thread, once it merges a worker's latencies: recording in the worker never loads it. The xDS
 * modules (gRPC, protobuf: ~15 MB) load only for an xDS config, YAML only for a YAML file.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

const DIST_SRC = path.resolve(__dirname, '../../src');

test('the sidecar modules load neither undici, hdr-histogram-js nor gRPC until they are used; recording latencies never loads hdr', () => {
  const probe = `
    for (const m of ['server', 'extensions', 'network/listener', 'http/downstream-h1', 'http/upstream-h1', 'upstream/cluster', 'admin/server', 'config/any-file']) {
      require(${JSON.stringify(DIST_SRC)} + '/' + m + '.js');
    }
    const has = (name) => Object.keys(require.cache).some((k) => k.includes('/node_modules/' + name + '/'));
    const before = { undici: has('undici'), hdr: has('hdr-histogram-js'), grpc: has('@grpc/grpc-js'), yaml: has('yaml') };
    const { HistogramRecorder, HistogramStore } = require(${JSON.stringify(DIST_SRC)} + '/stats/histograms.js');
    const w = new HistogramRecorder();
    w.record(1, 1000);
    const recorded = { hdr: has('hdr-histogram-js') };
    const store = new HistogramStore();
    store.addAll(w.drain());
    const count = store.count(1);
    const merged = { hdr: has('hdr-histogram-js'), count };
    process.stdout.write(JSON.stringify({ before, recorded, merged }));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', probe], { encoding: 'utf8' })) as Record<string, Record<string, unknown>>;
  assert.deepEqual(out.before, { undici: false, hdr: false, grpc: false, yaml: false });
  assert.deepEqual(out.recorded, { hdr: false }, 'recording a latency (the worker) does not load hdr-histogram-js');
  assert.deepEqual(out.merged, { hdr: true, count: 1 }, 'merging and reading (the main thread) does');
});

test('merging a worker\'s latencies does not load hdr-histogram-js (with one worker the main thread is the data plane); the first read does, with the numbers of a read after every merge', () => {
  const probe = `
    const has = (name) => Object.keys(require.cache).some((k) => k.includes('/node_modules/' + name + '/'));
    const { HistogramRecorder, HistogramStore } = require(${JSON.stringify(DIST_SRC)} + '/stats/histograms.js');
    const w = new HistogramRecorder();
    const lazy = new HistogramStore();
    const eager = new HistogramStore();
    const deltas = [];
    for (let sec = 0; sec < 3; sec++) {
      for (let i = 1; i <= 100; i++) w.record(1, i * 97 + sec * 1000);
      const d = w.drain();
      deltas.push(d);
      lazy.addAll(d);
    }
    const merged = { hdr: has('hdr-histogram-js') };
    for (const d of deltas) {
      eager.addAll(d);
      eager.summary(1);
    }
    w.record(1, 50000);
    const last = w.drain();
    lazy.addAll(last);
    eager.addAll(last);
    process.stdout.write(JSON.stringify({ merged, hdr: has('hdr-histogram-js'), lazy: [lazy.summary(1), lazy.buckets(1)], eager: [eager.summary(1), eager.buckets(1)] }));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', probe], { encoding: 'utf8' })) as { merged: unknown; hdr: boolean; lazy: [{ count: number }, unknown]; eager: unknown };
  assert.deepEqual(out.merged, { hdr: false }, 'adding deltas does not load hdr-histogram-js');
  assert.equal(out.hdr, true, 'reading does');
  assert.equal(out.lazy[0].count, 301);
  assert.deepEqual(out.lazy, out.eager, 'one merge at the read gives what a merge per delta gave');
});

test('the CLI loads the xDS modules (YAML, gRPC, protobuf) only for a YAML file or an xDS config', () => {
  const probe = `
    require(${JSON.stringify(DIST_SRC)} + '/cli.js');
    const loaded = Object.keys(require.cache);
    process.stdout.write(JSON.stringify(['yaml', '@grpc/grpc-js', 'protobufjs'].filter((m) => loaded.some((k) => k.includes('/node_modules/' + m + '/')))));
  `;
  assert.deepEqual(JSON.parse(execFileSync(process.execPath, ['-e', probe], { encoding: 'utf8' })), []);
});
