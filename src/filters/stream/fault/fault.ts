/**
 * Fault injection, after routing, for every L7 protocol: MOSN's `fault` stream filter
 * (pkg/filter/stream/faultinject) and Envoy's HTTP fault filter as `http_fault`
 * (envoy.extensions.filters.http.fault.v3.HTTPFault). Both run the same machine:
 *
 *   request matches (route's cluster == upstream_cluster when set, every header matcher)
 *     -> delay chosen (percentage): the stream is held (Stop) on a timer, flag DI; the worker
 *        goes on serving; a client that goes away meanwhile ends the stream, and log() frees
 *        the timer at once
 *     -> abort chosen (percentage), after the delay: local reply with the status (RPC: MOSN's
 *        hijack mapping of the status; gRPC: grpc_status, or mapped from the HTTP status), flag FI
 *     -> else the request goes on
 *
 * MOSN `fault`: { "delay": { "fixed_delay": "1s", "percentage": 100 },
 *                 "abort": { "status": 500, "percentage": 100 },
 *                 "upstream_cluster": "name", "headers": [ { "name": "service", "value": "x", "regex": false } ] }
 *   percentages are integers 0..100 (MOSN draws rand % 100).
 * Envoy `http_fault`: delay { fixed_delay | header_delay, percentage }, abort { http_status |
 *   grpc_status | header_abort, percentage } (FractionalPercent, default 0 as in Envoy),
 *   upstream_cluster, headers (HeaderMatcher), max_active_faults (shared by all workers);
 *   header_delay / header_abort read x-envoy-fault-delay-request, x-envoy-fault-abort-request,
 *   x-envoy-fault-abort-grpc-request. response_rate_limit and downstream_nodes are refused.
 * Counters: fault.<listener>.delays_injected | aborts_injected | faults_overflow.
 */
import { DecodePhase, FilterStatus, registerStreamFilterKind, type FilterStream, type StreamFilter, type StreamFilterValidationContext } from '../../../api/stream-filter';
import { allocCells, count, counterCell, sharedCells } from '../../shared/cells';
import { fractionalPercent, JsonObj, show } from '../../shared/json';
import { compileHeader, parseHeaderMatcher, type HeaderMatch } from '../../shared/rbac';
import { StreamRbacInput } from '../rbac/rbac';

export interface FaultConfig {
  readonly delayMs: number;
  /** Probability 0..1 (0: no delay). */
  readonly delayProb: number;
  /** header_delay: the delay comes from x-envoy-fault-delay-request. */
  readonly headerDelay: boolean;
  readonly abortStatus: number;
  /** -1: none (gRPC requests get the grpc-status mapped from abortStatus). */
  readonly abortGrpc: number;
  readonly abortProb: number;
  readonly headerAbort: boolean;
  readonly cluster: string;
  readonly headers: readonly HeaderMatch[];
  /** 0: no limit. */
  readonly maxActive: number;
  /** Shared cell of the active-faults gauge (-1: none). */
  readonly activeCell: number;
  readonly cells: { readonly delays: number; readonly aborts: number; readonly overflow: number };
}

const MAX_DELAY_MS = 3_600_000;

function counters(listener: string): FaultConfig['cells'] {
  const b = `fault.${listener}`;
  return { delays: counterCell(`${b}.delays_injected`), aborts: counterCell(`${b}.aborts_injected`), overflow: counterCell(`${b}.faults_overflow`) };
}

/** MOSN's `fault` config. */
export function validateMosnFault(raw: unknown, path: string, ctx: StreamFilterValidationContext): FaultConfig | undefined {
  const o = JsonObj.from(raw, path, ctx);
  if (o === undefined) return undefined;
  o.known(['delay', 'abort', 'upstream_cluster', 'headers'], 'fault');
  const pct = (x: JsonObj): number => x.int('percentage', 0, 0, 100) / 100;
  let delayMs = 0;
  let delayProb = 0;
  const d = o.obj('delay');
  if (d !== undefined) {
    d.known(['fixed_delay', 'percentage'], 'fault.delay');
    delayMs = d.durationMs('fixed_delay', 0);
    if (delayMs > MAX_DELAY_MS) d.fail(d.at('fixed_delay'), `${show(d.get('fixed_delay'))} is longer than 1h`);
    delayProb = pct(d);
    if (!d.ok) o.ok = false;
  }
  let abortStatus = 0;
  let abortProb = 0;
  const a = o.obj('abort');
  if (a !== undefined) {
    a.known(['status', 'percentage'], 'fault.abort');
    abortStatus = a.int('status', 0, 0, 999);
    abortProb = pct(a);
    if (abortProb > 0 && abortStatus < 100) a.fail(a.at('status'), `${show(a.get('status'))}: an abort needs a status (100..999)`);
    if (!a.ok) o.ok = false;
  }
  const cluster = o.str('upstream_cluster', '') ?? '';
  const headers: HeaderMatch[] = [];
  for (const it of o.list('headers') ?? []) {
    // MOSN's route header matcher: { name, value, regex }.
    const h = JsonObj.from(it.value, it.path, ctx);
    if (h === undefined) {
      o.ok = false;
      continue;
    }
    h.known(['name', 'value', 'regex'], 'header matcher');
    const name = h.str('name');
    const value = h.str('value', '') ?? '';
    const regex = h.bool('regex', false);
    if (name === undefined || name === '') h.fail(h.at('name'), 'a header name is required');
    const hm = h.ok
      ? parseHeaderMatcher({ name, ...(regex ? { safe_regex_match: { regex: value } } : { exact_match: value }) }, it.path, ctx)
      : undefined;
    if (hm === undefined) o.ok = false;
    else headers.push(hm);
  }
  if (!o.ok) return undefined;
  return {
    delayMs, delayProb: delayMs > 0 ? delayProb : 0, headerDelay: false, abortStatus, abortGrpc: -1, abortProb, headerAbort: false, cluster, headers,
    maxActive: 0, activeCell: -1, cells: counters(ctx.listenerName),
  };
}

