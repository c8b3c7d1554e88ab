/**
 * dubbo_stream: per-listener RPC request metrics by protocol, service and method (MOSN's
 * dubbo_stream stream filter, which counts request_total / response_succ_total /
 * response_fail_total per listener, service and method). Outrigger counts Bolt (v1, v2) and
 * Dubbo requests alike and adds latency (a histogram in ms, with its sum).
 *
 * Storage: shared cells (src/filters/shared/cells.ts), so every worker counts into the same
 * table and the admin reads one total. Per listener one block of MAX_PAIRS + 1 slots; a slot
 * is claimed (compare-exchange on its state cell) by the first worker that sees a new
 * protocol x service x method, which writes the name into the slot. Past MAX_PAIRS, or for a
 * name too long for a slot, requests count under service "other", method "other".
 *
 * Hot path (log step, once per request): three Map lookups in this worker's cache and a few
 * Atomics.add; a slot search (and its allocations) only the first time a worker sees a pair.
 */
import { DecodePhase, FilterStatus, registerStreamFilterKind, type FilterStream, type StreamFilter } from '../../../api/stream-filter';
import { allocCells, sharedCells } from '../../shared/cells';

/** service x method pairs per listener (shared by all workers); the rest count as "other". */
export const MAX_PAIRS = 256;
/** Histogram bucket upper bounds, ms (plus +Inf = the request count). */
export const LATENCY_BUCKETS_MS: readonly number[] = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

const ST = 0; // 0 free, 1 being claimed, 2 ready
const HASH = 1;
const REQ = 2;
const FAIL = 3;
const SUM_LO = 4; // latency sum in µs: SUM_HI * 2^30 + SUM_LO
const SUM_HI = 5;
const BUCKET0 = 6;
const NAME = BUCKET0 + LATENCY_BUCKETS_MS.length; // cell: byte length, then UTF-8 bytes
const NAME_CELLS = 32;
const NAME_MAX = (NAME_CELLS - 1) * 4;
const SLOT = NAME + NAME_CELLS;
const CARRY = 1 << 30;

export interface RpcMetricsConfig {
  /** First cell of the listener's table (-1: none, cells exhausted). */
  readonly at: number;
  readonly listener: string;
}

/** Main thread: listener -> table (what the admin reads). */
const tables = new Map<string, number>();

