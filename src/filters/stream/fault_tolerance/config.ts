/**
 * MOSN's `fault_tolerance` stream filter config (pkg/filter/stream/faulttolerance), keys as MOSN
 * spells them:
 *   { "type": "fault_tolerance", "config": { "enabled": true, "exceptionTypes": [502, 503, 504],
 *     "timeWindow": 10000, "leastWindowCount": 10, "exceptionRateMultiple": 5, "maxIpCount": 1,
 *     "recoverTime": 900000 } }
 * Every `timeWindow` ms, a host with at least `leastWindowCount` calls whose exception rate is
 * `exceptionRateMultiple` times (or more) the cluster's rate is taken out for `recoverTime` ms,
 * at most `maxIpCount` hosts per cluster at once. Exceptions are response codes in
 * `exceptionTypes` (RPC statuses mapped to HTTP codes as MOSN maps them).
 */
import type { StreamFilterValidationContext } from '../../../api/stream-filter';
import { isPlainObject } from '../../../config/values';

export interface FaultToleranceConfig {
  readonly enabled: boolean;
  readonly exceptionTypes: readonly number[];
  readonly timeWindowMs: number;
  readonly leastWindowCount: number;
  readonly exceptionRateMultiple: number;
  readonly maxIpCount: number;
  readonly recoverTimeMs: number;
}

export const FAULT_TOLERANCE = 'fault_tolerance';

const KEYS = ['enabled', 'exceptiontypes', 'timewindow', 'leastwindowcount', 'exceptionratemultiple', 'maxipcount', 'maxipratio', 'recovertime', 'tasksize'];

export function validateFaultTolerance(raw: unknown, path: string, ctx: StreamFilterValidationContext): FaultToleranceConfig | undefined {
  if (!isPlainObject(raw)) {
    ctx.error(path, `${JSON.stringify(raw)} must be an object`);
    return undefined;
  }
  let ok = true;
  // MOSN decodes these keys with encoding/json: matched case-insensitively.
  const byLower = new Map(Object.entries(raw).map(([k, v]) => [k.toLowerCase(), v] as const));
  const get = (key: string): unknown => byLower.get(key);
  for (const k of Object.keys(raw)) if (!KEYS.includes(k.toLowerCase())) ctx.warn(`${path}.${k}`, 'unknown key (ignored)');
  const num = (key: string, spelled: string, def: number, ok0: (v: number) => boolean, what: string): number => {
    const v = get(key);
    if (v === undefined || v === 0) return def; // MOSN fills 0 with its default
    if (typeof v !== 'number' || !ok0(v)) {
      ctx.error(`${path}.${spelled}`, `${JSON.stringify(v)} must be ${what}`);
      ok = false;
      return def;
    }
    return v;
  };
  const en = get('enabled');
  if (en !== undefined && typeof en !== 'boolean') {
    ctx.error(`${path}.enabled`, `${JSON.stringify(en)} must be true or false`);
    ok = false;
  }
  let exceptionTypes: number[] = [502, 503, 504];
  const et = get('exceptiontypes');
  if (et !== undefined && et !== null) {
    if (!Array.isArray(et) || !et.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 999)) {
      ctx.error(`${path}.exceptionTypes`, `${JSON.stringify(et)} must be a list of response codes`);
      ok = false;
    } else exceptionTypes = et as number[];
  }
  const int = (v: number): boolean => Number.isInteger(v) && v > 0;
  const timeWindowMs = num('timewindow', 'timeWindow', 10_000, (v) => int(v) && v >= 10, 'an integer of ms, at least 10');
  const leastWindowCount = num('leastwindowcount', 'leastWindowCount', 10, int, 'a positive integer');
  const exceptionRateMultiple = num('exceptionratemultiple', 'exceptionRateMultiple', 5, (v) => v > 1, 'a number above 1');
  const maxIpCount = num('maxipcount', 'maxIpCount', 1, int, 'a positive integer');
  const recoverTimeMs = num('recovertime', 'recoverTime', 15 * 60_000, int, 'an integer of ms');
  if (get('maxipratio') !== undefined) ctx.warn(`${path}.maxIpRatio`, 'not used (MOSN does not use it either); maxIpCount bounds the hosts taken out');
  // taskSize is the size of MOSN's goroutine pool for the measurements: nothing to size here.
  return ok ? { enabled: en === true, exceptionTypes, timeWindowMs, leastWindowCount, exceptionRateMultiple, maxIpCount, recoverTimeMs } : undefined;
}

/** The first enabled fault_tolerance filter of any listener (the rule is process-wide, per cluster). */
export function faultToleranceOf(servers: readonly { readonly listeners: readonly { readonly streamFilters: readonly { readonly type: string; readonly config: unknown }[] }[] }[]): FaultToleranceConfig | null {
  for (const s of servers) {
    for (const l of s.listeners) {
      for (const f of l.streamFilters) {
        // Stream filter configs are stored as { value: <the validated config> } (src/api/stream-filter.ts).
        const c = (f.config as { value?: FaultToleranceConfig }).value;
        if (f.type === FAULT_TOLERANCE && c !== undefined && c.enabled) return c;
      }
    }
  }
  return null;
}
