// Markdown report of a run.
import type { CaseResult, RunResult } from '../types';
import { fmtRatio, fmtUs } from './format';
import { caseRatios, okPeers } from './ratios';
import { caseRows } from './table';
import { headline, negotiatedNote, peerLabel, sendLagNote } from './summary';

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function mdTable(header: string[], rows: string[][]): string {
  const align = header.map((_, i) => (i === 0 ? '---' : '---:'));
  return [header, align, ...rows].map((r) => `| ${r.map(cell).join(' | ')} |`).join('\n');
}

function ratioMatrix(c: CaseResult): string {
  const peers = okPeers(c);
  if (peers.length < 2) return '';
  const label = new Map(c.peers.map((p) => [p.peer, peerLabel(p)]));
  const rows = caseRatios(c).map((row) => [
    label.get(row.peer) ?? row.peer,
    ...peers.map((ref) => {
      if (ref === row.peer) return '1';
      const v = row.vs[ref];
      const cpu = v?.cpu !== undefined ? `CPU ${fmtRatio(v.cpu)} / ` : '';
      return `${cpu}${fmtRatio(v?.rate ?? v?.throughput)}${v?.p99 !== undefined ? ` / p99 ${fmtRatio(v.p99)}` : ''}`;
    }),
  ]);
  return mdTable(['row ÷ column: CPU per unit / throughput / p99', ...peers], rows);
}

/** `svgFor(workload)` returns the relative link of the workload's SVG, if any. */
export function markdownReport(r: RunResult, svgFor: (workload: string) => string | undefined = () => undefined): string {
  const m = r.meta;
  const out: string[] = [];
  out.push(`# Outrigger benchmark — ${m.date.slice(0, 10)}`, '');
  out.push(`- Date: ${m.date}`);
  out.push(`- Machine: ${m.host}, ${m.cpus} CPUs (${m.cpuModel}), Node ${m.node}`);
  out.push(
    `- Placement: proxy on CPU ${m.placement.proxy}, backend + load generator on CPU ${m.placement.client}${m.placement.pinned ? ' (taskset)' : ' (NOT pinned: taskset or a second CPU missing)'}`,
  );
  out.push(`- Each measurement: ${m.warmupS} s warm-up + ${m.durationS} s window; ${m.rounds} interleaved round(s); generator threads: ${m.threads}${m.quick ? '; --quick' : ''}`);
  out.push(`- Command: \`${m.command}\``);
  out.push('- Peers: ' + r.peers.map((p) => `${p.name} (${p.version})`).join(', '));
  out.push('');
  out.push(
    'Throughput is the median over rounds; latency percentiles come from one HDR histogram merged over all rounds; ' +
      'proxy CPU is utime+stime of all proxy processes over the measured windows (100% = one core); ' +
      '"bound" says which side saturated its CPU: `proxy`, `generator` (backend + load generator on the client CPU), or `neither`. ' +
      'Ratios are row peer ÷ column peer. Proxy CPU per unit of work is the headline comparison; a throughput ratio is shown ' +
      'only when neither run was generator-bound (else "generator-bound": the rates measured the load generator, not the proxies).',
    '',
  );
  for (const w of r.workloads) {
    out.push(`## ${w.name}`, '', `${w.description}`, '');
    if (w.status === 'skipped') {
      out.push(`**Skipped** — ${w.message ?? ''}`, '');
      continue;
    }
    if (w.status === 'error') out.push(`**Error** — ${w.message ?? ''}`, '');
    for (const n of w.notes) out.push(`- ${n.split('\n')[0]}`);
    if (w.notes.length) out.push('');
    const h = headline(w);
    if (h) {
      out.push(`### Summary`, '', mdTable(h.header, h.rows), '');
      out.push(
        `Max rate: closed loop, ${h.maxCase.connections} connections, ${h.maxCase.pipeline ?? 1} request(s) in flight each (${h.maxCase.id}). ` +
          `Fixed rate: open loop at ${h.rateCase.rate} req/s over ${h.rateCase.connections} connections (${h.rateCase.id}). ` +
          'Ratios: CPU per request row ÷ reference (lower = cheaper); max rate row ÷ reference (higher = more; "generator-bound" ' +
          'when either run was limited by the load generator); p99 at the fixed rate row ÷ reference (lower = faster).',
        '',
      );
      const layered = h.maxCase.peers.filter((p) => p.layer);
      if (layered.length) {
        out.push(
          `Layers: ${layered.map((p) => `${p.peer} ${p.layer}`).join(', ')}. L4 peers forward the TCP byte stream without decoding ${w.name === 'dubbo' ? 'Dubbo' : 'Bolt'} ` +
            '(no routing on `service`, no id rewriting); L7 decodes every frame and routes on its `service` header.',
          '',
        );
      }
    }
    const svg = svgFor(w.name);
    if (svg) out.push(`![${w.name}](${svg})`, '');
    for (const c of w.cases) {
      out.push(`### ${c.id}`, '');
      const { header, rows } = caseRows(c);
      out.push(mdTable(header, rows), '');
      const lagNote = sendLagNote(c);
      if (lagNote) out.push(lagNote, '');
      const neg = negotiatedNote(c);
      if (neg) out.push(`${c.cert ? `Server certificate: ${c.cert}. ` : ''}${neg}`, '');
      const mx = ratioMatrix(c);
      if (mx) out.push(mx, '');
      const lat = c.peers.filter((p) => p.latency);
      if (lat.length) {
        out.push(
          mdTable(
            ['latency', ...lat.map((p) => peerLabel(p))],
            ['p50', 'p90', 'p99', 'p99.9', 'max'].map((k) => [
              k,
              ...lat.map((p) => {
                const l = p.latency!;
                return fmtUs({ p50: l.p50Us, p90: l.p90Us, p99: l.p99Us, 'p99.9': l.p999Us, max: l.maxUs }[k]);
              }),
            ]),
          ),
          '',
        );
      }
    }
  }
  return out.join('\n');
}
