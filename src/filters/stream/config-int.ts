/** Stream filter config helper: an integer key of a filter's config, checked against its range. */
import type { StreamFilterValidationContext } from '../../api/stream-filter';

/** `v` (the key's value; undefined: `def`) as an integer in min..max; undefined after reporting `path` when it is not one. */
export function intInRange(v: unknown, def: number, min: number, max: number, path: string, ctx: StreamFilterValidationContext): number | undefined {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    ctx.error(path, `${JSON.stringify(v)} must be an integer in ${min}..${max}`);
    return undefined;
  }
  return v;
}
