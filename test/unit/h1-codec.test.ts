// Unit tests of the strict HTTP/1.1 codec (src/http/h1/codec.ts): head parsing, framing rules,
// incremental feeding, the chunked decoder and the head/chunk encoders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BodyKind, ChunkedDecoder, HeadParser, LAST_CHUNK, chunkHeader, requestHead, responseHead } from '../../src/http/h1/codec';

function parseReq(s: string): HeadParser {
  const p = new HeadParser(true, 16384, 100);
  const b = Buffer.from(s, 'latin1');
  const r = p.parse(b, 0, b.length);
  assert.equal(r, b.length, `${JSON.stringify(s)}: ${p.errorStatus} ${p.errorReason}`);
  return p;
}

test('h1 codec: a GET head', () => {
  const p = parseReq('GET /a?b=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n');
  assert.equal(p.method, 'GET');
  assert.equal(p.target, '/a?b=1');
  assert.equal(p.versionMinor, 1);
  assert.deepEqual({ ...p.headers }, { host: 'example', 'user-agent': 'curl/8.5.0', accept: '*/*' });
  assert.equal(p.bodyKind, BodyKind.None);
  assert.equal(p.keepAlive, true);
});

test('h1 codec: CL+TE request is 400', () => {
  const p = new HeadParser(true, 16384, 100);
  const b = Buffer.from('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 'latin1');
  assert.equal(p.parse(b, 0, b.length), -1);
  assert.equal(p.errorStatus, 400);
});

test('h1 codec: chunked body with trailers', () => {
  const d = new ChunkedDecoder(1024);
  const body = Buffer.from('5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n', 'latin1');
  const got: string[] = [];
  const r = d.decode(body, 0, body.length, { onChunkData: (b, s, e) => got.push(b.toString('latin1', s, e)) });
  assert.equal(r, body.length);
  assert.equal(d.done, true);
  assert.equal(got.join(''), 'hello');
  assert.deepEqual({ ...d.trailers }, { 'x-t': '1' });
});

test('h1 codec: encoders', () => {
  assert.equal(requestHead('GET', '/', 'h:1', { a: 'b', c: ['d', 'e'] }, ''), 'GET / HTTP/1.1\r\nhost: h:1\r\na: b\r\nc: d\r\nc: e\r\n\r\n');
  assert.equal(responseHead(404, { a: 'b' }, 'transfer-encoding: chunked\r\n'), 'HTTP/1.1 404 Not Found\r\na: b\r\ntransfer-encoding: chunked\r\n\r\n');
  assert.equal(responseHead(299, {}, ''), 'HTTP/1.1 299 Unknown\r\n\r\n');
  assert.equal(chunkHeader(255), 'ff\r\n');
  assert.equal(LAST_CHUNK.toString('latin1'), '0\r\n\r\n');
});
