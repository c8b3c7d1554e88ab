import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { C, CLUSTER_STATS, L, LISTENER_STATS, STATS_SLOTS, StatsLayout, W } from '../../src/stats/layout';
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
    const type = types.get(name);
    if (!type) throw new Error(`${where}: sample without a TYPE line`);
    if (type === 'counter') {
      if (value < 0 || Number.isNaN(value)) throw new Error(`${where}: counter must be >= 0`);
      if (opts.counterSuffix !== false && !name.endsWith('_total')) throw new Error(`${where}: counter name should end with _total`);
    }
    if (name !== current) {
      if (finished.has(name)) throw new Error(`${where}: samples of ${name} are not contiguous`);
      if (current) finished.add(current);
      current = name;
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
  ];
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
