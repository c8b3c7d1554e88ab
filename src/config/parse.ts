/**
 * MOSN JSON config -> normalized, deep-frozen OutriggerConfig.
 *
 * Compatibility rules (taken from MOSN's Go decoding, see pkg/config/v2 in mosn/mosn):
 *  - keys match case-insensitively everywhere (Go encoding/json), so `"Name"` == `"name"`;
 *    two spellings of one key in the same object are an error (which one wins is ambiguous);
 *  - durations are Go duration strings ("30s", "500ms", "1m30s", "1.5s"); bare numbers are
 *    only accepted where MOSN decodes a time.Duration (tcp_proxy idle_timeout: nanoseconds),
 *    plus the number 0 everywhere (Go's ParseDuration accepts "0").
 *
 * Policy for things we cannot honor yet: security-relevant ones (auth/ACL filters, SDS or
 * custom TLS verification, unknown filters that might be either) are ERRORS; harmless
 * ones (tracing, pprof, metrics sinks, log rotation, health checks, ...) and unknown keys
 * become WARNINGS on `config.warnings`. All errors are collected and thrown as one ConfigError.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as nodePath from 'node:path';
import embeddedDefault from './default.json';
import { ConfigError, ConfigIssue, formatIssue, showValue } from './errors';
import { redactConfig } from './redact';
import { parseHostileTrafficSections } from '../overload/config';
import type {
  AccessLogConfig, AdminConfig, CidrRange, CircuitBreakerConfig, ClusterConfig, FilterChainConfig, FilterConfig,
  HostConfig, HostPort, LbType, ListenerConfig, LogLevel, OutriggerConfig, RouterConfig, ServerConfig,
  TcpProxyConfig, TcpProxyRouteConfig, TlsContextConfig, TlsVersion,
} from './types';
import {
  ALPN_PROTOCOLS, buildSecureContext, DEFAULT_CIPHERS, DEFAULT_CURVES, describeSource, loadMaterial, mapCiphers, mapCurves,
  parseVersion, sourceOf, TlsMaterialError, VERSION_ORDER,
} from '../tls/material';

// ---------------------------------------------------------------------------------------------
// Defaults (MOSN's where it has one; the source file in mosn/mosn is named)
// ---------------------------------------------------------------------------------------------

export const DEFAULTS = Object.freeze({
  /** MOSN logs to $base/logs/mosn.log; a sidecar in a container is better served by stdout. */
  logPath: 'stdout',
  /** pkg/configmanager/parser.go ParseLogLevel: unknown/empty -> INFO. */
  logLevel: 'info' as LogLevel,
  /** 0 = one worker per CPU (MOSN: processor absent or < 1 -> NumCPU). */
  processor: 0,
  /** pkg/server/reconfigure.go GracefulTimeout = 30s. */
  gracefulTimeoutMs: 30_000,
  /** pkg/types/network.go DefaultIdleTimeout = 90s, used when connection_idle_timeout is absent. */
  connectionIdleTimeoutMs: 90_000,
  /** pkg/config/v2/server.go defaultBufferLimit = 1 << 15 (not configurable in MOSN). */
  perConnBufferLimitBytes: 32_768,
  /** pkg/network/connection.go DefaultConnectTimeout = 10s. */
  connectTimeoutMs: 10_000,
  /** pkg/config/v2/constants.go DefaultMaxRequestPerConn. */
  maxRequestPerConn: 1024,
  /** pkg/config/v2/constants.go DefaultConnBufferLimitBytes = 16 KiB. */
  connBufferLimitBytes: 16_384,
  /** pkg/config/v2/constants.go MinHostWeight / MaxHostWeight; absent or 0 -> 1. */
  hostWeight: 1,
  minHostWeight: 1,
  maxHostWeight: 128,
  /** pkg/upstream/cluster/loadbalancer.go: unknown/empty lb_type -> round robin. */
  lbType: 'LB_ROUNDROBIN' as LbType,
  /** pkg/filter/network/streamproxy: idle_timeout absent -> types.DefaultIdleTimeout (90s). */
  tcpProxyIdleTimeoutMs: 90_000,
  /** pkg/filter/network/streamproxy/streamproxy.go defaultConnectRetryTimes = 3. */
  maxConnectAttempts: 3,
  adminHost: '127.0.0.1',
  adminPort: 34901,
});

/** Largest timer Node can honor (setTimeout clamps bigger values to 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;
const UINT32_MAX = 4_294_967_295;

// ---------------------------------------------------------------------------------------------
// Value helpers (exported for filter validators and tests)
// ---------------------------------------------------------------------------------------------

const GO_UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const GO_DURATION_RE = /^[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const GO_PART_RE = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

/**
 * Parse a Go duration string ("1h2m3.5s", "500ms", "0") into nanoseconds; undefined when it
 * is not valid Go syntax. The sign is kept (callers reject negatives).
 */
export function parseGoDurationNs(s: string): number | undefined {
  const t = s.trim();
  if (t === '0' || t === '+0' || t === '-0') return 0;
  if (!GO_DURATION_RE.test(t)) return undefined;
  let ns = 0;
  for (const m of t.matchAll(GO_PART_RE)) ns += Number(m[1]) * GO_UNIT_NS[m[2]!]!;
  return t.startsWith('-') ? -ns : ns;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const HOSTNAME_RE = /^(?=.{1,253}\.?$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;

/** An IP literal (v4 or v6, no brackets) or a syntactically valid DNS name. */
export function isHostnameOrIp(h: string): boolean {
  if (net.isIP(h)) return true;
  if (/^[\d.]+$/.test(h)) return false; // "1.2.3" / "300.1.1.1": broken IPv4, not a name
  return HOSTNAME_RE.test(h);
}

function canonicalIpv6(h: string): string {
  try {
    return new URL(`http://[${h}]/`).hostname.slice(1, -1);
  } catch {
    return h.toLowerCase();
  }
}

export interface HostPortOptions {
  /** ":2045" (all interfaces, as Go's net.Listen does) -> host "0.0.0.0". Listeners only. */
  allowEmptyHost?: boolean;
  /** Port 0 (ephemeral). Listeners/admin only; an upstream host needs a real port. */
  allowPortZero?: boolean;
}

/**
 * Parse "host:port" as Go's net.SplitHostPort does: IPv4 "1.2.3.4:80", IPv6 "[::1]:80",
 * or a DNS name "svc.local:80" (MOSN resolves names with net.ResolveTCPAddr; we keep the
 * name and let the socket layer resolve it). Returns a reason string when invalid.
 */
export function parseHostPort(s: string, opts: HostPortOptions = {}): HostPort | string {
  let host: string;
  let portStr: string;
  if (s.startsWith('[')) {
    const m = /^\[([^\]]*)\]:([^:]*)$/.exec(s);
    if (!m) return 'missing port';
    host = m[1]!;
    portStr = m[2]!;
    if (!net.isIPv6(host)) return 'bracketed host is not an IPv6 address';
    host = canonicalIpv6(host);
  } else {
    const i = s.lastIndexOf(':');
    if (i < 0) return 'missing port';
    host = s.slice(0, i);
    portStr = s.slice(i + 1);
    if (host.includes(':')) return 'IPv6 addresses must be written in brackets, e.g. [::1]:80';
    if (host === '') {
      if (!opts.allowEmptyHost) return 'missing host';
      host = '0.0.0.0';
    } else if (!isHostnameOrIp(host)) {
      return 'invalid host';
    } else {
      host = host.toLowerCase();
    }
  }
  if (!/^\d{1,5}$/.test(portStr)) return 'invalid port';
  const port = Number(portStr);
  if (port > 65535) return 'port out of range';
  if (port === 0 && !opts.allowPortZero) return 'port 0 is not allowed here';
  return { host, port };
}

/** Parse a CIDR "10.0.0.0/8" or a single IP (full-length prefix). Returns a reason when invalid. */
export function parseCidr(s: string): CidrRange | string {
  const slash = s.indexOf('/');
  const address = (slash < 0 ? s : s.slice(0, slash)).trim();
  const fam = net.isIP(address);
  if (!fam) return 'invalid IP address';
  const max = fam === 4 ? 32 : 128;
  if (slash < 0) return { address: fam === 6 ? canonicalIpv6(address) : address, length: max };
  const lenStr = s.slice(slash + 1).trim();
  if (!/^\d{1,3}$/.test(lenStr) || Number(lenStr) > max) return `prefix length must be 0..${max}`;
  return { address: fam === 6 ? canonicalIpv6(address) : address, length: Number(lenStr) };
}

/** Validate a MOSN port list: "8080", "80-90", "80,443,8000-8100". Returns the normalized string or a reason. */
export function parsePortList(v: string | number): string | { reason: string } {
  const items = String(v).split(',').map((x) => x.trim());
  for (const it of items) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(it);
    if (!m) return { reason: `"${it}" is not a port or port range` };
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo > 65535 || hi > 65535) return { reason: `"${it}" is out of range` };
    if (lo > hi) return { reason: `"${it}" is an empty range` };
  }
  return items.join(',');
}

