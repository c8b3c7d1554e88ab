/**
 * The retry budget of a cluster: circuit_breakers max_retries (0 = no limit) bounds the retries
 * in flight. Every protocol asks through acquireRetry / releaseRetry, so the count can move to
 * counters shared by all workers without touching the callers; for now it is per worker.
 */
import type { Cluster } from '../upstream/cluster';

/** Retries in flight per cluster name (kept across reloads of the same cluster). */
const active = new Map<string, number>();

/** Takes one retry from the cluster's budget; false when max_retries retries are already in flight. */
export function acquireRetry(cluster: Cluster): boolean {
  const max = cluster.config.circuitBreakers.maxRetries;
  const n = active.get(cluster.name) ?? 0;
  if (max > 0 && n >= max) return false;
  active.set(cluster.name, n + 1);
  return true;
}

/** A retried attempt ended (answered, failed or abandoned). */
export function releaseRetry(cluster: Cluster): void {
  const n = active.get(cluster.name) ?? 0;
  if (n > 0) active.set(cluster.name, n - 1);
}
