/**
 * `flowControlFilter` stream filter: MOSN's Sentinel flow control (pkg/filter/stream/flowcontrol),
 * after routing. Each rule limits the QPS of one resource; the counts are shared by all workers
 * (a sliding window of two buckets in shared cells, src/filters/shared/limiter.ts).
 *
 *   { "type": "flowControlFilter", "config": {
 *       "global_switch": true, "limit_key_type": "PATH",
 *       "action": { "status": 500, "body": "blocked" },
 *       "rules": [ { "resource": "/test", "threshold": 1, "grade": 1, "strategy": 0 } ] } }
 *
 * Keys and defaults as MOSN: global_switch false (the filter does nothing), limit_key_type PATH,
 * action { status 509 (LimitExceededCode), body "current request is limited" }, app_name,
 * log_path, callback_name, direction accepted. Rules are Sentinel's (sentinel-golang 1.0):
 * resource, threshold, statIntervalInMs (default 1000: threshold is then QPS),
 * tokenCalculateStrategy Direct, controlBehavior Reject; Java-style keys of MOSN's sample
 * (grade 1 = QPS, strategy 0 = direct, limitApp) are read as MOSN's Sentinel reads them.
 *
 * The resource of a request, by limit_key_type:
 *   PATH  HTTP: the path without the query      RPC: the service
 *   URI   HTTP: the path with the query         RPC: "/<service>/<method>"
 *   ARG   HTTP: the query string                RPC: none (not limited, as in MOSN)
 * Blocked: HTTP `action.status` with `action.body`; RPC the status mapped as MOSN's hijack
 * (509 / 429 -> the codec's limit error, 503 -> busy, ...), with the body as the error text;
 * gRPC the grpc-status mapped from it. Response flag RL.
 * Counters: flowcontrol.<listener>.<resource>.pass | block.
 */
import { DecodePhase, FilterStatus, registerStreamFilterKind, type FilterStream, type StreamFilter, type StreamFilterValidationContext } from '../../../api/stream-filter';
import { count, counterCell, sharedNowMs } from '../../shared/cells';
import { JsonObj, show } from '../../shared/json';
import { allocWindow, windowPass } from '../../shared/limiter';

export type LimitKeyType = 'PATH' | 'URI' | 'ARG';

export interface FlowRule {
  readonly resource: string;
  readonly threshold: number;
  readonly windowMs: number;
  readonly window: number;
  readonly pass: number;
  readonly block: number;
}

export interface FlowControlConfig {
  readonly enabled: boolean;
  readonly keyType: LimitKeyType;
  readonly status: number;
  readonly body: string;
  readonly rules: readonly FlowRule[];
}

const KEYS = ['app_name', 'callback_name', 'log_path', 'global_switch', 'monitor', 'limit_key_type', 'action', 'rules', 'dynamic_data_resources', 'direction'];
const RULE_KEYS = [
  'id', 'resource', 'threshold', 'tokenCalculateStrategy', 'controlBehavior', 'relationStrategy', 'refResource', 'maxQueueingTimeMs',
  'warmUpPeriodSec', 'warmUpColdFactor', 'statIntervalInMs', 'grade', 'strategy', 'limitApp', 'count',
];

