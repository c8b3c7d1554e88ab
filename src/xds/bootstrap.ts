/**
 * xDS entry points: config files in YAML (Envoy v3 bootstraps as pilot-agent writes them) or
 * JSON, the static Envoy resources of a bootstrap, and starting the ADS client beside a running
 * Sidecar.
 *
 *   outrigger start -c envoy-bootstrap.yaml
 *     -> loadAnyConfigFile: YAML/JSON -> parseConfig (src/config/xds.ts reads node,
 *        static_resources, dynamic_resources)
 *     -> withStaticResources: static Envoy listeners/clusters/secrets translated into the base config
 *     -> Sidecar.start(base); startXds: the ADS client + store, each accepted update -> Sidecar.reload()
 */
import { ConfigError, type ConfigIssue } from '../config/errors';
import type { ClusterConfig, ListenerConfig, OutriggerConfig, RouterConfig, XdsConfig } from '../config/types';
import { XdsClient, type XdsClientLog, type XdsClientStats } from './client';
import { istioNode, type NodeInfo } from './node';
import { fromJson } from './proto';
import { XdsStore, type StoreLog } from './store';
import { TYPE_URL, XdsResourceError, type ResourceKind, type TranslatedSecret, type TranslationContext, type XdsTranslator } from './types';

// Kept here for the callers that load a bootstrap; it lives with the config loaders (no xDS modules).
export { loadAnyConfigFile } from '../config/any-file';

function staticContext(secrets: ReadonlyMap<string, TranslatedSecret>, warnings: string[]): TranslationContext {
  return {
    secret: (name) => secrets.get(name),
    warn: (resource, path, message) => warnings.push(`${resource}${path ? `: ${path}` : ''}: ${message}`),
  };
}

/**
 * The config with the static Envoy resources of its bootstrap translated in (listeners, clusters,
 * secrets). Throws a ConfigError naming the JSON path of each resource that does not translate or
 * that would wait for a dynamic resource (static resources are used as they are).
 */
export function withStaticResources(config: OutriggerConfig, translator: XdsTranslator): OutriggerConfig {
  const x = config.xds;
  if (x === undefined || (x.staticListeners.length === 0 && x.staticClusters.length === 0)) return config;
  const issues: ConfigIssue[] = [];
  const warnings: string[] = [...(config.warnings ?? [])];
  const secrets = new Map<string, TranslatedSecret>();
  const ctx = staticContext(secrets, warnings);
  const attempt = <T>(kind: ResourceKind, path: string, json: unknown, run: (m: ReturnType<typeof fromJson>) => T): T | undefined => {
    try {
      return run(fromJson(TYPE_URL[kind], json));
    } catch (e) {
      issues.push({ path, message: e instanceof XdsResourceError ? e.message : e instanceof Error ? e.message : String(e) });
      return undefined;
    }
  };
  for (const s of x.staticSecrets) {
    const t = attempt('secret', s.path, s.json, (m) => translator.secret(m, ctx));
    if (t) secrets.set(t.name, t);
  }
  const clusters: ClusterConfig[] = [];
  for (const c of x.staticClusters) {
    const t = attempt('cluster', c.path, c.json, (m) => translator.cluster(m, ctx));
    if (!t) continue;
    if (t.edsName !== undefined || t.deps.endpoints.length > 0 || t.deps.secrets.length > 0) {
      issues.push({ path: c.path, message: 'a static cluster cannot wait for EDS or SDS resources; use STATIC endpoints and inline secrets' });
      continue;
    }
    clusters.push(t.cluster);
  }
  const listeners: ListenerConfig[] = [];
  const routers: RouterConfig[] = [];
  for (const l of x.staticListeners) {
    const t = attempt('listener', l.path, l.json, (m) => translator.listener(m, ctx));
    if (!t) continue;
    if (t.deps.routes.length > 0 || t.deps.secrets.length > 0) {
      issues.push({ path: l.path, message: 'a static listener cannot wait for RDS or SDS resources; use an inline route_config and inline secrets' });
      continue;
    }
    listeners.push(t.listener);
    routers.push(...t.routers);
  }
  if (issues.length > 0) throw new ConfigError(issues, undefined, warnings);
  const [s0, ...rest] = config.servers;
  const servers = s0 === undefined ? [] : [{ ...s0, listeners: [...s0.listeners, ...listeners], routers: [...s0.routers, ...routers] }, ...rest];
  return { ...config, servers, clusters: [...config.clusters, ...clusters], warnings };
}

