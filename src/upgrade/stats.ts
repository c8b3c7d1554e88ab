/**
 * Counters across a hot upgrade: the old process sends its totals by name (listener, cluster,
 * route; gauges left out: they describe its own live connections), and the new one adds them
 * to its retained totals, so every counter continues from where the old one was. The old
 * process sends them twice: at the hand-over and, final, just before it exits; the second
 * replaces the first (the difference is added).
 */
import type { StatsHub } from '../stats/aggregate';
import { CLUSTER_STATS, GAUGES, LISTENER_STATS, ROUTE_STATS, type StatsLayout } from '../stats/layout';

export type CounterTotals = Record<'listeners' | 'clusters' | 'routes', Record<string, Record<string, number>>>;

const SCOPES = [
  ['listeners', LISTENER_STATS],
  ['clusters', CLUSTER_STATS],
  ['routes', ROUTE_STATS],
] as const;

/** This process's counters, by name. */
export function exportCounters(hub: StatsHub): CounterTotals {
  const snap = hub.snapshot();
  const out: CounterTotals = { listeners: {}, clusters: {}, routes: {} };
  for (const [scope] of SCOPES) {
    for (const [name, values] of Object.entries(snap[scope])) {
      const c: Record<string, number> = {};
      for (const [stat, v] of Object.entries(values)) if (!GAUGES.has(stat) && typeof v === 'number' && v !== 0) c[stat] = v;
      out[scope][name] = c;
    }
  }
  return out;
}

/** Adds the old process's totals (what was not added yet) to the hub; names unknown here are dropped. */
export class CarriedCounters {
  private added: CounterTotals = { listeners: {}, clusters: {}, routes: {} };

  constructor(
    private readonly hub: StatsHub,
    private readonly layout: StatsLayout,
  ) {}

  apply(next: unknown): void {
    if (typeof next !== 'object' || next === null) return;
    const data = this.layout.toData();
    for (const [scope, stats] of SCOPES) {
      const bases = data[scope];
      const incoming = (next as Partial<CounterTotals>)[scope];
      if (typeof incoming !== 'object' || incoming === null) continue;
      for (const [name, values] of Object.entries(incoming)) {
        const base = bases[name];
        if (base === undefined || typeof values !== 'object' || values === null) continue;
        const prev = (this.added[scope][name] ??= {});
        for (let i = 0; i < stats.length; i++) {
          const v = (values as Record<string, unknown>)[stats[i]];
          if (typeof v !== 'number' || !Number.isFinite(v)) continue;
          this.hub.addRetired(base + i, v - (prev[stats[i]] ?? 0));
          prev[stats[i]] = v;
        }
      }
    }
  }
}
