// Reference peer `node-http-proxy`: what a Node user would deploy instead of Outrigger,
// written the way the libraries' READMEs show it, one process, no cluster.
// Usage: node node-http-proxy-main.js <http1|http2> <listenPort> <upstreamPort>
//   http1: http.createServer + http-proxy (node-http-proxy 1.18) `proxy.web(req, res)`,
//          target 127.0.0.1:<upstreamPort> (the backend's HTTP/1.1 listener).
//   http2: h2c (prior knowledge) http2.createServer + http2-proxy `web(req, res, …)`.
//          http2-proxy sends every request with http.request, i.e. HTTP/1.1: the upstream
//          is the backend's HTTP/1.1 listener, as for nginx in the http2 workload.
// Both share one keep-alive agent (maxSockets 256) to the upstream. Errors answer 502
// (or reset a response already started); nothing is logged per request.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import httpProxy from 'http-proxy';
import * as h2proxy from 'http2-proxy';

const [mode, listenArg, upstreamArg] = process.argv.slice(2);
const listenPort = Number(listenArg);
const upstreamPort = Number(upstreamArg);
if ((mode !== 'http1' && mode !== 'http2') || !(listenPort > 0) || !(upstreamPort > 0)) {
  process.stderr.write('usage: node-http-proxy-main <http1|http2> <listenPort> <upstreamPort>\n');
  process.exit(2);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function fail(res: { headersSent: boolean; statusCode: number; end(): unknown; destroy(): unknown }): void {
  if (res.headersSent) res.destroy();
  else {
    res.statusCode = 502;
    res.end();
  }
}

let server: http.Server | http2.Http2Server;
if (mode === 'http1') {
  const proxy = httpProxy.createProxyServer({ target: `http://127.0.0.1:${upstreamPort}`, agent });
  proxy.on('error', (_err, _req, res) => {
    if (res instanceof http.ServerResponse) fail(res);
    else res.destroy();
  });
  server = http.createServer((req, res) => proxy.web(req, res));
} else {
  const options = {
    hostname: '127.0.0.1',
    port: upstreamPort,
    // The library awaits onReq (a promise per request is its design); here it only adds the agent.
    onReq: async (_req: http2.Http2ServerRequest, opts: http.RequestOptions): Promise<void> => {
      opts.agent = agent;
    },
  };
  const done = (err: Error | null, _req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
    if (err) fail(res);
  };
  server = http2.createServer((req, res) => {
    void h2proxy.web(req, res, options, done);
  });
}
server.on('connection', (s: import('node:net').Socket) => s.setNoDelay(true));
server.listen({ port: listenPort, host: '127.0.0.1', backlog: 4096 });
process.on('SIGTERM', () => process.exit(0));
