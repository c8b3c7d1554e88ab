#!/usr/bin/env node
'use strict';
// Captures real HTTP/1.1 messages from real peers into test/vectors/http1/ (<name>.bin = exact
// bytes, <name>.hex = the same as lowercase hex, <name>.json = expected parse results).
//
// Requests: a raw TCP server on 127.0.0.1:0 records what curl, node:http and undici send.
// Responses: a raw TCP client records what a node:http server and python3's http.server send.
//
// The expected results in the .json files come from a deliberately naive line-splitting reader
// below (not from src/http/h1/codec.ts), and were then checked by hand against the bytes; the
// golden test (test/unit/h1-codec.test.ts) compares the codec with them. Re-running this
// script rewrites the files (dates, ports and client versions will differ): re-check them.
//
// Usage: node scripts/capture-h1-vectors.js [--only name-substring]
const { Buffer } = require('node:buffer');
const net = require('node:net');
const http = require('node:http');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const OUT = path.join(__dirname, '..', 'test', 'vectors', 'http1');
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** Index just past the first CRLFCRLF, or -1. */
function headEnd(buf) {
  const i = buf.indexOf('\r\n\r\n');
  return i < 0 ? -1 : i + 4;
}

/** Naive head reader: split on CRLF, split the first line on spaces, fields on the first ':'. */
function naiveHead(buf, isRequest) {
  const he = headEnd(buf);
  const lines = buf.toString('latin1', 0, he - 4).split('\r\n');
  const first = lines[0].split(' ');
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    const k = l.slice(0, i).toLowerCase();
    const v = l.slice(i + 1).trim();
    if (headers[k] === undefined) headers[k] = v;
    else if (Array.isArray(headers[k])) headers[k].push(v);
    else headers[k] = [headers[k], v];
  }
  const r = { headEnd: he, headers };
  if (isRequest) {
    r.method = first[0];
    r.target = first[1];
    r.versionMinor = first[2] === 'HTTP/1.1' ? 1 : 0;
  } else {
    r.versionMinor = first[0] === 'HTTP/1.1' ? 1 : 0;
    r.status = Number(first[1]);
    r.reason = first.slice(2).join(' ');
  }
  return r;
}

function tokens(v) {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v.join(',') : v).split(',').map((t) => t.trim().toLowerCase());
}

