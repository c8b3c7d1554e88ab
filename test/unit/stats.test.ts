import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { C, CLUSTER_STATS, L, LISTENER_STATS, R, ROUTE_STATS, STATS_SLOTS, StatsLayout, W } from '../../src/stats/layout';
import { HistogramRecorder, PROM_BUCKETS_MS } from '../../src/stats/histograms';
import { StatsHub, escapeLabelValue, sanitizeMetricName, snapshotToPrometheus } from '../../src/stats/aggregate';

const load = createRequire(__filename);

// ------------------------------------------------------------------------------------------
// A strict checker of the Prometheus text exposition format (0.0.4), written for these tests.

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromParsed {
  samples: PromSample[];
  types: Map<string, string>;
  help: Map<string, string>;
  /** "name{k="v",...}" (labels sorted) -> value */
  series: Map<string, number>;
}

function parseValue(s: string, where: string): number {
  if (!FLOAT.test(s)) throw new Error(`${where}: bad value ${JSON.stringify(s)}`);
  if (s === 'NaN') return NaN;
  if (/^\+?Inf$/.test(s)) return Infinity;
  if (s === '-Inf') return -Infinity;
  return Number(s);
}

/** Parses `{a="x",b="y"}` starting at text[i] === '{'; returns labels and index after '}'. */
function parseLabels(text: string, i: number, where: string): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++; // '{'
  for (;;) {
    if (text[i] === '}') return [labels, i + 1];
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(text.slice(i));
    if (!m) throw new Error(`${where}: bad label name at ${i}`);
    const name = m[0];
    if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new Error(`${where}: reserved/bad label ${name}`);
    if (name in labels) throw new Error(`${where}: duplicate label ${name}`);
    i += name.length;
    if (text[i] !== '=' || text[i + 1] !== '"') throw new Error(`${where}: expected =" after label ${name}`);
    i += 2;
    let v = '';
    for (;;) {
      const ch = text[i];
      if (ch === undefined) throw new Error(`${where}: unterminated label value`);
      if (ch === '\n') throw new Error(`${where}: raw newline in label value`);
      if (ch === '"') break;
      if (ch === '\\') {
        const n = text[i + 1];
        if (n === '\\') v += '\\';
        else if (n === '"') v += '"';
        else if (n === 'n') v += '\n';
        else throw new Error(`${where}: bad escape \\${n} in label value`);
        i += 2;
        continue;
      }
      v += ch;
      i++;
    }
    labels[name] = v;
    i++; // closing quote
    if (text[i] === ',') {
      i++;
      continue;
    }
    if (text[i] !== '}') throw new Error(`${where}: expected , or } after label value`);
  }
}