export function validateFlowControl(raw: unknown, path: string, ctx: StreamFilterValidationContext): FlowControlConfig | undefined {
  const o = JsonObj.from(raw, path, ctx);
  if (o === undefined) return undefined;
  o.known(KEYS, 'flowControlFilter', false);
  o.str('app_name');
  o.str('log_path');
  o.str('direction');
  const cb = o.str('callback_name', '') ?? '';
  if (cb !== '') ctx.warn(o.at('callback_name'), `${show(cb)}: custom callbacks are not supported; the default ones apply (as MOSN does for an unregistered name)`);
  if (o.bool('monitor', false)) ctx.warn(o.at('monitor'), 'monitor is not used (MOSN does not use it either)');
  const dyn = o.list('dynamic_data_resources');
  if (dyn !== undefined && dyn.length > 0) o.fail(o.at('dynamic_data_resources'), 'dynamic rule sources (nacos) are not supported; list the rules inline');
  const enabled = o.bool('global_switch', false);
  const kt = o.str('limit_key_type', 'PATH') ?? 'PATH';
  if (kt !== 'PATH' && kt !== 'URI' && kt !== 'ARG') o.fail(o.at('limit_key_type'), `${show(kt)} is not a limit key type (PATH, URI, ARG; MOSN: "invalid key type")`);
  let status = 509;
  let body = 'current request is limited';
  const a = o.obj('action');
  if (a !== undefined) {
    a.known(['status', 'body'], 'action');
    status = a.int('status', 509, 100, 999);
    body = a.str('body', body) ?? body;
    if (!a.ok) o.ok = false;
  }
  const rules: FlowRule[] = [];
  for (const it of o.list('rules') ?? []) {
    const r = JsonObj.from(it.value, it.path, ctx);
    if (r === undefined) {
      o.ok = false;
      continue;
    }
    r.known(RULE_KEYS, 'flow rule', false);
    const resource = r.str('resource');
    if (resource === undefined || resource === '') r.fail(r.at('resource'), 'a rule needs a resource');
    const hasThreshold = r.has('threshold');
    const threshold = hasThreshold ? r.num('threshold', 0, 0, 1e9) : r.num('count', 0, 0, 1e9);
    if (!hasThreshold && !r.has('count')) r.fail(r.at('threshold'), 'a rule needs a threshold');
    const windowMs = r.int('statIntervalInMs', 0, 0, 3_600_000) || 1000;
    if (windowMs < 2) r.fail(r.at('statIntervalInMs'), 'must be at least 2 (ms)');
    const tcs = r.get('tokenCalculateStrategy');
    if (tcs !== undefined && tcs !== 0 && tcs !== 'Direct') r.fail(r.at('tokenCalculateStrategy'), `${show(tcs)}: only Direct (0) is supported`);
    const cbh = r.get('controlBehavior');
    if (cbh !== undefined && cbh !== 0 && cbh !== 'Reject') r.fail(r.at('controlBehavior'), `${show(cbh)}: only Reject (0) is supported`);
    const rel = r.get('relationStrategy');
    if (rel !== undefined && rel !== 0 && rel !== 'CurrentResource') r.fail(r.at('relationStrategy'), `${show(rel)}: only CurrentResource (0) is supported`);
    const grade = r.get('grade');
    if (grade !== undefined && grade !== 1) ctx.warn(r.at('grade'), `${show(grade)}: MOSN's Sentinel ignores grade; the threshold is a QPS limit`);
    const strategy = r.get('strategy');
    if (strategy !== undefined && strategy !== 0) ctx.warn(r.at('strategy'), `${show(strategy)}: MOSN's Sentinel ignores strategy; the rule limits its own resource`);
    if (!r.ok || resource === undefined) {
      o.ok = false;
      continue;
    }
    const key = `${ctx.listenerName}:${path}:${resource}:${threshold}:${windowMs}`;
    const window = allocWindow(key);
    if (window < 0) {
      o.fail(it.path, 'no shared cells left for this rule');
      continue;
    }
    const base = `flowcontrol.${ctx.listenerName}.${resource}`;
    rules.push({ resource, threshold, windowMs, window, pass: counterCell(`${base}.pass`), block: counterCell(`${base}.block`) });
  }
  if (!o.ok) return undefined;
  return { enabled, keyType: kt as LimitKeyType, status, body, rules };
}

const HTTP_PROTOCOLS = new Set(['http1', 'http2', 'grpc']);

/** The request's resource name for the key type (undefined: none, not limited). */
export function resourceOf(s: FilterStream, kt: LimitKeyType): string | undefined {
  if (!HTTP_PROTOCOLS.has(s.protocol)) {
    if (kt === 'PATH') return s.service();
    if (kt === 'ARG') return undefined;
    const svc = s.service();
    return svc === undefined ? undefined : `/${svc}/${s.method() ?? ''}`;
  }
  const p = s.header(':path');
  if (p === undefined) return undefined;
  if (kt === 'URI') return p;
  const q = p.indexOf('?');
  if (kt === 'PATH') return q < 0 ? p : p.slice(0, q);
  return q < 0 ? '' : p.slice(q + 1);
}

class FlowControlFilter implements StreamFilter {
  readonly phase = DecodePhase.AfterRoute;
  private readonly byResource = new Map<string, FlowRule[]>();

  constructor(private readonly cfg: FlowControlConfig) {
    for (const r of cfg.rules) {
      const l = this.byResource.get(r.resource);
      if (l === undefined) this.byResource.set(r.resource, [r]);
      else l.push(r);
    }
  }

  decode(s: FilterStream): FilterStatus {
    const c = this.cfg;
    if (!c.enabled) return FilterStatus.Continue;
    const res = resourceOf(s, c.keyType);
    if (res === undefined) return FilterStatus.Continue;
    const rules = this.byResource.get(res);
    if (rules === undefined) return FilterStatus.Continue;
    const now = sharedNowMs();
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i];
      if (!windowPass(r.window, r.threshold, r.windowMs, now)) {
        count(r.block);
        s.setResponseFlag('RL');
        s.sendLocalReply(c.status, c.body);
        return FilterStatus.Stop;
      }
      count(r.pass);
    }
    return FilterStatus.Continue;
  }
}

registerStreamFilterKind<FlowControlConfig>({
  type: 'flowControlFilter',
  validate: validateFlowControl,
  create: (cfg) => new FlowControlFilter(cfg),
});
