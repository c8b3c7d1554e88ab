/** servers[].routers section: route configs (virtual hosts kept as data, keys normalized). */
import { showValue } from './errors';
import { ConfigObject, IssueCollector, type ParseState } from './reader';
import type { RouterConfig } from './types';
import { isPlainObject, joinPath } from './values';

/** Keys of MOSN route config (pkg/config/v2/route.go) normalized to lowercase; others keep their spelling. */
const ROUTE_KEYS = new Set([
  'router_config_name', 'virtual_hosts', 'name', 'domains', 'routers', 'match', 'route', 'redirect', 'direct_response',
  'metadata', 'per_filter_config', 'request_mirror_policies', 'prefix', 'path', 'regex', 'headers', 'variables', 'value',
  'model', 'dsl_expressions', 'expression', 'cluster_name', 'cluster_variable', 'upstream_protocol', 'cluster_header',
  'weighted_clusters', 'cluster', 'weight', 'hash_policy', 'metadata_match', 'timeout', 'retry_policy', 'retry_on',
  'retry_timeout', 'num_retries', 'status_codes', 'prefix_rewrite', 'regex_rewrite', 'pattern', 'google_re2',
  'substitution', 'host_rewrite', 'auto_host_rewrite', 'auto_host_rewrite_header', 'request_headers_to_add',
  'request_headers_to_remove', 'response_headers_to_add', 'response_headers_to_remove', 'header', 'key', 'append',
  'status', 'body', 'response_code', 'path_redirect', 'host_redirect', 'scheme_redirect', 'percent', 'trace_sampled',
  'cookie', 'source_ip', 'ttl', 'case_sensitive', 'invert_match', 'filter_metadata', 'require_tls',
]);
/** Values under these keys are user data (metadata, filter configs): copied verbatim. */
const OPAQUE_ROUTE_KEYS = new Set(['metadata', 'metadata_match', 'per_filter_config', 'filter_metadata']);

function normalizeRouteKeys(issues: IssueCollector, v: unknown, path: string): unknown {
  if (Array.isArray(v)) return v.map((x, i) => normalizeRouteKeys(issues, x, `${path}[${i}]`));
  if (!isPlainObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) {
    const lower = k.toLowerCase();
    const key = ROUTE_KEYS.has(lower) ? lower : k;
    if (Object.prototype.hasOwnProperty.call(out, key)) {
      issues.error(joinPath(path, key), `${showValue(k)} is given twice (keys differ only in case)`);
      continue;
    }
    out[key] = OPAQUE_ROUTE_KEYS.has(lower) ? val : normalizeRouteKeys(issues, val, joinPath(path, key));
  }
  return out;
}

function collectRouteClusters(v: unknown, path: string, out: { name: string; path: string }[]): void {
  if (Array.isArray(v)) {
    v.forEach((x, i) => collectRouteClusters(x, `${path}[${i}]`, out));
    return;
  }
  if (!isPlainObject(v)) return;
  for (const [k, val] of Object.entries(v)) {
    if (OPAQUE_ROUTE_KEYS.has(k)) continue;
    if (k === 'cluster_name' && typeof val === 'string' && val !== '') out.push({ name: val, path: joinPath(path, k) });
    if (k === 'weighted_clusters' && Array.isArray(val)) {
      val.forEach((wc, i) => {
        const n = isPlainObject(wc) ? wc['name'] : undefined;
        if (typeof n === 'string' && n !== '') out.push({ name: n, path: `${joinPath(path, k)}[${i}].name` });
      });
      continue;
    }
    collectRouteClusters(val, joinPath(path, k), out);
  }
}

export function parseRouters(st: ParseState, s: ConfigObject): RouterConfig[] {
  const routers: RouterConfig[] = [];
  const seen = new Map<string, string>();
  for (const item of s.list('routers')) {
    const r = ConfigObject.from(st.issues, item.path, item.value);
    if (!r) continue;
    const name = r.str('router_config_name', { required: true });
    if (name !== undefined) {
      const prev = seen.get(name);
      if (prev) st.issues.error(r.at('router_config_name'), `${showValue(name)} is a duplicate router name (also ${prev})`);
      else seen.set(name, r.at('router_config_name'));
    }
    r.errorIfSet('router_configs', 'loading routers from a directory is not supported yet; list virtual_hosts inline');
    for (const k of ['request_headers_to_add', 'request_headers_to_remove', 'response_headers_to_add', 'response_headers_to_remove']) {
      r.warnIfSet(k, 'router-level header rewriting is not supported yet; ignored');
    }
    const vhosts: Record<string, unknown>[] = [];
    for (const vh of r.list('virtual_hosts')) {
      if (!isPlainObject(vh.value)) {
        st.issues.error(vh.path, `${showValue(vh.value)} must be an object`);
        continue;
      }
      const norm = normalizeRouteKeys(st.issues, vh.value, vh.path) as Record<string, unknown>;
      const refs: { name: string; path: string }[] = [];
      collectRouteClusters(norm, vh.path, refs);
      for (const ref of refs) {
        if (!st.clusterNames.has(ref.name)) st.issues.warn(ref.path, `${showValue(ref.name)} is not a cluster defined in cluster_manager.clusters`);
      }
      vhosts.push(norm);
    }
    r.done();
    if (name !== undefined) routers.push({ name, virtualHosts: vhosts });
  }
  return routers;
}
