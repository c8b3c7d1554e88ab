/**
 * Admin HTTP server (stats, Prometheus, config dump, readiness) on uWebSockets.js.
 *
 * Binds 127.0.0.1:34901 unless configured otherwise. `close()` closes the listen socket with
 * us_listen_socket_close (a worker thread terminated with a live uWS listen socket aborts the
 * process) and then every open connection, so the thread's event loop can drain.
 */
import * as uWS from 'uWebSockets.js';
import { StatsHub, snapshotToPrometheus } from '../stats/aggregate';
import { FreshCoalescer } from './coalesce';
import { redactSecrets } from './redact';
import { reusePortRequested } from '../native/listen';

if (typeof (uWS as { SSLApp?: unknown }).SSLApp !== 'function') {
  throw new Error(
    'admin: uWebSockets.js loaded its slow pure-JS fallback (no native binary for this Node/platform); ' +
      'refusing to run the admin server on it',
  );
}

export const DEFAULT_ADMIN_HOST = '127.0.0.1';
export const DEFAULT_ADMIN_PORT = 34901;

export interface AdminOptions {
  host?: string;
  port?: number;
  /**
   * Stats work (histogram flush from the workers, aggregation, rendering) runs at most once per
   * this many ms however many clients poll; each answer still comes from a run started after
   * the request arrived (./coalesce.ts). Default 100.
   */
  statsMinIntervalMs?: number;
}

export const DEFAULT_STATS_MIN_INTERVAL_MS = 100;

/** Minimal logger surface (a pino Logger fits). */
export interface AdminLog {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
}

export interface AdminDeps {
  stats: StatsHub | (() => unknown);
  /** The caller passes an already-redacted document; it is redacted again defensively. */
  configDump: () => unknown;
  ready: () => boolean;
  log?: AdminLog;
  /** Clusters and their hosts' health (/api/v1/clusters). */
  clusters?: () => unknown;
}

