/**
 * Config deltas between the main thread and the workers: the main thread keeps the whole config
 * and sends a worker only the clusters that are new or changed in a version (by the per-resource
 * versions) and the names of the removed ones; the worker applies them to its running config.
 * Listeners and route configs (few) travel whole. The raw document (config_dump) stays on the
 * main thread.
 */
import type { ClusterConfig, OutriggerConfig } from '../config/types';
import type { ResourceVersions } from '../config/versions';
import type { ConfigDelta } from './messages';

/** The config without its raw document (what workers get). */
export function withoutRaw(config: OutriggerConfig): OutriggerConfig {
  return { ...config, raw: null };
}

/** Delta from `before` (committed as version `base`) to `config` (snapshot `version` with `versions`). */
export function configDelta(base: number, before: OutriggerConfig, config: OutriggerConfig, versions: ResourceVersions, version: number): ConfigDelta {
  const { clusters, raw: _raw, ...rest } = config;
  const now = new Set<string>();
  const changed: ClusterConfig[] = [];
  for (const c of clusters) {
    now.add(c.name);
    if (versions[`cluster/${c.name}`] === version || versions[`secret/cluster/${c.name}`] === version) changed.push(c);
  }
  const removedClusters = before.clusters.filter((c) => !now.has(c.name)).map((c) => c.name);
  return { kind: 'delta', base, rest, clusters: changed, removedClusters };
}

/** The worker's side: `running` (version `delta.base`) with the delta applied. */
export function applyDelta(running: OutriggerConfig, runningVersion: number, delta: ConfigDelta): OutriggerConfig {
  if (runningVersion !== delta.base) throw new Error(`config delta for version ${delta.base}, but version ${runningVersion} is running`);
  const removed = new Set(delta.removedClusters);
  const changed = new Map<string, ClusterConfig>();
  for (const c of delta.clusters) changed.set(c.name, c);
  const clusters: ClusterConfig[] = [];
  for (const c of running.clusters) {
    if (removed.has(c.name)) continue;
    const n = changed.get(c.name);
    clusters.push(n ?? c);
    if (n !== undefined) changed.delete(c.name);
  }
  for (const c of changed.values()) clusters.push(c);
  return { ...delta.rest, clusters, raw: null };
}

export function isDelta(c: OutriggerConfig | ConfigDelta): c is ConfigDelta {
  return (c as Partial<ConfigDelta>).kind === 'delta';
}
