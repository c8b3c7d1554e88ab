/** The whole MOSN document: sections in order, top-level keys, the frozen OutriggerConfig. */
import { parseHostileTrafficSections } from './overload';
import { parseAdmin } from './admin';
import { parseClusterManager } from './clusters';
import { DEFAULTS } from './defaults';
import { ConfigError, showValue } from './errors';
import type { BoundAddress } from './listeners';
import { ConfigObject, IssueCollector, type ParseState } from './reader';
import { redactConfig } from './redact';
import { parseTracing } from './tracing';
import { parseServer } from './servers';
import type { OutriggerConfig, ServerConfig } from './types';
import { isPlainObject } from './values';
import { parseXdsSections } from './xds';
// The built-in tcp_proxy validator registers itself on import.
import './tcp-proxy';

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/** Refuses a decoded document nested deeper than the limit (parseConfig on objects from the API). */
function checkDocumentDepth(doc: unknown, max: number = DEFAULTS.maxConfigDepth): string | undefined {
  // Iterative walk: the point is not to recurse into whatever depth the document has.
  let level: unknown[] = [doc];
  for (let depth = 0; level.length > 0; depth++) {
    if (depth > max) return `the config nests objects and arrays deeper than ${max} levels (the limit)`;
    const next: unknown[] = [];
    for (const v of level) if (v !== null && typeof v === 'object') next.push(...Object.values(v));
    level = next;
  }
  return undefined;
}

/** Parse and validate a MOSN config document (already JSON-decoded). Throws ConfigError listing every problem. */
export function parseConfig(doc: unknown, source?: string): OutriggerConfig {
  const issues = new IssueCollector();
  const st: ParseState = { issues, clusterNames: new Map() };
  if (!isPlainObject(doc)) {
    issues.error('', `the config document must be a JSON object, got ${showValue(doc)}`);
    throw new ConfigError(issues.errors, source);
  }
  const tooDeep = checkDocumentDepth(doc);
  if (tooDeep !== undefined) throw new ConfigError([{ path: '', message: tooDeep }], source);
  const top = new ConfigObject(issues, '', doc);

  const clusters = parseClusterManager(st, top.obj('cluster_manager'));

  const servers: ServerConfig[] = [];
  const listenerNames = new Map<string, string>();
  const bound: BoundAddress[] = [];
  const serverItems = top.list('servers');
  // An xDS bootstrap (MOSN's istio configs, Envoy v3) may have no servers: listeners come over ADS.
  const xdsOnly = serverItems.length === 0 && top.has('dynamic_resources');
  if (serverItems.length === 0 && !xdsOnly) issues.error('servers', 'exactly one server is required');
  serverItems.forEach((item, i) => {
    if (i > 0) issues.error(item.path, 'only one server is supported (as in MOSN)');
    const s = ConfigObject.from(issues, item.path, item.value);
    if (s) servers.push(parseServer(st, s, listenerNames, bound));
  });
  if (xdsOnly) servers.push(parseServer(st, new ConfigObject(issues, 'servers[0]', {}), listenerNames, bound));

  const admin = parseAdmin(st, top.obj('admin'));

  const tracingObj = top.obj('tracing');
  const tracing = tracingObj !== undefined ? parseTracing(tracingObj) : undefined; // src/config/tracing.ts
  if (tracingObj !== undefined) tracingObj.done();
  // Harmless MOSN features we do not implement: warn.
  top.warnIfSet('metrics', 'metrics sinks/settings are not supported yet; ignored (stats are served by the admin API)');
  const pprof = top.obj('pprof');
  if (pprof) {
    if (pprof.bool('debug', false)) issues.warn(pprof.at('debug'), 'pprof is not applicable to Outrigger; ignored');
    pprof.accept('port_value', 'endpoint');
    pprof.done();
  }
  top.bool('disable_upgrade', false); // hot upgrade (src/upgrade): this process offers no upgrade socket
  top.warnIfSet('close_graceful', 'deprecated MOSN key; ignored');
  top.bool('inherit_old_mosnconfig', false); // hot upgrade: the new process takes the running one's config
  top.warnIfSet('pid', 'pid files are not supported yet; ignored');
  top.warnIfSet('uds_dir', 'not supported; ignored');
  top.warnIfSet('plugin', 'MOSN plugins are not supported; ignored');
  // Unsafe to ignore: they define listeners, clusters or request handling we would silently lack.
  const xds = parseXdsSections(st, top); // dynamic_resources, static_resources, node (src/config/xds.ts)
  // Envoy v3 bootstrap sections with no effect on what Outrigger serves.
  for (const k of ['layered_runtime', 'stats_config', 'stats_sinks', 'stats_flush_interval', 'watchdog', 'watchdogs', 'bootstrap_extensions', 'hds_config', 'flags_path', 'enable_dispatcher_stats', 'header_prefix', 'use_tcp_for_dns_lookups', 'default_socket_interface', 'node_context_params', 'fatal_actions']) {
    top.warnIfSet(k, 'Envoy bootstrap setting not used by Outrigger; ignored');
  }
  top.errorIfSet('third_part_codec', 'third-party codecs are not supported');
  top.errorIfSet('extends', 'MOSN extends are not supported');
  top.errorIfSet('wasm_global_plugins', 'WebAssembly plugins are not supported');
  const hostile = parseHostileTrafficSections(top); // limits, overload_manager (src/config/overload.ts)
  top.done();

  if (issues.errors.length > 0) throw new ConfigError(issues.errors, source, issues.warnings);
  const out: OutriggerConfig = { servers, clusters, admin, ...hostile, ...(tracing !== undefined ? { tracing } : {}), ...(xds ? { xds } : {}), raw: redactConfig(doc), warnings: issues.warnings };
  // Hot upgrade hands the running config over with its secrets (src/upgrade/old.ts); not enumerable, so no dump, log or worker message carries it.
  Object.defineProperty(out, 'unredacted', { value: doc, enumerable: false });
  return deepFreeze(out);
}
