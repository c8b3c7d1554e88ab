/**
 * Slow start (MOSN `slow_start` mode "duration", Envoy slow_start_config): the share of its
 * weight a host gets `now`, having been brought back by a health check at `since`.
 */
import type { SlowStartConfig } from '../config/types';

/**
 * 1 outside the window (or when no check ever brought the host back); inside it
 * max(min_weight_percent, (max(1s, elapsed) / window) ^ (1 / aggression)), as MOSN computes it.
 */
export function slowStartFactor(ss: SlowStartConfig, since: number, now: number): number {
  if (since <= 0) return 1;
  const elapsed = now - since;
  if (elapsed >= ss.windowMs) return 1;
  let f = Math.max(1000, elapsed) / ss.windowMs;
  if (f >= 1) return 1;
  if (ss.aggression !== 1) f = Math.pow(f, 1 / ss.aggression);
  return f < ss.minWeightPercent ? ss.minWeightPercent : f;
}
