/**
 * A small reader for filter configs that come in two spellings: proto3 JSON (camelCase, what
 * the xDS translator passes: `principalName`, `sourceIp`) and snake_case (what a MOSN-style
 * JSON file carries: `principal_name`, `source_ip`). Keys match with case and underscores
 * ignored. Every error names the JSON path and the value (main thread, validation only).
 */
import type { StreamFilterValidationContext } from '../../api/stream-filter';

/** What validators report through (the stream filter context and the config layer's have this shape). */
export type Reporter = Pick<StreamFilterValidationContext, 'error' | 'warn'>;

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function norm(k: string): string {
  return k.replace(/_/g, '').toLowerCase();
}

export class JsonObj {
  private readonly byKey = new Map<string, string>();
  ok = true;

  private constructor(
    readonly raw: Record<string, unknown>,
    readonly path: string,
    readonly r: Reporter,
  ) {
    for (const k of Object.keys(raw)) this.byKey.set(norm(k), k);
  }

  /** The object at `path`, or undefined after reporting that it is not one. */
  static from(raw: unknown, path: string, r: Reporter): JsonObj | undefined {
    if (!isObject(raw)) {
      r.error(path, `${show(raw)} must be an object`);
      return undefined;
    }
    return new JsonObj(raw, path, r);
  }

  /** Reports keys outside `known` (snake_case names) as errors (security filters) or warnings. */
  known(known: readonly string[], what: string, strict = true): this {
    const k = new Set(known.map(norm));
    for (const key of Object.keys(this.raw)) {
      if (k.has(norm(key))) continue;
      const msg = `unknown key (${what} knows ${known.join(', ')})`;
      if (strict) this.fail(this.at(key), msg);
      else this.r.warn(this.at(key), `${msg}; ignored`);
    }
    return this;
  }

  has(key: string): boolean {
    return this.byKey.has(norm(key));
  }

  get(key: string): unknown {
    const k = this.byKey.get(norm(key));
    return k === undefined ? undefined : this.raw[k];
  }

  /** The path of `key` as the user spelled it. */
  at(key: string): string {
    const k = this.byKey.get(norm(key)) ?? key;
    return `${this.path}.${k}`;
  }

  fail(path: string, msg: string): undefined {
    this.ok = false;
    this.r.error(path, msg);
    return undefined;
  }

  obj(key: string): JsonObj | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    const o = JsonObj.from(v, this.at(key), this.r);
    if (o === undefined) this.ok = false;
    return o;
  }

  str(key: string, def?: string): string | undefined {
    const v = this.get(key);
    if (v === undefined) return def;
    if (typeof v !== 'string') return this.fail(this.at(key), `${show(v)} must be a string`);
    return v;
  }

  bool(key: string, def: boolean): boolean {
    const v = this.get(key);
    if (v === undefined) return def;
    if (typeof v !== 'boolean') {
      this.fail(this.at(key), `${show(v)} must be true or false`);
      return def;
    }
    return v;
  }

  /**
   * An integer in [min, max]; proto3 JSON may write 64-bit integers and wrapper types as
   * strings ("10") or `{ "value": 10 }`.
   */
  int(key: string, def: number, min: number, max: number): number {
    let v = this.get(key);
    if (v === undefined) return def;
    if (isObject(v) && Object.keys(v).length === 1 && 'value' in v) v = v.value;
    if (typeof v === 'string' && /^-?\d+$/.test(v)) v = Number(v);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(this.at(key), `${show(this.get(key))} must be an integer in ${min}..${max}`);
      return def;
    }
    return v;
  }

  num(key: string, def: number, min: number, max: number): number {
    const v = this.get(key);
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      this.fail(this.at(key), `${show(v)} must be a number in ${min}..${max}`);
      return def;
    }
    return v;
  }

  /** An enum given by name (proto3 JSON) or number. */
  enumOf<T extends string>(key: string, names: readonly T[], def: T): T {
    const v = this.get(key);
    if (v === undefined) return def;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < names.length) return names[v];
    if (typeof v === 'string') {
      const u = v.toUpperCase();
      const hit = names.find((n) => n === u);
      if (hit !== undefined) return hit;
    }
    this.fail(this.at(key), `${show(v)} must be one of ${names.join(', ')}`);
    return def;
  }

  list(key: string): { value: unknown; path: string }[] | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) return this.fail(this.at(key), `${show(v)} must be a list`);
    return v.map((value, i) => ({ value, path: `${this.at(key)}[${i}]` }));
  }

  /**
   * A Go duration ("500ms", "1s") or a proto3 JSON Duration ("0.5s", or { seconds, nanos })
   * in milliseconds.
   */
  durationMs(key: string, def: number): number {
    const v = this.get(key);
    if (v === undefined) return def;
    const ms = durationMs(v);
    if (ms === undefined || ms < 0) {
      this.fail(this.at(key), `${show(v)} is not a duration (e.g. "500ms", "1s", or { "seconds": 1 })`);
      return def;
    }
    return ms;
  }
}

const DUR_RE = /^(?:(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$/;
const DUR_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g;
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function durationMs(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : undefined; // bare numbers: milliseconds
  if (isObject(v)) {
    const s = v.seconds ?? 0;
    const n = v.nanos ?? 0;
    const sec = typeof s === 'string' ? Number(s) : s;
    if (typeof sec !== 'number' || typeof n !== 'number' || !Number.isFinite(sec) || !Number.isFinite(n)) return undefined;
    return sec * 1000 + n / 1e6;
  }
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  if (t === '0') return 0;
  if (!DUR_RE.test(t)) return undefined;
  let ms = 0;
  for (const m of t.matchAll(DUR_PART)) ms += Number(m[1]) * UNIT_MS[m[2]];
  return ms;
}

/**
 * Envoy's FractionalPercent ({ numerator, denominator: HUNDRED | TEN_THOUSAND | MILLION }) or
 * a plain number (percent), as a probability in 0..1.
 */
export function fractionalPercent(o: JsonObj, key: string, def: number): number {
  const v = o.get(key);
  if (v === undefined) return def;
  if (typeof v === 'number') {
    if (v < 0 || v > 100 || !Number.isFinite(v)) {
      o.fail(o.at(key), `${show(v)} must be a percentage in 0..100`);
      return def;
    }
    return v / 100;
  }
  const f = o.obj(key);
  if (f === undefined) return def;
  f.known(['numerator', 'denominator'], 'FractionalPercent');
  const num = f.int('numerator', 0, 0, 0xffffffff);
  const den = f.enumOf('denominator', ['HUNDRED', 'TEN_THOUSAND', 'MILLION'] as const, 'HUNDRED');
  const d = den === 'HUNDRED' ? 100 : den === 'TEN_THOUSAND' ? 10_000 : 1_000_000;
  if (!f.ok) o.ok = false;
  return Math.min(1, num / d);
}