/** Naive chunked reader (sizes, data, then trailer lines). */
function naiveChunked(buf, p) {
  let body = '';
  const trailers = {};
  for (;;) {
    const le = buf.indexOf('\r\n', p);
    const size = parseInt(buf.toString('latin1', p, le).split(';')[0], 16);
    p = le + 2;
    if (size === 0) break;
    body += buf.toString('latin1', p, p + size);
    p += size + 2;
  }
  for (;;) {
    const le = buf.indexOf('\r\n', p);
    const line = buf.toString('latin1', p, le);
    p = le + 2;
    if (line === '') break;
    const i = line.indexOf(':');
    trailers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return { body, trailers: Object.keys(trailers).length ? trailers : null, end: p };
}

/** Expected parse results (BodyKind: 0 None, 1 Length, 2 Chunked, 3 UntilClose). */
function expected(buf, isRequest, headRequest) {
  const h = naiveHead(buf, isRequest);
  const conn = tokens(h.headers.connection);
  const te = tokens(h.headers['transfer-encoding']);
  const cl = h.headers['content-length'] === undefined ? -1 : Number(h.headers['content-length']);
  let bodyKind;
  if (isRequest) bodyKind = te.at(-1) === 'chunked' ? 2 : cl > 0 ? 1 : 0;
  else if (h.status < 200 || h.status === 204 || h.status === 304 || headRequest) bodyKind = 0;
  else bodyKind = te.at(-1) === 'chunked' ? 2 : cl >= 0 ? 1 : 3;
  h.bodyKind = bodyKind;
  h.contentLength = bodyKind === 1 ? cl : -1;
  h.keepAlive = bodyKind !== 3 && (h.versionMinor === 1 ? !conn.includes('close') : conn.includes('keep-alive'));
  if (isRequest) h.expectContinue = String(h.headers.expect).toLowerCase() === '100-continue';
  if (bodyKind === 1) {
    h.body = buf.toString('latin1', h.headEnd, h.headEnd + cl);
    h.messageEnd = h.headEnd + cl;
  } else if (bodyKind === 2) {
    const c = naiveChunked(buf, h.headEnd);
    h.body = c.body;
    h.trailers = c.trailers;
    h.messageEnd = c.end;
  } else if (bodyKind === 3) {
    h.body = buf.toString('latin1', h.headEnd);
    h.messageEnd = buf.length;
  } else {
    h.body = '';
    h.messageEnd = h.headEnd;
  }
  if (headRequest) h.headRequest = true;
  return h;
}

function save(name, buf, isRequest, source, headRequest = false) {
  fs.writeFileSync(path.join(OUT, `${name}.bin`), buf);
  fs.writeFileSync(path.join(OUT, `${name}.hex`), buf.toString('hex') + '\n');
  const exp = { kind: isRequest ? 'request' : 'response', source, bytes: buf.length, ...expected(buf, isRequest, headRequest) };
  fs.writeFileSync(path.join(OUT, `${name}.json`), JSON.stringify(exp, null, 2) + '\n');
  console.log(`${name}: ${buf.length} bytes (${source})`);
}

/** True once `buf` holds a whole request (naive framing: Content-Length or a trailing last chunk). */
function requestComplete(buf) {
  const he = headEnd(buf);
  if (he < 0) return false;
  const h = naiveHead(buf, true);
  if (tokens(h.headers['transfer-encoding']).includes('chunked')) return buf.subarray(he).includes('0\r\n\r\n');
  const cl = Number(h.headers['content-length'] ?? 0);
  return buf.length >= he + cl;
}

/** Starts a raw server, runs `client(port)`, resolves with the first request's exact bytes. */
async function captureRequest(client) {
  let resolveBytes;
  const got = new Promise((r) => (resolveBytes = r));
  const srv = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    let continued = false;
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const he = headEnd(buf);
      if (he > 0 && !continued && /\r\nexpect:\s*100-continue/i.test(buf.toString('latin1', 0, he))) {
        continued = true;
        sock.write('HTTP/1.1 100 Continue\r\n\r\n');
      }
      if (requestComplete(buf)) {
        resolveBytes(buf);
        sock.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
      }
    });
    sock.on('error', () => {});
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const port = srv.address().port;
  const done = client(port);
  const bytes = await got;
  await done;
  srv.close();
  return bytes;
}

function run(cmd, args, input) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'inherit'] });
    c.on('error', reject);
    c.on('exit', resolve);
    c.stdin.end(input ?? '');
  });
}

