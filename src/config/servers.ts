/** servers[] section: log settings, workers, graceful timeout, then routers and listeners. */
import { showValue } from './errors';
import { DEFAULTS } from './defaults';
import { parseListener, type BoundAddress } from './listeners';
import { ConfigObject, type ParseState } from './reader';
import { parseRouters } from './routers';
import type { ListenerConfig, LogLevel, ServerConfig } from './types';

const LOG_LEVELS: Record<string, LogLevel> = {
  TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', WARNING: 'warn', ERROR: 'error', FATAL: 'fatal',
  SILENT: 'silent', OFF: 'silent',
};

export function parseServer(
  st: ParseState, s: ConfigObject, listenerNames: Map<string, string>, bound: BoundAddress[],
): ServerConfig {
  s.accept('mosn_server_name');
  const defaultLogPath = s.str('default_log_path', { def: DEFAULTS.logPath }) || DEFAULTS.logPath;
  let defaultLogLevel: LogLevel = DEFAULTS.logLevel;
  const lvl = s.str('default_log_level');
  if (lvl !== undefined && lvl !== '') {
    const m = LOG_LEVELS[lvl.toUpperCase()];
    if (m) defaultLogLevel = m;
    else st.issues.error(s.at('default_log_level'), `${showValue(lvl)} is not a log level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL)`);
  }
  s.warnIfSet('global_log_roller', 'log rotation is not supported yet; ignored');
  s.warnIfSet('use_netpoll_mode', 'not applicable; ignored');

  // MOSN (pkg/configmanager/parser.go): an int (< 1 = all CPUs), or a string: "auto" or a number.
  let processor: number = DEFAULTS.processor;
  const pv = s.get('processor');
  if (pv !== undefined) {
    const p = s.at('processor');
    if (typeof pv === 'string') {
      if (pv.trim().toLowerCase() === 'auto') processor = 0;
      else if (/^\d+$/.test(pv.trim())) processor = s.checkInt(Number(pv.trim()), p, { min: 0, max: 1024 }) ?? 0;
      else st.issues.error(p, `${showValue(pv)} must be a number of workers or "auto"`);
    } else {
      processor = s.checkInt(pv, p, { min: 0, max: 1024 }) ?? 0;
    }
  }
  const gracefulTimeoutMs = s.duration('graceful_timeout', { def: DEFAULTS.gracefulTimeoutMs });
  // MOSN keeps its 30s default when graceful_timeout is 0 (pkg/server/server.go).
  const routers = parseRouters(st, s);
  const routerNames = new Set(routers.map((r) => r.name));
  const listeners: ListenerConfig[] = [];
  for (const item of s.list('listeners')) {
    const l = ConfigObject.from(st.issues, item.path, item.value);
    if (!l) continue;
    const parsed = parseListener(st, l, routerNames, listenerNames, bound);
    if (parsed) listeners.push(parsed);
  }
  s.done();
  return {
    defaultLogPath, defaultLogLevel, processor, gracefulTimeoutMs: gracefulTimeoutMs === 0 ? DEFAULTS.gracefulTimeoutMs : gracefulTimeoutMs,
    listeners, routers,
  };
}
