// Writes a run's JSON, Markdown and SVGs under a results directory.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunResult } from '../types';
import { markdownReport } from './markdown';
import { workloadSvg } from './svg';

export function runStem(r: RunResult): string {
  const d = r.meta.date.replace(/:/g, '').replace(/\..*$/, '').replace('T', '-'); // 2026-11-21-231500
  const names = r.workloads.filter((w) => w.status !== 'skipped').map((w) => w.name);
  return `${d}-${(names.length ? names : r.workloads.map((w) => w.name)).join('+') || 'none'}`;
}

export interface Written {
  json: string;
  markdown: string;
  latest: string;
  svgs: string[];
}

export function writeResults(r: RunResult, dir: string): Written {
  fs.mkdirSync(dir, { recursive: true });
  const stem = runStem(r);
  const json = path.join(dir, `${stem}.json`);
  fs.writeFileSync(json, JSON.stringify(r, null, 2) + '\n');
  const svgs = new Map<string, string>();
  for (const w of r.workloads) {
    if (w.status === 'skipped' || !w.cases.length) continue;
    const name = `${stem}-${w.name}.svg`;
    fs.writeFileSync(path.join(dir, name), workloadSvg(w, r.meta.date.slice(0, 16).replace('T', ' ')));
    svgs.set(w.name, name);
  }
  const md = markdownReport(r, (w) => svgs.get(w));
  const markdown = path.join(dir, `${stem}.md`);
  fs.writeFileSync(markdown, md + '\n');
  const latest = path.join(dir, 'latest.md');
  fs.writeFileSync(latest, md + `\n\nRaw results: [${stem}.json](${stem}.json)\n`);
  return { json, markdown, latest, svgs: [...svgs.values()].map((s) => path.join(dir, s)) };
}