/** The node to announce: the bootstrap's fields over Istio's defaults from the environment. */
export function nodeOf(x: XdsConfig, env: NodeJS.ProcessEnv = process.env): NodeInfo {
  const def = istioNode({}, env);
  const n = x.node;
  return {
    id: n?.id ?? def.id,
    cluster: n?.cluster ?? def.cluster,
    metadata: n?.metadata !== undefined ? n.metadata : def.metadata,
    locality: n?.locality,
  };
}

export interface XdsRuntime {
  readonly client: XdsClient;
  readonly store: XdsStore;
  /**
   * Envoy's initialization: ready once the first CDS and LDS responses were handled (ACK or NACK)
   * and what they brought was applied, or after the initial fetch timeout (15 s, as Envoy) so that
   * a control plane that is away does not keep the static part from serving.
   */
  initialized(): boolean;
  /** config_dump: the static document and the dynamic resources with versions and the last NACK per type. */
  dump(staticRaw: unknown): unknown;
  close(): void;
}

export interface StartXdsOptions {
  /** The running base config (static + static Envoy resources); must carry `xds`. */
  readonly base: OutriggerConfig;
  readonly translator: XdsTranslator;
  /** Server.reload(). */
  apply(config: OutriggerConfig): Promise<void>;
  readonly log: XdsClientLog & StoreLog;
  /** Prometheus: name, value, counter or gauge (StatsHub.setExtra). */
  readonly metric?: (name: string, value: number, type: 'counter' | 'gauge', help: string) => void;
  readonly version?: string;
  readonly coalesceMs?: number;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** /ready waits at most this long for the first CDS and LDS (default 15 s). */
  readonly initialFetchTimeoutMs?: number;
}

const SHORT: Record<ResourceKind, string> = { listener: 'lds', cluster: 'cds', route: 'rds', endpoints: 'eds', secret: 'sds' };

/** Starts the ADS client for a config with `xds`. */
export function startXds(o: StartXdsOptions): XdsRuntime {
  const x = o.base.xds;
  if (x === undefined) throw new Error('startXds: the config has no dynamic_resources');
  const store = new XdsStore({ base: o.base, translator: o.translator, apply: o.apply, log: o.log, coalesceMs: o.coalesceMs });
  const publish = (s: XdsClientStats): void => {
    const m = o.metric;
    if (!m) return;
    m('xds_connected', s.connected ? 1 : 0, 'gauge', 'ADS stream to the control plane is up (1) or not (0)');
    m('xds_streams', s.streams, 'counter', 'ADS streams opened (reconnects included)');
    for (const k of Object.keys(SHORT) as ResourceKind[]) {
      m(`xds_${SHORT[k]}_updates`, s.acks[k], 'counter', `${SHORT[k].toUpperCase()} responses accepted (ACK)`);
      m(`xds_${SHORT[k]}_rejected`, s.nacks[k], 'counter', `${SHORT[k].toUpperCase()} responses rejected (NACK)`);
    }
    m('xds_reloads', store.counts.reloads, 'counter', 'config reloads caused by xDS updates');
    m('xds_reload_failures', store.counts.reloadFailures, 'counter', 'assembled xDS configs the server refused');
  };
  const client = new XdsClient({
    target: x.target,
    delta: x.delta,
    node: nodeOf(x),
    setNodeOnFirstMessageOnly: x.setNodeOnFirstMessageOnly,
    store,
    log: o.log,
    version: o.version,
    initialBackoffMs: o.initialBackoffMs,
    maxBackoffMs: o.maxBackoffMs,
    onStats: publish,
  });
  publish(client.stats);
  client.start();
  const started = Date.now();
  const fetchTimeoutMs = o.initialFetchTimeoutMs ?? 15_000;
  return {
    client,
    store,
    initialized: () => (client.stats.answered.has('cluster') && client.stats.answered.has('listener')) || Date.now() - started >= fetchTimeoutMs,
    dump: (staticRaw) => ({ static: staticRaw, dynamic: store.dump(), connected: client.stats.connected }),
    close: () => {
      client.close();
      store.close();
    },
  };
}