export function parsePrometheus(text: string, opts: { counterSuffix?: boolean } = {}): PromParsed {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const lines = text.split('\n');
  lines.pop();
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: PromSample[] = [];
  const series = new Map<string, number>();
  const finished = new Set<string>(); // families whose sample block ended
  let current = '';
  lines.forEach((line, idx) => {
    const where = `line ${idx + 1} ${JSON.stringify(line)}`;
    if (line === '') throw new Error(`${where}: empty line`);
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // plain comment
      const [, kind, name, rest] = m;
      if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name`);
      if (kind === 'HELP') {
        if (help.has(name)) throw new Error(`${where}: second HELP`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`${where}: bad escape in HELP`);
        help.set(name, rest);
      } else {
        if (!TYPES.has(rest)) throw new Error(`${where}: bad type ${rest}`);
        if (types.has(name)) throw new Error(`${where}: second TYPE`);
        if (samples.some((s) => s.name === name)) throw new Error(`${where}: TYPE after samples`);
        types.set(name, rest);
      }
      return;
    }
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nm) throw new Error(`${where}: bad metric name`);
    const name = nm[0];
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') [labels, i] = parseLabels(line, i, where);
    if (line[i] !== ' ') throw new Error(`${where}: expected a space before the value`);
    const rest = line.slice(i + 1).split(' ');
    if (rest.length > 2 || (rest.length === 2 && !/^-?\d+$/.test(rest[1]))) throw new Error(`${where}: bad value/timestamp`);
    const value = parseValue(rest[0], where);
    // A histogram family x has samples x_bucket{le}, x_sum and x_count.
    let family = name;
    let type = types.get(name);
    const hm = /^(.*)_(bucket|sum|count)$/.exec(name);
    if (!type && hm && types.get(hm[1]) === 'histogram') {
      family = hm[1];
      type = 'histogram';
      if (hm[2] === 'bucket' && labels.le === undefined) throw new Error(`${where}: histogram bucket without le`);
      if (hm[2] === 'bucket') parseValue(labels.le, where);
      if (value < 0 || Number.isNaN(value)) throw new Error(`${where}: histogram sample must be >= 0`);
    }
    if (!type) throw new Error(`${where}: sample without a TYPE line`);
    if (type === 'histogram' && family === name) throw new Error(`${where}: histogram sample needs _bucket, _sum or _count`);
    if (type === 'counter') {
      if (value < 0 || Number.isNaN(value)) throw new Error(`${where}: counter must be >= 0`);
      if (opts.counterSuffix !== false && !name.endsWith('_total')) throw new Error(`${where}: counter name should end with _total`);
    }
    if (family !== current) {
      if (finished.has(family)) throw new Error(`${where}: samples of ${family} are not contiguous`);
      if (current) finished.add(current);
      current = family;
    }
    const key =
      name +
      '{' +
      Object.keys(labels)
        .sort()
        .map((k) => `${k}=${JSON.stringify(labels[k])}`)
        .join(',') +
      '}';
    if (series.has(key)) throw new Error(`${where}: duplicate series ${key}`);
    series.set(key, value);
    samples.push({ name, labels, value });
  });
  return { samples, types, help, series };
}

// ------------------------------------------------------------------------------------------

function setup() {
  const layout = new StatsLayout();
  let now = 1_000_000;
  const hub = new StatsHub(layout, { version: '9.9.9', now: () => now });
  return { layout, hub, advance: (ms: number) => (now += ms) };
}

test('parser self-check: rejects malformed expositions', () => {
  const good = '# HELP a_total x\n# TYPE a_total counter\na_total{l="x\\"y"} 3\n';
  assert.equal(parsePrometheus(good).series.get('a_total{l="x\\"y"}'), 3);
  const bad = [
    'a_total 1\n', // no TYPE
    '# TYPE a counter\na 1\n', // counter without _total
    '# TYPE a_total counter\na_total{l="x"} 1', // no trailing newline
    '# TYPE a gauge\na{l="x} 1\n', // unterminated
    '# TYPE a gauge\na{l="a\\q"} 1\n', // bad escape
    '# TYPE a gauge\na{1l="a"} 1\n', // bad label name
    '# TYPE a gauge\na 1.2.3\n', // bad float
    '# TYPE a gauge\na{l="1"} 1\na{l="1"} 2\n', // duplicate
    '# TYPE 0a gauge\n', // bad metric name
    '# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x="1"} 2\n', // not contiguous
    '# TYPE a gauge\n\na 1\n', // empty line
    '# TYPE h histogram\nh 1\n', // histogram sample without a suffix
    '# TYPE h histogram\nh_bucket 1\n', // bucket without le
    '# TYPE h histogram\nh_bucket{le="x"} 1\n', // bad le
  ];
  const hist = '# TYPE h histogram\nh_bucket{c="a",le="1"} 1\nh_bucket{c="a",le="+Inf"} 2\nh_sum{c="a"} 3\nh_count{c="a"} 2\nh_bucket{c="b",le="+Inf"} 0\nh_sum{c="b"} 0\nh_count{c="b"} 0\n';
  assert.equal(parsePrometheus(hist).series.get('h_count{c="a"}'), 2);
  for (const b of bad) assert.throws(() => parsePrometheus(b), Error, JSON.stringify(b));
});

test('StatsHub sums two workers and keeps counters of a removed worker, dropping its gauges', () => {
  const { layout, hub } = setup();
  const lb = layout.listenerBase('ingress');
  const cb = layout.clusterBase('backend');
  const a = new Float64Array(hub.addWorker(0));
  const b = new Float64Array(hub.addWorker(1));
  assert.equal(a.length, STATS_SLOTS);
  a[lb + L.CX_TOTAL] += 3;
  b[lb + L.CX_TOTAL] += 4;
  a[lb + L.CX_ACTIVE] = 2;
  b[lb + L.CX_ACTIVE] = 1;
  a[lb + L.BYTES_RX] = 100;
  b[lb + L.BYTES_RX] = 23;
  a[cb + C.CX_TOTAL] = 5;
  a[cb + C.RQ_ACTIVE] = 7;
  b[cb + C.CX_CONNECT_FAIL] = 1;
  a[W.FLUSHES] = 11;

  let s = hub.snapshot();
  assert.equal(s.listeners.ingress.downstream_cx_total, 7);
  assert.equal(s.listeners.ingress.downstream_cx_active, 3);
  assert.equal(s.listeners.ingress.downstream_bytes_rx, 123);
  assert.equal(s.clusters.backend.upstream_cx_total, 5);
  assert.equal(s.clusters.backend.upstream_rq_active, 7);
  assert.equal(s.clusters.backend.upstream_cx_connect_fail, 1);
  assert.equal(s.workers['0'].worker_flushes, 11);
  assert.equal(s.workers['0'].downstream_cx_active, 2);
  assert.equal(s.server.workers, 2);
  assert.equal(s.server.version, '9.9.9');

  // Worker 0 dies and is replaced by worker 2.
  assert.equal(hub.removeWorker(0), true);
  assert.equal(hub.removeWorker(0), false);
  const c = new Float64Array(hub.addWorker(2));
  c[lb + L.CX_TOTAL] = 1;
  c[lb + L.CX_ACTIVE] = 1;
  s = hub.snapshot();
  assert.equal(s.listeners.ingress.downstream_cx_total, 8, 'dead worker counters are kept');
  assert.equal(s.listeners.ingress.downstream_bytes_rx, 123);
  assert.equal(s.listeners.ingress.downstream_cx_active, 2, 'dead worker gauge is dropped');
  assert.equal(s.clusters.backend.upstream_rq_active, 0, 'dead worker cluster gauge is dropped');
  assert.equal(s.clusters.backend.upstream_cx_total, 5);
  assert.deepEqual(Object.keys(s.workers).sort(), ['1', '2']);
  assert.equal(s.server.workers, 2);
  assert.equal(s.server.workers_removed, 1);

  // Writes to the removed buffer no longer count.
  a[lb + L.CX_TOTAL] += 1000;
  assert.equal(hub.snapshot().listeners.ingress.downstream_cx_total, 8);

  // A second removal folds on top of the first.
  hub.removeWorker(1);
  s = hub.snapshot();
  assert.equal(s.listeners.ingress.downstream_cx_total, 8);
  assert.equal(s.listeners.ingress.downstream_cx_active, 1);
  assert.throws(() => hub.addWorker(2));
});

test('listeners added after workers started are visible; extras appear in snapshot and Prometheus', () => {
  const { layout, hub, advance } = setup();
  const w = new Float64Array(hub.addWorker('w0'));
  const late = layout.listenerBase('late');
  w[late + L.RQ_TOTAL] = 9;
  hub.setExtra('process_resident_memory_bytes', 12345, { help: 'RSS' });
  hub.setExtra('config_version', 3);
  hub.setExtra('config_reloads', 2, { type: 'counter' });
  hub.setExtra('server_workers', 5); // collides with a built-in name
  advance(2500);
  const s = hub.snapshot();
  assert.equal(s.listeners.late.downstream_rq_total, 9);
  assert.equal(s.server.process_resident_memory_bytes, 12345);
  assert.equal(s.server.config_version, 3);
  assert.equal(s.server.uptime_s, 2.5);
  const p = parsePrometheus(hub.toPrometheus());
  assert.equal(p.series.get('outrigger_process_resident_memory_bytes{}'), 12345);
  assert.equal(p.types.get('outrigger_config_reloads_total'), 'counter');
  assert.equal(p.series.get('outrigger_config_reloads_total{}'), 2);
  assert.equal(p.series.get('outrigger_server_workers{}'), 1);
  assert.equal(p.series.get('outrigger_extra_server_workers{}'), 5);
  assert.equal(p.series.get('outrigger_server_uptime_seconds{}'), 2.5);
  hub.setExtra('config_version', 4);
  assert.equal(parsePrometheus(hub.toPrometheus()).series.get('outrigger_config_version{}'), 4);
});

test('Prometheus output is valid, labelled, escaped and sums workers', (t) => {
  const { layout, hub } = setup();
  const weird = 'we"ird\\name\nx';
  const l1 = layout.listenerBase('ingress');
  const l2 = layout.listenerBase(weird);
  const cb = layout.clusterBase('backend.svc:8080');
  const a = new Float64Array(hub.addWorker(0));
  const b = new Float64Array(hub.addWorker(1));
  a[l1 + L.CX_TOTAL] = 2;
  b[l1 + L.CX_TOTAL] = 3;
  b[l2 + L.CX_ACTIVE] = 4;
  a[cb + C.BYTES_TX] = 1.5e12;
  b[W.WRITEV_CALLS] = 6;
  const text = hub.toPrometheus();
  const p = parsePrometheus(text);
  assert.equal(p.series.get('outrigger_listener_downstream_cx_total{listener="ingress"}'), 5);
  assert.equal(p.series.get(`outrigger_listener_downstream_cx_active{listener=${JSON.stringify(weird)}}`), 4);
  assert.equal(p.types.get('outrigger_listener_downstream_cx_active'), 'gauge');
  assert.equal(p.types.get('outrigger_listener_downstream_cx_total'), 'counter');
  assert.equal(p.types.get('outrigger_listener_downstream_bytes_rx_total'), 'counter');
  assert.equal(p.series.get('outrigger_cluster_upstream_bytes_tx_total{cluster="backend.svc:8080"}'), 1.5e12);
  assert.equal(p.types.get('outrigger_cluster_upstream_rq_active'), 'gauge');
  assert.equal(p.series.get('outrigger_worker_writev_calls_total{worker="1"}'), 6);
  assert.equal(p.series.get('outrigger_server_info{version="9.9.9"}'), 1);
  assert.ok(text.includes('we\\"ird\\\\name\\nx'), 'label value escaped');
  // Every family has HELP and TYPE.
  for (const name of p.types.keys()) assert.ok(p.help.has(name), `HELP for ${name}`);
  // Every listener stat × listener is present.
  assert.equal(p.samples.filter((s) => s.name.startsWith('outrigger_listener_')).length, LISTENER_STATS.length * 2);
  assert.equal(p.samples.filter((s) => s.name.startsWith('outrigger_cluster_')).length, CLUSTER_STATS.length);

  // Optional second opinion from a real parser, when one can be loaded.
  let realParse: ((t: string) => Array<{ name: string; type: string; metrics: Array<{ value: string; labels?: Record<string, string> }> }>) | undefined;
  for (const id of [process.env.OUTRIGGER_PROM_PARSER, 'parse-prometheus-text-format']) {
    if (!id) continue;
    try {
      realParse = load(id);
      break;
    } catch {
      // not installed
    }
  }
  if (realParse) {
    const fams = realParse(text);
    const cx = fams.find((f) => f.name === 'outrigger_listener_downstream_cx_total');
    assert.ok(cx);
    assert.equal(cx.type, 'COUNTER');
    assert.equal(Number(cx.metrics.find((m) => m.labels?.listener === 'ingress')?.value), 5);
    const act = fams.find((f) => f.name === 'outrigger_listener_downstream_cx_active');
    assert.equal(act?.metrics.find((m) => m.labels?.listener === weird)?.value, '4');
    assert.equal(fams.length, p.types.size);
  } else {
    t.diagnostic('parse-prometheus-text-format not installed: second parser check skipped');
  }
});

test('route counters and latency histograms in the snapshot and in Prometheus', async () => {
  const { layout, hub } = setup();
  const cb = layout.clusterBase('b');
  const r1 = layout.routeBase('web.site.api');
  const r2 = layout.routeBase('web.site."q"');
  const a = new Float64Array(hub.addWorker(0));
  const b = new Float64Array(hub.addWorker(1));
  a[r1 + R.RQ_TOTAL] = 3;
  b[r1 + R.RQ_TOTAL] = 2;
  a[r1 + R.RQ_1XX + 1] = 4; // 2xx
  b[r1 + R.RQ_1XX + 4] = 1; // 5xx
  b[r1 + R.RETRY] = 2;
  a[r2 + R.DOWNSTREAM_RESET] = 1;
  // Each worker records its own latencies and ships deltas.
  const w0 = new HistogramRecorder();
  const w1 = new HistogramRecorder();
  for (const ms of [2, 3, 30]) w0.record(r1, ms * 1000);
  for (const ms of [4, 700]) w1.record(r1, ms * 1000);
  w0.record(cb, 1500);
  w1.record(cb, 12_000);
  // The refresher (the Sidecar's flush of every worker) runs before the admin reads.
  hub.setRefresher(async () => {
    hub.addHistograms(w0.drain() ?? []);
    hub.addHistograms(w1.drain() ?? []);
  });
  await hub.refresh();
  const s = hub.snapshot();
  assert.equal(s.routes['web.site.api'].rq_total, 5);
  assert.equal(s.routes['web.site.api'].rq_2xx, 4);
  assert.equal(s.routes['web.site.api'].rq_5xx, 1);
  assert.equal(s.routes['web.site.api'].upstream_rq_retry, 2);
  assert.equal(s.routes['web.site."q"'].downstream_rq_reset, 1);
  const rt = s.histograms.routes['web.site.api'].downstream_rq_time;
  assert.equal(rt.count, 5);
  assert.ok(rt.p50 >= 4 && rt.p50 < 4.05, `p50 ${rt.p50}`);
  assert.ok(rt.max >= 700 && rt.max < 707, `max ${rt.max}`);
  assert.equal(s.histograms.clusters.b.upstream_rq_time.count, 2);
  assert.equal(s.histograms.routes['web.site."q"'], undefined, 'no latency recorded: no entry');

  const text = hub.toPrometheus();
  const p = parsePrometheus(text);
  assert.equal(p.series.get('outrigger_route_rq_total{route="web.site.api"}'), 5);
  assert.equal(p.series.get('outrigger_route_rq_2xx_total{route="web.site.api"}'), 4);
  assert.equal(p.series.get('outrigger_route_upstream_rq_retry_total{route="web.site.api"}'), 2);
  assert.ok(text.includes('route="web.site.\\"q\\""'), 'route label escaped');
  assert.equal(p.series.get('outrigger_route_downstream_rq_reset_total{route=' + JSON.stringify('web.site."q"') + '}'), 1);
  assert.equal(p.samples.filter((x) => x.name.startsWith('outrigger_route_') && !x.name.startsWith('outrigger_route_downstream_rq_time_')).length, ROUTE_STATS.length * 2);
  assert.equal(p.types.get('outrigger_route_downstream_rq_time'), 'histogram');
  assert.equal(p.types.get('outrigger_cluster_upstream_rq_time'), 'histogram');
  const bucket = (fam: string, label: string, le: string): number | undefined => {
    const [k, v] = label.split('=');
    return p.samples.find((x) => x.name === `${fam}_bucket` && x.labels.le === le && x.labels[k] === JSON.parse(v))?.value;
  };
  const rl = 'route="web.site.api"';
  assert.equal(bucket('outrigger_route_downstream_rq_time', rl, '1'), 0);
  assert.equal(bucket('outrigger_route_downstream_rq_time', rl, '5'), 3);
  assert.equal(bucket('outrigger_route_downstream_rq_time', rl, '50'), 4);
  assert.equal(bucket('outrigger_route_downstream_rq_time', rl, '500'), 4);
  assert.equal(bucket('outrigger_route_downstream_rq_time', rl, '1000'), 5);
  assert.equal(bucket('outrigger_route_downstream_rq_time', rl, '+Inf'), 5);
  assert.equal(p.series.get(`outrigger_route_downstream_rq_time_count{${rl}}`), 5);
  const sum = p.series.get(`outrigger_route_downstream_rq_time_sum{${rl}}`) ?? 0;
  assert.ok(Math.abs(sum - 739) < 739 * 0.01, `sum ${sum}`);
  assert.equal(p.samples.filter((x) => x.name === 'outrigger_route_downstream_rq_time_bucket').length, PROM_BUCKETS_MS.length + 1, 'only the route with data');
  assert.equal(bucket('outrigger_cluster_upstream_rq_time', 'cluster="b"', '1'), 0);
  assert.equal(bucket('outrigger_cluster_upstream_rq_time', 'cluster="b"', '5'), 1);
  assert.equal(bucket('outrigger_cluster_upstream_rq_time', 'cluster="b"', '25'), 2);
  // Buckets never decrease.
  for (const fam of ['outrigger_route_downstream_rq_time_bucket', 'outrigger_cluster_upstream_rq_time_bucket']) {
    const vals = p.samples.filter((x) => x.name === fam).map((x) => x.value);
    for (let i = 1; i < vals.length; i++) assert.ok(vals[i] >= vals[i - 1], fam);
  }
  for (const name of p.types.keys()) assert.ok(p.help.has(name), `HELP for ${name}`);
});

test('empty hub still renders a valid exposition', () => {
  const { hub } = setup();
  const p = parsePrometheus(hub.toPrometheus());
  assert.equal(p.series.get('outrigger_server_workers{}'), 0);
});

test('name sanitizing and escaping helpers', () => {
  assert.equal(sanitizeMetricName('a-b.c'), 'a_b_c');
  assert.equal(sanitizeMetricName('9lives'), '_9lives');
  assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
});

test('snapshotToPrometheus renders a plain snapshot object validly', () => {
  const text = snapshotToPrometheus({
    listeners: { l: { downstream_cx_total: 2, downstream_cx_active: 1 } },
    clusters: { 'c"1': { upstream_rq_total: 4 } },
    workers: {},
    server: { uptime_s: 3, workers: 2, version: 'x' },
    rss: 100,
  });
  const p = parsePrometheus(text);
  assert.equal(p.series.get('outrigger_listener_downstream_cx_total{listener="l"}'), 2);
  assert.equal(p.types.get('outrigger_listener_downstream_cx_active'), 'gauge');
  assert.equal(p.series.get('outrigger_cluster_upstream_rq_total{cluster="c\\"1"}'), 4);
  assert.equal(p.series.get('outrigger_server_uptime_s{}'), 3);
  assert.equal(p.series.get('outrigger_rss{}'), 100);
});