function validate(raw: unknown, path: string, ctx: { error(p: string, m: string): void; warn(p: string, m: string): void; listenerName: string }): RpcMetricsConfig | undefined {
  if (raw !== undefined && raw !== null && (typeof raw !== 'object' || Array.isArray(raw))) {
    ctx.error(path, `dubbo_stream config must be an object, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  const obj = (raw ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    // MOSN's "subset" adds a pod-label dimension (Istio pod labels), which Outrigger does not have.
    ctx.warn(`${path}.${k}`, `dubbo_stream: key "${k}" is not supported and is ignored`);
  }
  const at = allocCells(`rpcmetrics:${ctx.listenerName}`, (MAX_PAIRS + 1) * SLOT, () => {});
  if (at < 0) {
    ctx.error(path, `dubbo_stream: no room left for the metrics of listener ${JSON.stringify(ctx.listenerName)}`);
    return undefined;
  }
  tables.set(ctx.listenerName, at);
  return { at, listener: ctx.listenerName };
}

function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h | 0 || 1;
}

function readName(c: Int32Array, slot: number): string {
  const len = c[slot + NAME];
  const bytes = Buffer.from(c.buffer, c.byteOffset + (slot + NAME + 1) * 4, len);
  return bytes.toString('utf8');
}

/** Cold path: the slot of `name` in the table at `at` (claims a free one), or the "other" slot. */
function findSlot(c: Int32Array, at: number, name: string): number {
  const other = at + MAX_PAIRS * SLOT;
  const enc = Buffer.from(name, 'utf8');
  if (enc.length > NAME_MAX) return other;
  const h = hash32(name);
  for (let i = 0; i < MAX_PAIRS; i++) {
    const slot = at + i * SLOT;
    if (Atomics.load(c, slot + ST) === 0 && Atomics.compareExchange(c, slot + ST, 0, 1) === 0) {
      c[slot + HASH] = h;
      c[slot + NAME] = enc.length;
      enc.copy(Buffer.from(c.buffer, c.byteOffset + (slot + NAME + 1) * 4, NAME_MAX));
      Atomics.store(c, slot + ST, 2);
      return slot;
    }
    while (Atomics.load(c, slot + ST) === 1); // another worker is writing the name (a few bytes)
    if (c[slot + HASH] === h && readName(c, slot) === name) return slot;
  }
  return other;
}

/** Whether an RPC response status is a success (Bolt: 0 SUCCESS; Dubbo: 20 OK). */
function isSuccess(protocol: string, status: number | undefined): boolean {
  if (status === undefined) return false; // no response: the client went away or the stream was reset
  return protocol === 'dubbo' ? status === 20 : status === 0;
}

/** What the filter reads of the stream beyond FilterStream (src/stream/pipeline.ts ActiveStream). */
interface Ended {
  readonly responseCode: number | undefined;
  readonly durationMs: number | undefined;
  rpcMetricsSlot: number;
}

/** Worker cache bound: past it, misses search the shared table (no growth on hostile names). */
const CACHE_MAX = 4 * MAX_PAIRS;

class RpcMetricsFilter implements StreamFilter {
  readonly phase = DecodePhase.BeforeRoute;
  private readonly cache = new Map<string, Map<string, Map<string, number>>>();
  private cached = 0;
  constructor(private readonly at: number) {}

  private slotOf(protocol: string, service: string, method: string): number {
    let bySvc = this.cache.get(protocol);
    let byMethod = bySvc?.get(service);
    const hit = byMethod?.get(method);
    if (hit !== undefined) return hit;
    // First sight of this pair in this worker: the name string and the maps are allocated once.
    const slot = findSlot(sharedCells(), this.at, `${protocol}\0${service}\0${method}`);
    if (this.cached >= CACHE_MAX) return slot;
    if (bySvc === undefined) this.cache.set(protocol, (bySvc = new Map()));
    if (byMethod === undefined) bySvc.set(service, (byMethod = new Map()));
    byMethod.set(method, slot);
    this.cached++;
    return slot;
  }

  /** The request frame is readable only while decoding: the slot is found here, kept on the stream. */
  decode(s: FilterStream): FilterStatus {
    const p = s.protocol;
    if (p === 'bolt' || p === 'boltv2' || p === 'dubbo') (s as unknown as Ended).rpcMetricsSlot = this.slotOf(p, s.service() ?? '', s.method() ?? '');
    return FilterStatus.Continue;
  }

  /** Counts the ended request (a request stopped by an earlier filter before decode is not counted). */
  log(s: FilterStream): void {
    const e = s as unknown as Ended;
    const slot = e.rpcMetricsSlot;
    if (slot < 0) return;
    const p = s.protocol;
    const c = sharedCells();
    Atomics.add(c, slot + REQ, 1);
    if (!isSuccess(p, e.responseCode)) Atomics.add(c, slot + FAIL, 1);
    const ms = e.durationMs ?? 0;
    const us = Math.min(CARRY - 1, Math.round(ms * 1000));
    if (Atomics.add(c, slot + SUM_LO, us) + us >= CARRY) {
      // This add crossed 2^30 (exactly one adder does): move the carry to the high cell.
      Atomics.sub(c, slot + SUM_LO, CARRY);
      Atomics.add(c, slot + SUM_HI, 1);
    }
    let b = 0;
    while (b < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[b]) b++;
    if (b < LATENCY_BUCKETS_MS.length) Atomics.add(c, slot + BUCKET0 + b, 1);
  }
}

registerStreamFilterKind<RpcMetricsConfig>({
  type: 'dubbo_stream',
  validate,
  create: (cfg) => new RpcMetricsFilter(cfg.at),
});

/** One row of the metrics (main thread). */
export interface RpcMetricsRow {
  readonly listener: string;
  readonly protocol: string;
  readonly service: string;
  readonly method: string;
  readonly requests: number;
  readonly failures: number;
  readonly latencySumMs: number;
  /** Per bucket of LATENCY_BUCKETS_MS, not cumulative (the rest are above the last bound). */
  readonly buckets: readonly number[];
}

/** Main thread: every slot in use, listener by listener. */
export function rpcMetricsRows(): RpcMetricsRow[] {
  const c = sharedCells();
  const rows: RpcMetricsRow[] = [];
  for (const [listener, at] of tables) {
    for (let i = 0; i <= MAX_PAIRS; i++) {
      const slot = at + i * SLOT;
      const req = Atomics.load(c, slot + REQ);
      let protocol = 'other';
      let service = 'other';
      let method = 'other';
      if (i < MAX_PAIRS) {
        if (Atomics.load(c, slot + ST) !== 2) continue;
        [protocol, service, method] = readName(c, slot).split('\0');
      } else if (req === 0) continue;
      const buckets: number[] = [];
      for (let b = 0; b < LATENCY_BUCKETS_MS.length; b++) buckets.push(Atomics.load(c, slot + BUCKET0 + b));
      const sumUs = Atomics.load(c, slot + SUM_HI) * CARRY + Atomics.load(c, slot + SUM_LO);
      rows.push({ listener, protocol, service, method, requests: req, failures: Atomics.load(c, slot + FAIL), latencySumMs: sumUs / 1000, buckets });
    }
  }
  return rows;
}

/** JSON for /api/v1/stats: listener -> "protocol/service/method" -> values. */
export function rpcMetricsJson(): Record<string, Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, Record<string, number>>> = {};
  for (const r of rpcMetricsRows()) {
    const l = (out[r.listener] ??= {});
    l[`${r.protocol}/${r.service}/${r.method}`] = { requests_total: r.requests, failures_total: r.failures, latency_ms_sum: r.latencySumMs, latency_ms_count: r.requests };
  }
  return out;
}

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Prometheus text: outrigger_rpc_requests_total, _failures_total, outrigger_rpc_request_duration_ms histogram. */
export function rpcMetricsPrometheus(): string {
  const rows = rpcMetricsRows();
  if (rows.length === 0) return '';
  const req: string[] = ['# HELP outrigger_rpc_requests_total RPC requests by listener, protocol, service and method\n# TYPE outrigger_rpc_requests_total counter\n'];
  const fail: string[] = ['# HELP outrigger_rpc_failures_total RPC requests answered with a non-OK status or not answered\n# TYPE outrigger_rpc_failures_total counter\n'];
  const lat: string[] = ['# HELP outrigger_rpc_request_duration_ms RPC request latency in ms\n# TYPE outrigger_rpc_request_duration_ms histogram\n'];
  for (const r of rows) {
    const l = `listener="${esc(r.listener)}",protocol="${esc(r.protocol)}",service="${esc(r.service)}",method="${esc(r.method)}"`;
    req.push(`outrigger_rpc_requests_total{${l}} ${r.requests}\n`);
    fail.push(`outrigger_rpc_failures_total{${l}} ${r.failures}\n`);
    let cum = 0;
    for (let b = 0; b < LATENCY_BUCKETS_MS.length; b++) {
      cum += r.buckets[b];
      lat.push(`outrigger_rpc_request_duration_ms_bucket{${l},le="${LATENCY_BUCKETS_MS[b]}"} ${cum}\n`);
    }
    lat.push(`outrigger_rpc_request_duration_ms_bucket{${l},le="+Inf"} ${r.requests}\n`);
    lat.push(`outrigger_rpc_request_duration_ms_sum{${l}} ${r.latencySumMs}\n`, `outrigger_rpc_request_duration_ms_count{${l}} ${r.requests}\n`);
  }
  return req.join('') + fail.join('') + lat.join('');
}
