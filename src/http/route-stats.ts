/**
 * Per-route HTTP stats and latency histograms: the calls an exchange makes.
 *
 *   main thread: httpRouteStatNamesOf(config) -> StatsLayout.routeBase(name), append-only
 *   worker:      bindRouteStats(counters, layout.routes) before it builds a snapshot's listeners
 *   exchange:    routeRequest(route) at match, routeCount(route, R.x) on retries / timeouts /
 *                resets, routeResponse(route, status, µs) when it ends with a response,
 *                clusterTime(cluster, µs) per upstream attempt
 *   worker:      drainHistograms() every second / on the admin's demand -> main thread
 *
 * Hot path: a route's base slot is resolved once (a string lookup) and kept on the compiled
 * HttpRoute (`statsBase`), so every later call is a field read and a Float64Array increment;
 * histograms are looked up by base slot in a Map. Nothing here allocates per request.
 */
import type { OutriggerConfig } from '../config/types';
import { httpRouteStatNames, type HttpRoute } from '../router/http-routes';
import { HistogramRecorder, type EncodedHistogram } from '../stats/histograms';
import { R } from '../stats/layout';
import { statusClass } from './stats';

let counters: Float64Array | null = null;
let bases: Readonly<Record<string, number>> = {};
let recorder = new HistogramRecorder();

/**
 * Worker: the stats buffer and the route slots of the snapshot about to be applied. The layout
 * is append-only, so routes resolved under an older snapshot keep valid bases.
 */
export function bindRouteStats(buf: Float64Array, routes: Readonly<Record<string, number>>): void {
  counters = buf;
  bases = routes;
}

/** Tests: forget the binding and the recorded histograms (a fresh worker). */
export function resetRouteStats(): void {
  counters = null;
  bases = {};
  recorder = new HistogramRecorder();
}

function resolve(route: HttpRoute): number {
  const b: unknown = counters === null || !Object.hasOwn(bases, route.statsName) ? undefined : bases[route.statsName];
  route.statsBase = typeof b === 'number' ? b : -2;
  return route.statsBase;
}

/** The route's base slot, or a negative number when it has none. */
export function routeBase(route: HttpRoute): number {
  const b = route.statsBase;
  return b !== -1 ? b : resolve(route);
}

/** A request was matched to the route. */
export function routeRequest(route: HttpRoute): void {
  const b = routeBase(route);
  if (b >= 0) (counters as Float64Array)[b + R.RQ_TOTAL]++;
}

/** Increments one route counter: R.RETRY, R.RETRY_SUCCESS, R.TIMEOUT, R.PER_TRY_TIMEOUT, R.UPSTREAM_RESET, R.DOWNSTREAM_RESET. */
export function routeCount(route: HttpRoute, offset: number): void {
  const b = routeBase(route);
  if (b >= 0) (counters as Float64Array)[b + offset]++;
}

/** The exchange ended with a response of `status` (sent downstream) after `micros` since its start. */
export function routeResponse(route: HttpRoute, status: number, micros: number): void {
  const b = routeBase(route);
  if (b < 0) return;
  (counters as Float64Array)[b + R.RQ_1XX + statusClass(status)]++;
  recorder.record(b, micros);
}

/** One upstream attempt of the cluster took `micros` (to the end of its response, or its failure). */
export function clusterTime(cluster: { readonly base: number }, micros: number): void {
  recorder.record(cluster.base, micros);
}

/** Worker: the histograms changed since the last call, encoded (deltas); null when none. */
export function drainHistograms(): EncodedHistogram[] | null {
  return recorder.drain();
}

/**
 * Main thread: the stats names of the routes of every router an HTTP `proxy` filter uses, in
 * config order (the worker's compiled routes carry the same names).
 */
export function httpRouteStatNamesOf(config: OutriggerConfig): string[] {
  const out: string[] = [];
  for (const server of config.servers) {
    const used = new Set<string>();
    for (const l of server.listeners) {
      for (const fc of l.filterChains) {
        for (const f of fc.filters) {
          const c = f.config;
          if (f.type.toLowerCase() === 'proxy' && c['family'] === 'http' && typeof c['routerConfigName'] === 'string') used.add(c['routerConfigName']);
        }
      }
    }
    for (const r of server.routers) if (used.has(r.name)) out.push(...httpRouteStatNames(r));
  }
  return out;
}
