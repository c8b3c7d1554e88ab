/**
 * Validation of the MOSN `proxy` network filter for the multiplexed RPC protocols, registered
 * in the config validator registry (runs in the main thread at load time).
 *
 * MOSN spellings accepted for downstream_protocol / upstream_protocol (case-insensitive):
 *   "bolt", "boltv2", "dubbo"             (MOSN >= 0.20 xprotocol sub-protocols)
 *   "X" / "xprotocol" + extend_config.sub_protocol = "bolt" | "boltv2"   (MOSN 0.x)
 *   "SofaRpc"                             (the oldest name: bolt)
 *   "Auto"                                (pick per connection from the first bytes: Bolt v1/v2,
 *                                          Dubbo, HTTP/1.1, h2 preface, TLS; src/proxy/detect.ts)
 *   fallback_for_unknown_protocol: true   (MOSN key, beside downstream_protocol): with a tcp_proxy
 *                                          filter after `proxy` in the chain, bytes of an unknown
 *                                          protocol are proxied as TCP instead of closed
 * upstream_protocol defaults to the downstream one ("Auto": the protocol detected).
 *
 * Outrigger options live in extend_config (MOSN keeps protocol options there too):
 *   max_frame_size (bytes, default 16 MiB; Dubbo: 16 + its own 8 MiB payload limit), connections_per_host (default 1),
 *   keepalive_interval / keepalive_timeout (Go durations, default 15s / 3s; "0" disables),
 *   default_timeout (used when neither the request nor the route gives one; default 60s).
 */
import { parseProxyFilterConfig, registerFilterValidator, type FilterValidationContext } from '../config/parse';
import { showValue } from '../config/errors';
import '../filters/stream';
import { extendConfigReader } from './extend-config';
import { getCodec } from '../protocol/types';
import { proxyFamilyForRaw } from './families';
import '../protocol/bolt/xcodec';
import '../protocol/dubbo/xcodec';
import '../protocol/example/xcodec';

export interface RpcProxyConfig {
  readonly routerConfigName: string;
  /** Codec names, or ['auto']. */
  readonly downstreamProtocols: readonly string[];
  /** Codec name, or '' = same as downstream. */
  readonly upstreamProtocol: string;
  readonly maxFrameSize: number;
  /** max_frame_size was configured (else codecs with their own default limit use it). */
  readonly maxFrameSizeExplicit?: boolean;
  /** MOSN fallback_for_unknown_protocol: unknown bytes go to the chain's tcp_proxy filter. */
  readonly fallbackForUnknownProtocol?: boolean;
  readonly connectionsPerHost: number;
  readonly keepaliveIntervalMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly defaultTimeoutMs: number;
}

export const RPC_PROXY_DEFAULTS = Object.freeze({
  maxFrameSize: 16 * 1024 * 1024,
  connectionsPerHost: 1,
  keepaliveIntervalMs: 15_000,
  keepaliveTimeoutMs: 3_000,
  /** MOSN proxy default global timeout (types.GlobalTimeout = 60s). */
  defaultTimeoutMs: 60_000,
});

const X_NAMES = new Set(['x', 'xprotocol']);

function resolveProtocol(name: string, sub: string | undefined, path: string, ctx: FilterValidationContext): string | undefined {
  const n = name.toLowerCase();
  if (n === 'auto') return 'auto';
  if (X_NAMES.has(n)) {
    if (sub === undefined || sub === '') {
      ctx.error(path, `${showValue(name)} needs extend_config.sub_protocol (e.g. "bolt")`);
      return undefined;
    }
    return resolveProtocol(sub, undefined, path, ctx);
  }
  const c = getCodec(n);
  if (c === undefined) {
    ctx.error(path, `${showValue(name)} is not a supported proxy protocol yet (supported: bolt, boltv2, dubbo, SofaRpc, X + sub_protocol, Auto)`);
    return undefined;
  }
  return c.name;
}

export function parseRpcProxyConfig(config: unknown, path: string, ctx: FilterValidationContext): RpcProxyConfig {
  const base = parseProxyFilterConfig(config, path, ctx);
  const ec = base.extendConfig;
  const rd = extendConfigReader(ec, path, ctx);
  const lower = rd.lower;
  const subRaw = lower.get('sub_protocol');
  const sub = typeof subRaw === 'string' ? subRaw : undefined;
  const downs: string[] = [];
  for (const p of base.downstreamProtocols) {
    const r = resolveProtocol(p, sub, `${path}.downstream_protocol`, ctx);
    if (r !== undefined && !downs.includes(r)) downs.push(r);
  }
  if (downs.includes('auto') && downs.length > 1) downs.splice(0, downs.length, 'auto');
  let up = '';
  if (base.upstreamProtocol !== undefined) {
    const r = resolveProtocol(base.upstreamProtocol, sub, `${path}.upstream_protocol`, ctx);
    if (r !== undefined && r !== 'auto') up = r;
  }
  const num = rd.num;
  const dur = rd.dur;
  return {
    routerConfigName: base.routerConfigName,
    downstreamProtocols: downs,
    upstreamProtocol: up,
    maxFrameSize: num('max_frame_size', RPC_PROXY_DEFAULTS.maxFrameSize, 64, 0x7fffffff),
    maxFrameSizeExplicit: lower.has('max_frame_size'),
    fallbackForUnknownProtocol: base.fallbackForUnknownProtocol,
    connectionsPerHost: num('connections_per_host', RPC_PROXY_DEFAULTS.connectionsPerHost, 1, 1024),
    keepaliveIntervalMs: dur('keepalive_interval', RPC_PROXY_DEFAULTS.keepaliveIntervalMs),
    keepaliveTimeoutMs: dur('keepalive_timeout', RPC_PROXY_DEFAULTS.keepaliveTimeoutMs),
    defaultTimeoutMs: dur('default_timeout', RPC_PROXY_DEFAULTS.defaultTimeoutMs),
  };
}

registerFilterValidator('proxy', (config, path, ctx) => {
  // Another protocol family (HTTP, src/http) may claim the config first.
  const family = proxyFamilyForRaw(config);
  if (family !== undefined) return family.validate(config, path, ctx);
  return parseRpcProxyConfig(config, path, ctx) as unknown as Record<string, unknown>;
});