const HTTP_FAULT_KEYS = [
  'delay', 'abort', 'upstream_cluster', 'headers', 'downstream_nodes', 'max_active_faults', 'response_rate_limit', 'delay_percent_runtime',
  'abort_percent_runtime', 'delay_duration_runtime', 'abort_http_status_runtime', 'max_active_faults_runtime', 'response_rate_limit_percent_runtime',
  'abort_grpc_status_runtime', 'disable_downstream_cluster_stats', 'filter_metadata', '@type',
];

/** Envoy's HTTPFault. */
export function validateHttpFault(raw: unknown, path: string, ctx: StreamFilterValidationContext): FaultConfig | undefined {
  const o = JsonObj.from(raw, path, ctx);
  if (o === undefined) return undefined;
  o.known(HTTP_FAULT_KEYS, 'http_fault');
  for (const k of HTTP_FAULT_KEYS.filter((x) => x.endsWith('_runtime'))) {
    if (o.has(k)) ctx.warn(o.at(k), 'runtime keys are not read; the configured values apply');
  }
  if (o.has('response_rate_limit')) o.fail(o.at('response_rate_limit'), 'response_rate_limit is not supported');
  const dn = o.list('downstream_nodes');
  if (dn !== undefined && dn.length > 0) o.fail(o.at('downstream_nodes'), 'downstream_nodes is not supported');
  let delayMs = 0;
  let delayProb = 0;
  let headerDelay = false;
  const d = o.obj('delay');
  if (d !== undefined) {
    d.known(['fixed_delay', 'header_delay', 'percentage'], 'FaultDelay');
    headerDelay = d.has('header_delay');
    if (headerDelay === d.has('fixed_delay')) d.fail(d.path, 'a delay needs exactly one of fixed_delay, header_delay');
    delayMs = d.durationMs('fixed_delay', 0);
    if (delayMs > MAX_DELAY_MS) d.fail(d.at('fixed_delay'), `${show(d.get('fixed_delay'))} is longer than 1h`);
    delayProb = fractionalPercent(d, 'percentage', 0);
    if (!d.ok) o.ok = false;
  }
  let abortStatus = 0;
  let abortGrpc = -1;
  let abortProb = 0;
  let headerAbort = false;
  const a = o.obj('abort');
  if (a !== undefined) {
    a.known(['http_status', 'grpc_status', 'header_abort', 'percentage'], 'FaultAbort');
    const kinds = ['http_status', 'grpc_status', 'header_abort'].filter((k) => a.has(k));
    if (kinds.length !== 1) a.fail(a.path, 'an abort needs exactly one of http_status, grpc_status, header_abort');
    abortStatus = a.int('http_status', 0, 200, 599);
    abortGrpc = a.int('grpc_status', -1, 0, 16);
    headerAbort = a.has('header_abort');
    if (abortGrpc >= 0) abortStatus = httpOfGrpc(abortGrpc);
    abortProb = fractionalPercent(a, 'percentage', 0);
    if (!a.ok) o.ok = false;
  }
  const cluster = o.str('upstream_cluster', '') ?? '';
  const headers: HeaderMatch[] = [];
  for (const it of o.list('headers') ?? []) {
    const h = parseHeaderMatcher(it.value, it.path, ctx);
    if (h === undefined) o.ok = false;
    else headers.push(h);
  }
  const maxActive = o.int('max_active_faults', 0, 0, 0x7fffffff);
  if (!o.ok) return undefined;
  const activeCell = maxActive > 0 ? allocCells(`fault-active:${ctx.listenerName}:${path}`, 1, () => {}) : -1;
  return { delayMs, delayProb, headerDelay, abortStatus, abortGrpc, abortProb, headerAbort, cluster, headers, maxActive, activeCell, cells: counters(ctx.listenerName) };
}

