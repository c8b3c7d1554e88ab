/**
 * Admin HTTP server (stats, Prometheus, config dump, readiness) on node:http.
 *
 * Binds 127.0.0.1:34901 unless configured otherwise, exclusively unless a hand-over asks to
 * share the address (OUTRIGGER_REUSE_PORT=1: a SO_REUSEPORT socket from the native addon).
 * `close()` closes the listening socket and every open connection, so the thread's event loop
 * can drain. (It ran on uWebSockets.js before: its binary alone cost ~2.7 MB of idle RSS against
 * ~1.2 MB for node:http, for a server that answers a few polls a second; issue 15.)
 */
import * as http from 'node:http';
import { StatsHub, snapshotToPrometheus } from '../stats/aggregate';
import { FreshCoalescer } from './coalesce';
import { redactSecrets } from './redact';
import { native } from '../native';
import { reusePortRequested } from '../native/listen';

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

  /** Writes a response produced synchronously or by a promise; nothing once the client went away. */
  const reply = (res: http.ServerResponse, produce: () => Body | Promise<Body>): void => {
    const send = (b: Body): void => {
      if (res.destroyed || res.writableEnded) return;
      const sp = b.status.indexOf(' ');
      res.writeHead(Number(b.status.slice(0, sp)), b.status.slice(sp + 1), {
        'Content-Type': b.type,
        'Cache-Control': 'no-store',
        'Content-Length': Buffer.byteLength(b.body),
      });
      res.end(b.body);
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

  const prometheus = (): Body | Promise<Body> => {
    const p = statsProm();
    return isThenable(p)
      ? p.then((body) => ({ status: '200 OK', type: PROMETHEUS_CONTENT_TYPE, body }))
      : { status: '200 OK', type: PROMETHEUS_CONTENT_TYPE, body: p };
  };
  /** GET routes by exact path; the query string is passed to the handler. */
  const routes: Readonly<Record<string, (query: URLSearchParams) => Body | Promise<Body>>> = {
    '/': () => json('200 OK', { endpoints: ADMIN_ENDPOINTS }),
    '/api/v1/stats': (q) => (q.get('format') === 'prometheus' ? prometheus() : statsJsonBody()),
    '/stats/prometheus': prometheus,
    '/api/v1/config_dump': () => {
      const v = deps.configDump();
      return isThenable(v) ? Promise.resolve(v).then((x) => json('200 OK', redactSecrets(x))) : json('200 OK', redactSecrets(v));
    },
    '/api/v1/clusters': () => json('200 OK', deps.clusters !== undefined ? deps.clusters() : {}),
    '/ready': () =>
      deps.ready() ? { status: '200 OK', type: TEXT_TYPE, body: 'ready\n' } : { status: '503 Service Unavailable', type: TEXT_TYPE, body: 'not ready\n' },
  };

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = (req.method ?? 'GET').toUpperCase();
    const route = method === 'GET' && Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (route === undefined) {
      reply(res, () => json('404 Not Found', { error: 'not found', method, path, endpoints: Object.keys(ADMIN_ENDPOINTS) }));
      return;
    }
    reply(res, () => route(new URLSearchParams(q < 0 ? '' : url.slice(q + 1))));
  });

  return new Promise((resolve, reject) => {
    const failed = (): void => reject(new Error(`admin: cannot listen on ${host}:${port} (address in use or not available)`));
    server.once('error', failed);
    const listening = (): void => {
      server.off('error', failed);
      server.on('error', (err) => log?.error({ err }, 'admin: server error'));
      const addr = server.address();
      const bound = addr !== null && typeof addr === 'object' ? addr.port : port;
      let closed = false;
      log?.info({ host, port: bound }, 'admin server listening');
      resolve({
        port: bound,
        host,
        close(): void {
          if (closed) return;
          closed = true;
          server.close();
          server.closeAllConnections(); // keep-alive connections too, so a worker thread can exit
        },
      });
    };
    if (reusePortRequested() && native.kind === 'native') {
      // A hand-over: share the address with the other process (SO_REUSEPORT, which node:net cannot set on Node 20).
      let fd: number;
      try {
        fd = native.listenTcp(host, port, 511, true).fd;
      } catch {
        failed();
        return;
      }
      server.listen({ fd }, listening);
    } else {
      server.listen({ host, port, exclusive: true }, listening);
    }
  });
}
