/**
 * Where the `proxy` filter finds its router configs in a worker.
 *
 * The worker passes each listener's server routers (servers[].routers of the snapshot) in the
 * ListenerContext; that is what the filter uses. The snapshot kept here (setRouterSnapshot)
 * serves in-process tests that build filters without a worker.
 */
import type { OutriggerConfig, RouterConfig } from '../config/types';

/** listener name -> (router name -> config), from the newest snapshot. */
let byListener = new Map<string, Map<string, RouterConfig>>();
/** Every router of every server (fallback for listeners not found above, and tests). */
let all = new Map<string, RouterConfig>();

export function setRouterSnapshot(config: Pick<OutriggerConfig, 'servers'>): void {
  const bl = new Map<string, Map<string, RouterConfig>>();
  const a = new Map<string, RouterConfig>();
  for (const s of config.servers) {
    const m = new Map<string, RouterConfig>();
    for (const r of s.routers ?? []) {
      m.set(r.name, r);
      if (!a.has(r.name)) a.set(r.name, r);
    }
    for (const l of s.listeners) bl.set(l.name, m);
  }
  byListener = bl;
  all = a;
}

export function findRouterConfig(listener: string, name: string, fromContext?: readonly RouterConfig[]): RouterConfig | undefined {
  if (fromContext !== undefined) return fromContext.find((r) => r.name === name);
  return byListener.get(listener)?.get(name) ?? all.get(name);
}
