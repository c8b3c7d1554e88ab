#!/usr/bin/env node
'use strict';
// Measures the HTTP/1.1 downstream candidates for the `proxy` filter (issue #4): the same
// proxy (GET, forward to a local origin through an undici Pool, copy the response) fronted by
// (a) uWebSockets.js, (b) node:http. Also the origin directly. autocannon, keep-alive.
// Usage: node scripts/http1-downstream-compare.js [seconds=5] [connections=32]
const { Buffer } = require('node:buffer');
const http = require('node:http');
const autocannon = require('autocannon');
const { Pool } = require('undici');
const uWS = require('uWebSockets.js');

const secs = Number(process.argv[2] ?? 5);
const conns = Number(process.argv[3] ?? 32);
const BODY = Buffer.alloc(128, 'x');

function listen(server) {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server.address().port)));
}
function run(port) {
  return new Promise((resolve, reject) => {
    autocannon({ url: `http://127.0.0.1:${port}/x`, connections: conns, duration: secs, pipelining: 1 }, (e, r) => (e ? reject(e) : resolve(r)));
  });
}

async function main() {
  const origin = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
    res.end(BODY);
  });
  origin.keepAliveTimeout = 60_000;
  const oport = await listen(origin);
  const pool = new Pool(`http://127.0.0.1:${oport}`, { connections: 64, pipelining: 1 });

  // node:http front
  const nodeFront = http.createServer((req, res) => {
    pool.request({ method: req.method, path: req.url, headers: req.headers, body: req.method === 'GET' ? null : req }).then(
      async (up) => {
        res.writeHead(up.statusCode, up.headers);
        for await (const c of up.body) res.write(c);
        res.end();
      },
      () => {
        res.writeHead(502).end();
      },
    );
  });
  nodeFront.keepAliveTimeout = 60_000;
  const nport = await listen(nodeFront);

  // uWS front
  const app = uWS.App();
  app.any('/*', (res, req) => {
    const method = req.getMethod().toUpperCase();
    const path = req.getUrl() + (req.getQuery() ? '?' + req.getQuery() : '');
    const headers = {};
    req.forEach((k, v) => (headers[k] = v));
    let aborted = false;
    res.onAborted(() => (aborted = true));
    pool.request({ method, path, headers, body: null }).then(
      async (up) => {
        const chunks = [];
        for await (const c of up.body) chunks.push(c);
        if (aborted) return;
        res.cork(() => {
          res.writeStatus(String(up.statusCode));
          for (const [k, v] of Object.entries(up.headers)) if (k !== 'content-length' && k !== 'connection' && k !== 'keep-alive') res.writeHeader(k, String(v));
          res.end(Buffer.concat(chunks));
        });
      },
      () => {
        if (!aborted) res.cork(() => res.writeStatus('502').end());
      },
    );
  });
  const uport = await new Promise((r) => app.listen('127.0.0.1', 0, (s) => r(uWS.us_socket_local_port(s))));

  const rows = [];
  for (const [name, port] of [['origin direct', oport], ['uWS front', uport], ['node:http front', nport], ['uWS front (2)', uport], ['node:http front (2)', nport]]) {
    const r = await run(port);
    rows.push({ name, rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx });
  }
  console.table(rows);
  process.exit(0);
}
main();