function isSet(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isPlainObject(v)) return Object.values(v).some(isSet);
  return true;
}

/** Shallow: anything but absent/false/0/""/[]/{} (errors must not be dodged by nesting empties). */
function isPresent(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isPlainObject(v)) return Object.keys(v).length > 0;
  return true;
}

function joinPath(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

// ---------------------------------------------------------------------------------------------
// Collection context and case-insensitive object reader
// ---------------------------------------------------------------------------------------------

/** Collects errors and warnings; shared by the whole parse. */
export class IssueCollector {
  readonly errors: ConfigIssue[] = [];
  readonly warnings: string[] = [];
  error(path: string, message: string): void {
    this.errors.push({ path, message });
  }
  warn(path: string, message: string): void {
    this.warnings.push(formatIssue({ path, message }));
  }
}

export interface IntOptions {
  min?: number;
  max?: number;
  def?: number;
}

export interface DurationOptions {
  /** Default (ms) when the key is absent. */
  def: number;
  /** Unit of a bare JSON number: 'ns' where MOSN decodes time.Duration; otherwise numbers other than 0 are rejected. */
  numberUnit?: 'ns';
  /** Reject 0 (e.g. connect_timeout). */
  positive?: boolean;
}

/**
 * Read-only view of a JSON object whose keys are matched case-insensitively (MOSN/Go style).
 * Getters take the canonical lowercase key, record it as consumed and report problems against
 * `path.key`; `done()` warns about keys nobody consumed.
 */
export class ConfigObject {
  private readonly byLower = new Map<string, { key: string; value: unknown }>();
  private readonly used = new Set<string>();

  constructor(readonly issues: IssueCollector, readonly path: string, readonly source: Record<string, unknown>) {
    for (const [key, value] of Object.entries(source)) {
      const lower = key.toLowerCase();
      const prior = this.byLower.get(lower);
      if (prior) {
        issues.error(joinPath(path, lower), `keys ${showValue(prior.key)} and ${showValue(key)} differ only in case; give it once`);
        continue;
      }
      this.byLower.set(lower, { key, value });
    }
  }

  /** Wrap `value` if it is an object; otherwise report "must be an object" and return undefined. */
  static from(issues: IssueCollector, path: string, value: unknown): ConfigObject | undefined {
    if (!isPlainObject(value)) {
      issues.error(path, `${showValue(value)} must be an object`);
      return undefined;
    }
    return new ConfigObject(issues, path, value);
  }

  at(key: string): string {
    return joinPath(this.path, key);
  }

  has(key: string): boolean {
    const e = this.byLower.get(key);
    return e !== undefined && e.value !== undefined && e.value !== null;
  }

  /** The raw value (null is treated as absent, as Go does for non-pointer fields). */
  get(key: string): unknown {
    this.used.add(key);
    const v = this.byLower.get(key)?.value;
    return v === null ? undefined : v;
  }

  /** The key as the user spelled it (for messages). */
  spelled(key: string): string {
    return this.byLower.get(key)?.key ?? key;
  }

  /** Mark keys as known with no effect (accepted silently). */
  accept(...keys: string[]): void {
    for (const k of keys) this.used.add(k);
  }

  /** Known but unsupported and harmless: warn when it is set to something non-empty. */
  warnIfSet(key: string, why: string): void {
    const v = this.get(key);
    if (isSet(v)) this.issues.warn(this.at(key), why);
  }

  /** Known but unsupported and unsafe to ignore: error when it is set to something non-empty. */
  errorIfSet(key: string, why: string): void {
    const v = this.get(key);
    if (isPresent(v)) this.issues.error(this.at(key), why);
  }

  str(key: string, opts: { required?: boolean; def?: string; nonEmpty?: boolean } = {}): string | undefined {
    const v = this.get(key);
    if (v === undefined) {
      if (opts.required) this.issues.error(this.at(key), 'is required');
      return opts.def;
    }
    if (typeof v !== 'string') {
      this.issues.error(this.at(key), `${showValue(v)} must be a string`);
      return opts.def;
    }
    if ((opts.nonEmpty || opts.required) && v.trim() === '') {
      this.issues.error(this.at(key), `${showValue(v)} must not be empty`);
      return opts.def;
    }
    return v;
  }

  bool(key: string, def: boolean): boolean {
    const v = this.get(key);
    if (v === undefined) return def;
    if (typeof v !== 'boolean') {
      this.issues.error(this.at(key), `${showValue(v)} must be true or false`);
      return def;
    }
    return v;
  }

  int(key: string, opts: IntOptions = {}): number {
    const def = opts.def ?? 0;
    const v = this.get(key);
    if (v === undefined) return def;
    return this.checkInt(v, this.at(key), opts) ?? def;
  }

  checkInt(v: unknown, path: string, opts: IntOptions = {}): number | undefined {
    const min = opts.min ?? 0;
    const max = opts.max ?? UINT32_MAX;
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      this.issues.error(path, `${showValue(v)} must be an integer`);
      return undefined;
    }
    if (v < min || v > max) {
      this.issues.error(path, `${showValue(v)} is out of range ${min}..${max}`);
      return undefined;
    }
    return v;
  }

  /** A duration in ms (sub-millisecond values round up so they never turn into "disabled"). */
  duration(key: string, opts: DurationOptions): number {
    const v = this.get(key);
    if (v === undefined) return opts.def;
    return checkDuration(this.issues, v, this.at(key), opts) ?? opts.def;
  }

  obj(key: string): ConfigObject | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    return ConfigObject.from(this.issues, this.at(key), v);
  }

  /** Array items with their paths; a non-array is reported and yields []. */
  list(key: string): { value: unknown; path: string }[] {
    const v = this.get(key);
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      this.issues.error(this.at(key), `${showValue(v)} must be an array`);
      return [];
    }
    return v.map((value, i) => ({ value, path: `${this.at(key)}[${i}]` }));
  }

  /** Warn about every key no getter asked for. */
  done(): void {
    for (const [lower, e] of this.byLower) {
      if (!this.used.has(lower)) this.issues.warn(joinPath(this.path, e.key), 'unknown key (ignored)');
    }
  }
}

/** Validate one duration value (string with unit, 0, or ns number where allowed); ms or undefined. */
export function checkDuration(issues: IssueCollector, v: unknown, path: string, opts: DurationOptions): number | undefined {
  let ns: number | undefined;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) ns = undefined;
    else if (v === 0) ns = 0;
    else if (opts.numberUnit === 'ns') ns = v;
    else {
      issues.error(path, `${showValue(v)} is not a duration: write it with a unit, e.g. "${v}s" or "${v}ms"`);
      return undefined;
    }
  } else if (typeof v === 'string') {
    ns = parseGoDurationNs(v);
  }
  if (ns === undefined) {
    issues.error(path, `${showValue(v)} is not a duration (expected e.g. "30s", "500ms", "1m30s")`);
    return undefined;
  }
  if (ns < 0) {
    issues.error(path, `${showValue(v)} must not be negative`);
    return undefined;
  }
  const ms = Math.ceil(ns / 1e6);
  if (ms > MAX_TIMER_MS) {
    issues.error(path, `${showValue(v)} is too large (max ${MAX_TIMER_MS} ms, about 24.8 days)`);
    return undefined;
  }
  if (ms === 0 && opts.positive) {
    issues.error(path, `${showValue(v)} must be greater than 0`);
    return undefined;
  }
  return ms;
}

// ---------------------------------------------------------------------------------------------
// Filter validator registries
// ---------------------------------------------------------------------------------------------

/** What a filter validator gets besides its config. */
export interface FilterValidationContext {
  readonly issues: IssueCollector;
  error(path: string, message: string): void;
  warn(path: string, message: string): void;
  /** Cluster names defined in cluster_manager.clusters. */
  hasCluster(name: string): boolean;
  /** Router names (router_config_name) defined in this server's routers. */
  hasRouter(name: string): boolean;
  /** Name of the listener being parsed. */
  readonly listenerName: string;
  /** Case-insensitive reader for an object (reports "must be an object"). */
  object(value: unknown, path: string): ConfigObject | undefined;
}

/**
 * Validates a filter's `config` (raw, keys as the user wrote them) at `path` (= `...filters[i].config`),
 * reports problems through ctx and returns the normalized config stored in FilterConfig.config.
 */
export type FilterValidator = (config: unknown, path: string, ctx: FilterValidationContext) => Readonly<Record<string, unknown>>;

const networkFilterValidators = new Map<string, FilterValidator>();
const streamFilterValidators = new Map<string, FilterValidator>();

/**
 * Register the validator of a network filter type (e.g. the bolt/http `proxy` filter once it exists).
 * A later registration replaces an earlier one. Returns a function that removes it again.
 */
export function registerFilterValidator(type: string, fn: FilterValidator): () => void {
  const prev = networkFilterValidators.get(type);
  networkFilterValidators.set(type, fn);
  return () => {
    if (networkFilterValidators.get(type) !== fn) return;
    if (prev) networkFilterValidators.set(type, prev);
    else networkFilterValidators.delete(type);
  };
}

