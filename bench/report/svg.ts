// Self-contained SVG per workload: for each case, throughput bars per peer (left)
// and the latency percentile curve per peer (right, log-scaled µs over "nines").
// No external fonts, scripts or stylesheets.
import type { CaseResult, PeerCaseResult, WorkloadResult } from '../types';
import { fmtThroughput, fmtUs } from './format';

const PALETTE: Record<string, string> = {
  outrigger: '#d9480f',
  haproxy: '#1971c2',
  nginx: '#2f9e44',
  envoy: '#9c36b5',
  mosn: '#f59f00',
  direct: '#495057',
  'slow-relay': '#e8590c',
};
const EXTRA = ['#0c8599', '#f08c00', '#c2255c', '#5c940d'];

export function colorOf(peer: string, i: number): string {
  return PALETTE[peer] ?? EXTRA[i % EXTRA.length];
}

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const f = (n: number): string => (Math.round(n * 10) / 10).toString();

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${f(x)}" y="${f(y)}"${attrs ? ' ' + attrs : ''}>${esc(s)}</text>`;
}

const PANEL_H = 260;
const W = 960;

/** x position of a percentile on a "nines" axis: -log10(1 - p/100), with max drawn after 99.99. */
function ninesX(p: number): number {
  if (p >= 100) return 4.5;
  return Math.min(4, -Math.log10(1 - p / 100));
}

interface BarSpec {
  title: string;
  value: (p: PeerCaseResult) => number | undefined;
  min?: (p: PeerCaseResult) => number | undefined;
  max?: (p: PeerCaseResult) => number | undefined;
  label: (v: number) => string;
}

function barsPanel(c: CaseResult, spec: BarSpec, x0: number, y0: number, w: number, h: number): string[] {
  const out: string[] = [];
  const peers = c.peers;
  const usable = (p: PeerCaseResult): boolean => p.status !== 'skipped' && p.status !== 'failed';
  const max = Math.max(1e-12, ...peers.map((p) => (usable(p) ? ((spec.max ?? spec.value)(p) ?? 0) : 0)));
  const left = x0 + 10;
  const top = y0 + 44;
  const plotH = h - 84;
  const slot = (w - 20) / Math.max(1, peers.length);
  const bw = Math.min(60, slot * 0.6);
  out.push(text(x0 + w / 2, y0 + 16, spec.title, 'text-anchor="middle" font-weight="bold"'));
  out.push(`<line x1="${f(left)}" y1="${f(top + plotH)}" x2="${f(x0 + w - 10)}" y2="${f(top + plotH)}" stroke="#868e96"/>`);
  peers.forEach((p, i) => {
    const cx = left + slot * i + slot / 2;
    const v = usable(p) ? (spec.value(p) ?? 0) : 0;
    const bh = (v / max) * plotH;
    if (v > 0) {
      out.push(`<rect x="${f(cx - bw / 2)}" y="${f(top + plotH - bh)}" width="${f(bw)}" height="${f(bh)}" fill="${colorOf(p.peer, i)}"><title>${esc(`${p.peer}: ${spec.label(v)}`)}</title></rect>`);
      let labelY = top + plotH - bh - 4;
      const lo = spec.min?.(p);
      const hi = spec.max?.(p);
      if (lo !== undefined && hi !== undefined && hi > lo) {
        const y1 = top + plotH - (lo / max) * plotH;
        const y2 = top + plotH - (hi / max) * plotH;
        out.push(`<line x1="${f(cx)}" y1="${f(y1)}" x2="${f(cx)}" y2="${f(y2)}" stroke="#212529" stroke-width="1.5"/>`);
        labelY = Math.min(labelY, y2 - 4);
      }
      out.push(text(cx, labelY, spec.label(v), 'text-anchor="middle" font-size="10"'));
    } else {
      const why = usable(p) ? (p.status === 'ok' ? 'n/a' : p.status) : p.status;
      out.push(text(cx, top + plotH - 6, why, `text-anchor="middle" font-size="10" fill="${why === 'n/a' ? '#868e96' : '#c92a2a'}"`));
    }
    out.push(text(cx, top + plotH + 14, p.peer, 'text-anchor="middle" font-size="11"'));
  });
  return out;
}

