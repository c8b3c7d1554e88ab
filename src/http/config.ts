/**
 * The HTTP family of the MOSN `proxy` network filter: validation (main thread, at load) and
 * the normalized config the worker builds its factory from.
 *
 *   downstream_protocol: "Http1" | "Http2" | "Auto" (h2 prior-knowledge preface vs HTTP/1.1)
 *   upstream_protocol:   "Http1" | "Http2" | "Auto"/absent (= the protocol the request came in on)
 *
 * A proxy config belongs to this family when either protocol names Http1 or Http2 ("Auto"
 * alone stays with the RPC family, as before). Limits live in extend_config, MOSN-style:
 *
 *   max_header_size (bytes, 16 KiB)      max_headers (count, 100)
 *   headers_timeout (10s: whole request head must arrive)   request_timeout (5m: whole request)
 *   idle_timeout (60s, keep-alive)        max_request_body_retry_buffer (64 KiB: larger bodies are not retried)
 *   h2_max_concurrent_streams (100)       h2_initial_window_size (1 MiB)
 *   h2_max_header_list_size (= max_header_size)   connections_per_host (HTTP/1.1 pool, 1024)
 *   default_timeout (60s, when a route gives none)  generate_request_id (true)
 *   normalize_path (true)  merge_slashes (true)   (Envoy's names; see src/router/path.ts)
 *   path_with_escaped_slashes_action ("KEEP_UNCHANGED" | "REJECT_REQUEST" | "UNESCAPE_AND_REDIRECT"
 *                                     | "UNESCAPE_AND_FORWARD"; default KEEP_UNCHANGED, as Envoy)
 */
import { parseProxyFilterConfig, type FilterValidationContext } from '../config/parse';
import { showValue } from '../config/errors';
import { extendConfigReader } from '../proxy/extend-config';
import { DEFAULT_PATH_OPTIONS, ESCAPED_SLASHES_ACTIONS, type PathOptions } from '../router/path';

export type HttpProtocol = 'http1' | 'http2' | 'auto';

export interface HttpProxyConfig {
  readonly family: 'http';
  readonly routerConfigName: string;
  readonly downstream: HttpProtocol;
  /** 'auto' = same as the downstream request. */
  readonly upstream: HttpProtocol;
  readonly maxHeaderSize: number;
  readonly maxHeaders: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxRetryBuffer: number;
  readonly h2MaxConcurrentStreams: number;
  readonly h2InitialWindowSize: number;
  readonly h2MaxHeaderListSize: number;
  readonly connectionsPerHost: number;
  readonly defaultTimeoutMs: number;
  readonly generateRequestId: boolean;
  /** Request-target normalization before routing (src/router/path.ts). */
  readonly paths: PathOptions;
  /** MOSN fallback_for_unknown_protocol: bytes that are not HTTP go to the chain's next filter (src/filters/network/chain.ts). */
  readonly fallbackForUnknownProtocol?: boolean;
}

export const HTTP_DEFAULTS = Object.freeze({
  maxHeaderSize: 16 * 1024,
  maxHeaders: 100,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  idleTimeoutMs: 60_000,
  maxRetryBuffer: 64 * 1024,
  h2MaxConcurrentStreams: 100,
  h2InitialWindowSize: 1024 * 1024,
  connectionsPerHost: 1024,
  defaultTimeoutMs: 60_000,
  paths: DEFAULT_PATH_OPTIONS,
});

const NAMES: Readonly<Record<string, HttpProtocol>> = { http1: 'http1', http2: 'http2', auto: 'auto' };

function field(raw: unknown, key: string): unknown {
  if (typeof raw !== 'object' || raw === null) return undefined;
  for (const [k, v] of Object.entries(raw)) if (k.toLowerCase() === key) return v;
  return undefined;
}

/** Whether a raw `proxy` config names an HTTP protocol. */
export function claimsHttp(raw: unknown): boolean {
  for (const key of ['downstream_protocol', 'upstream_protocol']) {
    const v = field(raw, key);
    if (typeof v !== 'string') continue;
    for (const p of v.split(',')) {
      const n = p.trim().toLowerCase();
      if (n === 'http1' || n === 'http2') return true;
    }
  }
  return false;
}

