/** HTTP peers and config builders for the HTTP proxy tests. */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { execFile } from 'node:child_process';

export interface Backend {
  readonly port: number;
  /** Requests seen, in order. */
  readonly seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[];
  close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

/** An HTTP/1.1 (or h2c with `h2`) backend echoing the request as JSON unless `handler` answers. */
export async function backend(name: string, handler?: Handler, h2 = false): Promise<Backend> {
  const seen: Backend['seen'] = [];
  const onReq = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (handler) return handler(req, res, body);
      const out = JSON.stringify({ backend: name, method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name, 'x-remove-me': '1' });
      res.end(out);
    });
  };
  const server: net.Server = h2 ? http2.createServer(onReq as never) : http.createServer({ keepAliveTimeout: 60_000 }, onReq);
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
  return {
    port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP/1.1 request on a fresh connection. */
export function request(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(opts.body);
  });
}

/** One h2c request. */
export function request2(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`http://127.0.0.1:${port}`);
    s.on('error', reject);
    const st = s.request({ ':method': opts.method ?? 'GET', ':path': path, ...opts.headers });
    let status = 0;
    let headers: http.IncomingHttpHeaders = {};
    let body = '';
    st.setEncoding('utf8');
    st.on('response', (h) => {
      status = Number(h[':status']);
      headers = h as http.IncomingHttpHeaders;
    });
    st.on('data', (d: string) => (body += d));
    st.on('end', () => {
      s.close();
      resolve({ status, headers, body });
    });
    st.on('error', reject);
    st.end(opts.body);
  });
}

/** Raw bytes in, everything until the peer closes (or `waitMs` of silence) out. */
export function raw(port: number, data: string | Buffer, waitMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    const done = (): void => {
      clearTimeout(t);
      s.destroy();
      resolve(out);
    };
    const t = setTimeout(done, waitMs);
    s.on('data', (d) => {
      out += d.toString('latin1');
    });
    s.on('close', done);
    s.on('error', done);
    s.write(data);
  });
}

export function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface HttpListenerSpec {
  readonly name: string;
  readonly downstream: string;
  readonly upstream?: string;
  readonly router: string;
  readonly extend?: Record<string, unknown>;
}

/** A MOSN-format config: HTTP proxy listeners on 127.0.0.1:0, routers and clusters as given. */
export function httpConfig(
  listeners: readonly HttpListenerSpec[],
  routers: readonly Record<string, unknown>[],
  clusters: Record<string, readonly number[]>,
  clusterExtra: Record<string, Record<string, unknown>> = {},
): Record<string, unknown> {
  return {
    servers: [
      {
        default_log_level: 'WARN',
        routers,
        listeners: listeners.map((l) => ({
          name: l.name,
          address: '127.0.0.1:0',
          bind_port: true,
          filter_chains: [
            {
              filters: [
                {
                  type: 'proxy',
                  config: {
                    downstream_protocol: l.downstream,
                    ...(l.upstream ? { upstream_protocol: l.upstream } : {}),
                    router_config_name: l.router,
                    ...(l.extend ? { extend_config: l.extend } : {}),
                  },
                },
              ],
            },
          ],
        })),
      },
    ],
    cluster_manager: {
      clusters: Object.entries(clusters).map(([name, ports]) => ({
        name,
        type: 'SIMPLE',
        lb_type: 'LB_ROUNDROBIN',
        connect_timeout: '1s',
        hosts: ports.map((p) => ({ address: `127.0.0.1:${p}` })),
        ...(clusterExtra[name] ?? {}),
      })),
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
  };
}

/**
 * The ports the kernel never hands out by itself: those below the ephemeral range (`bind(0)` and
 * `connect()` take theirs from /proc/sys/net/ipv4/ip_local_port_range). A port picked there stays
 * free until someone asks for it by number, so a config can name it before the sidecar binds it,
 * and a "dead" host stays dead; a port from `listen(0)` can be given to another test's
 * `listen(0)` as soon as it is closed (seen as a rare CI failure: an xDS listener whose port a
 * concurrent test's server had taken).
 */
function reservedRange(): [number, number] {
  let low = 32768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // not Linux: keep the usual default
  }
  return low > 12_000 ? [low - 10_000, low - 1] : [0, 0];
}

function tryListen(port: number): Promise<number | undefined> {
  const s = net.createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(undefined));
    s.listen(port, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** A port that is free now and that nothing else will take by chance (for a host nobody listens on, or a listener's port named in a config). */
export async function deadPort(): Promise<number> {
  const [lo, hi] = reservedRange();
  for (let i = 0; lo > 0 && i < 50; i++) {
    const p = await tryListen(lo + Math.floor(Math.random() * (hi - lo + 1)));
    if (p !== undefined) return p;
  }
  const p = await tryListen(0);
  if (p === undefined) throw new Error('no free port');
  return p;
}
