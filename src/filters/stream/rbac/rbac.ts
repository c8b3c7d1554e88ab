/**
 * `rbac` stream filter: Envoy's HTTP RBAC filter (envoy.extensions.filters.http.rbac.v3.RBAC)
 * for every L7 protocol of the pipeline, before routing.
 *
 *   { "type": "rbac", "config": { "rules": { "action": "ALLOW", "policies": { ... } },
 *                                 "shadow_rules": { ... }, "rules_stat_prefix": "...",
 *                                 "shadow_rules_stat_prefix": "..." } }
 *
 * Denied: HTTP 403 "RBAC: access denied", gRPC PERMISSION_DENIED, Bolt SERVER_EXCEPTION, Dubbo
 * SERVER_ERROR "403|..." (MOSN's PermissionDeniedCode mapping). Shadow rules are evaluated and
 * counted, never enforced. Counters (process-wide, admin `server` section and Prometheus):
 *   rbac.<listener>.<rules_stat_prefix>allowed | denied
 *   rbac.<listener>.<shadow_rules_stat_prefix>shadow_allowed | shadow_denied
 *   rbac.<listener>.policy.<name>.allowed | denied | shadow_allowed | shadow_denied
 * (the policy that decided: for ALLOW the matching one allows; for DENY the matching one denies).
 * Matching and the header names RPC requests expose: src/filters/shared/rbac.ts.
 */
import { DecodePhase, FilterStatus, registerStreamFilterKind, type FilterStream, type StreamFilter, type StreamFilterValidationContext } from '../../../api/stream-filter';
import { count, counterCell } from '../../shared/cells';
import { JsonObj } from '../../shared/json';
import { CompiledRbac, ipOf, parseRbacFilterRules, portOf, type RbacInput, type RbacRules } from '../../shared/rbac';

/** Counter cells of one rule set: totals, then per policy [allowed, denied]. */
export interface RuleCells {
  readonly allowed: number;
  readonly denied: number;
  /** Per policy (same order as rules.policies): allowed, denied. */
  readonly policies: readonly (readonly [number, number])[];
}

export interface RbacFilterConfig {
  readonly rules: RbacRules | null;
  readonly shadow: RbacRules | null;
  readonly cells: RuleCells | null;
  readonly shadowCells: RuleCells | null;
}

const HTTP_PROTOCOLS = new Set(['http1', 'http2', 'grpc']);

/**
 * RbacInput over the current stream (one per filter instance, bound per request: no
 * allocation). Header values, the path and the peer address are read once per request: ten
 * policies asking for `:method` cost one lookup (an RPC header read scans the frame's header map).
 */
export class StreamRbacInput implements RbacInput {
  private s: FilterStream | null = null;
  private rpcReq = false;
  /** The protocol rpcReq was found for (a set lookup per protocol change, not per request). */
  private proto = '';
  private readonly names: string[] = [];
  private readonly vals: (string | undefined)[] = [];
  private n = 0;
  private pathRead = false;
  private pathV: string | undefined = undefined;
  private remote: string | null = null;
  private lastRemote = '';
  private lastIp = '';

  /** Points at a request (null: done with it). */
  bind(s: FilterStream | null): void {
    this.s = s;
    this.n = 0;
    this.pathRead = false;
    this.pathV = undefined;
    this.remote = null;
    if (s !== null && s.protocol !== this.proto) {
      this.proto = s.protocol;
      this.rpcReq = !HTTP_PROTOCOLS.has(s.protocol);
    }
  }

  private get st(): FilterStream {
    return this.s as FilterStream;
  }

  header(name: string): string | undefined {
    const names = this.names;
    for (let i = 0; i < this.n; i++) if (names[i] === name) return this.vals[i];
    const v = this.read(name);
    if (this.n < 16) {
      names[this.n] = name;
      this.vals[this.n++] = v;
    }
    return v;
  }

  private read(name: string): string | undefined {
    const s = this.st;
    if (name.charCodeAt(0) === 58 && this.rpcReq) {
      if (name === ':method') return s.method();
      if (name === ':service' || name === ':authority') return s.service();
      if (name === ':path') return this.path();
    }
    if (name === ':service') return s.service();
    return s.header(name);
  }

  path(): string | undefined {
    if (this.pathRead) return this.pathV;
    this.pathRead = true;
    const s = this.st;
    if (this.rpcReq) {
      const svc = s.service();
      // RPC requests have no path: "/service/method", the gRPC form (one string per request that asks).
      this.pathV = svc === undefined ? undefined : `/${svc}/${this.header(':method') ?? ''}`;
      return this.pathV;
    }
    const p = s.header(':path');
    if (p !== undefined) {
      const q = p.indexOf('?');
      this.pathV = q < 0 ? p : p.slice(0, q);
    }
    return this.pathV;
  }

  localPort(): number {
    return portOf(this.st.localAddress());
  }

  localIp(): string {
    return ipOf(this.st.localAddress());
  }

