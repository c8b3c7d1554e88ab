/**
 * Reading a `proxy` filter's `extend_config` (MOSN's free-form options object): keys matched
 * case-insensitively, integers range-checked, durations as Go strings; every error names the
 * path. Shared by the RPC and HTTP proxy validators.
 */
import { checkDuration, type FilterValidationContext } from '../config/parse';
import { showValue } from '../config/errors';

export interface ExtendConfigReader {
  /** Lower-cased key -> raw value. */
  readonly lower: ReadonlyMap<string, unknown>;
  /** `<filter path>.extend_config` */
  readonly path: string;
  /** An integer in [min, max], or `def` when absent (an error, and `def`, when invalid). */
  num(key: string, def: number, min: number, max: number): number;
  /** A duration in ms, or `def` when absent or invalid (invalid is an error). */
  dur(key: string, def: number): number;
}

export function extendConfigReader(extendConfig: Readonly<Record<string, unknown>>, filterPath: string, ctx: FilterValidationContext): ExtendConfigReader {
  const lower = new Map<string, unknown>();
  for (const [k, v] of Object.entries(extendConfig)) lower.set(k.toLowerCase(), v);
  const path = `${filterPath}.extend_config`;
  return {
    lower,
    path,
    num(key, def, min, max) {
      const v = lower.get(key);
      if (v === undefined) return def;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
        ctx.error(`${path}.${key}`, `${showValue(v)} must be an integer in ${min}..${max}`);
        return def;
      }
      return v;
    },
    dur(key, def) {
      const v = lower.get(key);
      if (v === undefined) return def;
      return checkDuration(ctx.issues, v, `${path}.${key}`, { def, numberUnit: 'ns' }) ?? def;
    },
  };
}
