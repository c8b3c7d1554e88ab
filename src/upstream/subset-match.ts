/**
 * Match criteria of subset load balancing (./subset.ts): a route's `metadata_match`, compiled
 * once per router snapshot into a MetadataMatch whose subset key is precomputed, so a request
 * finds its subset with one Map lookup and no allocation.
 *
 * MOSN shape (pkg/config/v2 MetadataConfig): {"filter_metadata": {"mosn.lb": {key: "value"}}};
 * the xDS translator writes Envoy's "envoy.lb" criteria in the same shape.
 */

/** The filter_metadata key of subset labels in MOSN config (hosts and routes). */
export const MOSN_LB_KEY = 'mosn.lb';

/** The identity of a subset: its labels sorted by key (JSON, so no separator can be forged). */
export function subsetKey(labels: Readonly<Record<string, string>>, keys: readonly string[]): string {
  return JSON.stringify(keys.map((k) => [k, labels[k]]));
}

/** The identity of a set of label keys (a selector's). */
export function keySetKey(keys: readonly string[]): string {
  return JSON.stringify(keys);
}

export class MetadataMatch {
  /** Label keys, sorted. */
  readonly keys: readonly string[];
  /** subsetKey of the labels: the subset a request with these criteria goes to. */
  readonly key: string;
  /** keySetKey of `keys`: which selector the criteria are for (per-selector fallback). */
  readonly keysKey: string;

  constructor(readonly labels: Readonly<Record<string, string>>) {
    this.keys = Object.freeze(Object.keys(labels).sort());
    this.key = subsetKey(labels, this.keys);
    this.keysKey = keySetKey(this.keys);
  }

  /** `over`'s labels replacing these (Envoy: a weighted cluster's metadata_match over the route's). */
  merged(over: MetadataMatch | null): MetadataMatch {
    return over === null ? this : new MetadataMatch({ ...this.labels, ...over.labels });
  }
}

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

/** A route's (or weighted cluster's) metadata_match: null when absent or empty; throws an Error naming the path. */
export function compileMetadataMatch(v: unknown, where: string): MetadataMatch | null {
  const fail = (p: string, m: string): never => {
    throw new Error(`${p}: ${m}`);
  };
  const labels = readLbLabels(v, where, true, fail, fail);
  return Object.keys(labels).length === 0 ? null : new MetadataMatch(labels);
}