  remoteIp(): string {
    if (this.remote !== null) return this.remote;
    const st = this.st;
    // The stream has the IP at hand (the RPC light view: the connection's peer address).
    if (st.remoteIp !== undefined) return (this.remote = st.remoteIp());
    // Requests of one connection carry the same "ip:port" text (one string per connection):
    // the IP is cut out again only when the connection changes, and not even then when the new
    // text is the last IP with another port (requests of a peer's connections interleave): the
    // same IP string, which the rule set compares by identity.
    const ra = st.remoteAddress();
    if (ra !== this.lastRemote) {
      this.lastRemote = ra;
      const ip = this.lastIp;
      const l = ip.length;
      if (l === 0 || ra.charCodeAt(l) !== 58 || !ra.startsWith(ip) || ra.indexOf(':', l + 1) >= 0) this.lastIp = ipOf(ra);
    }
    return (this.remote = this.lastIp);
  }

  peer(): ReturnType<FilterStream['peer']> {
    return this.st.peer();
  }

  sni(): string {
    return '';
  }
}

/** Counter cells for one rule set (main thread, at validation). */
export function ruleCells(base: string, prefix: string, rules: RbacRules, shadow: boolean): RuleCells {
  const sh = shadow ? 'shadow_' : '';
  return {
    allowed: counterCell(`${base}.${prefix}${sh}allowed`),
    denied: counterCell(`${base}.${prefix}${sh}denied`),
    policies: rules.policies.map((p) => [counterCell(`${base}.policy.${p.name}.${sh}allowed`), counterCell(`${base}.policy.${p.name}.${sh}denied`)] as const),
  };
}

/** Counts one verdict: the total, and the deciding policy's (when a policy matched). */
export function countVerdict(c: RuleCells, matched: number, allowed: boolean): void {
  count(allowed ? c.allowed : c.denied);
  if (matched >= 0) count(c.policies[matched][allowed ? 0 : 1]);
}

/** The rule sets with their counter cells (main thread, at validation). */
export function withCells(rs: { rules: RbacRules | null; shadow: RbacRules | null }, base: string, prefix: string, shadowPrefix: string): RbacFilterConfig {
  return {
    rules: rs.rules,
    shadow: rs.shadow,
    cells: rs.rules === null ? null : ruleCells(base, prefix, rs.rules, false),
    shadowCells: rs.shadow === null ? null : ruleCells(base, shadowPrefix, rs.shadow, true),
  };
}

const KEYS = ['rules', 'rules_stat_prefix', 'matcher', 'shadow_rules', 'shadow_matcher', 'shadow_rules_stat_prefix', 'track_per_rule_stats', '@type'];

export function validateRbacFilter(raw: unknown, path: string, ctx: StreamFilterValidationContext): RbacFilterConfig | undefined {
  const o = JsonObj.from(raw, path, ctx);
  if (o === undefined) return undefined;
  o.known(KEYS, 'rbac');
  o.bool('track_per_rule_stats', true); // per-policy counters are always kept
  const prefix = o.str('rules_stat_prefix', '') ?? '';
  const shadowPrefix = o.str('shadow_rules_stat_prefix', '') ?? '';
  const rs = parseRbacFilterRules(o, ctx, 'stream');
  return rs === undefined ? undefined : withCells(rs, `rbac.${ctx.listenerName}`, prefix, shadowPrefix);
}

/** The compiled rules and shadow rules of one filter (per worker): check() counts both, enforces the rules. */
export class RbacCheck {
  private readonly engine: CompiledRbac | null;
  private readonly shadow: CompiledRbac | null;

  constructor(private readonly cfg: RbacFilterConfig) {
    this.engine = cfg.rules === null ? null : new CompiledRbac(cfg.rules);
    this.shadow = cfg.shadow === null ? null : new CompiledRbac(cfg.shadow);
  }

  /** Whether the rules allow `x` (shadow rules are counted only). */
  check(x: RbacInput): boolean {
    const sh = this.shadow;
    if (sh !== null) {
      const m = sh.match(x);
      countVerdict(this.cfg.shadowCells as RuleCells, m, sh.allowed(m));
    }
    const e = this.engine;
    if (e === null) return true;
    const m = e.match(x);
    const ok = e.allowed(m);
    countVerdict(this.cfg.cells as RuleCells, m, ok);
    return ok;
  }
}

class RbacStreamFilter implements StreamFilter {
  readonly phase = DecodePhase.BeforeRoute;
  /** Decides from the request alone; Stop only after the 403 (StreamFilter.headersOnly). */
  readonly headersOnly = true;
  private readonly rbac: RbacCheck;
  private readonly input = new StreamRbacInput();

  constructor(cfg: RbacFilterConfig) {
    this.rbac = new RbacCheck(cfg);
  }

  decode(s: FilterStream): FilterStatus {
    const x = this.input;
    x.bind(s);
    const ok = this.rbac.check(x);
    x.bind(null);
    if (ok) return FilterStatus.Continue;
    s.sendLocalReply(403, 'RBAC: access denied');
    return FilterStatus.Stop;
  }
}

registerStreamFilterKind<RbacFilterConfig>({
  type: 'rbac',
  validate: validateRbacFilter,
  create: (cfg) => new RbacStreamFilter(cfg),
});
