/**
 * The retry budget of a cluster: circuit_breakers max_retries (0 = no limit) bounds the retries
 * in flight. Every protocol asks through acquireRetry / releaseRetry; the count lives in the
 * cluster's circuit-breaker cells, shared by every worker (src/upstream/breakers.ts), so a limit
 * means the same with 1 worker or 8. Overflow is counted in upstream_rq_retry_overflow.
 */
import type { Cluster } from '../upstream/cluster';

/** Takes one retry from the cluster's budget; false when max_retries retries are already in flight. */
export function acquireRetry(cluster: Cluster): boolean {
  return cluster.tryAcquireRetry();
}

/** A retried attempt ended (answered, failed or abandoned). */
export function releaseRetry(cluster: Cluster): void {
  cluster.releaseRetry();
}
