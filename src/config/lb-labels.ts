/**
 * Subset load balancing labels in MOSN's shape, {"filter_metadata": {"mosn.lb": {key: "value"}}}:
 * host labels (cluster_manager), route and tcp_proxy criteria. Compiled for routing by
 * src/upstream/subset-match.ts.
 */

/** The filter_metadata key of subset labels in MOSN config (hosts and routes). */
export const MOSN_LB_KEY = 'mosn.lb';

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The labels of a `{"filter_metadata": {"mosn.lb": {...}}}` object. Problems are reported through
 * `bad(path, message)`; `strict`: any other filter_metadata key, or a value that is not a string,
 * is refused (route criteria), else skipped with `skip(path, message)` (host labels, as MOSN).
 */
export function readLbLabels(
  v: unknown,
  where: string,
  strict: boolean,
  bad: (path: string, message: string) => void,
  skip: (path: string, message: string) => void,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (v === undefined || v === null) return out;
  if (!isRecord(v)) {
    bad(where, 'must be an object {"filter_metadata": {"mosn.lb": {...}}}');
    return out;
  }
  for (const k of Object.keys(v)) {
    if (k !== 'filter_metadata') (strict ? bad : skip)(`${where}.${k}`, strict ? 'unknown key (expected filter_metadata)' : 'unknown key; ignored');
  }
  const fm = v['filter_metadata'];
  if (fm === undefined || fm === null) return out;
  const fp = `${where}.filter_metadata`;
  if (!isRecord(fm)) {
    bad(fp, 'must be an object');
    return out;
  }
  for (const k of Object.keys(fm)) {
    if (k !== MOSN_LB_KEY) (strict ? bad : skip)(`${fp}.${k}`, `only "${MOSN_LB_KEY}" is used for subset load balancing${strict ? '' : '; ignored'}`);
  }
  const lb = fm[MOSN_LB_KEY];
  if (lb === undefined || lb === null) return out;
  const lp = `${fp}["${MOSN_LB_KEY}"]`;
  if (!isRecord(lb)) {
    bad(lp, 'must be an object of string values');
    return out;
  }
  for (const [k, val] of Object.entries(lb)) {
    if (typeof val === 'string') out[k] = val;
    else (strict ? bad : skip)(`${lp}.${k}`, `${JSON.stringify(val)}: only string values ${strict ? 'are supported' : 'are labels; ignored (as MOSN)'}`);
  }
  return out;
}
