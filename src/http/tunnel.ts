/**
 * Upgrade (WebSocket, h2c is refused) and CONNECT pass-through on HTTP/1.1: the request is
 * routed like any other, its head is written to a host of the chosen cluster, and from then
 * on bytes flow both ways unchanged (the upstream's 101 / 200 included). CONNECT requests
 * route as path "/" on the virtual host of their authority.
 */
import type * as http from 'node:http';
import * as net from 'node:net';
import { L } from '../stats/layout';
import { C, R } from '../stats/layout';
import { applyOps, ensureRequestId, type Headers } from './headers';
import type { HttpEnv } from './exchange';
import { routeCount, routeRequest } from './route-stats';
import { HL } from './stats';

function reject(socket: net.Socket, status: number, text: string): void {
  if (!socket.destroyed) socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
}

export function tunnel(env: HttpEnv, req: http.IncomingMessage, socket: net.Socket, head: Buffer, connect: boolean): void {
  const c = env.ctx.counters;
  const lb = env.ctx.base;
  c[lb + L.RQ_TOTAL]++;
  c[lb + (connect ? HL.CONNECT : HL.UPGRADE)]++;
  socket.on('error', () => {});
  const upgrade = String(req.headers['upgrade'] ?? '').toLowerCase();
  if (!connect && upgrade === 'h2c') {
    // h2c upgrade is not proxied (use prior knowledge); answer as a plain request would fail.
    reject(socket, 400, 'Bad Request');
    return;
  }
  const authority = connect ? (req.url ?? '') : String(req.headers['host'] ?? '');
  const url = req.url ?? '/';
  const path = connect ? '/' : url.split('?')[0];
  const vh = env.router.virtualHost(authority);
  const route =
    vh === null
      ? null
      : vh.match({
          path,
          header: (n: string) => {
            if (n === ':method') return req.method;
            if (n === ':authority') return authority;
            if (n === ':path') return url;
            const v = req.headers[n];
            return Array.isArray(v) ? v.join(',') : v;
          },
        });
  if (vh === null || route === null || route.direct !== null || route.redirect !== null) {
    c[lb + L.RS_NO_ROUTE]++;
    reject(socket, 404, 'Not Found');
    return;
  }
  routeRequest(route);
  const cluster = env.ctx.clusters.get(route.pickCluster({ path, header: (n) => String(req.headers[n] ?? '') }));
  const host = cluster === undefined ? null : cluster.lb.choose();
  if (cluster === undefined || host === null) {
    c[lb + L.RS_NO_ROUTE]++;
    reject(socket, 503, 'Service Unavailable');
    return;
  }
  // Request head: headers as received (hop-by-hop kept: Upgrade and Connection are the point).
  const headers: Headers = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const k = req.rawHeaders[i].toLowerCase();
    const v = req.rawHeaders[i + 1];
    const cur = headers[k];
    headers[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  applyOps(headers, route.ops, vh.ops, false);
  if (env.cfg.generateRequestId) ensureRequestId(headers);
  if (route.hostRewrite !== '') headers['host'] = route.hostRewrite;
  let out = `${req.method} ${connect ? url : route.rewritePath(url)} HTTP/1.1\r\n`;
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined) continue;
    for (const x of Array.isArray(v) ? v : [v]) out += `${k}: ${x}\r\n`;
  }
  out += '\r\n';
  const cc = cluster.counters;
  const cb = cluster.base;
  cc[cb + C.RQ_TOTAL]++;
  cc[cb + C.CX_TOTAL]++;
  cc[cb + C.CX_ACTIVE]++;
  host.active++;
  const up = net.connect({ host: host.host, port: host.port, noDelay: true });
  let connected = false;
  const t = cluster.connectTimeoutMs > 0 ? setTimeout(() => up.destroy(new Error('connect timeout')), cluster.connectTimeoutMs) : null;
  up.once('connect', () => {
    connected = true;
    if (t !== null) clearTimeout(t);
    up.write(out);
    if (head.length > 0) up.write(head);
    socket.pipe(up);
    up.pipe(socket);
  });
  up.on('error', () => {
    if (!connected) {
      cc[cb + C.CX_CONNECT_FAIL]++;
      routeCount(route, R.UPSTREAM_RESET);
      reject(socket, 503, 'Service Unavailable');
    } else socket.destroy();
  });
  up.once('close', () => {
    if (t !== null) clearTimeout(t);
    cc[cb + C.CX_ACTIVE]--;
    host.active--;
    if (connected) socket.end();
  });
  socket.once('close', () => up.destroy());
}
