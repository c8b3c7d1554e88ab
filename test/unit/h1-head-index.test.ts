/**
 * The codec's field-line index (issue 15): heads forwarded as their bytes. An indexed head's
 * forwarded lines must say what the header map path would forward (endToEnd of the parsed map),
 * and every head the byte path cannot reproduce must be flagged irregular.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeadParser, NATIVE_HEAD_PARSER } from '../../src/http/h1/codec';
import { headInPlace, offerRoom, tookRoom, writeCopiedHead, writeHead } from '../../src/http/h1/head-slab';
import type { Connection } from '../../src/network/connection';
import { endToEnd, type Headers } from '../../src/http/headers';

/** The lines the index selects, as text. */
function indexed(p: HeadParser, buf: Buffer): string {
  let s = '';
  for (let i = 0; i < p.runCount; i += 2) s += buf.toString('latin1', p.runs[i], p.runs[i + 1]);
  return s;
}

/** Field lines parsed into a map as the codec would (a status line put in front). */
function mapOf(lines: string, request: boolean): Headers {
  const p = new HeadParser(request, 65536, 100);
  const head = Buffer.from((request ? 'GET / HTTP/1.1\r\n' : 'HTTP/1.1 200 OK\r\n') + lines + '\r\n', 'latin1');
  assert.ok(p.parse(head, 0, head.length) > 0, lines);
  return p.headers;
}

const RESPONSES = [
  'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nDate: x\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A:  1 \r\nSet-Cookie: a\r\nset-cookie: b\r\n\r\n',
  'HTTP/1.1 204 No Content\r\nProxy-Connection: x\r\nUpgrade: h2c\r\nHTTP2-Settings: y\r\nVia: 1.1 a\r\n\r\n',
  'HTTP/1.0 200 OK\r\nServer: s\r\n\r\n',
  'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nConnection: close\r\n\r\n',
];

test('h1 head index: a response indexed without a map forwards what the map path forwards', () => {
  const p = new HeadParser(false, 65536, 100);
  const m = new HeadParser(false, 65536, 100);
  for (const text of RESPONSES) {
    const buf = Buffer.from('junk' + text + 'body', 'latin1');
    p.indexOnly = true;
    const r = p.parse(buf, 4, buf.length);
    assert.equal(r, buf.length - 4, text);
    assert.equal(p.irregular, false, text);
    assert.deepEqual(Object.keys(p.headers), [], 'no map built');
    const r2 = m.parse(buf, 4, buf.length);
    assert.equal(r2, r);
    // Same framing facts as the map parse.
    assert.deepEqual([p.status, p.bodyKind, p.contentLength, p.keepAlive], [m.status, m.bodyKind, m.contentLength, m.keepAlive], text);
    // The indexed lines, parsed, are the end-to-end headers of the map parse.
    assert.deepEqual({ ...mapOf(indexed(p, buf), false) }, { ...endToEnd(m.headers) }, text);
  }
});

test('h1 head index: heads the byte path cannot reproduce are irregular', () => {
  const p = new HeadParser(false, 65536, 100);
  for (const lines of [
    'TE: trailers\r\n',
    'Trailer: x-sum\r\nTransfer-Encoding: chunked\r\n',
    'Content-Length: 2\r\nContent-Length: 2\r\n',
    'Content-Length: 2, 2\r\n',
    'Content-Length: 2\r\nTransfer-Encoding: chunked\r\n',
    'Connection: X-Private\r\nX-Private: 1\r\n',
    'Connection: keep-alive, foo\r\n',
  ]) {
    const buf = Buffer.from('HTTP/1.1 200 OK\r\n' + lines + '\r\n', 'latin1');
    p.indexOnly = true;
    assert.ok(p.parse(buf, 0, buf.length) > 0, lines);
    assert.equal(p.irregular, true, lines);
  }
  // The flag is reset by the next head.
  const ok = Buffer.from('HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Upgrade\r\nContent-Length: 0\r\n\r\n', 'latin1');
  assert.ok(p.parse(ok, 0, ok.length) > 0);
  assert.equal(p.irregular, false);
  assert.equal(indexed(p, ok), 'Content-Length: 0\r\n');
});

test('h1 head index: a request is indexed and mapped; host, expect and hop-by-hop lines are not forwarded; a length is irregular', () => {
  const p = new HeadParser(true, 65536, 100);
  p.indexToo = true;
  const text = 'GET /x HTTP/1.1\r\nHost: a\r\nUser-Agent: u\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nKeep-Alive: 5\r\nAccept: */*\r\n\r\n';
  const buf = Buffer.from(text, 'latin1');
  assert.equal(p.parse(buf, 0, buf.length), buf.length);
  assert.equal(p.irregular, false);
  assert.equal(p.headers['host'], 'a', 'the map is built too');
  assert.equal(indexed(p, buf), 'User-Agent: u\r\nAccept: */*\r\n');
  assert.deepEqual({ ...mapOf(indexed(p, buf), true) }, { ...endToEnd(p.headers, true) });
  for (const lines of ['Content-Length: 0\r\n', 'TE: trailers\r\n', 'Connection: close, x-a\r\n']) {
    const b = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n' + lines + '\r\n', 'latin1');
    assert.ok(p.parse(b, 0, b.length) > 0, lines);
    assert.equal(p.irregular, true, lines);
  }
});