function latencyPanel(c: CaseResult, x0: number, y0: number, w: number, h: number): string[] {
  const out: string[] = [];
  const series = c.peers.map((p, i) => ({ p, i })).filter(({ p }) => p.latency && p.latency.curve.length);
  out.push(text(x0 + w / 2, y0 + 16, `${c.id} — latency by percentile`, 'text-anchor="middle" font-weight="bold"'));
  if (!series.length) {
    out.push(text(x0 + w / 2, y0 + h / 2, 'no latency for this case (throughput only)', 'text-anchor="middle" fill="#868e96"'));
    return out;
  }
  const left = x0 + 60;
  const right = x0 + w - 90;
  const top = y0 + 30;
  const bottom = y0 + h - 40;
  const vals = series.flatMap(({ p }) => p.latency!.curve.map(([, v]) => Math.max(1, v)));
  const lo = Math.floor(Math.log10(Math.min(...vals)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...vals))));
  const X = (pct: number): number => left + (ninesX(pct) / 4.5) * (right - left);
  const Y = (us: number): number => bottom - ((Math.log10(Math.max(1, us)) - lo) / (hi - lo)) * (bottom - top);
  out.push(`<rect x="${f(left)}" y="${f(top)}" width="${f(right - left)}" height="${f(bottom - top)}" fill="none" stroke="#ced4da"/>`);
  for (let d = lo; d <= hi; d++) {
    const y = Y(10 ** d);
    out.push(`<line x1="${f(left)}" y1="${f(y)}" x2="${f(right)}" y2="${f(y)}" stroke="#e9ecef"/>`);
    out.push(text(left - 4, y + 4, fmtUs(10 ** d), 'text-anchor="end" font-size="10"'));
  }
  for (const [pct, label] of [[0, 'p0'], [50, 'p50'], [90, 'p90'], [99, 'p99'], [99.9, 'p99.9'], [99.99, 'p99.99'], [100, 'max']] as [number, string][]) {
    const x = X(pct);
    out.push(`<line x1="${f(x)}" y1="${f(top)}" x2="${f(x)}" y2="${f(bottom)}" stroke="#f1f3f5"/>`);
    out.push(text(x, bottom + 14, label, 'text-anchor="middle" font-size="10"'));
  }
  series.forEach(({ p, i }, k) => {
    const pts = p.latency!.curve.map(([pct, v]) => `${f(X(pct))},${f(Y(v))}`).join(' ');
    const col = colorOf(p.peer, i);
    out.push(`<polyline points="${pts}" fill="none" stroke="${col}" stroke-width="2"><title>${esc(`${p.peer}: p50 ${fmtUs(p.latency!.p50Us)}, p99 ${fmtUs(p.latency!.p99Us)}`)}</title></polyline>`);
    out.push(`<rect x="${f(right + 10)}" y="${f(top + k * 16)}" width="10" height="10" fill="${col}"/>`);
    out.push(text(right + 24, top + k * 16 + 9, p.peer, 'font-size="11"'));
  });
  return out;
}

export function workloadSvg(w: WorkloadResult, subtitle = ''): string {
  const cases = w.cases.length ? w.cases : [];
  const height = 50 + Math.max(1, cases.length) * PANEL_H;
  const body: string[] = [];
  body.push(`<rect width="${W}" height="${height}" fill="#ffffff"/>`);
  body.push(text(16, 24, `${w.name}${subtitle ? ' — ' + subtitle : ''}`, 'font-size="16" font-weight="bold"'));
  if (!cases.length) body.push(text(16, 60, w.message ?? 'no cases', 'fill="#868e96"'));
  cases.forEach((c, i) => {
    const y0 = 40 + i * PANEL_H;
    body.push(
      ...barsPanel(
        c,
        {
          title: `${c.id} — throughput (median, whisker = min–max)`,
          value: (p) => p.throughput,
          min: (p) => p.throughputMin,
          max: (p) => p.throughputMax,
          label: (v) => fmtThroughput(v, c.unit),
        },
        0,
        y0,
        W * 0.42,
        PANEL_H,
      ),
    );
    if (c.peers.some((p) => p.latency)) body.push(...latencyPanel(c, W * 0.42, y0, W * 0.58, PANEL_H));
    else
      body.push(
        ...barsPanel(
          c,
          { title: `${c.id} — proxy ${c.cpuUnit} (lower is better)`, value: (p) => p.proxyCpuPerUnit, label: (v) => v.toPrecision(3) },
          W * 0.42,
          y0,
          W * 0.58,
          PANEL_H,
        ),
      );
  });
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="12">`,
    ...body.map((l) => '  ' + l),
    '</svg>',
    '',
  ].join('\n');
}
