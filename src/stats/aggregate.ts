/**
 * Main-thread view of all workers' stats buffers (see layout.ts for the write side).
 *
 * Reads are lock-free plain loads from each worker's Float64Array. Counters of a worker that
 * died are folded into a retained "dead" array so cumulative totals never go backwards; gauges
 * of a dead worker are dropped (its connections died with it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HistogramStore, PROM_BUCKETS_MS, type EncodedHistogram, type LatencySummary } from './histograms';
import { C, CLUSTER_STATS, GAUGES, L, LISTENER_STATS, ROUTE_STATS, STATS_SLOTS, StatsLayout, WORKER_STATS } from './layout';
import { overloadGauges } from '../overload/manager';

export type StatValues = Record<string, number>;

export interface ServerStats {
  uptime_s: number;
  /** Live workers. */
  workers: number;
  /** Workers removed (died or replaced) since start. */
  workers_removed: number;
  version: string;
  [extra: string]: number | string;
}

/** Latency percentiles (ms) of the names that recorded any. */
export interface HistogramsSnapshot {
  /** Upstream request time, per attempt. */
  clusters: Record<string, { upstream_rq_time: LatencySummary }>;
  /** Downstream request time: request start to the end of the response. */
  routes: Record<string, { downstream_rq_time: LatencySummary }>;
}

export interface StatsSnapshot {
  listeners: Record<string, StatValues>;
  clusters: Record<string, StatValues>;
  /** HTTP routes, named `<router_config_name>.<virtual host>.<route name or index>`. */
  routes: Record<string, StatValues>;
  workers: Record<string, StatValues>;
  histograms: HistogramsSnapshot;
  server: ServerStats;
  /** Sections added with addSection (e.g. "rpc": the dubbo_stream filter's metrics). */
  [section: string]: unknown;
}

export type ExtraType = 'gauge' | 'counter';

interface Extra {
  value: number;
  help: string;
  type: ExtraType;
  promName: string;
}

/** Stats of clusters computed outside the workers' counters (see StatsHub.setClusterSection). */
export interface ClusterSection {
  json(): Record<string, StatValues>;
  prometheus(): string;
}

/** A labelled stats section computed elsewhere (its own JSON key and Prometheus text). */
export interface ExtraSection {
  json(): unknown;
  prometheus(): string;
}

export interface StatsHubOptions {
  version?: string;
  /** Clock in ms (tests); defaults to Date.now. */
  now?: () => number;
}

const PREFIX = 'outrigger_';

/** Offsets (within a listener / cluster block) that are gauges. */
const LISTENER_GAUGE_OFFSETS: readonly number[] = [L.CX_ACTIVE, L.RQ_ACTIVE];
const CLUSTER_GAUGE_OFFSETS: readonly number[] = [C.CX_ACTIVE, C.RQ_ACTIVE];

/** Metric names must match [a-zA-Z_:][a-zA-Z0-9_:]*. */
export function sanitizeMetricName(name: string): string {
  let s = name.replace(/[^a-zA-Z0-9_:]/g, '_');
  if (s.length === 0 || /^[0-9]/.test(s)) s = '_' + s;
  return s;
}

/** Label values: escape backslash, double quote and line feed. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text: escape backslash and line feed. */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatPromValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Prometheus name of a per-entity stat: counters get the conventional `_total` suffix. */
export function promStatName(scope: string, stat: string, gauge: boolean): string {
  const base = sanitizeMetricName(PREFIX + scope + '_' + stat);
  if (gauge || base.endsWith('_total')) return base;
  return base + '_total';
}

