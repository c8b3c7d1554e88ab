// Turns per-round load results into the per-peer summary of a case (pure code).
import * as hdr from 'hdr-histogram-js';
import { isOpsUnit, type Bottleneck, type LatencySummary, type PeerCaseResult, type RoundSample, type Unit } from './types';

export const CURVE_PERCENTILES = [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100];
const GiB = 1024 ** 3;

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Merges compressed histograms (µs) and summarises them. undefined when empty. */
export function summariseLatency(histograms: string[]): LatencySummary | undefined {
  const merged = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  try {
    for (const b of histograms) {
      if (!b) continue;
      const h = hdr.decodeFromCompressedBase64(b);
      merged.add(h);
      h.destroy();
    }
    if (merged.totalCount === 0) return undefined;
    const at = (p: number): number => merged.getValueAtPercentile(p);
    return {
      count: merged.totalCount,
      meanUs: merged.mean,
      p50Us: at(50),
      p90Us: at(90),
      p99Us: at(99),
      p999Us: at(99.9),
      maxUs: merged.maxValue,
      curve: CURVE_PERCENTILES.map((p) => [p, p === 100 ? merged.maxValue : at(p)] as [number, number]),
    };
  } finally {
    merged.destroy();
  }
}

/**
 * Which side limited the run: the proxy when its CPU is ≥ 90 % of its core; the
 * client side (generator + backend share those cores) when it is ≥ 90 % of its
 * cores while the proxy is not saturated; otherwise neither (latency-bound).
 */
export function bottleneck(proxyCores: number | undefined, clientCores: number, clientCpuCount: number): Bottleneck {
  if (proxyCores !== undefined && proxyCores >= 0.9) return 'proxy';
  if (clientCores >= 0.9 * clientCpuCount) return 'generator';
  return proxyCores === undefined ? 'n/a' : 'neither';
}

export function summarisePeer(
  peer: string,
  unit: Unit,
  rounds: RoundSample[],
  histograms: string[],
  rss: { hwmKiB: number; sampledKiB: number } | undefined,
  opts: { hasProxy: boolean; clientCpuCount: number },
): PeerCaseResult {
  const ops = isOpsUnit(unit);
  const bad = rounds.filter((r) => r.errors > 0 || (ops ? r.ops === 0 : r.bytes === 0));
  const tp = rounds.map((r) => r.throughput);
  const sum = (f: (r: RoundSample) => number): number => rounds.reduce((a, r) => a + f(r), 0);
  const windowS = sum((r) => r.windowS) || 1;
  const proxyCpu = sum((r) => r.proxyCpuS);
  const proxyCores = opts.hasProxy ? proxyCpu / windowS : undefined;
  const generatorCpuCores = sum((r) => r.generatorCpuS) / windowS;
  const backendCpuCores = sum((r) => r.backendCpuS) / windowS;
  const work = ops ? sum((r) => r.ops) / 1000 : sum((r) => r.bytes) / GiB;
  const res: PeerCaseResult = {
    peer,
    status: bad.length ? 'error' : 'ok',
    rounds,
    throughput: median(tp),
    throughputMin: Math.min(...tp),
    throughputMax: Math.max(...tp),
    latency: summariseLatency(histograms),
    proxyCpuPerUnit: opts.hasProxy && work > 0 ? proxyCpu / work : undefined,
    proxyCpuCores: proxyCores,
    generatorCpuCores,
    backendCpuCores,
    peakRssKiB: opts.hasProxy ? rss?.hwmKiB : undefined,
    sampledRssKiB: opts.hasProxy ? rss?.sampledKiB : undefined,
    bottleneck: bottleneck(proxyCores, generatorCpuCores + backendCpuCores, opts.clientCpuCount),
  };
  if (bad.length) {
    const e = bad.find((r) => r.firstError)?.firstError;
    const errs = bad.reduce((a, r) => a + r.errors, 0);
    const idle = bad.filter((r) => (ops ? r.ops === 0 : r.bytes === 0)).length;
    const parts = [];
    if (errs) parts.push(`${errs} error(s)${e ? ` (first: ${e})` : ''}`);
    if (idle) parts.push(`no ${unit === 'req/s' ? 'completed requests' : ops ? `completed ${unit.replace('/s', '')}` : 'bytes'} in the measured window in ${idle} round(s)`);
    res.message = `${bad.length}/${rounds.length} round(s) failed: ${parts.join('; ')}`;
  }
  return res;
}
