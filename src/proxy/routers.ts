/**
 * Where the `proxy` filter finds its router configs in a worker.
 *
 * Filter factories are built with their own filter config and a ListenerContext, which does
 * not carry the server's routers (servers[].routers). Until it does, this module keeps the
 * routers of the newest config snapshot the worker received: it listens to the worker's
 * message port, and because it is imported by worker.ts before worker.ts adds its own
 * listener, it sees every 'config' message before the listeners are built from it.
 * A `routers` field on the ListenerContext, when present, takes precedence.
 */
import { parentPort } from 'node:worker_threads';
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

if (parentPort !== null) {
  parentPort.on('message', (m: { type?: string; config?: OutriggerConfig }) => {
    if (m !== null && typeof m === 'object' && m.type === 'config' && m.config !== undefined) setRouterSnapshot(m.config);
  });
}
