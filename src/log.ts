/**
 * Logging: a pino error/debug logger and a connection-level access-log writer.
 *
 * Both write through asynchronous SonicBoom destinations (pino.destination with sync:false):
 * lines are buffered in memory and written in batches of >= minLength bytes, plus a periodic
 * flush so a quiet log still reaches the disk. Every thread (main or worker) has its own
 * destinations; one destination per path is shared by all loggers of that thread.
 *
 * pino only installs its exit-time flush on the main thread: worker threads must
 * `await closeLogs()` (or at least `flushLogger()`) before they exit.
 */
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

export type LogLevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

type Dest = ReturnType<typeof pino.destination>;
/** Fields of SonicBoom that its type definitions do not declare. */
interface DestInternals {
  fd: number;
  destroyed: boolean;
}

const LEVEL_ALIASES: Readonly<Record<string, LogLevelName>> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  fatal: 'fatal',
  critical: 'fatal',
  silent: 'silent',
  off: 'silent',
  none: 'silent',
};

/** Maps MOSN-style level names (ERROR, WARN, INFO, DEBUG, TRACE, FATAL) to pino levels. */
export function normalizeLevel(level: string | undefined, fallback: LogLevelName = 'info'): LogLevelName {
  if (level === undefined || level === '') return fallback;
  const l = LEVEL_ALIASES[level.trim().toLowerCase()];
  if (!l) throw new Error(`log: unknown log level "${level}" (expected one of trace, debug, info, warn, error, fatal, silent)`);
  return l;
}

/** A CLI override wins over the config file's level. */
export function resolveLogLevel(configLevel?: string, cliLevel?: string): LogLevelName {
  return normalizeLevel(cliLevel !== undefined && cliLevel !== '' ? cliLevel : configLevel);
}

export const DEFAULT_MIN_LENGTH = 4096;
export const DEFAULT_FLUSH_INTERVAL_MS = 1000;

interface DestEntry {
  dest: Dest;
  refs: number;
  key: string;
}

const destinations = new Map<string, DestEntry>();

function destKey(path: string | undefined): string | number {
  const p = (path ?? '').trim();
  if (p === '' || p === 'stdout' || p === '/dev/stdout') return 1;
  if (p === 'stderr' || p === '/dev/stderr') return 2;
  return p;
}

function acquireDest(path: string | undefined, minLength: number, flushIntervalMs: number): DestEntry {
  const dest = destKey(path);
  const key = String(dest);
  let e = destinations.get(key);
  if (e && !(e.dest as unknown as DestInternals).destroyed) {
    e.refs++;
    return e;
  }
  const d = pino.destination({
    dest,
    sync: false,
    minLength,
    periodicFlush: flushIntervalMs > 0 ? flushIntervalMs : undefined,
    mkdir: typeof dest === 'string',
  } as Parameters<typeof pino.destination>[0]);
  e = { dest: d, refs: 1, key };
  destinations.set(key, e);
  return e;
}

function isReady(d: Dest): boolean {
  return (d as unknown as DestInternals).fd >= 0;
}

function isDestroyed(d: Dest): boolean {
  return (d as unknown as DestInternals).destroyed;
}

/**
 * Asynchronous flush. SonicBoom queues a flush requested while the file is still opening and
 * performs it on open, so this never throws "not ready".
 */
function flushDest(d: Dest): Promise<void> {
  return new Promise((resolve) => {
    if (isDestroyed(d)) return resolve();
    try {
      d.flush(() => resolve());
    } catch {
      resolve();
    }
  });
}

function noop(): void {}

/**
 * Synchronous best-effort flush (crash / exit path). A destination still opening cannot be
 * written synchronously (flushSync would throw): its flush is queued for when it opens.
 */
function flushDestSync(d: Dest): void {
  if (isDestroyed(d)) return;
  try {
    if (isReady(d)) d.flushSync();
    else d.flush(noop);
  } catch {
    // EAGAIN on a pipe etc.: the asynchronous writer keeps the data.
  }
}

