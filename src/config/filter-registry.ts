/** Registries of network and stream filter config validators (filled by the filter modules). */
import type { ConfigObject, IssueCollector } from './reader';

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

export const networkFilterValidators = new Map<string, FilterValidator>();
// Stream filters have one registry: the filter kinds of src/api/stream-filter.ts (validate + create).

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

/** Network filter types with a registered validator (tcp_proxy is built in). */
export function supportedNetworkFilterTypes(): string[] {
  return [...networkFilterValidators.keys()].sort();
}

/** MOSN network filters we know of but do not implement (pkg/config/v2/filter.go and pkg/filter/network). */
export const KNOWN_MOSN_NETWORK_FILTERS = new Set([
  'proxy', 'connection_manager', 'udp_proxy', 'fault_inject', 'rpc_proxy', 'x_proxy', 'transcoder', 'grpc', 'tunnel',
]);

/** MOSN stream filters whose absence cannot weaken security: dropped with a warning. */
export const HARMLESS_MOSN_STREAM_FILTERS = new Set([
  'gzip', 'grpc_metric', 'healthcheck',
]);

// ---------------------------------------------------------------------------------------------
