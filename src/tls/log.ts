/**
 * The logger the TLS layer reports reloads and refused certificates to. In a worker thread it
 * is the worker's own log destination (level and path from the worker's init data); elsewhere
 * (tests, tools) lines go to stderr as JSON. setTlsLogger overrides it. Never pass key
 * material here: fields are listener/cluster names, file paths and error messages.
 */
import { createLogger } from '../log';
import { dataPlaneLogInit } from '../worker/host';

export interface TlsLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

const stderrLogger: TlsLogger = {
  info() {},
  error(obj, msg) {
    process.stderr.write(`${JSON.stringify({ level: 'error', msg, ...obj })}\n`);
  },
};

let current: TlsLogger | undefined;

function defaultLogger(): TlsLogger | undefined {
  const wd = dataPlaneLogInit(); // a worker thread, or the main thread running the data plane
  return wd === null ? undefined : createLogger({ level: wd.logLevel, path: wd.logPath, name: `worker-${wd.workerId}` });
}

export function setTlsLogger(l: TlsLogger): void {
  current = l;
}

export function tlsLog(): TlsLogger {
  if (current === undefined) current = defaultLogger();
  return current ?? stderrLogger;
}
