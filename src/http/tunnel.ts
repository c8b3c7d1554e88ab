/**
 * Upgrade (WebSocket, h2c is refused) and CONNECT pass-through on HTTP/1.1: the request is
 * routed like any other, its head is written to a host of the chosen cluster, and from then
 * on bytes flow both ways unchanged (the upstream's 101 / 200 included). CONNECT requests
 * route as path "/" on the virtual host of their authority.
 */
import type * as http from 'node:http';
import type * as net from 'node:net';
import type { HttpRoute } from '../router/http-routes';
import { resolveTarget } from '../router/path';
import { C, L, R } from '../stats/layout';
import { HTTP1_ALPN, type Cluster } from '../upstream/cluster';
import { readyEvent } from '../upstream/connect';
import type { Host } from '../upstream/lb';
import { applyOps, ensureRequestId, type Headers } from './headers';
import { closingReply, headerLines } from './h1/codec';
import type { HttpEnv } from './exchange';
import { routeCount, routeRequest } from './route-stats';
import { HL } from './stats';

function reject(socket: net.Socket, status: number): void {
  if (!socket.destroyed) socket.end(closingReply(status));
}

/** Where a tunnel goes: the routed cluster and host and the request head to send, or a refusal. */
export type TunnelPlan =
  | { readonly ok: true; readonly route: HttpRoute; readonly cluster: Cluster; readonly host: Host; readonly head: string }
  | { readonly ok: false; readonly status: number };

/**
 * Routes an Upgrade or CONNECT request (counted here) and builds the head to send upstream.
 * `headers`: lower-case names as received (hop-by-hop kept: Upgrade and Connection are the point).
 */
export function planTunnel(env: HttpEnv, method: string, url: string, headers: Headers, connect: boolean): TunnelPlan {
  const c = env.ctx.counters;
  const lb = env.ctx.base;
  c[lb + L.RQ_TOTAL]++;
  c[lb + (connect ? HL.CONNECT : HL.UPGRADE)]++;
  const upgrade = String(headers['upgrade'] ?? '').toLowerCase();
  if (!connect && upgrade === 'h2c') {
    // h2c upgrade is not proxied (use prior knowledge); answer as a plain request would fail.
    return { ok: false, status: 400 };
  }
  // An Upgrade's target as the exchange resolves it (absolute-form, normalized path: router/path.ts).
  const t = connect ? url : resolveTarget(url, String(headers['host'] ?? ''), env.cfg.paths);
  if (typeof t !== 'string' && t.status !== 0) return { ok: false, status: 400 };
  if (typeof t !== 'string') url = t.url;
  const authority = connect ? url : typeof t === 'string' ? String(headers['host'] ?? '') : t.authority;
  const path = connect ? '/' : url.split('?')[0];
  const header = (n: string): string | undefined => {
    if (n === ':method') return method;
    if (n === ':authority') return authority;
    if (n === ':path') return url;
    const v = headers[n];
    return Array.isArray(v) ? v.join(',') : v;
  };
  const vh = env.router.virtualHost(authority);
  const route = vh === null ? null : vh.match({ path, header });
  if (vh === null || route === null || route.direct !== null || route.redirect !== null) {
    c[lb + L.RS_NO_ROUTE]++;
    return { ok: false, status: 404 };
  }
  routeRequest(route);
  const cluster = env.ctx.clusters.get(route.pickCluster({ path, header }));
  const host = cluster === undefined ? null : cluster.lb.choose();
  if (cluster === undefined || host === null) {
    c[lb + L.RS_NO_ROUTE]++;
    return { ok: false, status: 503 };
  }
  const out: Headers = { ...headers };
  applyOps(out, route.ops, vh.ops, false);
  if (env.cfg.generateRequestId) ensureRequestId(out);
  if (route.hostRewrite !== '') out['host'] = route.hostRewrite;
  else if (typeof t !== 'string') out['host'] = t.authority; // absolute-form: the URI's authority
  const head = `${method} ${connect ? url : route.rewritePath(url)} HTTP/1.1\r\n${headerLines(out)}\r\n`;
  const cc = cluster.counters;
  const cb = cluster.base;
  cc[cb + C.RQ_TOTAL]++;
  return { ok: true, route, cluster, host, head };
}

/** node:http path: the 'upgrade' / 'connect' event's socket piped to a new upstream socket. */
export function tunnel(env: HttpEnv, req: http.IncomingMessage, socket: net.Socket, head: Buffer, connect: boolean): void {
  socket.on('error', () => {});
  // Request head: headers as received.
  const headers: Headers = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const k = req.rawHeaders[i].toLowerCase();
    const v = req.rawHeaders[i + 1];
    const cur = headers[k];
    headers[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  const plan = planTunnel(env, req.method ?? 'GET', req.url ?? '/', headers, connect);
  if (!plan.ok) {
    reject(socket, plan.status);
    return;
  }
  const { cluster, host } = plan;
  if (!cluster.tryAcquireConnection()) {
    reject(socket, 503); // max_connections
    return;
  }
  const out = plan.head;
  const cc = cluster.counters;
  const cb = cluster.base;
  host.active++;
  // The cluster's socket: TLS per its tls_context, counted, connect (and handshake) timeout.
  const up = cluster.openSocket(host, cluster.connectTimeoutMs, HTTP1_ALPN);
  let connected = false;
  up.once(readyEvent(up), () => {
    connected = true;
    up.write(out);
    if (head.length > 0) up.write(head);
    socket.pipe(up);
    up.pipe(socket);
  });
  up.on('error', () => {
    if (!connected) {
      cc[cb + C.CX_CONNECT_FAIL]++;
      routeCount(plan.route, R.UPSTREAM_RESET);
      reject(socket, 503);
    } else socket.destroy();
  });
  up.once('close', () => {
    host.active--;
    if (connected) socket.end();
  });
  socket.once('close', () => up.destroy());
}
