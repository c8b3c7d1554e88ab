// Plain-text tables for the terminal (and reused inside the Markdown report).
import type { CaseResult, RunResult } from '../types';
import { fmtKiB, fmtNum, fmtPct, fmtRatio, fmtThroughput, fmtUs } from './format';
import { caseRatios, okPeers } from './ratios';
import { headline, negotiatedNote, peerLabel, sendLagNote } from './summary';

export function textTable(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ').trimEnd();
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * Metric rows for one case: one per peer. The first ratio columns compare proxy CPU per
 * unit of work (the headline; peers with a proxy only), the others throughput — withheld
 * as "generator-bound" when either run was limited by the generator — except in
 * fixed-rate cases (every peer gets the same rate) where they compare p99 latency.
 */
export function caseRows(c: CaseResult): { header: string[]; rows: string[][] } {
  const refs = okPeers(c);
  const ratios = new Map(caseRatios(c).map((r) => [r.peer, r]));
  const cpuRefs = refs.filter((r) => c.peers.find((p) => p.peer === r)?.proxyCpuPerUnit !== undefined);
  const fixed = c.rate !== undefined;
  const header = [
    'peer', fixed ? 'achieved' : 'throughput', 'p50', 'p99', 'p99.9', 'proxy CPU', c.cpuUnit, 'peak RSS', 'gen+backend CPU', 'bound',
    ...cpuRefs.map((r) => `CPU÷${r}`),
    ...refs.map((r) => (fixed ? `p99÷${r}` : `rate÷${r}`)),
  ];
  const rows = c.peers.map((p) => {
    if (p.status === 'skipped' || p.status === 'failed') {
      return [peerLabel(p), p.status.toUpperCase(), ...header.slice(2).map(() => '')];
    }
    const rr = ratios.get(p.peer);
    return [
      p.status === 'ok' ? peerLabel(p) : `${peerLabel(p)} (ERR)`,
      fmtThroughput(p.throughput, c.unit),
      fmtUs(p.latency?.p50Us),
      fmtUs(p.latency?.p99Us),
      fmtUs(p.latency?.p999Us),
      fmtPct(p.proxyCpuCores),
      fmtNum(p.proxyCpuPerUnit),
      fmtKiB(p.peakRssKiB),
      fmtPct((p.generatorCpuCores ?? 0) + (p.backendCpuCores ?? 0)),
      p.bottleneck ?? '–',
      ...cpuRefs.map((r) => (r === p.peer ? '1' : fmtRatio(rr?.vs[r]?.cpu))),
      ...refs.map((r) => (r === p.peer ? '1' : fmtRatio(fixed ? rr?.vs[r]?.p99 : (rr?.vs[r]?.rate ?? rr?.vs[r]?.throughput)))),
    ];
  });
  return { header, rows };
}

/** The whole run as text: per case the metrics and throughput ratios (row peer ÷ column peer). */
export function ratioTableText(r: RunResult): string {
  const out: string[] = [];
  for (const w of r.workloads) {
    if (w.status === 'skipped') {
      out.push(`${w.name}: ${w.message ?? 'skipped'}`);
      continue;
    }
    for (const c of w.cases) {
      const { header, rows } = caseRows(c);
      out.push(`\n== ${c.id} ==`, textTable(header, rows));
      for (const p of c.peers) if (p.message && p.status !== 'ok') out.push(`  ${p.peer}: ${p.message.split('\n')[0]}`);
      const lag = sendLagNote(c);
      if (lag) out.push(`  ${lag}`);
      const neg = negotiatedNote(c);
      if (neg) out.push(`  ${neg}`);
    }
    const h = headline(w);
    if (h) out.push(`\n== ${w.name} summary ==`, textTable(h.header, h.rows));
    if (w.status === 'error') out.push(`${w.name}: ERROR ${w.message ?? ''}`);
  }
  return out.join('\n');
}
