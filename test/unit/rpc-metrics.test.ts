/** dubbo_stream filter: the label bound (MAX_PAIRS pairs per listener, then "other"), the config keys, the failure rule. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { FakeStream, decode, makeFilter, validateFilter } from '../helpers/filter-stream';
import { MAX_PAIRS, rpcMetricsJson, rpcMetricsPrometheus } from '../../src/filters/stream/dubbo_stream/rpc-metrics';
import type { FilterStream } from '../../src/api/stream-filter';

/** A stream at its end: what the pipeline's ActiveStream carries for the log step. */
class Ended extends FakeStream {
  rpcMetricsSlot = -1;
  constructor(r: ConstructorParameters<typeof FakeStream>[0], readonly responseCode: number | undefined, readonly durationMs: number) {
    super(r);
  }
}

function run(f: ReturnType<typeof makeFilter>, s: Ended): void {
  decode(f, s);
  (f.log as (s: FilterStream) => void)(s);
}

test('dubbo_stream: past MAX_PAIRS service x method pairs per listener, requests count under service "other"', () => {
  const f = makeFilter('dubbo_stream', {}, 'bound');
  for (let i = 0; i < MAX_PAIRS + 10; i++) run(f, new Ended({ protocol: 'bolt', service: `svc${i}`, method: 'm' }, 0, 1));
  run(f, new Ended({ protocol: 'bolt', service: 'svc0', method: 'm' }, 0, 2)); // a known pair still has its own row
  const rows = rpcMetricsJson().bound;
  assert.equal(Object.keys(rows).length, MAX_PAIRS + 1);
  assert.equal(rows['bolt/svc0/m'].requests_total, 2);
  assert.equal(rows['other/other/other'].requests_total, 10);
  assert.equal(rows[`bolt/svc${MAX_PAIRS}/m`], undefined);
  assert.match(rpcMetricsPrometheus(), /^outrigger_rpc_requests_total\{listener="bound",protocol="other",service="other",method="other"\} 10$/m);
});

test('dubbo_stream: failures are non-OK statuses (Bolt 0, Dubbo 20 are OK) and unanswered requests; HTTP is not counted', () => {
  const f = makeFilter('dubbo_stream', {}, 'fails');
  run(f, new Ended({ protocol: 'dubbo', service: 'S', method: 'm' }, 20, 3));
  run(f, new Ended({ protocol: 'dubbo', service: 'S', method: 'm' }, 70, 3));
  run(f, new Ended({ protocol: 'bolt', service: 'B', method: 'm' }, 0, 3));
  run(f, new Ended({ protocol: 'bolt', service: 'B', method: 'm' }, undefined, 3));
  run(f, new Ended({ protocol: 'http1', service: 'h', method: 'GET' }, 200, 3));
  const rows = rpcMetricsJson().fails;
  assert.deepEqual(Object.keys(rows).sort(), ['bolt/B/m', 'dubbo/S/m']);
  assert.equal(rows['dubbo/S/m'].failures_total, 1);
  assert.equal(rows['bolt/B/m'].failures_total, 1);
  assert.equal(rows['bolt/B/m'].latency_ms_sum, 6);
  const prom = rpcMetricsPrometheus();
  assert.match(prom, /^outrigger_rpc_request_duration_ms_bucket\{listener="fails",protocol="bolt",service="B",method="m",le="1"\} 0$/m);
  assert.match(prom, /^outrigger_rpc_request_duration_ms_bucket\{listener="fails",protocol="bolt",service="B",method="m",le="5"\} 2$/m);
});

test('dubbo_stream: MOSN\'s "subset" key is accepted with a warning naming its path; a non-object config is an error', () => {
  const ok = validateFilter('dubbo_stream', { subset: 'version' }, 'w');
  assert.notEqual(ok.cfg, undefined);
  assert.match(ok.issues.warnings.join('\n'), /stream_filters\[0\]\.config\.subset/);
  const bad = validateFilter('dubbo_stream', 'x', 'w');
  assert.equal(bad.cfg, undefined);
  assert.match(bad.issues.errors.join('\n'), /stream_filters\[0\]\.config.*"x"/);
});
