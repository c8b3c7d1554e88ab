/** Public API of the config module: MOSN JSON -> validated, frozen OutriggerConfig. */
export * from './types';
export { ConfigError, formatIssue, makeIssue, showValue } from './errors';
export type { ConfigIssue } from './errors';
export { REDACTED, redactConfig } from './redact';
export {
  DEFAULTS, parseConfig, loadConfigFile, validateConfigFile, parseTcpProxyConfig, parseProxyFilterConfig,
  registerFilterValidator, supportedNetworkFilterTypes, parseGoDurationNs,
  parseHostPort, parseCidr, parsePortList, checkDuration, isHostnameOrIp, ConfigObject, IssueCollector,
  DEFAULT_CONFIG_PATH, loadDefaultConfig,
} from './parse';
export type {
  FilterValidator, FilterValidationContext, ProxyFilterConfig, ValidationResult, HostPortOptions, DurationOptions, IntOptions,
} from './parse';