/** Same for stream filters (listeners[].stream_filters). */
export function registerStreamFilterValidator(type: string, fn: FilterValidator): () => void {
  const prev = streamFilterValidators.get(type);
  streamFilterValidators.set(type, fn);
  return () => {
    if (streamFilterValidators.get(type) !== fn) return;
    if (prev) streamFilterValidators.set(type, prev);
    else streamFilterValidators.delete(type);
  };
}

/** Network filter types with a registered validator (tcp_proxy is built in). */
export function supportedNetworkFilterTypes(): string[] {
  return [...networkFilterValidators.keys()].sort();
}

/** MOSN network filters we know of but do not implement (pkg/config/v2/filter.go and pkg/filter/network). */
const KNOWN_MOSN_NETWORK_FILTERS = new Set([
  'proxy', 'connection_manager', 'udp_proxy', 'fault_inject', 'rpc_proxy', 'x_proxy', 'transcoder', 'grpc', 'tunnel',
]);

/** MOSN stream filters whose absence cannot weaken security: dropped with a warning. */
const HARMLESS_MOSN_STREAM_FILTERS = new Set([
  'fault', 'gzip', 'mirror', 'grpc_metric', 'fault_tolerance', 'dubbo_stream', 'healthcheck',
]);

// ---------------------------------------------------------------------------------------------
// tcp_proxy
// ---------------------------------------------------------------------------------------------

function standaloneContext(issues: IssueCollector, listenerName = ''): FilterValidationContext {
  return {
    issues,
    error: (p, m) => issues.error(p, m),
    warn: (p, m) => issues.warn(p, m),
    hasCluster: () => true,
    hasRouter: () => true,
    listenerName,
    object: (v, p) => ConfigObject.from(issues, p, v),
  };
}

function readAlias(o: ConfigObject, keys: string[]): { key: string; value: unknown } | undefined {
  const present = keys.filter((k) => o.has(k));
  for (const k of keys) o.accept(k);
  if (present.length > 1) {
    o.issues.error(o.at(present[1]!), `conflicts with ${o.spelled(present[0]!)}; give only one`);
  }
  if (present.length === 0) return undefined;
  return { key: present[0]!, value: o.get(present[0]!) };
}

function parseCidrList(o: ConfigObject, keys: string[]): CidrRange[] {
  const found = readAlias(o, keys);
  if (!found) return [];
  const path = o.at(found.key);
  if (!Array.isArray(found.value)) {
    o.issues.error(path, `${showValue(found.value)} must be an array of CIDR ranges`);
    return [];
  }
  const out: CidrRange[] = [];
  found.value.forEach((item, i) => {
    const p = `${path}[${i}]`;
    if (typeof item === 'string') {
      const r = parseCidr(item);
      if (typeof r === 'string') o.issues.error(p, `${showValue(item)} is not a CIDR range (${r})`);
      else out.push(r);
      return;
    }
    // MOSN's own shape: {"address": "127.0.0.1", "length": 32}
    const c = ConfigObject.from(o.issues, p, item);
    if (!c) return;
    const address = c.str('address', { required: true });
    const lenV = c.get('length');
    c.done();
    if (address === undefined) return;
    if (lenV === undefined) {
      // MOSN would treat a missing length as /0 (match everything); refuse rather than widen a filter.
      o.issues.error(`${p}.length`, 'is required (a missing length would match every address)');
      return;
    }
    if (typeof lenV !== 'number' || !Number.isInteger(lenV)) {
      o.issues.error(`${p}.length`, `${showValue(lenV)} must be an integer`);
      return;
    }
    const r = parseCidr(`${address}/${lenV}`);
    if (typeof r === 'string') o.issues.error(p, `${showValue(`${address}/${lenV}`)} is not a CIDR range (${r})`);
    else out.push(r);
  });
  return out;
}

function parsePortField(o: ConfigObject, keys: string[]): string | undefined {
  const found = readAlias(o, keys);
  if (!found || found.value === '') return undefined;
  const path = o.at(found.key);
  if (typeof found.value !== 'string' && typeof found.value !== 'number') {
    o.issues.error(path, `${showValue(found.value)} must be a port list string like "80,443,8000-8100"`);
    return undefined;
  }
  const r = parsePortList(found.value);
  if (typeof r !== 'string') {
    o.issues.error(path, `${showValue(found.value)} is not a port list: ${r.reason}`);
    return undefined;
  }
  return r;
}

function checkClusterRef(ctx: FilterValidationContext, name: string, path: string): void {
  if (!ctx.hasCluster(name)) ctx.error(path, `${showValue(name)} is not a cluster defined in cluster_manager.clusters`);
}

/**
 * Validate a MOSN `tcp_proxy` network filter config (pkg/config/v2/proxy.go StreamProxy).
 * With a ctx, problems are reported there (cluster names are cross-checked); without one,
 * a ConfigError is thrown if anything is wrong.
 *
 * MOSN semantics kept: when `cluster` is set it is always used and `routes` are ignored.
 * Routes accept MOSN's untagged keys (`SourceAddrs` etc., entries `{address, length}`) and the
 * snake_case form (`source_addrs`, entries "10.0.0.0/8").
 */
export function parseTcpProxyConfig(config: unknown, path = 'config', ctx?: FilterValidationContext): TcpProxyConfig {
  const issues = ctx?.issues ?? new IssueCollector();
  const c = ctx ?? standaloneContext(issues);
  const o = ConfigObject.from(issues, path, config ?? {});
  const result: { -readonly [K in keyof TcpProxyConfig]: TcpProxyConfig[K] } = {
    statPrefix: c.listenerName || 'tcp_proxy',
    cluster: '',
    routes: [],
    idleTimeoutMs: DEFAULTS.tcpProxyIdleTimeoutMs,
    maxConnectAttempts: DEFAULTS.maxConnectAttempts,
  };
  if (o) {
    result.statPrefix = o.str('stat_prefix') || result.statPrefix;
    const cluster = o.str('cluster');
    if (cluster !== undefined && cluster !== '') {
      result.cluster = cluster;
      checkClusterRef(c, cluster, o.at('cluster'));
    }
    // MOSN decodes idle_timeout as a Go time.Duration: a number is nanoseconds. Strings are our extension.
    result.idleTimeoutMs = o.duration('idle_timeout', { def: DEFAULTS.tcpProxyIdleTimeoutMs, numberUnit: 'ns' });
    const mca = o.get('max_connect_attempts');
    if (mca !== undefined && mca !== 0) {
      result.maxConnectAttempts = o.checkInt(mca, o.at('max_connect_attempts'), { min: 1, max: 100 }) ?? DEFAULTS.maxConnectAttempts;
    }
    const routes: TcpProxyRouteConfig[] = [];
    let routesWithEffect = false;
    for (const item of o.list('routes')) {
      const r = ConfigObject.from(issues, item.path, item.value);
      if (!r) continue;
      const rc = r.str('cluster', { required: true });
      if (rc !== undefined) checkClusterRef(c, rc, r.at('cluster'));
      const sourceAddrs = parseCidrList(r, ['sourceaddrs', 'source_addrs']);
      const destinationAddrs = parseCidrList(r, ['destinationaddrs', 'destination_addrs']);
      const sourcePort = parsePortField(r, ['sourceport', 'source_port']);
      const destinationPort = parsePortField(r, ['destinationport', 'destination_port']);
      r.done();
      const route: { -readonly [K in keyof TcpProxyRouteConfig]: TcpProxyRouteConfig[K] } = {
        cluster: rc ?? '', sourceAddrs, destinationAddrs,
      };
      if (sourcePort !== undefined) route.sourcePort = sourcePort;
      if (destinationPort !== undefined) route.destinationPort = destinationPort;
      if (rc !== result.cluster || sourceAddrs.length || destinationAddrs.length || sourcePort || destinationPort) routesWithEffect = true;
      routes.push(route);
    }
    result.routes = routes;
    if (result.cluster === '' && routes.length === 0 && cluster === undefined) {
      issues.error(o.at('cluster'), 'is required (or give routes)');
    } else if (result.cluster === '' && routes.length === 0) {
      issues.error(o.at('cluster'), `${showValue(cluster)} must not be empty (or give routes)`);
    } else if (result.cluster !== '' && routesWithEffect) {
      issues.warn(o.at('routes'), `ignored because cluster ${showValue(result.cluster)} is set (MOSN always uses cluster when present)`);
    }
    o.done();
  }
  if (!ctx && issues.errors.length > 0) throw new ConfigError(issues.errors, undefined, issues.warnings);
  return result;
}

registerFilterValidator('tcp_proxy', (config, path, ctx) => parseTcpProxyConfig(config, path, ctx) as unknown as Record<string, unknown>);

// ---------------------------------------------------------------------------------------------
// proxy (L7) filter shape
// ---------------------------------------------------------------------------------------------

