/**
 * Match criteria of subset load balancing (./subset.ts): a route's `metadata_match`, compiled
 * once per router snapshot into a MetadataMatch whose subset key is precomputed, so a request
 * finds its subset with one Map lookup and no allocation.
 *
 * MOSN shape (pkg/config/v2 MetadataConfig): {"filter_metadata": {"mosn.lb": {key: "value"}}};
 * the xDS translator writes Envoy's "envoy.lb" criteria in the same shape.
 */
import { MOSN_LB_KEY as LB_KEY, readLbLabels } from '../config/lb-labels';

/** A value, not a re-export (`export { X } from`), which would turn this module's exports object into a dictionary (test/unit/module-exports.test.ts). */
export const MOSN_LB_KEY = LB_KEY;

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

/** A route's (or weighted cluster's) metadata_match: null when absent or empty; throws an Error naming the path. */
export function compileMetadataMatch(v: unknown, where: string): MetadataMatch | null {
  const fail = (p: string, m: string): never => {
    throw new Error(`${p}: ${m}`);
  };
  const labels = readLbLabels(v, where, true, fail, fail);
  return Object.keys(labels).length === 0 ? null : new MetadataMatch(labels);
}
