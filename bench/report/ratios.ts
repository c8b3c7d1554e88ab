// Ratio math: how each peer compares with each reference peer in one case.
//   throughput ratio = peer / reference   (> 1: the peer moves more)
//   p99 ratio        = peer / reference   (< 1: the peer answers faster)
//   cpu ratio        = peer / reference   (< 1: the peer spends less CPU per unit)
import type { CaseResult } from '../types';

export interface Ratios {
  throughput?: number;
  p50?: number;
  p99?: number;
  cpu?: number;
}

export interface RatioRow {
  peer: string;
  vs: Record<string, Ratios>;
}

/** a / b, or undefined when either is missing, not finite, or b is not positive. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return undefined;
  return a / b;
}

/** Peers with usable numbers in this case, in run order. */
export function okPeers(c: CaseResult): string[] {
  return c.peers.filter((p) => p.status === 'ok' || (p.status === 'error' && (p.throughput ?? 0) > 0)).map((p) => p.peer);
}

/** For every usable peer, its ratios against every usable reference (default: all usable peers but itself). */
export function caseRatios(c: CaseResult, refs?: string[]): RatioRow[] {
  const usable = okPeers(c);
  const refNames = (refs ?? usable).filter((r) => usable.includes(r));
  const by = new Map(c.peers.map((p) => [p.peer, p]));
  return usable.map((name) => {
    const p = by.get(name)!;
    const vs: Record<string, Ratios> = {};
    for (const r of refNames) {
      if (r === name) continue;
      const q = by.get(r)!;
      vs[r] = {
        throughput: ratio(p.throughput, q.throughput),
        p50: ratio(p.latency?.p50Us, q.latency?.p50Us),
        p99: ratio(p.latency?.p99Us, q.latency?.p99Us),
        cpu: ratio(p.proxyCpuPerUnit, q.proxyCpuPerUnit),
      };
    }
    return { peer: name, vs };
  });
}
