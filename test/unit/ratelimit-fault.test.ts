/** local_ratelimit, flowControlFilter and the fault filters at the filter level; the shared limiter across worker threads. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { FilterStatus, type FilterStream } from '../../src/api/stream-filter';
import { filterCellsBuffer, filterCounters, sharedNowMs } from '../../src/filters/shared/cells';
import { allocTokenBucket, allocWindow, takeToken, windowPass } from '../../src/filters/shared/limiter';
import { decode, FakeStream, makeFilter, validateFilter } from '../helpers/filter-stream';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const P = 'servers[0].listeners[0].stream_filters[0].config';
const ALL = { default_value: { numerator: 100, denominator: 'HUNDRED' } };

test('local_ratelimit: token bucket, 429 with x-ratelimit headers, RL flag; disabled unless filter_enabled (Envoy default 0%)', async () => {
  const f = makeFilter('local_ratelimit', {
    stat_prefix: 'rl', token_bucket: { max_tokens: 3, tokens_per_fill: 3, fill_interval: '200ms' }, filter_enabled: ALL, filter_enforced: ALL,
    enable_x_ratelimit_headers: 'DRAFT_VERSION_03', response_headers_to_add: [{ header: { key: 'x-local-rate-limit', value: 'true' } }],
  }, 'rl1', `${P}.a`);
  const got: FakeStream[] = [];
  for (let i = 0; i < 5; i++) {
    const s = new FakeStream();
    got.push(s);
    decode(f, s);
  }
  assert.deepEqual(got.map((s) => s.reply?.status ?? 0), [0, 0, 0, 429, 429]);
  assert.deepEqual(got.map((s) => s.added['x-ratelimit-remaining']), ['2', '1', '0', '0', '0']);
  assert.equal(got[0].added['x-ratelimit-limit'], '3');
  assert.equal(got[4].added['x-local-rate-limit'], 'true');
  assert.equal(got[0].added['x-local-rate-limit'], undefined);
  assert.deepEqual(got[4].flags, ['RL']);
  await sleep(230);
  const after = new FakeStream();
  assert.equal(decode(f, after), FilterStatus.Continue, 'refilled after fill_interval');
  assert.equal(filterCounters().get('local_ratelimit.rl1.rl.rate_limited'), 2);

  const off = makeFilter('local_ratelimit', { stat_prefix: 'x', token_bucket: { max_tokens: 1, fill_interval: '1s' } }, 'rl2', `${P}.b`);
  for (let i = 0; i < 5; i++) assert.equal(decode(off, new FakeStream()), FilterStatus.Continue);
  const notEnforced = makeFilter('local_ratelimit', { stat_prefix: 'x', token_bucket: { max_tokens: 1, fill_interval: '1s' }, filter_enabled: ALL }, 'rl3', `${P}.c`);
  for (let i = 0; i < 5; i++) assert.equal(decode(notEnforced, new FakeStream()), FilterStatus.Continue);
  assert.equal(filterCounters().get('local_ratelimit.rl3.x.rate_limited'), 4, 'counted, not enforced');
});

test('local_ratelimit validation: required keys, descriptors refused, paths named', () => {
  const cases: [unknown, string][] = [
    [{ stat_prefix: 'a' }, `${P}.token_bucket: required`],
    [{ token_bucket: { max_tokens: 0, fill_interval: '1s' } }, `${P}.token_bucket.max_tokens: 0 must be an integer`],
    [{ token_bucket: { max_tokens: 1, fill_interval: '10ms' } }, 'at least 50ms'],
    [{ token_bucket: { max_tokens: 1, fill_interval: 'soon' } }, `${P}.token_bucket.fill_interval: "soon" is not a duration`],
    [{ token_bucket: { max_tokens: 1, fill_interval: '1s' }, descriptors: [{ entries: [] }] }, `${P}.descriptors[0].entries: a descriptor needs at least one entry`],
    [{ token_bucket: { max_tokens: 1, fill_interval: '1s' }, filter_enabled: { default_value: { numerator: 5, denominator: 'HALF' } } }, `${P}.filter_enabled.default_value.denominator`],
  ];
  for (const [raw, want] of cases) {
    const { cfg, issues } = validateFilter('local_ratelimit', raw);
    assert.equal(cfg, undefined, JSON.stringify(raw));
    assert.ok(issues.errors.some((e) => e.includes(want)), `${JSON.stringify(raw)}: ${issues.errors.join(' | ')}`);
  }
  // proto3 JSON form (what the xDS translator passes).
  const { cfg } = validateFilter('local_ratelimit', { statPrefix: 'a', tokenBucket: { maxTokens: 5, tokensPerFill: '5', fillInterval: '0.5s' }, filterEnabled: ALL });
  assert.ok(cfg !== undefined);
});

test('flowControlFilter: MOSN keys and defaults; PATH / URI resources for HTTP and RPC; action status and body', () => {
  const f = makeFilter('flowControlFilter', {
    global_switch: true, limit_key_type: 'PATH', action: { status: 500, body: 'blocked' },
    rules: [{ resource: '/test', limitApp: '', grade: 1, threshold: 2, strategy: 0 }, { resource: 'com.example.Echo:1.0', threshold: 1 }],
  }, 'fc1', `${P}.fc`);
  const http = (p: string) => new FakeStream({ headers: { ':path': p } });
  const r = [http('/test?a=1'), http('/test'), http('/test'), http('/other')];
  for (const s of r) decode(f, s);
  assert.deepEqual(r.map((s) => s.reply?.status ?? 0), [0, 0, 500, 0]);
  assert.equal(r[2].reply?.message, 'blocked');
  const bolt = () => new FakeStream({ protocol: 'bolt', service: 'com.example.Echo:1.0', method: 'echo' });
  const b = [bolt(), bolt()];
  for (const s of b) decode(f, s);
  assert.deepEqual(b.map((s) => s.reply?.status ?? 0), [0, 500]);
  // Defaults: global_switch false does nothing; the default action is MOSN's 509 "current request is limited".
  const off = makeFilter('flowControlFilter', { rules: [{ resource: '/x', threshold: 0 }] }, 'fc2', `${P}.off`);
  assert.equal(decode(off, http('/x')), FilterStatus.Continue);
  const def = makeFilter('flowControlFilter', { global_switch: true, limit_key_type: 'URI', rules: [{ resource: '/svc/m', threshold: 0 }] }, 'fc3', `${P}.def`);
  const rpc = new FakeStream({ protocol: 'dubbo', service: 'svc', method: 'm' });
  assert.equal(decode(def, rpc), FilterStatus.Stop);
  assert.deepEqual(rpc.reply, { status: 509, message: 'current request is limited', opts: undefined });
  const { issues } = validateFilter('flowControlFilter', { limit_key_type: 'HEADER' });
  assert.ok(issues.errors.some((e) => e.startsWith(`${P}.limit_key_type: "HEADER"`)), issues.errors.join('|'));
  const bad = validateFilter('flowControlFilter', { rules: [{ resource: '/a', threshold: 1, controlBehavior: 1 }] });
  assert.ok(bad.issues.errors.some((e) => e.includes(`${P}.rules[0].controlBehavior`)), bad.issues.errors.join('|'));
});

test('fault (MOSN): abort percentage and status, delay holds the stream on a timer, upstream_cluster and headers scope it', async () => {
  const abort = makeFilter('fault', { abort: { status: 503, percentage: 100 }, upstream_cluster: 'c1', headers: [{ name: 'user', value: 'bob', regex: false }] }, 'f1');
  const s1 = new FakeStream({ cluster: 'c1', headers: { user: 'bob' } });
  assert.equal(decode(abort, s1), FilterStatus.Stop);
  assert.equal(s1.reply?.status, 503);
  assert.deepEqual(s1.flags, ['FI']);
  assert.equal(decode(abort, new FakeStream({ cluster: 'c2', headers: { user: 'bob' } })), FilterStatus.Continue);
  assert.equal(decode(abort, new FakeStream({ cluster: 'c1', headers: { user: 'alice' } })), FilterStatus.Continue);

  const delay = makeFilter('fault', { delay: { fixed_delay: '80ms', percentage: 100 } }, 'f2');
  const s2 = new FakeStream();
  const t0 = performance.now();
  assert.equal(decode(delay, s2), FilterStatus.Stop);
  assert.deepEqual(s2.flags, ['DI']);
  while (s2.resumed === 0 && performance.now() - t0 < 2000) await sleep(5);
  const took = performance.now() - t0;
  assert.equal(s2.resumed, 1);
  assert.ok(took >= 75 && took < 400, `delay ${took} ms`);
  // The client goes away during the delay: log() frees the timer, nothing resumes.
  const s3 = new FakeStream();
  decode(delay, s3);
  (delay.log as (s: FilterStream) => void)(s3);
  await sleep(120);
  assert.equal(s3.resumed, 0);

  const half = makeFilter('fault', { abort: { status: 500, percentage: 30 } }, 'f3');
  let n = 0;
  for (let i = 0; i < 4000; i++) if (decode(half, new FakeStream()) === FilterStatus.Stop) n++;
  assert.ok(n > 4000 * 0.26 && n < 4000 * 0.34, `aborted ${n}/4000`);
});

test('http_fault (Envoy): grpc_status abort, header_abort, max_active_faults across the process, validation', () => {
  const g = makeFilter('http_fault', { abort: { grpc_status: 8, percentage: { numerator: 100 } } }, 'h1');
  const s = new FakeStream({ protocol: 'grpc' });
  decode(g, s);
  assert.equal(s.reply?.opts?.grpcStatus, 8);
  assert.equal(s.reply?.status, 429);
  const h = makeFilter('http_fault', { abort: { header_abort: {}, percentage: { numerator: 100 } } }, 'h2');
  const hs = new FakeStream({ headers: { 'x-envoy-fault-abort-request': '418' } });
  assert.equal(decode(h, hs), FilterStatus.Stop);
  assert.equal(hs.reply?.status, 418);
  assert.equal(decode(h, new FakeStream()), FilterStatus.Continue, 'no abort header: no abort');
  const m = makeFilter('http_fault', { delay: { fixed_delay: '10s', percentage: { numerator: 100 } }, max_active_faults: 2 }, 'h3', `${P}.max`);
  const held = [new FakeStream(), new FakeStream(), new FakeStream()];
  assert.deepEqual(held.map((x) => decode(m, x)), [FilterStatus.Stop, FilterStatus.Stop, FilterStatus.Continue]);
  for (const x of held) (m.log as (s: FilterStream) => void)(x);
  assert.equal(decode(m, new FakeStream()), FilterStatus.Stop, 'places freed at stream end');
  (m.log as (s: FilterStream) => void)(held[0]);
  const { issues } = validateFilter('http_fault', { abort: { http_status: 503, grpc_status: 14 }, response_rate_limit: {} });
  assert.ok(issues.errors.some((e) => e.includes(`${P}.abort: an abort needs exactly one of`)), issues.errors.join('|'));
  assert.ok(issues.errors.some((e) => e.includes(`${P}.response_rate_limit`)));
});

test('shared limiter: two worker threads take from one token bucket and one window; the total holds', async () => {
  const sab = filterCellsBuffer();
  const bucket = allocTokenBucket('test-threads', 1000, 3_600_000);
  const win = allocWindow('test-threads-win');
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const cells = require(${JSON.stringify(require.resolve('../../src/filters/shared/cells'))});
    const lim = require(${JSON.stringify(require.resolve('../../src/filters/shared/limiter'))});
    cells.bindFilterCells(workerData.sab);
    let got = 0, passed = 0;
    for (let i = 0; i < 5000; i++) {
      if (lim.takeToken(workerData.bucket, 1000, 1, 3600000, cells.sharedNowMs()) >= 0) got++;
      if (lim.windowPass(workerData.win, 700, 3600000, cells.sharedNowMs())) passed++;
    }
    parentPort.postMessage({ got, passed });`;
  const run = () =>
    new Promise<{ got: number; passed: number }>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { sab, bucket, win } });
      w.once('message', resolve);
      w.once('error', reject);
    });
  const [a, b] = await Promise.all([run(), run()]);
  assert.equal(a.got + b.got, 1000, `tokens taken ${a.got} + ${b.got}`);
  assert.equal(a.passed + b.passed, 700, `window passes ${a.passed} + ${b.passed}`);
  assert.equal(takeToken(bucket, 1000, 1, 3_600_000, sharedNowMs()), -1);
  assert.equal(windowPass(win, 700, 3_600_000, sharedNowMs()), false);
});

test('fault: the config MOSN\'s fault-injection function test generates (Go durations such as "1m0s", abort status 0 with percentage 0) validates', () => {
  for (const [delay, status] of [['1m0s', 0], ['100ms', 500], ['0s', 503], ['1.5s', 0]] as const) {
    const raw = { delay: { fixed_delay: delay, percentage: 100 }, abort: { status, percentage: status !== 0 ? 100 : 0 } };
    const { cfg, issues } = validateFilter<{ delayMs: number; abortProb: number }>('fault', raw);
    assert.ok(cfg !== undefined, issues.errors.join('|'));
    assert.equal(cfg.delayMs, { '1m0s': 60_000, '100ms': 100, '0s': 0, '1.5s': 1500 }[delay]);
    assert.equal(cfg.abortProb, status !== 0 ? 1 : 0);
  }
  const { issues } = validateFilter('fault', { delay: { fixed_delay: 'later', percentage: 100 } });
  assert.ok(issues.errors.some((e) => e.includes(`${P}.delay.fixed_delay: "later" is not a duration`)), issues.errors.join('|'));
});
