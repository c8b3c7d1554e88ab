/**
 * MOSN JSON config -> normalized, deep-frozen OutriggerConfig.
 *
 * Compatibility rules (taken from MOSN's Go decoding, see pkg/config/v2 in mosn/mosn):
 *  - keys match case-insensitively everywhere (Go encoding/json), so `"Name"` == `"name"`;
 *    two spellings of one key in the same object are an error (which one wins is ambiguous);
 *  - durations are Go duration strings ("30s", "500ms", "1m30s", "1.5s"); bare numbers are
 *    only accepted where MOSN decodes a time.Duration (tcp_proxy idle_timeout: nanoseconds),
 *    plus the number 0 everywhere (Go's ParseDuration accepts "0").
 *
 * Policy for things we cannot honor yet: security-relevant ones (auth/ACL filters, SDS or
 * custom TLS verification, unknown filters that might be either) are ERRORS; harmless
 * ones (tracing, pprof, metrics sinks, log rotation, health checks, ...) and unknown keys
 * become WARNINGS on `config.warnings`. All errors are collected and thrown as one ConfigError.
 *
 * One file per section (the layer imports nothing above it: filter modules register their
 * validators into filter-registry.ts, the config layer never imports them):
 *   defaults.ts        documented defaults and limits
 *   values.ts          scalar parsers (durations, host:port, CIDR, port lists)
 *   reader.ts          IssueCollector, the case-insensitive ConfigObject, ParseState
 *   filter-registry.ts network filter validator registry (stream filters: src/api/stream-filter.ts kinds)
 *   tcp-proxy.ts, proxy-filter.ts   built-in filter config shapes
 *   tls-context.ts     tls_context / tls_context_set (material loaded and checked)
 *   clusters.ts        cluster_manager
 *   routers.ts         servers[].routers
 *   listeners.ts       servers[].listeners
 *   servers.ts         servers[]
 *   admin.ts           admin
 *   document.ts        parseConfig: the whole document
 *   json-reader.ts     files: JSON errors with positions, size and depth limits
 * This module re-exports their public parts.
 */
export { DEFAULTS } from './defaults';
export { parseGoDurationNs, isPlainObject, isHostnameOrIp, parseHostPort, parseCidr, parsePortList } from './values';
export type { HostPortOptions } from './values';
export { IssueCollector, ConfigObject, checkDuration } from './reader';
export type { IntOptions, DurationOptions } from './reader';
export { registerFilterValidator, supportedNetworkFilterTypes } from './filter-registry';
export type { FilterValidationContext, FilterValidator } from './filter-registry';
export { parseTcpProxyConfig } from './tcp-proxy';
export { parseProxyFilterConfig } from './proxy-filter';
export type { ProxyFilterConfig } from './proxy-filter';
export { parseConfig } from './document';
export { loadConfigFile, validateConfigFile, DEFAULT_CONFIG_PATH, loadDefaultConfig } from './json-reader';
export type { ValidationResult } from './json-reader';
