#!/usr/bin/env node
'use strict';
// Runs every compiled test file (dist/test/**/*.test.js) with node:test.
// Usage: node scripts/run-tests.js [substring-filter ...]
//
// Two phases, each one `node --test` run:
//   1. the shared phase: every file not listed in SERIAL, OUTRIGGER_TEST_JOBS files at a time
//      (default 2). Ports are all 0 and temp dirs are per test, so these files do not see each other.
//   2. the serial phase: the files in SERIAL, strictly one at a time, with nothing else running:
//      they put load on the machine, measure rates or short latencies, or change the network
//      (namespaces), so a neighbour could make them flaky or be made flaky by them.
// A new test file that measures a rate, a latency bound under ~1 s of slack, or drives a load
// generator (h2load, wrk, autocannon) belongs in SERIAL.
// OUTRIGGER_TEST_JOBS=1 runs everything one file at a time, in path order, as before.
//
// --test-force-exit: a file's process ends when its last test has finished, instead of waiting
// for client libraries' own timers (sofa-rpc-node's 30 s fault-address retry sleep, dubbo2.js's
// reconnect loop) to run out; that wait was 44 % of the suite's time (657 of 1,503 s). Sidecars started
// by a test are still killed on exit (test/helpers/sidecar.ts).
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

/** Path substrings (relative to dist/test) of the files run alone; see above. */
const SERIAL = [
  'integration/native-read-paths.test.js', // reruns the plain-connection suites (bulk, load) on Node's read path
  'integration/fault.test.js', // delay injection measured in ms (requests without the header < 100 ms)
  'integration/h2-drain.test.js', // h2load with 32 closed-loop connections through three drains
  'integration/h2-body.test.js', // 8 MiB bodies against a backend that reads nothing for 1 s (backpressure timing)
  'integration/outlier-rates.test.js', // wrk load, error rates per host
  'integration/hostile-bolt.test.js', // 500,000 requests must be sent within the 3 s rpc_max_timeout; RSS bounds
  'integration/hostile-http.test.js', // p99 < 50 ms beside 500 hostile clients, RSS growth
  'integration/hostile-overload.test.js', // overload: many connections, time bounds
  'integration/http-proxy.test.js', // autocannon and h2load load
  'integration/lifecycle.test.js', // a start that fails must exit within 2 s of its spawn (node start-up included)
  'integration/mirror.test.js', // main request < 500 ms with slow mirrors
  'integration/ratelimit.test.js', // accepted rate within 10 % under h2load load
  'integration/reload-load.test.js', // h2load/wrk load across reloads
  'integration/router.test.js', // ReDoS latency bounds
  'integration/stream-pipeline.test.js', // 300 ms per-try timeouts that a slow first answer must beat
  'integration/tcp-splice', // 48 MiB each way and 512 MiB through a slow reader (and its fallback twin)
  'integration/transparent.test.js', // network namespaces and iptables
  'integration/tls-native-paths.test.js', // runs five TLS suites again on Node's TLS path
  'integration/tls-fd-paths.test.js', // runs three TLS suites again with a net.Socket per connection
  'integration/upstream-fd-paths.test.js', // runs five plain-upstream suites again with net.connect (bulk, load)
  'integration/owned-poll-paths.test.js', // runs six owned-fd suites again with every owned fd on its own poll, two with none (bulk, ~70 s)
  'integration/upgrade-failure.test.js', // hand-over under load
  'integration/upgrade-resume.test.js', // hand-over, kill, take-back timings
  'integration/upgrade-tls.test.js', // sofa-rpc-node at 400 calls/s across a hand-over
  'integration/upgrade.test.js', // hand-over under h2load/wrk/RPC load
  'integration/upstream-health.test.js', // slow-start shares over time windows, wrk error rates
  'integration/xds-load.test.js', // h2load load across xDS pushes
  'unit/proxy.test.js', // a 100 ms upstream timeout must beat a 400 ms late answer in-process
  'unit/bench-bolt.test.js', // the open-loop driver's achieved rate within 15 %
  'unit/bench-dubbo.test.js', // the same for Dubbo (achieved 817/s for 1,000/s beside other files, session 11)
  'unit/bench.test.js', // compares measured p50 latencies (direct < a 2 x 2 ms relay)
  'unit/bench-h2.test.js', // minimum request counts in short windows
  'unit/bench-tls.test.js', // minimum handshake count in a short window
  'unit/tls-native-deadline.test.js', // a handshake deadline measured in wall-clock time
];

const root = path.join(__dirname, '..', 'dist', 'test');
const filters = process.argv.slice(2);
const files = [];
(function walk(dir) {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.test.js')) files.push(p);
  }
})(root);
const chosen = files.sort().filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (chosen.length === 0) {
  console.error('no test files found under', root, filters.length ? `matching ${filters.join(', ')}` : '');
  process.exit(1);
}

const jobs = Math.max(1, Number(process.env.OUTRIGGER_TEST_JOBS) || 2);
const [major, minor] = process.versions.node.split('.').map(Number);
const forceExit = major >= 22 || (major === 20 && minor >= 14) ? ['--test-force-exit'] : []; // added in 20.14 / 22.0
const isSerial = (f) => SERIAL.some((s) => f.slice(root.length + 1).split(path.sep).join('/').includes(s));
const phases = jobs === 1
  ? [{ name: 'all', files: chosen, concurrency: 1 }]
  : [
    { name: 'shared', files: chosen.filter((f) => !isSerial(f)), concurrency: jobs },
    { name: 'serial', files: chosen.filter(isSerial), concurrency: 1 },
  ].filter((p) => p.files.length > 0);

function runPhase(p) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--test', ...forceExit, `--test-concurrency=${p.concurrency}`, ...p.files], { stdio: 'inherit' });
    const onSignal = (sig) => child.kill(sig);
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      const s = ((Date.now() - t0) / 1000).toFixed(1);
      console.log(`# run-tests: ${p.name} phase: ${p.files.length} files, ${p.concurrency} at a time, ${s} s, ${code === 0 ? 'passed' : `FAILED (${signal ?? code})`}`);
      resolve(code === 0 ? 0 : 1);
    });
  });
}

(async () => {
  const t0 = Date.now();
  let status = 0;
  for (const p of phases) status |= await runPhase(p);
  console.log(`# run-tests: ${chosen.length} files in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${status === 0 ? 'all passed' : 'FAILURES above'}`);
  process.exit(status);
})();