/** The HTTP status an abort with only a gRPC status gives a plain HTTP request. */
function httpOfGrpc(g: number): number {
  switch (g) {
    case 4:
      return 504;
    case 5:
      return 404;
    case 7:
      return 403;
    case 8:
      return 429;
    case 12:
      return 501;
    case 14:
      return 503;
    case 16:
      return 401;
    default:
      return 500;
  }
}

function intHeader(s: FilterStream, name: string, min: number, max: number): number {
  const v = s.header(name);
  if (v === undefined || !/^\d{1,9}$/.test(v)) return -1;
  const n = Number(v);
  return n < min || n > max ? -1 : n;
}

class FaultFilter implements StreamFilter {
  readonly phase = DecodePhase.AfterRoute;
  private readonly headers: ((x: StreamRbacInput) => boolean)[];
  private readonly input = new StreamRbacInput();
  /** Streams with a fault in progress: their delay timer (null once it fired). */
  private readonly active = new Map<FilterStream, NodeJS.Timeout | null>();

  constructor(private readonly cfg: FaultConfig) {
    this.headers = cfg.headers.map(compileHeader);
  }

  private matches(s: FilterStream): boolean {
    const c = this.cfg;
    if (c.cluster !== '' && s.routeCluster() !== c.cluster) return false;
    const hs = this.headers;
    if (hs.length === 0) return true;
    const x = this.input;
    x.bind(s);
    let ok = true;
    for (let i = 0; i < hs.length && ok; i++) ok = hs[i](x);
    x.bind(null);
    return ok;
  }

  decode(s: FilterStream): FilterStatus {
    const c = this.cfg;
    if ((c.delayProb === 0 && c.abortProb === 0) || !this.matches(s)) return FilterStatus.Continue;
    const delay = c.delayProb > 0 && (c.delayProb >= 1 || Math.random() < c.delayProb) ? (c.headerDelay ? intHeader(s, 'x-envoy-fault-delay-request', 0, MAX_DELAY_MS) : c.delayMs) : -1;
    const abort = c.abortProb > 0 && (c.abortProb >= 1 || Math.random() < c.abortProb);
    if (delay <= 0 && !abort) return FilterStatus.Continue;
    if (c.activeCell >= 0) {
      // max_active_faults: one gauge for the whole process.
      if (Atomics.add(sharedCells(), c.activeCell, 1) >= c.maxActive) {
        Atomics.sub(sharedCells(), c.activeCell, 1);
        count(c.cells.overflow);
        return FilterStatus.Continue;
      }
    }
    if (delay > 0) {
      count(c.cells.delays);
      s.setResponseFlag('DI');
      // One timer per delayed request (the fault's own cost); the worker keeps serving meanwhile.
      this.active.set(s, setTimeout(() => this.delayed(s, abort), delay));
      return FilterStatus.Stop;
    }
    this.active.set(s, null);
    return this.abort(s) ? FilterStatus.Stop : FilterStatus.Continue;
  }

  private delayed(s: FilterStream, abort: boolean): void {
    if (!this.active.has(s)) return;
    this.active.set(s, null);
    if (abort && this.abort(s)) return;
    s.resume();
  }

  /** Answers with the abort status; false when a header_abort request carries none. */
  private abort(s: FilterStream): boolean {
    const c = this.cfg;
    let status = c.abortStatus;
    let grpc = c.abortGrpc;
    if (c.headerAbort) {
      status = intHeader(s, 'x-envoy-fault-abort-request', 200, 599);
      grpc = intHeader(s, 'x-envoy-fault-abort-grpc-request', 0, 16);
      if (status < 0 && grpc < 0) return false;
      if (status < 0) status = httpOfGrpc(grpc);
    }
    count(c.cells.aborts);
    s.setResponseFlag('FI');
    s.sendLocalReply(status, 'fault filter abort', grpc >= 0 ? { grpcStatus: grpc } : undefined);
    return true;
  }

  /** The stream ended (answered, or the client went away during a delay): its timer and its place go. */
  log(s: FilterStream): void {
    if (this.active.size === 0) return;
    const t = this.active.get(s);
    if (t === undefined) return;
    if (t !== null) clearTimeout(t);
    this.active.delete(s);
    if (this.cfg.activeCell >= 0) Atomics.sub(sharedCells(), this.cfg.activeCell, 1);
  }
}

registerStreamFilterKind<FaultConfig>({ type: 'fault', validate: validateMosnFault, create: (cfg) => new FaultFilter(cfg) });
registerStreamFilterKind<FaultConfig>({ type: 'http_fault', validate: validateHttpFault, create: (cfg) => new FaultFilter(cfg) });
