/**
 * Transparent interception keys (original destination), listener and cluster side.
 *
 * Listener (MOSN pkg/config/v2 ListenerConfig, pkg/filter/listener/originaldst; Envoy Listener):
 *   "use_original_dst": "redirect" | "tproxy"   MOSN: read the original destination and hand the
 *                       | true | false          connection to the listener at that address
 *                                               (true = "redirect", Envoy's boolean form)
 *   "listener_filters": [{ "type": "original_dst",           MOSN's listener filter (Envoy's name
 *       "config": { "type": "redirect" | "tproxy",           envoy.filters.listener.original_dst too):
 *                   "fallback_to_local": false } }]          read the original destination; with
 *                                                            use_original_dst it also picks the mode
 *   "transparent": true                         Envoy: IP_TRANSPARENT on the listening socket
 *                                               (TPROXY); MOSN sets it for use_original_dst "tproxy"
 *
 * Cluster (MOSN ClusterType ORIGINAL_DST, LbType LB_ORIGINAL_DST, LBOriDstConfig):
 *   "type": "ORIGINAL_DST", "lb_type": "LB_ORIGINAL_DST" (either implies the other),
 *   "original_dst_lb_config": { "use_header": true, "header_name": "host", "replace_local": false },
 *   "cleanup_interval": "5s" (Envoy's key: an idle on-demand host is dropped after this long)
 */
import { showValue } from './errors';
import { ConfigObject, type ParseState } from './reader';
import type { OriginalDstLbConfig, OriginalDstMode } from './types';

/** Names of the original-destination listener filter (MOSN, Envoy v3, Envoy v2). */
const ORIGINAL_DST_FILTERS = new Set(['original_dst', 'envoy.filters.listener.original_dst', 'envoy.listener.original_dst']);

export interface ListenerOriginalDst {
  readonly useOriginalDst?: boolean;
  readonly originalDst?: OriginalDstMode;
  readonly originalDstFallbackToLocal?: boolean;
  readonly transparent?: boolean;
}

function mode(st: ParseState, v: unknown, path: string): OriginalDstMode | undefined {
  if (typeof v === 'string') {
    const m = v.toLowerCase();
    if (m === 'redirect' || m === 'tproxy') return m;
  }
  st.issues.error(path, `${showValue(v)} must be "redirect" or "tproxy"`);
  return undefined;
}

/** Reads use_original_dst, listener_filters and transparent of listener `l` (consumes the keys). */
export function parseListenerOriginalDst(st: ParseState, l: ConfigObject): ListenerOriginalDst {
  let use = false;
  let useMode: OriginalDstMode | undefined;
  const u = l.get('use_original_dst');
  if (u === true) {
    use = true;
  } else if (typeof u === 'string' && u !== '') {
    useMode = mode(st, u, l.at('use_original_dst'));
    use = useMode !== undefined;
  } else if (u !== undefined && u !== false && u !== '') {
    st.issues.error(l.at('use_original_dst'), `${showValue(u)} must be "redirect", "tproxy" or a boolean`);
  }

  let filterMode: OriginalDstMode | undefined;
  let fallbackToLocal = false;
  for (const item of l.list('listener_filters')) {
    const f = ConfigObject.from(st.issues, item.path, item.value);
    if (!f) continue;
    const type = f.has('type') || !f.has('name') ? f.str('type', { required: true }) : f.str('name');
    const cfg = f.has('config') ? f.obj('config') : f.has('typed_config') ? f.obj('typed_config') : undefined;
    f.accept('config', 'typed_config', 'name', 'type');
    f.done();
    if (type === undefined) continue;
    if (!ORIGINAL_DST_FILTERS.has(type)) {
      st.issues.error(f.at('type'), `${showValue(type)} listener filter is not supported yet (supported: original_dst)`);
      continue;
    }
    filterMode = 'redirect';
    if (cfg) {
      const t = cfg.get('type');
      if (t !== undefined && t !== '') filterMode = mode(st, t, cfg.at('type')) ?? 'redirect';
      fallbackToLocal = cfg.bool('fallback_to_local', false);
      cfg.accept('@type');
      cfg.done();
    }
  }
  if (useMode !== undefined && filterMode !== undefined && useMode !== filterMode) {
    st.issues.error(l.at('listener_filters'), `original_dst type ${showValue(filterMode)} contradicts use_original_dst ${showValue(useMode)}`);
  }
  const originalDst = useMode ?? filterMode ?? (use ? 'redirect' : undefined);
  // MOSN (pkg/network/listener.go) makes a use_original_dst "tproxy" listener transparent.
  const transparent = l.bool('transparent', false) || useMode === 'tproxy';
  const out: { -readonly [K in keyof ListenerOriginalDst]: ListenerOriginalDst[K] } = {};
  if (use) out.useOriginalDst = true;
  if (originalDst !== undefined) out.originalDst = originalDst;
  if (fallbackToLocal) out.originalDstFallbackToLocal = true;
  if (transparent) out.transparent = true;
  return out;
}

/** Default Envoy cleanup_interval of ORIGINAL_DST clusters. */
export const ORIGINAL_DST_CLEANUP_MS = 5000;

/** Reads original_dst_lb_config of an ORIGINAL_DST cluster `c` (consumes the key). */
export function parseOriginalDstLbConfig(st: ParseState, c: ConfigObject): OriginalDstLbConfig {
  const cleanupIntervalMs = c.duration('cleanup_interval', { def: ORIGINAL_DST_CLEANUP_MS, positive: true });
  const o = c.has('original_dst_lb_config') ? c.obj('original_dst_lb_config') : undefined;
  if (!o) {
    c.accept('original_dst_lb_config');
    return { headerName: '', replaceLocal: false, cleanupIntervalMs };
  }
  // MOSN use_header/header_name (default "host"); Envoy use_http_header/http_header_name.
  const mosnHeader = o.bool('use_header', false);
  const envoyHeader = o.bool('use_http_header', false);
  let headerName = '';
  if (mosnHeader) headerName = (o.str('header_name') || 'host').toLowerCase();
  else o.accept('header_name');
  if (envoyHeader) headerName = (o.str('http_header_name') || 'x-envoy-original-dst-host').toLowerCase();
  else o.accept('http_header_name');
  const replaceLocal = o.bool('replace_local', false);
  o.done();
  return { headerName, replaceLocal, cleanupIntervalMs };
}