/** Normalized MOSN `proxy` network filter config (pkg/config/v2/proxy.go Proxy). */
export interface ProxyFilterConfig {
  readonly name?: string;
  /** Comma-separated in MOSN ("Http1", "bolt,Http1", "Auto"); split here. */
  readonly downstreamProtocols: readonly string[];
  readonly upstreamProtocol?: string;
  readonly fallbackForUnknownProtocol: boolean;
  readonly routerConfigName: string;
  readonly routerHandlerName?: string;
  readonly validateClusters: boolean;
  readonly extendConfig: Readonly<Record<string, unknown>>;
  readonly concurrencyNum: number;
}

/**
 * Validate the MOSN shape of a `proxy` filter config: downstream_protocol required,
 * router_config_name must name a router of this server. Protocol-specific validators
 * (bolt, http) call this first and then check the protocols they implement.
 */
export function parseProxyFilterConfig(config: unknown, path: string, ctx: FilterValidationContext): ProxyFilterConfig {
  const o = ConfigObject.from(ctx.issues, path, config ?? {});
  const out: { -readonly [K in keyof ProxyFilterConfig]: ProxyFilterConfig[K] } = {
    downstreamProtocols: [], fallbackForUnknownProtocol: false, routerConfigName: '', validateClusters: false,
    extendConfig: {}, concurrencyNum: 0,
  };
  if (!o) return out;
  const name = o.str('name');
  if (name) out.name = name;
  const dp = o.str('downstream_protocol', { required: true });
  if (dp !== undefined) {
    const protos = dp.split(',').map((p) => p.trim());
    if (protos.some((p) => p === '')) ctx.error(o.at('downstream_protocol'), `${showValue(dp)} has an empty protocol name`);
    out.downstreamProtocols = protos.filter((p) => p !== '');
  }
  const up = o.str('upstream_protocol');
  if (up) out.upstreamProtocol = up;
  out.fallbackForUnknownProtocol = o.bool('fallback_for_unknown_protocol', false);
  const rn = o.str('router_config_name', { required: true });
  if (rn !== undefined) {
    out.routerConfigName = rn;
    if (!ctx.hasRouter(rn)) ctx.error(o.at('router_config_name'), `${showValue(rn)} is not a router defined in servers[].routers`);
  }
  const rh = o.str('router_handler_name');
  if (rh) out.routerHandlerName = rh;
  out.validateClusters = o.bool('validate_clusters', false);
  const ec = o.get('extend_config');
  if (ec !== undefined) {
    if (isPlainObject(ec)) out.extendConfig = ec;
    else ctx.error(o.at('extend_config'), `${showValue(ec)} must be an object`);
  }
  out.concurrencyNum = o.int('concurrency_num', { min: 0, max: 1024 });
  o.done();
  return out;
}

// ---------------------------------------------------------------------------------------------
// TLS (MOSN pkg/config/v2 TLSConfig, semantics of pkg/mtls): validated fully at load, material
// included (files exist, PEM parses, key matches certificate, OpenSSL accepts the settings).
// Messages name the source (file path or "inline PEM"), never key bytes.
// ---------------------------------------------------------------------------------------------

const TLS_KEYS_NO_EFFECT = ['ticket', 'callbacks'];

type TlsSide = 'listener' | 'cluster';

/** Parses one tls_context; returns the validated context when status is true. */
function parseTlsContext(issues: IssueCollector, value: unknown, path: string, side: TlsSide): TlsContextConfig | undefined {
  const o = ConfigObject.from(issues, path, value);
  if (!o) return undefined;
  const status = o.bool('status', false);
  const verifyClient = o.bool('verify_client', false);
  const requireClientCert = o.bool('require_client_cert', false);
  const insecureSkip = o.bool('insecure_skip', false);
  const fallBack = o.bool('fall_back', false);
  const sds = o.get('sds_source');
  const ev = o.get('extend_verify');
  const type = o.str('type', { def: '' }) ?? '';
  const serverName = (o.str('server_name', { def: '' }) ?? '').trim();
  const certStr = o.str('cert_chain', { def: '' }) ?? '';
  const keyStr = o.str('private_key', { def: '' }) ?? '';
  const caStr = o.str('ca_cert', { def: '' }) ?? '';
  const ciphersStr = o.str('cipher_suites', { def: '' }) ?? '';
  const curvesStr = o.str('ecdh_curves', { def: '' }) ?? '';
  const minStr = o.str('min_version', { def: '' }) ?? '';
  const maxStr = o.str('max_version', { def: '' }) ?? '';
  const alpnStr = o.str('alpn', { def: '' }) ?? '';
  o.accept(...TLS_KEYS_NO_EFFECT);
  o.done();
  if (!status) {
    if (verifyClient) issues.warn(o.at('verify_client'), 'has no effect: status is false, so TLS (and client certificate verification) is off');
    if (requireClientCert) issues.warn(o.at('require_client_cert'), 'has no effect: status is false, so TLS is off');
    if (isSet(sds)) issues.warn(o.at('sds_source'), 'has no effect: status is false, so TLS is off');
    return undefined;
  }
  const before = issues.errors.length;
  if (isPresent(sds)) issues.error(o.at('sds_source'), 'SDS (certificates from a secret discovery service) is not supported yet; give cert_chain/private_key/ca_cert as files or PEM');
  if (isPresent(ev)) issues.error(o.at('extend_verify'), 'custom verification extensions are not supported; refusing to run with weaker verification than configured');
  if (type !== '') issues.warn(o.at('type'), `${showValue(type)}: no TLS extension of that name; the default certificate handling is used (as MOSN does for an unregistered type)`);
  if (fallBack) issues.warn(o.at('fall_back'), 'has no effect: certificates are checked at load and a bad one is an error, never a fallback to plaintext');
  for (const k of TLS_KEYS_NO_EFFECT) {
    if (isSet(o.source[o.spelled(k)])) issues.warn(o.at(k), 'not supported; ignored');
  }

  // Versions: MOSN names (tls_auto, tlsv1_0 .. tlsv1_3). Safe default 1.2..1.3 (MOSN's is 1.0..1.3).
  const version = (key: string, s: string, def: TlsVersion): TlsVersion => {
    if (s === '') return def;
    const v = parseVersion(s);
    if (v === undefined) {
      issues.error(o.at(key), `${showValue(s)} is not a TLS version (tls_auto, tlsv1_0, tlsv1_1, tlsv1_2, tlsv1_3)`);
      return def;
    }
    return v === 'auto' ? def : v;
  };
  const minVersion = version('min_version', minStr, 'TLSv1.2');
  const maxVersion = version('max_version', maxStr, 'TLSv1.3');
  if (VERSION_ORDER.indexOf(minVersion) > VERSION_ORDER.indexOf(maxVersion)) {
    issues.error(o.at('min_version'), `${showValue(minStr)} is above max_version ${showValue(maxStr)}`);
  } else if (VERSION_ORDER.indexOf(minVersion) < VERSION_ORDER.indexOf('TLSv1.2')) {
    issues.warn(o.at('min_version'), `${showValue(minStr)}: TLS 1.0/1.1 are insecure, and OpenSSL 3 refuses them unless cipher_suites ends in "@SECLEVEL=0"`);
  }

  let ciphers = DEFAULT_CIPHERS;
  if (ciphersStr.trim() !== '') {
    const r = mapCiphers(ciphersStr);
    if ('unknown' in r) issues.error(o.at('cipher_suites'), `${showValue(r.unknown)} is not a known cipher suite (MOSN or OpenSSL name)`);
    else {
      ciphers = r.list;
      if (r.weak.length > 0) issues.warn(o.at('cipher_suites'), `${r.weak.join(', ')}: CBC/RSA-key-exchange/3DES suites are weak; prefer ECDHE with GCM or CHACHA20`);
    }
  }
  let ecdhCurve = DEFAULT_CURVES;
  if (curvesStr.trim() !== '') {
    const r = mapCurves(curvesStr);
    if ('unknown' in r) issues.error(o.at('ecdh_curves'), `${showValue(r.unknown)} is not a supported curve (x25519, p256, p384, p521)`);
    else ecdhCurve = r.list;
  }
  const alpn: string[] = [];
  for (const raw of alpnStr.split(',')) {
    const p = raw.trim().toLowerCase();
    if (p === '') continue;
    if (!ALPN_PROTOCOLS.has(p)) issues.error(o.at('alpn'), `${showValue(raw.trim())} is not a supported ALPN protocol (h2, http/1.1, sofa)`);
    else if (!alpn.includes(p)) alpn.push(p);
  }

  const certChain = certStr.trim() !== '' ? sourceOf(certStr) : undefined;
  const privateKey = keyStr.trim() !== '' ? sourceOf(keyStr) : undefined;
  const caCert = caStr.trim() !== '' ? sourceOf(caStr) : undefined;
  if (side === 'listener') {
    if (!certChain) issues.error(o.at('cert_chain'), 'is required when status is true (a TLS listener needs a certificate)');
    if (!privateKey) issues.error(o.at('private_key'), 'is required when status is true (a TLS listener needs a private key)');
    if (verifyClient && !caCert) issues.warn(o.at('verify_client'), 'without ca_cert: client certificates are verified against the system CA store');
    if (requireClientCert && !verifyClient) {
      issues.warn(o.at('require_client_cert'), 'without verify_client only REQUESTS a client certificate (MOSN semantics): it is neither required nor verified; set verify_client too');
    }
    if (insecureSkip) issues.warn(o.at('insecure_skip'), 'has no effect on a listener (it skips upstream verification in a cluster tls_context)');
  } else {
    if (certChain && !privateKey) issues.error(o.at('private_key'), 'is required with cert_chain (client certificate for mTLS to the upstream)');
    if (privateKey && !certChain) issues.error(o.at('cert_chain'), 'is required with private_key (client certificate for mTLS to the upstream)');
    if (verifyClient) issues.warn(o.at('verify_client'), 'has no effect in a cluster tls_context (the upstream is verified unless insecure_skip)');
    if (requireClientCert) issues.warn(o.at('require_client_cert'), 'has no effect in a cluster tls_context');
    if (insecureSkip) issues.warn(o.at('insecure_skip'), 'true: the upstream certificate is NOT verified');
    if (serverName !== '' && !isHostnameOrIp(serverName)) issues.error(o.at('server_name'), `${showValue(serverName)} is not a host name`);
  }
  const ctx: TlsContextConfig = {
    serverName, verifyClient, requireClientCert, insecureSkip, minVersion, maxVersion, ciphers, ecdhCurve, alpn,
    ...(certChain ? { certChain } : {}),
    ...(privateKey ? { privateKey } : {}),
    ...(caCert ? { caCert } : {}),
  };
  if (issues.errors.length > before) return ctx;
  // Material: files exist, PEM parses, key matches certificate, OpenSSL takes the settings.
  try {
    buildSecureContext(ctx, loadMaterial(ctx));
  } catch (e) {
    if (e instanceof TlsMaterialError) issues.error(o.at(e.field), e.message);
    else issues.error(path, 'TLS context could not be built');
  }
  return ctx;
}