/** Sends `request` on a raw socket and resolves with every byte until the peer closes. */
function rawExchange(port, request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

async function nodeResponses() {
  const srv = http.createServer((req, res) => {
    if (req.url === '/length') {
      res.setHeader('Content-Type', 'text/plain');
      res.setHeader('Set-Cookie', ['a=1', 'b=2']);
      res.end('hello');
    } else if (req.url === '/chunked-trailers') {
      res.setHeader('Content-Type', 'text/plain');
      res.setHeader('Trailer', 'X-Checksum');
      res.write('hello ');
      res.write('world');
      res.addTrailers({ 'X-Checksum': 'abc123' });
      res.end();
    } else if (req.url === '/no-content') {
      res.statusCode = 204;
      res.end();
    } else if (req.url === '/not-modified') {
      res.statusCode = 304;
      res.setHeader('ETag', '"v1"');
      res.end();
    } else {
      res.statusCode = 404;
      res.end('nope');
    }
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const port = srv.address().port;
  const get = (p, m = 'GET') => `${m} ${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`;
  const out = [
    ['res-node-length', await rawExchange(port, get('/length')), false],
    ['res-node-chunked-trailers', await rawExchange(port, get('/chunked-trailers')), false],
    ['res-node-204', await rawExchange(port, get('/no-content')), false],
    ['res-node-304', await rawExchange(port, get('/not-modified')), false],
    ['res-node-head', await rawExchange(port, get('/length', 'HEAD')), true],
    ['res-node-404', await rawExchange(port, get('/missing')), false],
  ];
  srv.close();
  for (const [name, bytes, head] of out) save(name, bytes, false, `node:http ${process.version} server`, head);
}

/** Starts python3 with `args`, reads "port N" from its first output line, runs fn(port), stops it. */
async function withPython(args, cwd, fn) {
  const py = spawn('python3', ['-u', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise((resolve, reject) => {
    let text = '';
    const onData = (d) => {
      text += d;
      const m = /port (\d+)/.exec(text);
      if (m) resolve(Number(m[1]));
    };
    py.stdout.on('data', onData);
    py.stderr.on('data', onData);
    py.on('exit', () => reject(new Error(`python3 exited: ${text}`)));
  });
  try {
    return await fn(port);
  } finally {
    py.kill('SIGTERM');
  }
}

async function pythonResponses() {
  const ver = spawnSync('python3', ['--version']).stdout.toString().trim();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h1vec-'));
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello from python\n');
  const file = await withPython(['-m', 'http.server', '0', '--bind', '127.0.0.1'], dir, (port) =>
    rawExchange(port, `GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`),
  );
  save('res-python-http-server-file', file, false, `${ver} -m http.server (SimpleHTTPRequestHandler)`);
  // A BaseHTTPRequestHandler that sends no Content-Length: an HTTP/1.0 body ended by the close.
  const script = [
    'import http.server',
    'class H(http.server.BaseHTTPRequestHandler):',
    '    def do_GET(self):',
    '        self.send_response(200)',
    "        self.send_header('Content-Type', 'text/plain')",
    '        self.end_headers()',
    "        self.wfile.write(b'body until close\\n')",
    "s = http.server.HTTPServer(('127.0.0.1', 0), H)",
    "print('port', s.server_address[1], flush=True)",
    's.handle_request()',
  ].join('\n');
  const untilClose = await withPython(['-c', script], dir, (port) =>
    rawExchange(port, `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`),
  );
  save('res-python-until-close', untilClose, false, `${ver} http.server.BaseHTTPRequestHandler, no Content-Length`);
  fs.rmSync(dir, { recursive: true, force: true });
}

async function requests() {
  const curlVer = have('curl') ? spawnSync('curl', ['--version']).stdout.toString().split(' ').slice(0, 2).join(' ') : null;
  const undici = require('undici');
  const jobs = [];
  if (curlVer) {
    jobs.push(['req-curl-get', curlVer, (port) => run('curl', ['-s', `http://127.0.0.1:${port}/path/to?q=1&r=%20x`])]);
    jobs.push(['req-curl-post-form', curlVer, (port) => run('curl', ['-s', '-d', 'a=1&b=two', `http://127.0.0.1:${port}/form`])]);
    jobs.push([
      'req-curl-chunked-upload',
      curlVer,
      (port) => run('curl', ['-s', '-H', 'Transfer-Encoding: chunked', '-d', '@-', `http://127.0.0.1:${port}/upload`], 'hello chunked world'),
    ]);
    jobs.push([
      'req-curl-post-2k',
      curlVer,
      (port) => run('curl', ['-s', '-H', 'Content-Type: text/plain', '--data-binary', '@-', `http://127.0.0.1:${port}/big`], 'x'.repeat(2000)),
    ]);
  }
  jobs.push([
    'req-node-http-get',
    `node:http ${process.version} http.request`,
    (port) =>
      new Promise((resolve) => {
        const r = http.request({ host: '127.0.0.1', port, path: '/api/items?limit=10', headers: { Accept: 'application/json', 'X-Trace': ['t1', 't2'] } }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        r.end();
      }),
  ]);
  jobs.push([
    'req-node-http-post-chunked',
    `node:http ${process.version} http.request, body written in two parts`,
    (port) =>
      new Promise((resolve) => {
        const r = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/stream', headers: { 'Content-Type': 'text/plain' } }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        r.write('first part, ');
        r.end('second part');
      }),
  ]);
  jobs.push([
    'req-undici-get',
    `undici ${require('undici/package.json').version} request`,
    async (port) => {
      const { body } = await undici.request(`http://127.0.0.1:${port}/undici?x=1`, { headers: { 'x-client': 'undici' } });
      await body.text();
    },
  ]);
  jobs.push([
    'req-undici-post-json',
    `undici ${require('undici/package.json').version} request`,
    async (port) => {
      const { body } = await undici.request(`http://127.0.0.1:${port}/json`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ hello: 'world' }),
      });
      await body.text();
    },
  ]);
  for (const [name, source, client] of jobs) {
    if (only && !name.includes(only)) continue;
    save(name, await captureRequest(client), true, source);
  }
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  await requests();
  if (!only || 'res-node'.includes(only) || only.startsWith('res-node')) await nodeResponses();
  if (have('python3') && (!only || only.includes('python'))) await pythonResponses();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