export interface AdminServer {
  readonly port: number;
  readonly host: string;
  close(): void;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export const ADMIN_ENDPOINTS: Readonly<Record<string, string>> = {
  '/': 'this list',
  '/api/v1/stats': 'stats of listeners, clusters, HTTP routes, latency histograms, workers and the server (JSON); ?format=prometheus for text',
  '/stats/prometheus': 'the same stats in Prometheus text exposition format 0.0.4',
  '/api/v1/config_dump': 'the running configuration (secrets redacted)',
  '/ready': '200 when the proxy is ready to serve, 503 otherwise',
  '/api/v1/clusters': 'clusters and the health of their hosts (active health checks, outlier ejections)',
};

type Body = { status: string; type: string; body: string };

function json(status: string, v: unknown): Body {
  return { status, type: JSON_TYPE, body: JSON.stringify(v, null, 2) + '\n' };
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

export function startAdmin(opts: AdminOptions, deps: AdminDeps): Promise<AdminServer> {
  const host = opts.host && opts.host !== '' ? opts.host : DEFAULT_ADMIN_HOST;
  const port = opts.port ?? DEFAULT_ADMIN_PORT;
  const log = deps.log;
  const app = uWS.App();

  // A hub first asks the workers for their latest histograms (bounded wait), then reads.
  const afterRefresh = <T>(hub: StatsHub, read: () => T): T | Promise<T> => {
    const fresh = hub.refresh();
    return fresh === null ? read() : fresh.then(read);
  };
  // Admin isolation: one flush + render per interval for all pollers, each answer still fresh.
  const interval = opts.statsMinIntervalMs ?? DEFAULT_STATS_MIN_INTERVAL_MS;
  const hubOf = (): StatsHub => deps.stats as StatsHub;
  const jsonRuns = new FreshCoalescer(() => afterRefresh(hubOf(), () => json('200 OK', hubOf().snapshot())), interval);
  const promRuns = new FreshCoalescer(() => afterRefresh(hubOf(), () => hubOf().toPrometheus()), interval);
  const statsJsonBody = (): Body | Promise<Body> => {
    const hub = deps.stats;
    if (hub instanceof StatsHub) return jsonRuns.get();
    const v = hub();
    return isThenable(v) ? Promise.resolve(v).then((x) => json('200 OK', x)) : json('200 OK', v);
  };
  const statsProm = (): string | Promise<string> => {
    const hub = deps.stats;
    if (hub instanceof StatsHub) return promRuns.get();
    const v = hub();
    return isThenable(v) ? Promise.resolve(v).then(snapshotToPrometheus) : snapshotToPrometheus(v);
  };

  /** Writes a response produced synchronously or by a promise, honouring aborts. */
  const reply = (res: uWS.HttpResponse, produce: () => Body | Promise<Body>): void => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const send = (b: Body): void => {
      if (aborted) return;
      res.cork(() => {
        res.writeStatus(b.status).writeHeader('Content-Type', b.type).writeHeader('Cache-Control', 'no-store').end(b.body);
      });
    };
    const fail = (err: unknown): void => {
      log?.error({ err }, 'admin: handler failed');
      send(json('500 Internal Server Error', { error: 'internal error', message: err instanceof Error ? err.message : String(err) }));
    };
    let out: Body | Promise<Body>;
    try {
      out = produce();
    } catch (err) {
      fail(err);
      return;
    }
    if (isThenable(out)) Promise.resolve(out).then(send, fail);
    else send(out);
  };

  const get = (pattern: string, produce: (req: uWS.HttpRequest) => Body | Promise<Body>): void => {
    app.get(pattern, (res, req) => {
      // req is only valid synchronously: produce() reads what it needs before any await.
      reply(res, () => produce(req));
    });
  };

  get('/', () => json('200 OK', { endpoints: ADMIN_ENDPOINTS }));
  get('/api/v1/stats', (req) => {
    if (req.getQuery('format') === 'prometheus') {
      const p = statsProm();
      return isThenable(p)
        ? p.then((body) => ({ status: '200 OK', type: PROMETHEUS_CONTENT_TYPE, body }))
        : { status: '200 OK', type: PROMETHEUS_CONTENT_TYPE, body: p };
    }
    return statsJsonBody();
  });
  get('/stats/prometheus', () => {
    const p = statsProm();
    return isThenable(p)
      ? p.then((body) => ({ status: '200 OK', type: PROMETHEUS_CONTENT_TYPE, body }))
      : { status: '200 OK', type: PROMETHEUS_CONTENT_TYPE, body: p };
  });
  get('/api/v1/config_dump', () => {
    const v = deps.configDump();
    return isThenable(v) ? Promise.resolve(v).then((x) => json('200 OK', redactSecrets(x))) : json('200 OK', redactSecrets(v));
  });
  get('/api/v1/clusters', () => json('200 OK', deps.clusters !== undefined ? deps.clusters() : {}));
  get('/ready', () =>
    deps.ready() ? { status: '200 OK', type: TEXT_TYPE, body: 'ready\n' } : { status: '503 Service Unavailable', type: TEXT_TYPE, body: 'not ready\n' },
  );
  app.any('/*', (res, req) => {
    const method = req.getMethod().toUpperCase();
    const url = req.getUrl();
    reply(res, () => json('404 Not Found', { error: 'not found', method, path: url, endpoints: Object.keys(ADMIN_ENDPOINTS) }));
  });

  return new Promise((resolve, reject) => {
    // Exclusive unless a hand-over is requested (uSockets sets SO_REUSEPORT by default: a second instance would share the port).
    const listenOpt = reusePortRequested() ? 0 : 1; // LIBUS_LISTEN_DEFAULT : LIBUS_LISTEN_EXCLUSIVE_PORT
    (app.listen as unknown as (h: string, p: number, o: number, cb: (s: uWS.us_listen_socket | false) => void) => void)(host, port, listenOpt, (listenSocket) => {
      if (!listenSocket) {
        reject(new Error(`admin: cannot listen on ${host}:${port} (address in use or not available)`));
        return;
      }
      const bound = uWS.us_socket_local_port(listenSocket as unknown as uWS.us_socket);
      let closed = false;
      log?.info({ host, port: bound }, 'admin server listening');
      resolve({
        port: bound,
        host,
        close(): void {
          if (closed) return;
          closed = true;
          uWS.us_listen_socket_close(listenSocket);
          // Also drop keep-alive connections so a worker thread can exit (uWS >= 20.30).
          const a = app as unknown as { close?: () => void };
          if (typeof a.close === 'function') a.close();
        },
      });
    });
  });
}