/** Settings a tls_context_set shares: Outrigger applies client verification and protocol settings per listener. */
function checkTlsSetConsistent(issues: IssueCollector, set: { ctx: TlsContextConfig; path: string }[]): void {
  const first = set[0];
  if (!first) return;
  const src = (s: TlsContextConfig['caCert']): string => (s ? describeSource(s) : '');
  const same: [string, (c: TlsContextConfig) => string][] = [
    ['verify_client', (c) => String(c.verifyClient)],
    ['require_client_cert', (c) => String(c.requireClientCert)],
    ['ca_cert', (c) => src(c.caCert) + (c.caCert?.kind === 'inline' ? c.caCert.pem : '')],
    ['min_version', (c) => c.minVersion],
    ['max_version', (c) => c.maxVersion],
    ['cipher_suites', (c) => c.ciphers],
    ['ecdh_curves', (c) => c.ecdhCurve],
    ['alpn', (c) => c.alpn.join(',')],
  ];
  for (const e of set.slice(1)) {
    for (const [key, get] of same) {
      if (get(e.ctx) !== get(first.ctx)) issues.error(`${e.path}.${key}`, `must be the same in every entry of tls_context_set (entries differ only in certificate, key and server_name)`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

const LOG_LEVELS: Record<string, LogLevel> = {
  TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', WARNING: 'warn', ERROR: 'error', FATAL: 'fatal',
  SILENT: 'silent', OFF: 'silent',
};

const LB_TYPES: readonly LbType[] = ['LB_ROUNDROBIN', 'LB_RANDOM', 'LB_WEIGHTED_ROUNDROBIN', 'LB_LEAST_REQUEST'];
/** pkg/types/loadbalancer.go: other MOSN balancers. */
const KNOWN_MOSN_LB_TYPES = new Set(['LB_ORIGINAL_DST', 'LB_MAGLEV', 'LB_REQUEST_ROUNDROBIN', 'LB_LEAST_CONNECTION', 'LB_PEAK_EWMA']);

interface ParseState {
  readonly issues: IssueCollector;
  readonly clusterNames: Map<string, string>; // name -> path of its definition
}

function parseHosts(st: ParseState, c: ConfigObject): HostConfig[] {
  const hosts: HostConfig[] = [];
  for (const item of c.list('hosts')) {
    const h = ConfigObject.from(st.issues, item.path, item.value);
    if (!h) continue;
    const addr = h.str('address', { required: true });
    let address: HostPort | undefined;
    if (addr !== undefined) {
      if (addr.startsWith('unix:')) {
        st.issues.error(h.at('address'), `${showValue(addr)}: unix socket upstreams are not supported yet`);
      } else {
        const r = parseHostPort(addr);
        if (typeof r === 'string') st.issues.error(h.at('address'), `${showValue(addr)} is not host:port (${r})`);
        else address = r;
      }
    }
    let weight: number = DEFAULTS.hostWeight;
    const wv = h.get('weight');
    if (wv !== undefined) {
      const w = h.checkInt(wv, h.at('weight'), { min: 0, max: UINT32_MAX });
      if (w !== undefined) {
        // MOSN (pkg/configmanager/parser.go transHostWeight) clamps into [1, 128].
        weight = Math.min(DEFAULTS.maxHostWeight, Math.max(DEFAULTS.minHostWeight, w));
        if (w !== weight && w !== 0) st.issues.warn(h.at('weight'), `${w} clamped to ${weight} (MOSN allows ${DEFAULTS.minHostWeight}..${DEFAULTS.maxHostWeight})`);
      }
    }
    const hostname = h.str('hostname');
    h.accept('metadata', 'tls_disable');
    h.done();
    if (address) hosts.push(hostname ? { address, weight, hostname } : { address, weight });
  }
  return hosts;
}

function parseCircuitBreakers(st: ParseState, c: ConfigObject): CircuitBreakerConfig {
  const out = { maxConnections: 0, maxPendingRequests: 0, maxRequests: 0, maxRetries: 0 };
  const items = c.list('circuit_breakers');
  if (items.length > 1) st.issues.warn(c.at('circuit_breakers'), `${items.length} thresholds given; only the first is used (MOSN has no priorities)`);
  const first = items[0];
  if (first) {
    const t = ConfigObject.from(st.issues, first.path, first.value);
    if (t) {
      out.maxConnections = t.int('max_connections');
      out.maxPendingRequests = t.int('max_pending_requests');
      out.maxRequests = t.int('max_requests');
      out.maxRetries = t.int('max_retries');
      t.accept('priority');
      t.done();
    }
  }
  return out;
}

function parseCluster(st: ParseState, c: ConfigObject, cmTls: TlsContextConfig | undefined): ClusterConfig | undefined {
  const name = c.str('name', { required: true });
  if (name !== undefined) {
    const prev = st.clusterNames.get(name);
    if (prev !== undefined) st.issues.error(c.at('name'), `${showValue(name)} is a duplicate cluster name (also ${prev})`);
    else st.clusterNames.set(name, c.at('name'));
  }
  const typeRaw = c.str('type', { def: 'SIMPLE' }) ?? 'SIMPLE';
  const type = typeRaw.toUpperCase();
  if (type === '' || type === 'SIMPLE') {
    // ok
  } else if (type === 'STATIC' || type === 'DYNAMIC' || type === 'EDS') {
    st.issues.warn(c.at('type'), `${showValue(typeRaw)} is treated as SIMPLE (static host list), as MOSN does for cluster types without a factory`);
  } else if (type === 'STRICT_DNS' || type === 'ORIGINAL_DST') {
    st.issues.error(c.at('type'), `${showValue(typeRaw)} cluster type is not supported yet (only SIMPLE)`);
  } else {
    st.issues.error(c.at('type'), `${showValue(typeRaw)} is not a cluster type (expected SIMPLE)`);
  }

  let lbType: LbType = DEFAULTS.lbType;
  const lbRaw = c.str('lb_type');
  if (lbRaw !== undefined && lbRaw !== '') {
    const up = lbRaw.toUpperCase();
    if ((LB_TYPES as readonly string[]).includes(up)) lbType = up as LbType;
    else if (KNOWN_MOSN_LB_TYPES.has(up)) st.issues.error(c.at('lb_type'), `${showValue(lbRaw)} is not supported yet (supported: ${LB_TYPES.join(', ')})`);
    else st.issues.error(c.at('lb_type'), `${showValue(lbRaw)} is not a load balancer type (supported: ${LB_TYPES.join(', ')})`);
  }

  const hv = c.get('hosts');
  const hosts = parseHosts(st, c);
  if (hv === undefined || (Array.isArray(hv) && hv.length === 0)) st.issues.warn(c.at('hosts'), 'cluster has no hosts; connections routed to it will fail');

  const connectTimeoutMs = c.duration('connect_timeout', { def: DEFAULTS.connectTimeoutMs, positive: true });
  const mrpc = c.int('max_request_per_conn');
  const cbl = c.int('conn_buffer_limit_bytes');
  const circuitBreakers = parseCircuitBreakers(st, c);

  let tlsContext: TlsContextConfig | undefined;
  if (c.has('tls_context')) tlsContext = parseTlsContext(st.issues, c.get('tls_context'), c.at('tls_context'), 'cluster');
  else c.accept('tls_context');
  // MOSN: cluster_manager_tls = use the cluster manager's tls_context for this cluster.
  if (c.bool('cluster_manager_tls', false) && tlsContext === undefined) {
    if (cmTls) tlsContext = cmTls;
    else st.issues.warn(c.at('cluster_manager_tls'), 'true, but cluster_manager.tls_context is absent or off: this cluster is plaintext');
  }

  c.warnIfSet('health_check', 'health checking is not supported yet; ignored (all hosts are considered healthy)');
  c.warnIfSet('lb_subset_config', 'subset load balancing is not supported yet; ignored');
  c.warnIfSet('original_dst_lb_config', 'not supported; ignored');
  c.warnIfSet('slow_start', 'slow start is not supported yet; ignored');
  c.warnIfSet('keepalive', 'upstream keepalive probing is not supported yet; ignored');
  c.warnIfSet('idle_timeout', 'upstream idle timeout is not supported yet; ignored');
  c.warnIfSet('mark', 'SO_MARK is not supported; ignored');
  c.warnIfSet('spec', 'service subscription is not supported; ignored');
  c.warnIfSet('lbconfig', 'not supported yet; ignored');
  c.warnIfSet('sub_type', 'not used; ignored');
  c.warnIfSet('cluster_pool_enable', 'not supported; ignored');
  for (const k of ['dns_refresh_rate', 'respect_dns_ttl', 'dns_lookup_family', 'dns_resolvers', 'dns_resolver_file', 'dns_resolver_port']) {
    c.warnIfSet(k, 'DNS settings only apply to STRICT_DNS clusters; ignored');
  }
  c.done();
  if (name === undefined) return undefined;
  const out: ClusterConfig = {
    name,
    type: 'SIMPLE',
    lbType,
    hosts,
    connectTimeoutMs,
    maxRequestPerConn: mrpc === 0 ? DEFAULTS.maxRequestPerConn : mrpc,
    connBufferLimitBytes: cbl === 0 ? DEFAULTS.connBufferLimitBytes : cbl,
    circuitBreakers,
  };
  return tlsContext ? { ...out, tlsContext } : out;
}

function parseClusterManager(st: ParseState, cm: ConfigObject | undefined): ClusterConfig[] {
  if (!cm) return [];
  let cmTls: TlsContextConfig | undefined;
  if (cm.has('tls_context')) cmTls = parseTlsContext(st.issues, cm.get('tls_context'), cm.at('tls_context'), 'cluster');
  else cm.accept('tls_context');
  cm.errorIfSet('clusters_configs', 'loading clusters from a directory is not supported yet; list them in clusters');
  cm.warnIfSet('cluster_pool_enable', 'not supported; ignored');
  const clusters: ClusterConfig[] = [];
  for (const item of cm.list('clusters')) {
    const c = ConfigObject.from(st.issues, item.path, item.value);
    if (!c) continue;
    const parsed = parseCluster(st, c, cmTls);
    if (parsed) clusters.push(parsed);
  }
  cm.done();
  return clusters;
}

/** Keys of MOSN route config (pkg/config/v2/route.go) normalized to lowercase; others keep their spelling. */
const ROUTE_KEYS = new Set([
  'router_config_name', 'virtual_hosts', 'name', 'domains', 'routers', 'match', 'route', 'redirect', 'direct_response',
  'metadata', 'per_filter_config', 'request_mirror_policies', 'prefix', 'path', 'regex', 'headers', 'variables', 'value',
  'model', 'dsl_expressions', 'expression', 'cluster_name', 'cluster_variable', 'upstream_protocol', 'cluster_header',
  'weighted_clusters', 'cluster', 'weight', 'hash_policy', 'metadata_match', 'timeout', 'retry_policy', 'retry_on',
  'retry_timeout', 'num_retries', 'status_codes', 'prefix_rewrite', 'regex_rewrite', 'pattern', 'google_re2',
  'substitution', 'host_rewrite', 'auto_host_rewrite', 'auto_host_rewrite_header', 'request_headers_to_add',
  'request_headers_to_remove', 'response_headers_to_add', 'response_headers_to_remove', 'header', 'key', 'append',
  'status', 'body', 'response_code', 'path_redirect', 'host_redirect', 'scheme_redirect', 'percent', 'trace_sampled',
  'cookie', 'source_ip', 'ttl', 'case_sensitive', 'invert_match', 'filter_metadata', 'require_tls',
]);
/** Values under these keys are user data (metadata, filter configs): copied verbatim. */
const OPAQUE_ROUTE_KEYS = new Set(['metadata', 'metadata_match', 'per_filter_config', 'filter_metadata']);

function normalizeRouteKeys(issues: IssueCollector, v: unknown, path: string): unknown {
  if (Array.isArray(v)) return v.map((x, i) => normalizeRouteKeys(issues, x, `${path}[${i}]`));
  if (!isPlainObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) {
    const lower = k.toLowerCase();
    const key = ROUTE_KEYS.has(lower) ? lower : k;
    if (Object.prototype.hasOwnProperty.call(out, key)) {
      issues.error(joinPath(path, key), `${showValue(k)} is given twice (keys differ only in case)`);
      continue;
    }
    out[key] = OPAQUE_ROUTE_KEYS.has(lower) ? val : normalizeRouteKeys(issues, val, joinPath(path, key));
  }
  return out;
}

function collectRouteClusters(v: unknown, path: string, out: { name: string; path: string }[]): void {
  if (Array.isArray(v)) {
    v.forEach((x, i) => collectRouteClusters(x, `${path}[${i}]`, out));
    return;
  }
  if (!isPlainObject(v)) return;
  for (const [k, val] of Object.entries(v)) {
    if (OPAQUE_ROUTE_KEYS.has(k)) continue;
    if (k === 'cluster_name' && typeof val === 'string' && val !== '') out.push({ name: val, path: joinPath(path, k) });
    if (k === 'weighted_clusters' && Array.isArray(val)) {
      val.forEach((wc, i) => {
        const n = isPlainObject(wc) ? wc['name'] : undefined;
        if (typeof n === 'string' && n !== '') out.push({ name: n, path: `${joinPath(path, k)}[${i}].name` });
      });
      continue;
    }
    collectRouteClusters(val, joinPath(path, k), out);
  }
}

function parseRouters(st: ParseState, s: ConfigObject): RouterConfig[] {
  const routers: RouterConfig[] = [];
  const seen = new Map<string, string>();
  for (const item of s.list('routers')) {
    const r = ConfigObject.from(st.issues, item.path, item.value);
    if (!r) continue;
    const name = r.str('router_config_name', { required: true });
    if (name !== undefined) {
      const prev = seen.get(name);
      if (prev) st.issues.error(r.at('router_config_name'), `${showValue(name)} is a duplicate router name (also ${prev})`);
      else seen.set(name, r.at('router_config_name'));
    }
    r.errorIfSet('router_configs', 'loading routers from a directory is not supported yet; list virtual_hosts inline');
    for (const k of ['request_headers_to_add', 'request_headers_to_remove', 'response_headers_to_add', 'response_headers_to_remove']) {
      r.warnIfSet(k, 'router-level header rewriting is not supported yet; ignored');
    }
    const vhosts: Record<string, unknown>[] = [];
    for (const vh of r.list('virtual_hosts')) {
      if (!isPlainObject(vh.value)) {
        st.issues.error(vh.path, `${showValue(vh.value)} must be an object`);
        continue;
      }
      const norm = normalizeRouteKeys(st.issues, vh.value, vh.path) as Record<string, unknown>;
      const refs: { name: string; path: string }[] = [];
      collectRouteClusters(norm, vh.path, refs);
      for (const ref of refs) {
        if (!st.clusterNames.has(ref.name)) st.issues.warn(ref.path, `${showValue(ref.name)} is not a cluster defined in cluster_manager.clusters`);
      }
      vhosts.push(norm);
    }
    r.done();
    if (name !== undefined) routers.push({ name, virtualHosts: vhosts });
  }
  return routers;
}

function parseFilterList(
  st: ParseState, items: { value: unknown; path: string }[], kind: 'network' | 'stream', mk: (listener: string) => FilterValidationContext,
  listenerName: string,
): FilterConfig[] {
  const out: FilterConfig[] = [];
  for (const item of items) {
    const f = ConfigObject.from(st.issues, item.path, item.value);
    if (!f) continue;
    const type = f.str('type', { required: true });
    const cfg = f.get('config');
    const cfgPath = f.at('config');
    f.errorIfSet('go_plugin_config', 'Go plugin filters are not supported');
    f.done();
    if (type === undefined) continue;
    if (cfg !== undefined && !isPlainObject(cfg)) {
      st.issues.error(cfgPath, `${showValue(cfg)} must be an object`);
      continue;
    }
    const registry = kind === 'network' ? networkFilterValidators : streamFilterValidators;
    const fn = registry.get(type);
    const ctx = mk(listenerName);
    if (fn) {
      out.push({ type, config: fn(cfg ?? {}, cfgPath, ctx) });
      continue;
    }
    const tpath = f.at('type');
    if (kind === 'network') {
      if (type === 'proxy') {
        const p = parseProxyFilterConfig(cfg ?? {}, cfgPath, ctx);
        const protos = p.downstreamProtocols.length ? ` for downstream_protocol ${showValue(p.downstreamProtocols.join(','))}` : '';
        st.issues.error(tpath, `"proxy" network filter${protos} is not supported yet`);
      } else if (KNOWN_MOSN_NETWORK_FILTERS.has(type)) {
        st.issues.error(tpath, `${showValue(type)} network filter is not supported yet (supported: ${supportedNetworkFilterTypes().join(', ')})`);
      } else {
        st.issues.error(tpath, `${showValue(type)} is not a known network filter type (supported: ${supportedNetworkFilterTypes().join(', ')})`);
      }
    } else if (HARMLESS_MOSN_STREAM_FILTERS.has(type)) {
      st.issues.warn(tpath, `${showValue(type)} stream filter is not supported yet; ignored`);
    } else {
      // Unknown or security-relevant (ip_access, jwt_authn, payload_limit, flow control, wasm, ...):
      // silently skipping it could open access the config meant to restrict.
      st.issues.error(tpath, `${showValue(type)} stream filter is not supported; refusing to run without it`);
    }
  }
  return out;
}

interface BoundAddress {
  readonly key: string;
  readonly path: string;
  readonly host: string;
  readonly port: number;
}

function addressesConflict(a: BoundAddress, b: BoundAddress): boolean {
  if (a.port !== b.port || a.port === 0) return false;
  if (a.host === b.host) return true;
  const v4any = (h: string) => h === '0.0.0.0';
  const v6any = (h: string) => h === '::';
  const fam = (h: string) => net.isIP(h);
  if (v6any(a.host) || v6any(b.host)) return true; // dual-stack wildcard
  if (v4any(a.host)) return fam(b.host) !== 6;
  if (v4any(b.host)) return fam(a.host) !== 6;
  return false;
}

function parseListener(
  st: ParseState, l: ConfigObject, routerNames: Set<string>, listenerNames: Map<string, string>, bound: BoundAddress[],
): ListenerConfig | undefined {
  const network = (l.str('network', { def: 'tcp' }) || 'tcp').toLowerCase();
  if (network === 'udp' || network === 'unix') st.issues.error(l.at('network'), `${showValue(network)} listeners are not supported yet (only tcp)`);
  else if (network !== 'tcp') st.issues.error(l.at('network'), `${showValue(network)} must be tcp, udp or unix`);

  const addrStr = l.str('address', { required: true });
  let address: HostPort | undefined;
  if (addrStr !== undefined) {
    const r = parseHostPort(addrStr, { allowEmptyHost: true, allowPortZero: true });
    if (typeof r === 'string') st.issues.error(l.at('address'), `${showValue(addrStr)} is not host:port (${r})`);
    else address = r;
  }
  // MOSN (pkg/server/handler.go): a listener without a name is named after its address.
  const name = l.str('name') || addrStr || '';
  if (name !== '') {
    const prev = listenerNames.get(name);
    if (prev) st.issues.error(l.at('name'), `${showValue(name)} is a duplicate listener name (also ${prev})`);
    else listenerNames.set(name, l.at('name'));
  }

  // MOSN's bind_port defaults to false: such a listener only receives connections redirected to it.
  const bindPort = l.bool('bind_port', false);
  if (!bindPort && addrStr !== undefined) {
    st.issues.warn(l.at('bind_port'), 'false (the MOSN default): the listener will not bind its address; set "bind_port": true to accept connections');
  }
  if (address && bindPort) {
    const me: BoundAddress = { key: `${address.host}:${address.port}`, path: l.at('address'), host: address.host, port: address.port };
    const clash = bound.find((b) => addressesConflict(b, me));
    if (clash) st.issues.error(me.path, `${showValue(addrStr)} is already used by ${clash.path} (${clash.key})`);
    bound.push(me);
  }

  l.accept('type'); // ingress/egress: a label only
  l.warnIfSet('reuseport', 'SO_REUSEPORT is not supported yet; ignored');
  l.warnIfSet('default_read_buffer_size', 'not supported; ignored');
  l.warnIfSet('log_path', 'listener-level log_path is a legacy MOSN key; ignored (use access_logs)');
  l.warnIfSet('log_level', 'listener-level log_level is a legacy MOSN key; ignored');
  l.errorIfSet('use_original_dst', 'transparent proxying (original destination) is not supported yet');
  l.errorIfSet('listener_filters', 'listener filters are not supported yet');
  const inspector = l.bool('inspector', false);
  const connectionIdleTimeoutMs = l.duration('connection_idle_timeout', { def: DEFAULTS.connectionIdleTimeoutMs });
  // Not configurable in MOSN (json:"-"); accepted under Envoy's name as an Outrigger extension.
  const perConnBufferLimitBytes = l.int('per_connection_buffer_limit_bytes', { min: 1024, def: DEFAULTS.perConnBufferLimitBytes });

  const accessLogs: AccessLogConfig[] = [];
  for (const item of l.list('access_logs')) {
    const a = ConfigObject.from(st.issues, item.path, item.value);
    if (!a) continue;
    const path = a.str('log_path', { required: true });
    const format = a.str('log_format');
    a.done();
    if (path !== undefined) accessLogs.push(format ? { path, format } : { path });
  }

  const mkCtx = (listenerName: string): FilterValidationContext => ({
    issues: st.issues,
    error: (p, m) => st.issues.error(p, m),
    warn: (p, m) => st.issues.warn(p, m),
    hasCluster: (n) => st.clusterNames.has(n),
    hasRouter: (n) => routerNames.has(n),
    listenerName,
    object: (v, p) => ConfigObject.from(st.issues, p, v),
  });

  const chains: FilterChainConfig[] = [];
  const chainItems = l.list('filter_chains');
  if (chainItems.length === 0) st.issues.error(l.at('filter_chains'), 'exactly one filter chain is required');
  chainItems.forEach((item, i) => {
    if (i > 0) {
      st.issues.error(item.path, 'only one filter chain per listener is supported (as in MOSN)');
      return;
    }
    const fc = ConfigObject.from(st.issues, item.path, item.value);
    if (!fc) return;
    fc.warnIfSet('match', 'filter chain matching is not supported; ignored (the single chain always applies)');
    const tlsContexts: { ctx: TlsContextConfig; path: string }[] = [];
    const hasCtx = fc.has('tls_context');
    const set = fc.list('tls_context_set');
    if (hasCtx && set.length > 0) st.issues.error(fc.at('tls_context_set'), 'give either tls_context or tls_context_set, not both');
    if (hasCtx) {
      const t = parseTlsContext(st.issues, fc.get('tls_context'), fc.at('tls_context'), 'listener');
      if (t) tlsContexts.push({ ctx: t, path: fc.at('tls_context') });
    } else fc.accept('tls_context');
    for (const s of set) {
      // MOSN (pkg/mtls/provider.go): entries with status false are skipped.
      const t = parseTlsContext(st.issues, s.value, s.path, 'listener');
      if (t) tlsContexts.push({ ctx: t, path: s.path });
    }
    checkTlsSetConsistent(st.issues, tlsContexts);
    const fItems = fc.list('filters');
    if (fItems.length === 0) st.issues.error(fc.at('filters'), 'at least one network filter is required');
    const filters = parseFilterList(st, fItems, 'network', mkCtx, name);
    fc.done();
    chains.push(tlsContexts.length > 0 ? { filters, tlsContexts: tlsContexts.map((t) => t.ctx) } : { filters });
  });
  const streamFilters = parseFilterList(st, l.list('stream_filters'), 'stream', mkCtx, name);
  if (inspector && !chains.some((c) => c.tlsContexts !== undefined)) {
    st.issues.warn(l.at('inspector'), 'has no effect without an enabled tls_context (the inspector tells TLS from plaintext)');
  }
  l.done();
  if (!address) return undefined;
  return {
    name, address, bindPort, filterChains: chains, streamFilters, accessLogs, connectionIdleTimeoutMs, perConnBufferLimitBytes, inspector,
  };
}

function parseServer(
  st: ParseState, s: ConfigObject, listenerNames: Map<string, string>, bound: BoundAddress[],
): ServerConfig {
  s.accept('mosn_server_name');
  const defaultLogPath = s.str('default_log_path', { def: DEFAULTS.logPath }) || DEFAULTS.logPath;
  let defaultLogLevel: LogLevel = DEFAULTS.logLevel;
  const lvl = s.str('default_log_level');
  if (lvl !== undefined && lvl !== '') {
    const m = LOG_LEVELS[lvl.toUpperCase()];
    if (m) defaultLogLevel = m;
    else st.issues.error(s.at('default_log_level'), `${showValue(lvl)} is not a log level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL)`);
  }
  s.warnIfSet('global_log_roller', 'log rotation is not supported yet; ignored');
  s.warnIfSet('use_netpoll_mode', 'not applicable; ignored');

  // MOSN (pkg/configmanager/parser.go): an int (< 1 = all CPUs), or a string: "auto" or a number.
  let processor: number = DEFAULTS.processor;
  const pv = s.get('processor');
  if (pv !== undefined) {
    const p = s.at('processor');
    if (typeof pv === 'string') {
      if (pv.trim().toLowerCase() === 'auto') processor = 0;
      else if (/^\d+$/.test(pv.trim())) processor = s.checkInt(Number(pv.trim()), p, { min: 0, max: 1024 }) ?? 0;
      else st.issues.error(p, `${showValue(pv)} must be a number of workers or "auto"`);
    } else {
      processor = s.checkInt(pv, p, { min: 0, max: 1024 }) ?? 0;
    }
  }
  const gracefulTimeoutMs = s.duration('graceful_timeout', { def: DEFAULTS.gracefulTimeoutMs });
  // MOSN keeps its 30s default when graceful_timeout is 0 (pkg/server/server.go).
  const routers = parseRouters(st, s);
  const routerNames = new Set(routers.map((r) => r.name));
  const listeners: ListenerConfig[] = [];
  for (const item of s.list('listeners')) {
    const l = ConfigObject.from(st.issues, item.path, item.value);
    if (!l) continue;
    const parsed = parseListener(st, l, routerNames, listenerNames, bound);
    if (parsed) listeners.push(parsed);
  }
  s.done();
  return {
    defaultLogPath, defaultLogLevel, processor, gracefulTimeoutMs: gracefulTimeoutMs === 0 ? DEFAULTS.gracefulTimeoutMs : gracefulTimeoutMs,
    listeners, routers,
  };
}

function parseAdmin(st: ParseState, a: ConfigObject | undefined): AdminConfig {
  const def: AdminConfig = { address: { host: DEFAULTS.adminHost, port: DEFAULTS.adminPort } };
  if (!a) return def;
  const addr = a.obj('address');
  a.done();
  if (!addr) return def;
  const sa = addr.obj('socket_address');
  addr.done();
  if (!sa) return def;
  let host: string = DEFAULTS.adminHost;
  const h = sa.str('address');
  if (h !== undefined && h !== '') {
    const bare = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
    if (!isHostnameOrIp(bare)) st.issues.error(sa.at('address'), `${showValue(h)} is not an IP address or host name`);
    else host = net.isIPv6(bare) ? canonicalIpv6(bare) : bare.toLowerCase();
  }
  const pv = sa.get('port_value');
  let port: number = DEFAULTS.adminPort;
  if (pv !== undefined) port = sa.checkInt(pv, sa.at('port_value'), { min: 0, max: 65535 }) ?? DEFAULTS.adminPort;
  sa.accept('protocol');
  sa.done();
  if (host === '0.0.0.0' || host === '::') {
    st.issues.warn(sa.at('address'), `${showValue(host)} exposes the admin API (config dump, stats) on all interfaces; prefer 127.0.0.1`);
  }
  return { address: { host, port } };
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/** Parse and validate a MOSN config document (already JSON-decoded). Throws ConfigError listing every problem. */
export function parseConfig(doc: unknown, source?: string): OutriggerConfig {
  const issues = new IssueCollector();
  const st: ParseState = { issues, clusterNames: new Map() };
  if (!isPlainObject(doc)) {
    issues.error('', `the config document must be a JSON object, got ${showValue(doc)}`);
    throw new ConfigError(issues.errors, source);
  }
  const top = new ConfigObject(issues, '', doc);

  const clusters = parseClusterManager(st, top.obj('cluster_manager'));

  const servers: ServerConfig[] = [];
  const listenerNames = new Map<string, string>();
  const bound: BoundAddress[] = [];
  const serverItems = top.list('servers');
  if (serverItems.length === 0) issues.error('servers', 'exactly one server is required');
  serverItems.forEach((item, i) => {
    if (i > 0) issues.error(item.path, 'only one server is supported (as in MOSN)');
    const s = ConfigObject.from(issues, item.path, item.value);
    if (s) servers.push(parseServer(st, s, listenerNames, bound));
  });

  const admin = parseAdmin(st, top.obj('admin'));

  // Harmless MOSN features we do not implement: warn.
  const tracing = top.obj('tracing');
  if (tracing) {
    if (tracing.bool('enable', false)) issues.warn(tracing.at('enable'), 'tracing is not supported yet; ignored');
    tracing.accept('tracer', 'driver', 'config');
    tracing.done();
  }
  top.warnIfSet('metrics', 'metrics sinks/settings are not supported yet; ignored (stats are served by the admin API)');
  const pprof = top.obj('pprof');
  if (pprof) {
    if (pprof.bool('debug', false)) issues.warn(pprof.at('debug'), 'pprof is not applicable to Outrigger; ignored');
    pprof.accept('port_value', 'endpoint');
    pprof.done();
  }
  top.warnIfSet('disable_upgrade', 'hot upgrade is not supported; ignored');
  top.warnIfSet('close_graceful', 'deprecated MOSN key; ignored');
  top.warnIfSet('inherit_old_mosnconfig', 'hot upgrade is not supported; ignored');
  top.warnIfSet('pid', 'pid files are not supported yet; ignored');
  top.warnIfSet('uds_dir', 'not supported; ignored');
  top.warnIfSet('plugin', 'MOSN plugins are not supported; ignored');
  // Unsafe to ignore: they define listeners, clusters or request handling we would silently lack.
  top.errorIfSet('dynamic_resources', 'xDS (dynamic_resources) is not supported yet');
  top.errorIfSet('static_resources', 'xDS (static_resources) is not supported yet; use servers and cluster_manager');
  top.warnIfSet('node', 'xDS node info is not used; ignored');
  top.errorIfSet('third_part_codec', 'third-party codecs are not supported');
  top.errorIfSet('extends', 'MOSN extends are not supported');
  top.errorIfSet('wasm_global_plugins', 'WebAssembly plugins are not supported');
  const hostile = parseHostileTrafficSections(top); // limits, overload_manager (src/overload/config.ts)
  top.done();

  if (issues.errors.length > 0) throw new ConfigError(issues.errors, source, issues.warnings);
  return deepFreeze({ servers, clusters, admin, ...hostile, raw: redactConfig(doc), warnings: issues.warnings });
}

/** 1-based line:column of a character offset, for JSON syntax errors. */
function lineCol(text: string, pos: number): string {
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  return `line ${line} column ${col}`;
}

/**
 * Offset of the first JSON syntax error (V8 does not always say where). Only called after
 * JSON.parse failed, so it just needs to stop at the right place.
 */
function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const str = (): void => {
    if (text[i] !== '"') fail();
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail();
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      }
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const value = (): void => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++;
      ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws(); str(); ws();
        if (text[i] !== ':') fail();
        i++;
        value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return; }
        fail();
      }
    } else if (ch === '[') {
      i++;
      ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return; }
        fail();
      }
    } else if (ch === '"') {
      str();
    } else {
      const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
      if (!m) fail();
      i += m![0].length;
    }
  };
  try {
    value();
    ws();
    return i < text.length ? i : undefined;
  } catch (at) {
    return typeof at === 'number' ? at : undefined;
  }
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([{ path: '', message: `cannot read config file: ${(e as Error).message}` }], path);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const msg = (e as Error).message.replace(/\r?\n/g, '\\n');
    const m = /position (\d+)/.exec(msg);
    const pos = m ? Number(m[1]) : jsonErrorOffset(text);
    const where = pos !== undefined && !/line \d+/.test(msg) ? ` (${lineCol(text, pos)})` : '';
    throw new ConfigError([{ path: '', message: `invalid JSON: ${msg}${where}` }], path);
  }
}

/** Read, parse and validate a MOSN JSON config file. Throws ConfigError. */
export function loadConfigFile(path: string): OutriggerConfig {
  return parseConfig(readJson(path), path);
}

export interface ValidationResult {
  readonly ok: boolean;
  readonly errors: readonly ConfigIssue[];
  readonly warnings: readonly string[];
}

/** For `outrigger validate -c FILE`: never throws for config problems. */
export function validateConfigFile(path: string): ValidationResult {
  try {
    const cfg = loadConfigFile(path);
    return { ok: true, errors: [], warnings: cfg.warnings ?? [] };
  } catch (e) {
    if (e instanceof ConfigError) return { ok: false, errors: e.errors, warnings: e.warnings };
    throw e;
  }
}

/** Where the embedded default config lives (tsc copies default.json next to the compiled module). */
export const DEFAULT_CONFIG_PATH = nodePath.join(__dirname, 'default.json');

/** The embedded default config (used by `npm start` without -c): TCP proxy 127.0.0.1:2045 -> 127.0.0.1:8080. */
export function loadDefaultConfig(): OutriggerConfig {
  return parseConfig(embeddedDefault, 'embedded default.json');
}
