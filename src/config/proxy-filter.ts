/** The MOSN shape of the L7 `proxy` network filter config (protocol validators refine it). */
import { showValue } from './errors';
import type { FilterValidationContext } from './filter-registry';
import { ConfigObject } from './reader';
import { isPlainObject } from './values';

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
