// Ratio math: how each peer compares with each reference peer in one case.
//   throughput ratio = peer / reference   (> 1: the peer moves more)
//   p99 ratio        = peer / reference   (< 1: the peer answers faster)
//   cpu ratio        = peer / reference   (< 1: the peer spends less CPU per unit)
// A throughput (rate) ratio is only a comparison of the proxies when neither run was
// limited by the load generator: otherwise it measures the generator, and it is
// withheld and reported as "generator-bound". CPU per unit of work is the headline.
import type { CaseResult, PeerCaseResult } from '../types';

/** What is printed instead of a rate ratio when either run was generator-bound. */
export const GENERATOR_BOUND = 'generator-bound';

export interface Ratios {
  /** undefined when either side was generator-bound (then `rate` says so) */
  throughput?: number;
  /** set when a throughput ratio exists in numbers but is withheld: one of the two runs was generator-bound */
  rate?: typeof GENERATOR_BOUND;
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

/** Whether the rates of two runs compare the proxies: neither run was limited by the load generator. */
export function rateComparable(p: Pick<PeerCaseResult, 'bottleneck'>, q: Pick<PeerCaseResult, 'bottleneck'>): boolean {
  return p.bottleneck !== 'generator' && q.bottleneck !== 'generator';
}

/** p's rate ÷ q's rate, or GENERATOR_BOUND when either run was generator-bound, or undefined when a rate is missing. */
export function rateRatio(
  p: Pick<PeerCaseResult, 'bottleneck' | 'throughput'>,
  q: Pick<PeerCaseResult, 'bottleneck' | 'throughput'>,
): number | typeof GENERATOR_BOUND | undefined {
  const r = ratio(p.throughput, q.throughput);
  if (r === undefined) return undefined;
  return rateComparable(p, q) ? r : GENERATOR_BOUND;
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
      const rate = rateRatio(p, q);
      vs[r] = {
        ...(rate === GENERATOR_BOUND ? { rate } : { throughput: rate }),
        p50: ratio(p.latency?.p50Us, q.latency?.p50Us),
        p99: ratio(p.latency?.p99Us, q.latency?.p99Us),
        cpu: ratio(p.proxyCpuPerUnit, q.proxyCpuPerUnit),
      };
    }
    return { peer: name, vs };
  });
}
