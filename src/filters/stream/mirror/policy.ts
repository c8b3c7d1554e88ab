/**
 * A route's mirror policies: MOSN's `request_mirror_policies: { "cluster": "x", "percent": 50 }`
 * (one object) and Envoy's `request_mirror_policies: [{ "cluster": "x", "runtime_fraction":
 * { "default_value": { "numerator": 50, "denominator": "HUNDRED" } } }]` (a list). Compiled by
 * the routers (throws an Error naming the bad field, as route compilation does); the `mirror`
 * stream filter sends the copies.
 */
export interface MirrorPolicy {
  readonly cluster: string;
  /** Share of requests mirrored, 0..1. */
  readonly fraction: number;
  /**
   * Sent by the router itself, as Envoy's router does (the xDS translation marks its policies
   * with "sent_by_router": true); false: MOSN's, sent only through the `mirror` stream filter.
   */
  readonly router: boolean;
}

const DENOMINATORS: Readonly<Record<string, number>> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function one(v: unknown, where: string): MirrorPolicy {
  if (!isObj(v)) throw new Error(`${where}: must be an object with "cluster"`);
  const cluster = v['cluster'];
  if (typeof cluster !== 'string' || cluster === '') throw new Error(`${where}.cluster: must be a cluster name`);
  let fraction = 1;
  if (v['percent'] !== undefined) {
    const p = v['percent'];
    if (typeof p !== 'number' || p < 0 || p > 100) throw new Error(`${where}.percent: ${JSON.stringify(p)} must be a number in 0..100`);
    fraction = p / 100;
  }
  const rf = v['runtime_fraction'];
  if (rf !== undefined) {
    const dv = isObj(rf) ? rf['default_value'] : undefined;
    if (!isObj(dv)) throw new Error(`${where}.runtime_fraction.default_value: must be an object`);
    const num = dv['numerator'] ?? 0;
    const den = DENOMINATORS[typeof dv['denominator'] === 'string' ? dv['denominator'] : 'HUNDRED'];
    if (typeof num !== 'number' || num < 0 || den === undefined) throw new Error(`${where}.runtime_fraction.default_value: numerator must be >= 0 and denominator HUNDRED, TEN_THOUSAND or MILLION`);
    fraction = Math.min(1, num / den);
  }
  const router = v['sent_by_router'];
  if (router !== undefined && typeof router !== 'boolean') throw new Error(`${where}.sent_by_router: ${JSON.stringify(router)} must be true or false`);
  return { cluster, fraction, router: router === true };
}

/** The route action's mirror policies, null when it has none. */
export function compileMirrorPolicies(action: Readonly<Record<string, unknown>>, where: string): readonly MirrorPolicy[] | null {
  const v = action['request_mirror_policies'];
  if (v === undefined || v === null) return null;
  const at = `${where}.route.request_mirror_policies`;
  const list = Array.isArray(v) ? v.map((x, i) => one(x, `${at}[${i}]`)) : [one(v, at)];
  return list.length > 0 ? list : null;
}
