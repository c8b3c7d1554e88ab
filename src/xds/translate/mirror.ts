/**
 * Envoy's request_mirror_policies (route action and virtual host) -> the MOSN-shaped route
 * `request_mirror_policies` list (src/filters/stream/mirror/policy.ts), marked
 * `sent_by_router`: as in Envoy, the router sends the copies without a mirror filter.
 * Mirroring never changes the main request, so what cannot be honoured is warned about and
 * skipped, never NACKed.
 */
import { checkFields, join, list, msg, str, type Msg, type Tx } from './util';

const DENOMINATORS = new Set(['HUNDRED', 'TEN_THOUSAND', 'MILLION']);

/** The policies of `v` (a repeated RequestMirrorPolicy); undefined when none is usable. */
export function mirrorPolicies(tx: Tx, v: unknown, path: string): Record<string, unknown>[] | undefined {
  const out: Record<string, unknown>[] = [];
  list(v).forEach((p: Msg, i) => {
    const pp = join(path, i);
    checkFields(tx, p, pp, {
      ok: ['cluster', 'runtimeFraction'],
      warn: {
        clusterHeader: 'mirroring to a cluster named by a header is not supported; this policy is skipped',
        traceSampled: 'copies are traced as the main request is; ignored',
        disableShadowHostSuffixAppend: 'copies always carry the authority with "-shadow" appended; ignored',
        requestHeadersMutations: 'header mutations of copies are not supported; ignored',
        hostRewriteLiteral: 'host rewriting of copies is not supported; ignored',
      },
    });
    const cluster = str(p.cluster);
    if (cluster === '') {
      if (str(p.clusterHeader) === '') tx.warn(join(pp, 'cluster'), 'is empty; this policy is skipped');
      return;
    }
    const pol: Record<string, unknown> = { cluster, sent_by_router: true };
    const rf = msg(p.runtimeFraction);
    if (rf !== undefined) {
      if (str(rf.runtimeKey) !== '') tx.warn(join(pp, 'runtimeFraction.runtimeKey'), 'runtime overrides are not supported; default_value applies');
      const dv = msg(rf.defaultValue) ?? {};
      const den = str(dv.denominator) || 'HUNDRED';
      const num = typeof dv.numerator === 'number' ? dv.numerator : 0; // absent: 0 (proto3 default)
      if (!DENOMINATORS.has(den)) tx.fail(join(pp, 'runtimeFraction.defaultValue.denominator'), `${den} is not HUNDRED, TEN_THOUSAND or MILLION`);
      pol.runtime_fraction = { default_value: { numerator: num, denominator: den } };
    }
    out.push(pol);
  });
  return out.length > 0 ? out : undefined;
}