test('h1 head index: random heads, indexed lines equal the map path', () => {
  let seed = 11;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const names = ['Content-Type', 'connection', 'Keep-Alive', 'X-A', 'x-a', 'Set-Cookie', 'Via', 'Upgrade', 'proxy-connection', 'Date', 'Server', 'Host', 'Expect'];
  const values = ['v', ' spaced ', 'keep-alive', 'close', 'a, b', '', 'Upgrade', '1'];
  const p = new HeadParser(false, 65536, 100);
  const m = new HeadParser(false, 65536, 100);
  for (let i = 0; i < 500; i++) {
    let lines = '';
    for (let k = rnd(6); k >= 0; k--) lines += `${names[rnd(names.length)]}:${values[rnd(values.length)]}\r\n`;
    const buf = Buffer.from(`HTTP/1.1 200 OK\r\n${lines}Content-Length: 0\r\n\r\n`, 'latin1');
    p.indexOnly = true;
    const r = p.parse(buf, 0, buf.length);
    assert.equal(r, m.parse(buf, 0, buf.length), lines);
    if (r < 0 || p.irregular) continue;
    assert.deepEqual({ ...mapOf(indexed(p, buf), false) }, { ...endToEnd(m.headers) }, lines);
  }
});

test('h1 head index: a head rewritten in place ends where the old one did, in front of its body; a longer one is refused', () => {
  const p = new HeadParser(false, 65536, 100);
  const text = 'HTTP/1.1 200 Fine\r\nA: 1\r\nConnection: keep-alive\r\nB: 2\r\nKeep-Alive: timeout=5\r\nC: 3\r\n\r\n';
  const buf = Buffer.from('xx' + text + 'BODY', 'latin1');
  p.indexOnly = true;
  assert.equal(p.parse(buf, 2, buf.length), buf.length - 4);
  assert.deepEqual([p.headStart, p.headEnd], [2, buf.length - 4]);
  const at = headInPlace(buf, 'HTTP/1.1 200 OK\r\nx-p: 1\r\n', p);
  assert.equal(buf.toString('latin1', at), 'HTTP/1.1 200 OK\r\nx-p: 1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\nBODY');
  assert.ok(at > 2);
  // No room: nothing is written.
  const small = Buffer.from('HTTP/1.1 200 OK\r\nA: 1\r\n\r\nBODY', 'latin1');
  assert.ok(p.parse(small, 0, small.length) > 0);
  const before = Buffer.from(small);
  assert.equal(headInPlace(small, 'HTTP/1.1 200 OK\r\nconnection: close\r\n', p), -1);
  assert.deepEqual(small, before);
});

/** A Connection that keeps the bytes queued on it. */
function sink(): { conn: Connection; text: () => string } {
  const parts: string[] = [];
  const conn = { write: (b: Buffer, s: number, e: number) => parts.push(b.toString('latin1', s, e)) } as unknown as Connection;
  return { conn, text: () => parts.join('') };
}

test('h1 head index: a request head whose lines the scanner copied into the head slab goes out as writeHead would write it', { skip: !NATIVE_HEAD_PARSER }, () => {
  const heads = [
    'GET /a HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n',
    'GET /b?q=1 HTTP/1.1\r\nA: 1\r\nConnection: keep-alive\r\nhost: y\r\nB:  2 \r\nKeep-Alive: 5\r\nC: 3\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: z\r\n\r\n',
    'DELETE /d HTTP/1.0\r\nX-Long: ' + 'v'.repeat(3000) + '\r\nHost: w\r\nProxy-Connection: x\r\n\r\n',
  ];
  const p = new HeadParser(true, 65536, 100);
  p.indexToo = true;
  let copied = 0;
  for (let k = 0; k < 600; k++) {
    // Around the slab many times over (a new slab every few hundred heads), heads inside larger reads.
    const head = heads[k % heads.length];
    const buf = Buffer.from('junk' + head + 'next', 'latin1');
    offerRoom();
    assert.equal(p.parse(buf, 4, buf.length), buf.length - 4);
    tookRoom(p);
    const prefix = `GET /p${k} HTTP/1.1\r\nhost: h\r\nx-request-id: ${k}\r\n`;
    const want = sink();
    const wn = writeHead(want.conn, prefix, buf, p);
    buf.fill(0x7a); // the read buffer is reused: the copy must not depend on it
    const got = sink();
    const n = writeCopiedHead(got.conn, prefix, p);
    // The short heads always fit the room offered; the 3 KB one only where the slab has it left.
    if (k % heads.length !== 3) assert.ok(n >= 0, head);
    if (n >= 0) {
      copied++;
      assert.equal(n, wn);
      assert.equal(got.text(), want.text());
      // One use: the same copy is not handed out twice.
      assert.equal(writeCopiedHead(sink().conn, prefix, p), -1);
    }
  }
  assert.ok(copied > 500, `${copied}`);
  // A prefix longer than the room in front of the copy, and a parse without an offer: not copied.
  const buf = Buffer.from(heads[0], 'latin1');
  offerRoom();
  p.parse(buf, 0, buf.length);
  tookRoom(p);
  assert.equal(writeCopiedHead(sink().conn, 'GET /' + 'x'.repeat(400) + ' HTTP/1.1\r\n', p), -1);
  p.parse(buf, 0, buf.length);
  tookRoom(p);
  assert.equal(p.copiedEnd, -1);
  assert.equal(writeCopiedHead(sink().conn, 'GET / HTTP/1.1\r\n', p), -1);
});