async function releaseDest(e: DestEntry): Promise<void> {
  e.refs--;
  if (e.refs > 0) return;
  if (destinations.get(e.key) === e) destinations.delete(e.key);
  const d = e.dest;
  if (isDestroyed(d)) return;
  await flushDest(d);
  if (isDestroyed(d)) return;
  await new Promise<void>((resolve) => {
    d.once('close', () => resolve());
    d.once('error', () => resolve());
    try {
      d.end(); // fd 1/2 are not closed by SonicBoom
    } catch {
      resolve();
    }
  });
}

export interface LoggerOptions {
  /** MOSN `default_log_level` (or a CLI override already resolved). Default info. */
  level?: string;
  /** MOSN `default_log_path`: "stdout", "stderr" or a file path. Default stdout. */
  path?: string;
  name?: string;
  /** Extra fields on every line (pino `base`); default { pid }. */
  base?: Record<string, unknown>;
  minLength?: number;
  flushIntervalMs?: number;
}

const loggerDests = new WeakMap<Logger, DestEntry>();

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = normalizeLevel(opts.level);
  const entry = acquireDest(opts.path, opts.minLength ?? DEFAULT_MIN_LENGTH, opts.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS);
  const logger = pino(
    {
      level,
      name: opts.name,
      base: opts.base ?? { pid: process.pid },
    },
    entry.dest,
  );
  loggerDests.set(logger, entry);
  return logger;
}

/**
 * Flushes every destination of this thread synchronously (for a crash / exit path).
 * Safe before a destination finished opening: that one is flushed when it becomes ready.
 */
export function flushLogger(): void {
  for (const e of destinations.values()) flushDestSync(e.dest);
}

/**
 * Writes what `write` logs before returning (crash lines: they must neither wait for the periodic
 * flush nor for libuv's threadpool, and the thread may end right after). flushLogger() alone is
 * not enough: a line that fills the buffer to minLength is taken by an asynchronous write, which
 * flushSync cannot write. So this thread's destinations write synchronously during the call.
 */
export function logSynchronously(write: () => void): void {
  const ds = [...destinations.values()].map((e) => e.dest as unknown as { sync: boolean });
  const was = ds.map((d) => d.sync);
  for (const d of ds) d.sync = true;
  try {
    write();
    flushLogger();
  } finally {
    ds.forEach((d, i) => (d.sync = was[i]));
  }
}

/** The fatal line of a thread that ends right after it (one-isolate mode: an uncaught exception ends the process). */
export function logFatalSync(logger: Logger, obj: Record<string, unknown>, msg: string): void {
  logSynchronously(() => logger.fatal(obj, msg));
}

/** Flushes every destination of this thread without blocking. */
export async function flushLoggerAsync(): Promise<void> {
  await Promise.all([...destinations.values()].map((e) => flushDest(e.dest)));
}

/** Diagnostics: the destinations this thread has open. */
export function describeLogDestinations(): Array<{ dest: string; sync: boolean; minLength: number; refs: number }> {
  return [...destinations.values()].map((e) => {
    const d = e.dest as unknown as { sync: boolean; minLength: number };
    return { dest: e.key === '1' ? 'stdout' : e.key === '2' ? 'stderr' : e.key, sync: d.sync, minLength: d.minLength, refs: e.refs };
  });
}

/** Releases one logger's destination (closed when no other logger / access log uses it). */
export async function closeLogger(logger: Logger): Promise<void> {
  const e = loggerDests.get(logger);
  if (!e) return;
  loggerDests.delete(logger);
  await releaseDest(e);
}