export function parseHttpProxyConfig(config: unknown, path: string, ctx: FilterValidationContext): HttpProxyConfig {
  const base = parseProxyFilterConfig(config, path, ctx);
  let downstream: HttpProtocol = 'auto';
  const downs = base.downstreamProtocols.map((p) => p.toLowerCase());
  if (downs.length !== 1 || NAMES[downs[0]] === undefined) {
    ctx.error(`${path}.downstream_protocol`, `${showValue(base.downstreamProtocols.join(','))}: an HTTP proxy takes one of Http1, Http2, Auto (mixing HTTP with RPC protocols on one listener is not supported)`);
  } else downstream = NAMES[downs[0]];
  let upstream: HttpProtocol = 'auto';
  if (base.upstreamProtocol !== undefined) {
    const u = NAMES[base.upstreamProtocol.toLowerCase()];
    if (u === undefined) ctx.error(`${path}.upstream_protocol`, `${showValue(base.upstreamProtocol)}: an HTTP proxy forwards with Http1, Http2 or Auto`);
    else upstream = u;
  }
  const rd = extendConfigReader(base.extendConfig, path, ctx);
  const lower = rd.lower;
  const ecPath = rd.path;
  const num = rd.num;
  const dur = rd.dur;
  const maxHeaderSize = num('max_header_size', HTTP_DEFAULTS.maxHeaderSize, 1024, 1024 * 1024);
  const flag = (key: string, def: boolean): boolean => {
    const v = lower.get(key);
    if (v === undefined) return def;
    if (typeof v !== 'boolean') ctx.error(`${ecPath}.${key}`, `${showValue(v)} must be true or false`);
    return typeof v === 'boolean' ? v : def;
  };
  const gen = flag('generate_request_id', true);
  const esc = lower.get('path_with_escaped_slashes_action');
  const escAction = typeof esc === 'string' ? ESCAPED_SLASHES_ACTIONS[esc.toUpperCase()] : undefined;
  if (esc !== undefined && escAction === undefined) {
    ctx.error(`${ecPath}.path_with_escaped_slashes_action`, `${showValue(esc)} must be one of ${Object.keys(ESCAPED_SLASHES_ACTIONS).join(', ')}`);
  }
  const paths: PathOptions = {
    normalize: flag('normalize_path', HTTP_DEFAULTS.paths.normalize),
    mergeSlashes: flag('merge_slashes', HTTP_DEFAULTS.paths.mergeSlashes),
    escapedSlashes: escAction ?? HTTP_DEFAULTS.paths.escapedSlashes,
  };
  return {
    family: 'http',
    routerConfigName: base.routerConfigName,
    downstream,
    upstream,
    maxHeaderSize,
    maxHeaders: num('max_headers', HTTP_DEFAULTS.maxHeaders, 1, 10_000),
    headersTimeoutMs: dur('headers_timeout', HTTP_DEFAULTS.headersTimeoutMs),
    requestTimeoutMs: dur('request_timeout', HTTP_DEFAULTS.requestTimeoutMs),
    idleTimeoutMs: dur('idle_timeout', HTTP_DEFAULTS.idleTimeoutMs),
    maxRetryBuffer: num('max_request_body_retry_buffer', HTTP_DEFAULTS.maxRetryBuffer, 0, 64 * 1024 * 1024),
    h2MaxConcurrentStreams: num('h2_max_concurrent_streams', HTTP_DEFAULTS.h2MaxConcurrentStreams, 1, 65_535),
    h2InitialWindowSize: num('h2_initial_window_size', HTTP_DEFAULTS.h2InitialWindowSize, 65_535, 0x7fffffff),
    h2MaxHeaderListSize: num('h2_max_header_list_size', maxHeaderSize, 1024, 1024 * 1024),
    connectionsPerHost: num('connections_per_host', HTTP_DEFAULTS.connectionsPerHost, 1, 4096),
    defaultTimeoutMs: dur('default_timeout', HTTP_DEFAULTS.defaultTimeoutMs),
    generateRequestId: gen,
    paths,
    ...(base.fallbackForUnknownProtocol ? { fallbackForUnknownProtocol: true } : {}),
  };
}
