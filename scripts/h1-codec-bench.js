#!/usr/bin/env node
'use strict';
// Micro-benchmark of the HTTP/1.1 codec (dist/src/http/h1/codec.js; build first with
// `npx tsc -p tsconfig.json`). Parses typical heads N times and prints ns/op:
//   - curl GET and autocannon GET request heads, an upstream 200 response head (node:http style);
//   - a small chunked body through ChunkedDecoder; requestHead/responseHead encoding.
// For reference it also times Node's own llhttp through require('_http_common').HTTPParser (an
// undocumented module, no process.binding): the native parse plus its JS callback that hands
// over the raw [name, value, ...] array, and the same plus building a lower-cased header object
// as node:http does when a handler reads req.headers. Ours always builds that object.
//
// Each line: best and median of 7 rounds (the machine is shared; the best round is the least
// disturbed one). Usage: node scripts/h1-codec-bench.js [iterations=2000000]
const { Buffer } = require('node:buffer');
const path = require('node:path');
const codec = require(path.join(__dirname, '..', 'dist', 'src', 'http', 'h1', 'codec.js'));

const N = Number(process.argv[2] ?? 2_000_000);

const CURL_GET = Buffer.from('GET /path/to?q=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n', 'latin1');
const AUTOCANNON_GET = Buffer.from('GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n', 'latin1');
const UPSTREAM_200 = Buffer.from(
  'HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Sun, 22 Nov 2026 01:44:06 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 11\r\n\r\n',
  'latin1',
);
const CHUNKED = Buffer.from('6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n', 'latin1');

const ROUNDS = 7;

/** Runs fn n times in ROUNDS rounds after a warm-up; prints the best and the median round (ns/op). */
function time(name, n, fn) {
  for (let i = 0; i < Math.min(n, 200_000); i++) fn(); // warm-up (JIT)
  const per = Math.max(1, Math.floor(n / ROUNDS));
  const ns = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < per; i++) fn();
    ns.push(Number(process.hrtime.bigint() - t0) / per);
  }
  ns.sort((a, b) => a - b);
  console.log(`${name.padEnd(58)} best ${ns[0].toFixed(0).padStart(6)}  median ${ns[ROUNDS >> 1].toFixed(0).padStart(6)} ns/op`);
  return ns[0];
}

let sink = 0;

const req = new codec.HeadParser(true, 16384, 100);
const res = new codec.HeadParser(false, 16384, 100);
time('ours  HeadParser.parse curl GET (4 lines)', N, () => {
  sink += req.parse(CURL_GET, 0, CURL_GET.length);
});
time('ours  HeadParser.parse autocannon GET (2 lines)', N, () => {
  sink += req.parse(AUTOCANNON_GET, 0, AUTOCANNON_GET.length);
});
time('ours  HeadParser.parse upstream 200 (6 lines)', N, () => {
  sink += res.parse(UPSTREAM_200, 0, UPSTREAM_200.length);
});
const dec = new codec.ChunkedDecoder(1024);
const chunkSink = { onChunkData: (b, s, e) => (sink += e - s) };
time('ours  ChunkedDecoder.decode 2 chunks + last', N, () => {
  dec.reset();
  sink += dec.decode(CHUNKED, 0, CHUNKED.length, chunkSink);
});
const fwd = { 'user-agent': 'curl/7.88.1', accept: '*/*', 'x-request-id': '7f1c2a' };
time('ours  requestHead (3 headers)', N, () => {
  sink += codec.requestHead('GET', '/path/to?q=1', '10.0.0.2:8080', fwd, '').length;
});
const back = { 'content-type': 'text/plain; charset=utf-8', date: 'Sun, 22 Nov 2026 01:44:06 GMT' };
time('ours  responseHead (2 headers + content-length)', N, () => {
  sink += codec.responseHead(200, back, 'content-length: 11\r\n').length;
});

// Node's llhttp, for reference
let HTTPParser = null;
let methods = null;
try {
  ({ HTTPParser, methods } = require('_http_common'));
} catch {
  console.log('llhttp: require("_http_common") not available, comparison skipped');
}
if (HTTPParser !== null) {
  const mk = (kind, build) => {
    const p = new HTTPParser();
    p.initialize(kind, {});
    p[HTTPParser.kOnHeadersComplete] = (_maj, _min, headers, method, url, status) => {
      if (build) {
        // what node:http's req.headers getter does: lower-cased names, repeated -> joined/listed
        const o = {};
        for (let i = 0; i < headers.length; i += 2) {
          const k = headers[i].toLowerCase();
          if (o[k] === undefined) o[k] = headers[i + 1];
        }
        sink += Object.keys(o).length;
      }
      sink += method === undefined ? status : methods[method].length + url.length;
      return 0;
    };
    p[HTTPParser.kOnMessageComplete] = () => {};
    return p;
  };
  const lreq = mk(HTTPParser.REQUEST, false);
  const lres = mk(HTTPParser.RESPONSE, false);
  const lreqO = mk(HTTPParser.REQUEST, true);
  const lresO = mk(HTTPParser.RESPONSE, true);
  time('llhttp execute curl GET (raw header array)', N, () => {
    sink += lreq.execute(CURL_GET);
  });
  time('llhttp execute curl GET + header object', N, () => {
    sink += lreqO.execute(CURL_GET);
  });
  time('llhttp execute autocannon GET + header object', N, () => {
    sink += lreqO.execute(AUTOCANNON_GET);
  });
  time('llhttp execute upstream 200 (raw header array)', N, () => {
    lres.initialize(HTTPParser.RESPONSE, {}); // a response with a body: start each run afresh
    sink += lres.execute(UPSTREAM_200);
  });
  time('llhttp execute upstream 200 + header object', N, () => {
    lresO.initialize(HTTPParser.RESPONSE, {});
    sink += lresO.execute(UPSTREAM_200);
  });
}
console.log(`(checksum ${sink})`);