/** Flushes and closes all destinations of this thread (call before a worker exits). */
export async function closeLogs(): Promise<void> {
  const all = [...destinations.values()];
  destinations.clear();
  await Promise.all(
    all.map((e) => {
      e.refs = 1;
      return releaseDest(e);
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Access log

/** What a listener knows about one finished connection (or request). Absent values print "-". */
export interface AccessLogEntry {
  /** Epoch milliseconds when the connection / request arrived. */
  startTime: number;
  /** Arrival -> request forwarded upstream, ms. */
  requestReceivedDurationMs?: number;
  /** Arrival -> response received from upstream, ms. */
  responseReceivedDurationMs?: number;
  /** Arrival -> request finished, ms. */
  requestFinishedDurationMs?: number;
  /** Whole lifetime, ms. */
  durationMs?: number;
  bytesSent?: number;
  bytesReceived?: number;
  protocol?: string;
  responseCode?: number;
  /** Response flags, e.g. "UF" (upstream connect failure), "UO" (overflow). */
  responseFlag?: string;
  downstreamRemoteAddress?: string;
  downstreamLocalAddress?: string;
  upstreamHost?: string;
  upstreamLocalAddress?: string;
  upstreamCluster?: string;
  listenerName?: string;
  /** TLS of the downstream connection (absent for plaintext). */
  downstreamTls?: AccessLogTls;
  /** Why the upstream connection failed (MOSN upstream_transport_failure_reason). */
  upstreamTransportFailureReason?: string;
  /** The matched route's name. */
  routeName?: string;
  /** Request headers (%request_header_NAME%); an L7 stream passes itself. */
  requestHeaders?: AccessLogHeaders;
  /** Response headers as sent downstream (%response_header_NAME%); an HTTP stream passes itself. */
  responseHeaders?: AccessLogResponseHeaders;
}

/** Where %response_header_NAME% values come from (lower-case names). */
export interface AccessLogResponseHeaders {
  logResponseHeader(name: string): string | undefined;
}

/** Where %request_header_NAME% values come from (lower-case names). */
export interface AccessLogHeaders {
  logHeader(name: string): string | undefined;
}

/** TLS fields of an access-log entry (src/tls/identity.ts TlsInfo has this shape). */
export interface AccessLogTls {
  readonly version: string;
  readonly cipher: string;
  readonly serverName: string;
  readonly peer: {
    readonly subject: string;
    readonly issuer: string;
    readonly uriSans: readonly string[];
    readonly dnsSans: readonly string[];
    readonly serialNumber: string;
    readonly fingerprint256: string;
  } | null;
}

const enum V {
  StartTime,
  RequestReceivedDuration,
  ResponseReceivedDuration,
  RequestFinishedDuration,
  Duration,
  BytesSent,
  BytesReceived,
  Protocol,
  ResponseCode,
  ResponseFlag,
  DownstreamRemoteAddress,
  DownstreamLocalAddress,
  UpstreamHost,
  UpstreamLocalAddress,
  UpstreamCluster,
  ListenerName,
  NotAvailable,
  DownstreamPeerUriSan,
  DownstreamPeerDnsSan,
  DownstreamPeerSubject,
  DownstreamPeerIssuer,
  DownstreamPeerSerial,
  DownstreamPeerFingerprint256,
  DownstreamTlsVersion,
  DownstreamTlsCipher,
  RequestedServerName,
  UpstreamTransportFailureReason,
  RouteName,
  RequestHeader,
  ResponseHeader,
}

/** MOSN variable names (pkg/types: start_time, bytes_sent, ...); matched case-insensitively. */
const VARIABLES: Readonly<Record<string, V>> = {
  start_time: V.StartTime,
  request_received_duration: V.RequestReceivedDuration,
  response_received_duration: V.ResponseReceivedDuration,
  request_finished_duration: V.RequestFinishedDuration,
  duration: V.Duration,
  bytes_sent: V.BytesSent,
  bytes_received: V.BytesReceived,
  protocol: V.Protocol,
  response_code: V.ResponseCode,
  response_flag: V.ResponseFlag,
  response_flags: V.ResponseFlag,
  downstream_remote_address: V.DownstreamRemoteAddress,
  downstream_local_address: V.DownstreamLocalAddress,
  upstream_host: V.UpstreamHost,
  upstream_local_address: V.UpstreamLocalAddress,
  upstream_cluster: V.UpstreamCluster,
  listener_name: V.ListenerName,
  // TLS (Envoy's command operator names, lowercased; MOSN has no TLS variables)
  downstream_peer_uri_san: V.DownstreamPeerUriSan,
  downstream_peer_dns_san: V.DownstreamPeerDnsSan,
  downstream_peer_subject: V.DownstreamPeerSubject,
  downstream_peer_issuer: V.DownstreamPeerIssuer,
  downstream_peer_serial: V.DownstreamPeerSerial,
  downstream_peer_fingerprint_256: V.DownstreamPeerFingerprint256,
  downstream_tls_version: V.DownstreamTlsVersion,
  downstream_tls_cipher: V.DownstreamTlsCipher,
  requested_server_name: V.RequestedServerName,
  upstream_transport_failure_reason: V.UpstreamTransportFailureReason,
  route_name: V.RouteName,
};

/** MOSN's prefix of request-header variables (%request_header_x-trace-id%). */
const REQUEST_HEADER_PREFIX = 'request_header_';
const RESPONSE_HEADER_PREFIX = 'response_header_';

export const ACCESS_LOG_VARIABLES: readonly string[] = Object.keys(VARIABLES);

/** Connection-level default, in the spirit of MOSN's default access-log format. */
export const DEFAULT_ACCESS_LOG_FORMAT =
  '%start_time% %listener_name% %duration% %bytes_sent% %bytes_received% %response_flag% ' +
  '%upstream_local_address% %downstream_local_address% %downstream_remote_address% %upstream_host%';

export interface CompiledFormat {
  /** literals.length === vars.length + 1; a line is lit0 var0 lit1 var1 ... litN. */
  readonly literals: readonly string[];
  readonly vars: readonly V[];
  /** Per variable: the header name of a %request_header_NAME% variable, else ''. */
  readonly args: readonly string[];
  /** Lower-case names of the request headers the format prints. */
  readonly requestHeaders: readonly string[];
  /** Lower-case names of the response headers the format prints. */
  readonly responseHeaders: readonly string[];
}

/** Parses a `%variable%` format once; unknown variables are a configuration error. */
export function compileAccessLogFormat(format: string): CompiledFormat {
  const literals: string[] = [];
  const vars: V[] = [];
  const args: string[] = [];
  const requestHeaders: string[] = [];
  const responseHeaders: string[] = [];
  const re = /%([A-Za-z][A-Za-z0-9_.-]*)%/g;
  let last = 0;
  let lit = '';
  for (let m = re.exec(format); m !== null; m = re.exec(format)) {
    const name = m[1].toLowerCase();
    let v: V | undefined = VARIABLES[name];
    let arg = '';
    if (v === undefined && name.startsWith(REQUEST_HEADER_PREFIX) && name.length > REQUEST_HEADER_PREFIX.length) {
      v = V.RequestHeader;
      arg = name.slice(REQUEST_HEADER_PREFIX.length);
      if (!requestHeaders.includes(arg)) requestHeaders.push(arg);
    }
    if (v === undefined && name.startsWith(RESPONSE_HEADER_PREFIX) && name.length > RESPONSE_HEADER_PREFIX.length) {
      v = V.ResponseHeader;
      arg = name.slice(RESPONSE_HEADER_PREFIX.length);
      if (!responseHeaders.includes(arg)) responseHeaders.push(arg);
    }
    if (v === undefined && /^(req\.|resp\.)/.test(name)) v = V.NotAvailable;
    if (v === undefined) {
      throw new Error(`access log: unknown variable %${m[1]}% in format (known: ${ACCESS_LOG_VARIABLES.join(', ')})`);
    }
    lit += format.slice(last, m.index);
    literals.push(lit);
    lit = '';
    vars.push(v);
    args.push(arg);
    last = m.index + m[0].length;
  }
  literals.push(lit + format.slice(last));
  return { literals, vars, args, requestHeaders, responseHeaders };
}

function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

let cachedSecond = -1;
let cachedSecondText = '';

/** Local time as "2006/01/02 15:04:05.000" (MOSN's start_time layout); cached per second. */
export function formatStartTime(ms: number): string {
  const sec = Math.floor(ms / 1000);
  if (sec !== cachedSecond) {
    const d = new Date(sec * 1000);
    cachedSecondText =
      `${d.getFullYear()}/${pad2(d.getMonth() + 1)}/${pad2(d.getDate())} ` +
      `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.`;
    cachedSecond = sec;
  }
  const milli = Math.floor(ms - sec * 1000);
  return cachedSecondText + (milli < 10 ? '00' : milli < 100 ? '0' : '') + milli;
}

function trimFixed(x: number, digits: number): string {
  let s = x.toFixed(digits);
  if (s.indexOf('.') >= 0) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s;
}

/** Go-style duration text (1.5ms, 250µs, 2.003s, 1m30s), as MOSN prints durations. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  const neg = ms < 0;
  const ns = Math.round(Math.abs(ms) * 1e6);
  let s: string;
  if (ns === 0) s = '0s';
  else if (ns < 1e3) s = ns + 'ns';
  else if (ns < 1e6) s = trimFixed(ns / 1e3, 3) + 'µs';
  else if (ns < 1e9) s = trimFixed(ns / 1e6, 6) + 'ms';
  else {
    const totalSec = ns / 1e9;
    const h = Math.floor(totalSec / 3600);
    const m = Math.floor((totalSec - h * 3600) / 60);
    const sec = totalSec - h * 3600 - m * 60;
    s = (h > 0 ? h + 'h' : '') + (h > 0 || m > 0 ? m + 'm' : '') + trimFixed(sec, 9) + 's';
  }
  return neg ? '-' + s : s;
}

function str(v: string | undefined): string {
  return v === undefined || v === '' ? '-' : v;
}

// eslint-disable-next-line no-control-regex -- control bytes are exactly what is matched
const CONTROL = /[\x00-\x1f\x7f]/g;

/** Client-supplied text (RPC headers may hold any byte): no line breaks or control bytes in a log line. */
function printable(v: string): string {
  CONTROL.lastIndex = 0;
  return CONTROL.test(v) ? v.replace(CONTROL, '?') : v;
}

/**
 * %protocol% as MOSN prints it: the downstream stream connection's protocol name, "Http1" and
 * "Http2" for HTTP (gRPC is HTTP/2 there), the codec's own name for RPC ("bolt", "dubbo").
 * Entries carry the lower-case names stream filters see (FilterStream.protocol).
 */
function mosnProtocol(p: string | undefined): string {
  switch (p) {
    case 'http1':
      return 'Http1';
    case 'http2':
    case 'grpc':
      return 'Http2';
    default:
      return str(p);
  }
}

function num(v: number | undefined): string {
  return v === undefined ? '-' : String(v);
}

function dur(v: number | undefined): string {
  return v === undefined ? '-' : formatDuration(v);
}

function value(v: V, e: AccessLogEntry, listenerName: string | undefined, arg: string): string {
  switch (v) {
    case V.RequestHeader:
      return printable(str(e.requestHeaders?.logHeader(arg)));
    case V.ResponseHeader:
      return printable(str(e.responseHeaders?.logResponseHeader(arg)));
    case V.UpstreamTransportFailureReason:
      return str(e.upstreamTransportFailureReason);
    case V.RouteName:
      return str(e.routeName);
    case V.StartTime:
      return formatStartTime(e.startTime);
    case V.RequestReceivedDuration:
      return dur(e.requestReceivedDurationMs);
    case V.ResponseReceivedDuration:
      return dur(e.responseReceivedDurationMs);
    case V.RequestFinishedDuration:
      return dur(e.requestFinishedDurationMs);
    case V.Duration:
      return dur(e.durationMs);
    case V.BytesSent:
      return num(e.bytesSent);
    case V.BytesReceived:
      return num(e.bytesReceived);
    case V.Protocol:
      return mosnProtocol(e.protocol);
    case V.ResponseCode:
      return num(e.responseCode);
    case V.ResponseFlag:
      return str(e.responseFlag);
    case V.DownstreamRemoteAddress:
      return str(e.downstreamRemoteAddress);
    case V.DownstreamLocalAddress:
      return str(e.downstreamLocalAddress);
    case V.UpstreamHost:
      return str(e.upstreamHost);
    case V.UpstreamLocalAddress:
      return str(e.upstreamLocalAddress);
    case V.UpstreamCluster:
      return str(e.upstreamCluster);
    case V.ListenerName:
      return str(e.listenerName ?? listenerName);
    case V.DownstreamPeerUriSan:
      return str(e.downstreamTls?.peer?.uriSans.join(','));
    case V.DownstreamPeerDnsSan:
      return str(e.downstreamTls?.peer?.dnsSans.join(','));
    case V.DownstreamPeerSubject:
      return str(e.downstreamTls?.peer?.subject);
    case V.DownstreamPeerIssuer:
      return str(e.downstreamTls?.peer?.issuer);
    case V.DownstreamPeerSerial:
      return str(e.downstreamTls?.peer?.serialNumber);
    case V.DownstreamPeerFingerprint256:
      return str(e.downstreamTls?.peer?.fingerprint256);
    case V.DownstreamTlsVersion:
      return str(e.downstreamTls?.version);
    case V.DownstreamTlsCipher:
      return str(e.downstreamTls?.cipher);
    case V.RequestedServerName:
      return str(e.downstreamTls?.serverName);
    default:
      return '-';
  }
}

/** Renders one line (without the newline). */
export function renderAccessLog(f: CompiledFormat, e: AccessLogEntry, listenerName?: string): string {
  const lits = f.literals;
  const vars = f.vars;
  const args = f.args;
  let s = lits[0];
  for (let i = 0; i < vars.length; i++) s += value(vars[i], e, listenerName, args[i]) + lits[i + 1];
  return s;
}

export interface AccessLogOptions {
  /** MOSN access_logs[].log_path: "stdout", "stderr" or a file path. */
  path: string;
  /** MOSN access_logs[].log_format; default DEFAULT_ACCESS_LOG_FORMAT. */
  format?: string;
  /** Used for %listener_name% when an entry does not carry one. */
  listenerName?: string;
  minLength?: number;
  flushIntervalMs?: number;
}

export interface AccessLogWriter {
  readonly format: CompiledFormat;
  /** Formats and queues one line; never blocks on IO. */
  log(e: AccessLogEntry): void;
  render(e: AccessLogEntry): string;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export function createAccessLog(opts: AccessLogOptions): AccessLogWriter {
  const format = compileAccessLogFormat(opts.format ?? DEFAULT_ACCESS_LOG_FORMAT);
  const entry = acquireDest(opts.path, opts.minLength ?? DEFAULT_MIN_LENGTH, opts.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS);
  const dest = entry.dest;
  const listenerName = opts.listenerName;
  let closed = false;
  return {
    format,
    log(e: AccessLogEntry): void {
      if (closed) return;
      dest.write(renderAccessLog(format, e, listenerName) + '\n');
    },
    render(e: AccessLogEntry): string {
      return renderAccessLog(format, e, listenerName);
    },
    flush(): Promise<void> {
      return flushDest(dest);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await releaseDest(entry);
    },
  };
}