function findVersion(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const p = path.join(dir, 'package.json');
    try {
      const pkg = JSON.parse(fs.readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'outrigger' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // keep walking up
    }
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return 'unknown';
}

interface StatFamily {
  readonly stat: string;
  readonly offset: number;
  readonly gauge: boolean;
  readonly promName: string;
  readonly header: string;
}

function families(scope: string, stats: readonly string[], what: string): StatFamily[] {
  return stats.map((stat, offset) => {
    const gauge = GAUGES.has(stat);
    const promName = promStatName(scope, stat, gauge);
    const help = `${what} ${stat.replace(/_/g, ' ')}${gauge ? ' (current value)' : ''}`;
    return {
      stat,
      offset,
      gauge,
      promName,
      header: `# HELP ${promName} ${escapeHelp(help)}\n# TYPE ${promName} ${gauge ? 'gauge' : 'counter'}\n`,
    };
  });
}

const LISTENER_FAMILIES = families('listener', LISTENER_STATS, 'Listener');
const CLUSTER_FAMILIES = families('cluster', CLUSTER_STATS, 'Cluster');
const ROUTE_FAMILIES = families('route', ROUTE_STATS, 'HTTP route');

/** A latency histogram family in Prometheus (type histogram, ms, Envoy's bucket bounds). */
interface HistFamily {
  readonly promName: string;
  readonly header: string;
  /** `le` label texts, +Inf last. */
  readonly les: readonly string[];
}

function histFamily(scope: string, stat: string, help: string): HistFamily {
  const promName = sanitizeMetricName(PREFIX + scope + '_' + stat);
  return {
    promName,
    header: `# HELP ${promName} ${escapeHelp(help)}\n# TYPE ${promName} histogram\n`,
    les: [...PROM_BUCKETS_MS.map((b) => formatPromValue(b)), '+Inf'],
  };
}

const CLUSTER_TIME = histFamily('cluster', 'upstream_rq_time', 'Cluster upstream request time per attempt, ms');
const ROUTE_TIME = histFamily('route', 'downstream_rq_time', 'HTTP route request time, start to end of the response, ms');
const WORKER_FAMILIES = WORKER_STATS.map((stat, offset) => {
  const promName = sanitizeMetricName(PREFIX + stat + '_total');
  return {
    stat,
    offset,
    gauge: false,
    promName,
    header: `# HELP ${promName} Worker ${stat.replace(/^worker_/, '').replace(/_/g, ' ')}\n# TYPE ${promName} counter\n`,
  };
});

const RESERVED_NAMES: ReadonlySet<string> = new Set([
  ...LISTENER_FAMILIES.map((f) => f.promName),
  ...CLUSTER_FAMILIES.map((f) => f.promName),
  ...ROUTE_FAMILIES.map((f) => f.promName),
  ...[CLUSTER_TIME, ROUTE_TIME].flatMap((f) => [f.promName, f.promName + '_bucket', f.promName + '_sum', f.promName + '_count']),
  ...WORKER_FAMILIES.map((f) => f.promName),
  'outrigger_server_uptime_seconds',
  'outrigger_server_workers',
  'outrigger_server_workers_removed_total',
  'outrigger_server_info',
]);

export class StatsHub {
  private readonly workers = new Map<string, Float64Array>();
  /** Same buffers as `workers`, as an array for allocation-free summing. */
  private live: Float64Array[] = [];
  /** Folded counters of removed workers (gauge slots stay 0). */
  private readonly dead = new Float64Array(STATS_SLOTS);
  private removed = 0;
  private readonly extras = new Map<string, Extra>();
  /** Per-cluster stats kept outside the workers' counters (host health, src/upstream/health/service.ts). */
  private clusterSection: ClusterSection | null = null;
  private readonly sections = new Map<string, ExtraSection>();
  private readonly labelCache = new Map<string, string>();
  /** Latency histograms merged from the workers' deltas, by base slot. */
  readonly histograms = new HistogramStore();
  private refresher: (() => Promise<void>) | null = null;
  private readonly startMs: number;
  private readonly now: () => number;
  readonly version: string;

  constructor(
    private readonly layout: StatsLayout,
    opts: StatsHubOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.startMs = this.now();
    this.version = opts.version ?? findVersion();
  }

  /** Allocates the stats buffer of a new worker; pass it to the worker at spawn. */
  addWorker(id: string | number): SharedArrayBuffer {
    const key = String(id);
    if (this.workers.has(key)) throw new Error(`stats: worker ${key} already registered`);
    const sab = new SharedArrayBuffer(STATS_SLOTS * 8);
    this.workers.set(key, new Float64Array(sab));
    this.live = [...this.workers.values()];
    return sab;
  }

  /** Folds a dead / retired worker's counters into the retained totals and forgets its buffer. */
  removeWorker(id: string | number): boolean {
    const key = String(id);
    const buf = this.workers.get(key);
    if (!buf) return false;
    this.workers.delete(key);
    this.live = [...this.workers.values()];
    this.removed++;
    const dead = this.dead;
    for (let i = 0; i < STATS_SLOTS; i++) dead[i] += buf[i];
    // Undo the gauges: they described connections that died with the worker.
    const data = this.layout.toData();
    for (const name in data.listeners) {
      const b = data.listeners[name];
      for (const o of LISTENER_GAUGE_OFFSETS) dead[b + o] -= buf[b + o];
    }
    for (const name in data.clusters) {
      const b = data.clusters[name];
      for (const o of CLUSTER_GAUGE_OFFSETS) dead[b + o] -= buf[b + o];
    }
    return true;
  }

  /** Adds to the retained totals of one slot (hot upgrade: the old process's counters, src/upgrade/stats.ts). */
  addRetired(i: number, delta: number): void {
    this.dead[i] += delta;
  }

  /** Zeroes a reclaimed slot range (StatsLayout.onReuse) in every worker's buffer and the retained totals. */
  clearSlots(base: number, slots: number): void {
    this.dead.fill(0, base, base + slots);
    for (const buf of this.workers.values()) buf.fill(0, base, base + slots);
    this.histograms.clear(base);
  }

  /** Merges histogram deltas a worker shipped. */
  addHistograms(items: readonly EncodedHistogram[]): void {
    this.histograms.addAll(items);
  }

  /** How to make the workers ship their unshipped histogram deltas now (the Sidecar sets it). */
  setRefresher(fn: (() => Promise<void>) | null): void {
    this.refresher = fn;
  }

  /** Asks the workers for their latest histograms; null when there is nobody to ask. */
  refresh(): Promise<void> | null {
    return this.refresher === null ? null : this.refresher();
  }

  workerIds(): string[] {
    return [...this.workers.keys()];
  }

  /**
   * A main-thread value exported with the stats (process RSS, config version, ...).
   * It appears in `snapshot().server[name]` and as `outrigger_<name>` in Prometheus.
   */
  setExtra(name: string, value: number, opts: { help?: string; type?: ExtraType } = {}): void {
    const e = this.extras.get(name);
    if (e) {
      e.value = value;
      if (opts.help !== undefined) e.help = opts.help;
      if (opts.type !== undefined) e.type = opts.type;
      return;
    }
    const type = opts.type ?? 'gauge';
    let promName = sanitizeMetricName(PREFIX + name);
    if (type === 'counter' && !promName.endsWith('_total')) promName += '_total';
    if (RESERVED_NAMES.has(promName)) promName = promName.replace(PREFIX, PREFIX + 'extra_');
    this.extras.set(name, { value, help: opts.help ?? name.replace(/_/g, ' '), type, promName });
  }

  /** Adds a section `name` to the JSON snapshot and its text to the Prometheus output. */
  addSection(name: string, s: ExtraSection): void {
    this.sections.set(name, s);
  }

  /** Adds stats computed elsewhere to every cluster's JSON stats and to the Prometheus text. */
  setClusterSection(s: ClusterSection | null): void {
    this.clusterSection = s;
  }

  deleteExtra(name: string): void {
    this.extras.delete(name);
  }

  /** Sum of one slot over live workers and retired counters. */
  slot(i: number): number {
    let s = this.dead[i];
    const live = this.live;
    for (let w = 0; w < live.length; w++) s += live[w][i];
    return s;
  }

  uptimeSeconds(): number {
    return Math.max(0, (this.now() - this.startMs) / 1000);
  }

  snapshot(): StatsSnapshot {
    const data = this.layout.toData();
    const listeners: Record<string, StatValues> = {};
    for (const name of Object.keys(data.listeners)) {
      listeners[name] = this.block(data.listeners[name], LISTENER_STATS);
    }
    const clusters: Record<string, StatValues> = {};
    for (const name of Object.keys(data.clusters)) {
      clusters[name] = this.block(data.clusters[name], CLUSTER_STATS);
    }
    if (this.clusterSection !== null) {
      for (const [name, v] of Object.entries(this.clusterSection.json())) clusters[name] = { ...(clusters[name] ?? {}), ...v };
    }
    const routes: Record<string, StatValues> = {};
    for (const name of Object.keys(data.routes)) {
      routes[name] = this.block(data.routes[name], ROUTE_STATS);
    }
    const histograms: HistogramsSnapshot = { clusters: {}, routes: {} };
    for (const name of Object.keys(data.clusters)) {
      const h = this.histograms.summary(data.clusters[name]);
      if (h !== null) histograms.clusters[name] = { upstream_rq_time: h };
    }
    for (const name of Object.keys(data.routes)) {
      const h = this.histograms.summary(data.routes[name]);
      if (h !== null) histograms.routes[name] = { downstream_rq_time: h };
    }
    const workers: Record<string, StatValues> = {};
    for (const [id, buf] of this.workers) {
      const w: StatValues = {};
      for (let i = 0; i < WORKER_STATS.length; i++) w[WORKER_STATS[i]] = buf[i];
      let active = 0;
      for (const name in data.listeners) active += buf[data.listeners[name] + L.CX_ACTIVE];
      w.downstream_cx_active = active;
      workers[id] = w;
    }
    const server: ServerStats = {
      uptime_s: Math.round(this.uptimeSeconds() * 1000) / 1000,
      workers: this.workers.size,
      workers_removed: this.removed,
      version: this.version,
      // Overload manager (process-wide, every worker): what its limits are compared with.
      overload_downstream_cx_active: overloadGauges().connections,
      overload_downstream_rq_active: overloadGauges().requests,
    };
    for (const [name, e] of this.extras) {
      if (!(name in server)) server[name] = e.value;
    }
    const snap: StatsSnapshot = { listeners, clusters, routes, workers, histograms, server };
    for (const [name, sec] of this.sections) snap[name] = sec.json();
    return snap;
  }

  private block(base: number, stats: readonly string[]): StatValues {
    const out: StatValues = {};
    for (let i = 0; i < stats.length; i++) out[stats[i]] = this.slot(base + i);
    return out;
  }

  private label(key: string, value: string): string {
    const k = key + '\0' + value;
    let s = this.labelCache.get(k);
    if (s === undefined) {
      s = `{${key}="${escapeLabelValue(value)}"}`;
      this.labelCache.set(k, s);
    }
    return s;
  }

  /** One Prometheus family per stat, one sample per named entity. */
  private promBlocks(parts: string[], fams: readonly StatFamily[], label: string, bases: Readonly<Record<string, number>>): void {
    const names = Object.keys(bases);
    if (names.length === 0) return;
    for (const f of fams) {
      parts.push(f.header);
      for (const n of names) parts.push(f.promName, this.label(label, n), ' ', formatPromValue(this.slot(bases[n] + f.offset)), '\n');
    }
  }

  /** A histogram family over the entities that recorded anything. */
  private promHistograms(parts: string[], f: HistFamily, label: string, bases: Readonly<Record<string, number>>): void {
    let header = false;
    for (const n of Object.keys(bases)) {
      const b = this.histograms.buckets(bases[n]);
      if (b === null) continue;
      if (!header) {
        parts.push(f.header);
        header = true;
      }
      const lv = escapeLabelValue(n);
      for (let i = 0; i < f.les.length; i++) {
        const v = i < b.cumulative.length ? b.cumulative[i] : b.count;
        parts.push(f.promName, '_bucket{', label, '="', lv, '",le="', f.les[i], '"} ', formatPromValue(v), '\n');
      }
      const l = this.label(label, n);
      parts.push(f.promName, '_sum', l, ' ', formatPromValue(b.sum), '\n', f.promName, '_count', l, ' ', formatPromValue(b.count), '\n');
    }
  }

  /** Prometheus text exposition format 0.0.4. */
  toPrometheus(): string {
    const data = this.layout.toData();
    const parts: string[] = [];
    this.promBlocks(parts, LISTENER_FAMILIES, 'listener', data.listeners);
    this.promBlocks(parts, CLUSTER_FAMILIES, 'cluster', data.clusters);
    this.promBlocks(parts, ROUTE_FAMILIES, 'route', data.routes);
    this.promHistograms(parts, CLUSTER_TIME, 'cluster', data.clusters);
    this.promHistograms(parts, ROUTE_TIME, 'route', data.routes);
    if (this.workers.size > 0) {
      for (const f of WORKER_FAMILIES) {
        parts.push(f.header);
        for (const [id, buf] of this.workers) {
          parts.push(f.promName, this.label('worker', id), ' ', formatPromValue(buf[f.offset]), '\n');
        }
      }
    }
    parts.push(
      '# HELP outrigger_server_uptime_seconds Seconds since the stats hub started\n# TYPE outrigger_server_uptime_seconds gauge\n',
      `outrigger_server_uptime_seconds ${formatPromValue(this.uptimeSeconds())}\n`,
      '# HELP outrigger_server_workers Live worker threads\n# TYPE outrigger_server_workers gauge\n',
      `outrigger_server_workers ${this.workers.size}\n`,
      '# HELP outrigger_server_workers_removed_total Worker threads removed (died or replaced)\n# TYPE outrigger_server_workers_removed_total counter\n',
      `outrigger_server_workers_removed_total ${this.removed}\n`,
      '# HELP outrigger_overload_downstream_cx_active Downstream connections counted by the overload manager (all workers)\n# TYPE outrigger_overload_downstream_cx_active gauge\n',
      `outrigger_overload_downstream_cx_active ${overloadGauges().connections}\n`,
      '# HELP outrigger_overload_downstream_rq_active Requests counted by the overload manager (all workers)\n# TYPE outrigger_overload_downstream_rq_active gauge\n',
      `outrigger_overload_downstream_rq_active ${overloadGauges().requests}\n`,
      '# HELP outrigger_server_info Build information\n# TYPE outrigger_server_info gauge\n',
      `outrigger_server_info${this.label('version', this.version)} 1\n`,
    );
    if (this.clusterSection !== null) parts.push(this.clusterSection.prometheus());
    for (const sec of this.sections.values()) parts.push(sec.prometheus());
    for (const e of this.extras.values()) {
      parts.push(`# HELP ${e.promName} ${escapeHelp(e.help)}\n# TYPE ${e.promName} ${e.type}\n${e.promName} ${formatPromValue(e.value)}\n`);
    }
    return parts.join('');
  }
}

/**
 * Prometheus text for a plain snapshot-shaped object (used when the admin server is given a
 * stats function instead of a StatsHub). Numeric leaves only; unknown sections become gauges.
 */
export function snapshotToPrometheus(obj: unknown): string {
  const out: string[] = [];
  if (obj === null || typeof obj !== 'object') return '';
  const root = obj as Record<string, unknown>;
  const seen = new Set<string>();
  const emit = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[string, number]>) => {
    if (samples.length === 0 || seen.has(name)) return;
    seen.add(name);
    out.push(`# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`);
    for (const [labels, v] of samples) out.push(`${name}${labels} ${formatPromValue(v)}\n`);
  };
  const labelled = (section: string, scope: string, label: string) => {
    const sec = root[section];
    if (sec === null || typeof sec !== 'object') return;
    const byStat = new Map<string, Array<[string, number]>>();
    for (const [entity, stats] of Object.entries(sec as Record<string, unknown>)) {
      if (stats === null || typeof stats !== 'object') continue;
      for (const [stat, v] of Object.entries(stats as Record<string, unknown>)) {
        if (typeof v !== 'number') continue;
        let arr = byStat.get(stat);
        if (!arr) byStat.set(stat, (arr = []));
        arr.push([`{${label}="${escapeLabelValue(entity)}"}`, v]);
      }
    }
    for (const [stat, samples] of byStat) {
      const gauge = GAUGES.has(stat) || !(LISTENER_STATS as readonly string[]).concat(CLUSTER_STATS, ROUTE_STATS, WORKER_STATS).includes(stat);
      emit(promStatName(scope, stat, gauge), gauge ? 'gauge' : 'counter', `${scope} ${stat}`, samples);
    }
  };
  labelled('listeners', 'listener', 'listener');
  labelled('clusters', 'cluster', 'cluster');
  labelled('routes', 'route', 'route');
  labelled('workers', 'worker', 'worker');
  for (const [key, v] of Object.entries(root)) {
    if (key === 'listeners' || key === 'clusters' || key === 'routes' || key === 'workers' || key === 'histograms') continue;
    if (typeof v === 'number') emit(sanitizeMetricName(PREFIX + key), 'gauge', key, [['', v]]);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (typeof x === 'number') emit(sanitizeMetricName(PREFIX + key + '_' + k), 'gauge', `${key} ${k}`, [['', x]]);
      }
    }
  }
  return out.join('');
}
