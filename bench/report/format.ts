// Number formatting shared by the console table, Markdown and SVG.

import type { Unit } from '../types';

export function fmtThroughput(v: number | undefined, unit: Unit): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  if (unit === 'B/s') {
    if (v >= 1024 ** 3) return `${(v / 1024 ** 3).toFixed(2)} GiB/s`;
    if (v >= 1024 ** 2) return `${(v / 1024 ** 2).toFixed(1)} MiB/s`;
    return `${(v / 1024).toFixed(1)} KiB/s`;
  }
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M ${unit}`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k ${unit}`;
  return `${v.toFixed(0)} ${unit}`;
}

export function fmtUs(us: number | undefined): string {
  if (us === undefined || !Number.isFinite(us)) return '–';
  if (us >= 1e6) return `${(us / 1e6).toFixed(2)} s`;
  if (us >= 1e3) return `${(us / 1e3).toFixed(2)} ms`;
  return `${Math.round(us)} µs`;
}

/** A ratio as `1.25×`; a string (a withheld ratio's reason, e.g. "generator-bound") as is. */
export function fmtRatio(r: number | string | undefined): string {
  if (typeof r === 'string') return r;
  if (r === undefined || !Number.isFinite(r)) return '–';
  return `${r.toFixed(r >= 10 ? 1 : 2)}×`;
}

export function fmtNum(v: number | undefined, digits = 3): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return v.toPrecision(digits);
}

export function fmtKiB(k: number | undefined): string {
  if (k === undefined || !Number.isFinite(k) || k === 0) return '–';
  return k >= 1024 ? `${(k / 1024).toFixed(1)} MiB` : `${k} KiB`;
}

export function fmtPct(cores: number | undefined): string {
  if (cores === undefined || !Number.isFinite(cores)) return '–';
  return `${Math.round(cores * 100)}%`;
}
