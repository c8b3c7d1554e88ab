// Headline table of a workload that has a max-rate case and a fixed-rate case (bolt):
// one row per peer with its max rate, latency at max and at the fixed rate, proxy CPU
// per 1,000 requests, peak RSS, and ratios against HAProxy, MOSN and direct.
import type { CaseResult, PeerCaseResult, WorkloadResult } from '../types';
import { fmtKiB, fmtNum, fmtRatio, fmtThroughput, fmtUs } from './format';
import { okPeers, rateRatio, ratio } from './ratios';

/** Reference peers of the headline ratios, in this order, when present. */
export const HEADLINE_REFS = ['haproxy', 'mosn', 'direct'];

export interface Headline {
  maxCase: CaseResult;
  rateCase: CaseResult;
  header: string[];
  rows: string[][];
}

/** Peer name with its layer when the workload records one: `haproxy (L4)`. */
export function peerLabel(p: PeerCaseResult): string {
  return p.layer ? `${p.peer} (${p.layer})` : p.peer;
}

function fmtRate(r: number): string {
  return r >= 1000 && r % 1000 === 0 ? `${r / 1000},000/s` : `${r}/s`;
}

export function headline(w: WorkloadResult): Headline | undefined {
  const maxCase = w.cases.find((c) => c.rate === undefined && c.unit === 'req/s');
  const rateCase = w.cases.find((c) => c.rate !== undefined);
  if (!maxCase || !rateCase) return undefined;
  const rate = fmtRate(rateCase.rate!);
  const usableMax = new Set(okPeers(maxCase));
  const usableRate = new Set(okPeers(rateCase));
  const refs = HEADLINE_REFS.filter((r) => usableMax.has(r) || usableRate.has(r));
  const byRate = new Map(rateCase.peers.map((p) => [p.peer, p]));
  const byMax = new Map(maxCase.peers.map((p) => [p.peer, p]));
  // CPU per request is the headline comparison: against the references that have a proxy.
  const cpuRefs = refs.filter((r) => usableMax.has(r) && byMax.get(r)?.proxyCpuPerUnit !== undefined);
  const header = [
    'peer',
    'max rate',
    'p50 / p99 / p99.9 at max',
    `p50 at ${rate}`,
    `p99 at ${rate}`,
    'CPU s / 1k req (max)',
    `CPU s / 1k req (${rate})`,
    'peak RSS',
    ...cpuRefs.map((r) => `CPU (max) ÷${r}`),
    ...refs.map((r) => `max ÷${r}`),
    ...refs.map((r) => `p99 at ${rate} ÷${r}`),
  ];
  const rows = maxCase.peers.map((m) => {
    const f = byRate.get(m.peer);
    if ((m.status === 'skipped' || m.status === 'failed') && (!f || f.status === m.status)) {
      return [peerLabel(m), m.status.toUpperCase(), ...header.slice(2).map(() => '')];
    }
    const mOk = usableMax.has(m.peer);
    const fOk = f !== undefined && usableRate.has(m.peer);
    const err = m.status === 'error' || f?.status === 'error' ? ' (ERR)' : '';
    const l = mOk ? m.latency : undefined;
    const rss = Math.max(m.peakRssKiB ?? 0, f?.peakRssKiB ?? 0) || undefined;
    return [
      `${peerLabel(m)}${err}`,
      mOk ? fmtThroughput(m.throughput, 'req/s') : '–',
      l ? `${fmtUs(l.p50Us)} / ${fmtUs(l.p99Us)} / ${fmtUs(l.p999Us)}` : '–',
      fOk ? fmtUs(f.latency?.p50Us) : '–',
      fOk ? fmtUs(f.latency?.p99Us) : '–',
      mOk ? fmtNum(m.proxyCpuPerUnit) : '–',
      fOk ? fmtNum(f.proxyCpuPerUnit) : '–',
      fmtKiB(rss),
      ...cpuRefs.map((r) => (r === m.peer ? '1' : mOk ? fmtRatio(ratio(m.proxyCpuPerUnit, byMax.get(r)?.proxyCpuPerUnit)) : '–')),
      ...refs.map((r) => (r === m.peer ? '1' : mOk && usableMax.has(r) ? fmtRatio(rateRatio(m, byMax.get(r)!)) : '–')),
      ...refs.map((r) =>
        r === m.peer ? '1' : fOk && usableRate.has(r) ? fmtRatio(ratio(f.latency?.p99Us, byRate.get(r)?.latency?.p99Us)) : '–',
      ),
    ];
  });
  return { maxCase, rateCase, header, rows };
}

/** One line on how precisely the generator kept the fixed rate (its own send lateness). */
export function sendLagNote(c: CaseResult): string | undefined {
  const lag = c.peers.filter((p) => p.sendLag);
  if (!lag.length || c.rate === undefined) return undefined;
  const achieved = c.peers
    .filter((p) => p.throughput !== undefined && p.status !== 'skipped' && p.status !== 'failed')
    .map((p) => `${p.peer} ${Math.round(p.throughput!)}/s`);
  return (
    `Fixed rate ${c.rate} req/s (open loop, latency from each request's scheduled send time). Achieved: ${achieved.join(', ')}. ` +
    `Generator send lateness p50 / p99: ${lag.map((p) => `${p.peer} ${fmtUs(p.sendLag!.p50Us)} / ${fmtUs(p.sendLag!.p99Us)}`).join(', ')} ` +
    '(included in the latencies; it is the same generator for every peer).'
  );
}

/** TLS cases: what the generator negotiated with each peer (version, cipher, key exchange, certificate key). */
export function negotiatedNote(c: CaseResult): string | undefined {
  const n = c.peers.filter((p) => p.negotiated);
  if (!n.length) return undefined;
  const same = new Set(n.map((p) => p.negotiated)).size === 1;
  // Driver notes ("driver h2load ...") describe the client; TLS notes what was negotiated.
  const what = n[0].negotiated!.startsWith('driver ') ? 'Load driver' : 'Negotiated';
  const strip = (s: string): string => s.replace(/^driver /, '');
  return same
    ? `${what}${what === 'Negotiated' ? ' with every peer' : ''}: ${strip(n[0].negotiated!)}.`
    : `${what}: ${n.map((p) => `${p.peer} ${strip(p.negotiated!)}`).join('; ')}.`;
}
