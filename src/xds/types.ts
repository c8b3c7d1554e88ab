/**
 * The contract between the three parts of the xDS support (issue #12):
 *
 *   src/xds/proto.ts      decodes Envoy v3 resources (protobufjs over the protos shipped in
 *                         @grpc/grpc-js-xds) into XdsMessage objects;
 *   src/xds/translate/    turns one XdsMessage into Outrigger's validated config model
 *                         (src/config/types.ts) or refuses it with an XdsResourceError (a NACK);
 *   src/xds/client.ts     the ADS client and the resource store: it keeps the latest accepted
 *                         resources, warms them (a cluster waits for its endpoints, a listener
 *                         for its routes and secrets), assembles an OutriggerConfig (static
 *                         config + warm dynamic resources) and hands it to Server.reload().
 *
 * Nothing here does I/O; the types are shared so that the parts can be built in parallel.
 */
import type { ClusterConfig, HostConfig, ListenerConfig, RouterConfig, TlsSource } from '../config/types';

export const TYPE_URL = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoints: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;

export type ResourceKind = keyof typeof TYPE_URL;

/**
 * A decoded xDS resource: protobufjs `toObject` output with
 * `{ longs: String, enums: String, bytes: String, defaults: false, json: true }`: camelCase
 * field names, 64-bit integers and enums as strings, bytes as base64, `google.protobuf.Any`
 * expanded in place to `{ '@type': typeUrl, ...fields }` (recursively). Wrapper types stay
 * objects (`{ value: 3 }`), Durations stay `{ seconds: '1', nanos: 0 }`.
 */
export type XdsMessage = Readonly<Record<string, unknown>>;

/** A resource that cannot be applied: the client NACKs it with `resource: path: reason`. */
export class XdsResourceError extends Error {
  constructor(
    /** Resource name (listener / cluster / route config / cluster_name / secret name). */
    readonly resource: string,
    /** Field path inside the resource, e.g. `filterChains[1].filters[0].typedConfig.routeConfig`. */
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${resource}: ${path ? `${path}: ` : ''}${reason}`);
    this.name = 'XdsResourceError';
  }
}

/** What a translated resource still needs before it may be used (warming). Names are resource names. */
export interface Dependencies {
  /** RDS route configurations (listeners). */
  readonly routes: readonly string[];
  /** SDS secrets (listeners and clusters). */
  readonly secrets: readonly string[];
  /** EDS ClusterLoadAssignments (clusters). */
  readonly endpoints: readonly string[];
}

export interface TranslationContext {
  /** SDS secrets that have arrived; a missing one is listed in `deps.secrets` and the resource waits. */
  secret(name: string): TranslatedSecret | undefined;
  /** A harmless feature that is skipped (telemetry-only or `isOptional` filters, unknown fields). */
  warn(resource: string, path: string, message: string): void;
}

export interface TranslatedListener {
  readonly name: string;
  readonly listener: ListenerConfig;
  /** Route configurations carried inline (HttpConnectionManager.routeConfig). */
  readonly routers: readonly RouterConfig[];
  readonly deps: Dependencies;
}

export interface TranslatedCluster {
  readonly name: string;
  /** For an EDS cluster `hosts` is empty: the store fills it from the ClusterLoadAssignment. */
  readonly cluster: ClusterConfig;
  /** EDS: the ClusterLoadAssignment name to wait for (edsClusterConfig.serviceName or the cluster name). */
  readonly edsName?: string;
  readonly deps: Dependencies;
}

export interface TranslatedRoute {
  readonly name: string;
  readonly router: RouterConfig;
}

export interface TranslatedEndpoints {
  /** ClusterLoadAssignment.clusterName. */
  readonly name: string;
  /** Healthy and unknown-health endpoints with their weights (locality weight × endpoint weight). */
  readonly hosts: readonly HostConfig[];
}

export interface TranslatedSecret {
  readonly name: string;
  readonly certChain?: TlsSource;
  readonly privateKey?: TlsSource;
  /** Validation context: trusted CA. */
  readonly caCert?: TlsSource;
}

/** Pure functions: no I/O, no state. Each throws XdsResourceError to NACK. */
export interface XdsTranslator {
  listener(m: XdsMessage, ctx: TranslationContext): TranslatedListener;
  cluster(m: XdsMessage, ctx: TranslationContext): TranslatedCluster;
  route(m: XdsMessage, ctx: TranslationContext): TranslatedRoute;
  endpoints(m: XdsMessage, ctx: TranslationContext): TranslatedEndpoints;
  secret(m: XdsMessage, ctx: TranslationContext): TranslatedSecret;
}
