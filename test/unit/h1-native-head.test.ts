// Differential test of the HTTP/1.1 head parsers: the native scanner in front of the TypeScript
// parser (HeadParser.useNative, native/h1parse.cc) against the TypeScript parser alone, on the
// same inputs: the golden vectors, the valid / invalid / llhttp tables, random valid heads (many
// fields, upper-case names, obs-text, framing fields in every combination), the fuzz test's
// mutations and random bytes. Every result must be identical: the return value, the error status
// and reason, every parse result (method, target, version, status, reason, header map, count,
// framing, keep-alive, upgrade, connect, expect), and when indexing the forwarded-line runs and
// `irregular`; in every parser mode (request: map, index too, index only; response: map, index
// only; HEAD and CONNECT requests), inside larger buffers, and fed in two pieces. The native
// scanner must also have decided the common heads (else this test would compare the TypeScript
// parser with itself).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeadParser, NATIVE_HEAD_PARSER, nativeHeadsDecided } from '../../src/http/h1/codec';
import { INVALID, LLHTTP_TABLE, VALID } from '../helpers/h1-cases';
import { h1Fuzz } from '../helpers/h1-fuzz';

const SEED = Number(process.env.H1_FUZZ_SEED ?? 0x4e41_7431);
const ITERATIONS = Number(process.env.H1_FUZZ_ITERATIONS ?? 6000);
const fz = h1Fuzz(SEED);
const { rnd, pick } = fz;

interface Mode {
  req: boolean;
  indexOnly: boolean;
  indexToo: boolean;
  headRequest: boolean;
  connectRequest: boolean;
  /** The native-first parser builds no map during the parse (HeadParser.lazyMap, the raw downstream's setting). */
  lazyMap?: boolean;
}

const MODES: Mode[] = [
  { req: true, indexOnly: false, indexToo: false, headRequest: false, connectRequest: false },
  { req: true, indexOnly: false, indexToo: true, headRequest: false, connectRequest: false },
  { req: true, indexOnly: false, indexToo: true, headRequest: false, connectRequest: false, lazyMap: true },
  { req: true, indexOnly: true, indexToo: false, headRequest: false, connectRequest: false },
  { req: false, indexOnly: false, indexToo: false, headRequest: false, connectRequest: false },
  { req: false, indexOnly: true, indexToo: false, headRequest: false, connectRequest: false },
  { req: false, indexOnly: true, indexToo: false, headRequest: true, connectRequest: false },
  { req: false, indexOnly: false, indexToo: false, headRequest: false, connectRequest: true },
];

/** A TypeScript-only parser and a native-first one with the same settings, kept across inputs (as a connection keeps its parser). */
class Pair {
  readonly js: HeadParser;
  readonly nat: HeadParser;
  constructor(
    readonly mode: Mode,
    maxBytes: number,
    maxHeaders: number,
  ) {
    this.js = this.make(maxBytes, maxHeaders);
    this.js.useNative = false;
    this.nat = this.make(maxBytes, maxHeaders);
    this.nat.useNative = true;
    this.nat.lazyMap = mode.lazyMap === true;
  }
  private make(maxBytes: number, maxHeaders: number): HeadParser {
    const p = new HeadParser(this.mode.req, maxBytes, maxHeaders);
    p.indexOnly = this.mode.indexOnly;
    p.indexToo = this.mode.indexToo;
    p.headRequest = this.mode.headRequest;
    p.connectRequest = this.mode.connectRequest;
    return p;
  }
}

function snap(p: HeadParser, indexing: boolean): unknown {
  const out: unknown[] = [
    p.method, p.target, p.versionMinor, p.status, p.reason, Object.entries(p.headers), p.headerCount, p.bodyKind,
    p.contentLength, p.keepAlive, p.upgrade, p.connect, p.expectContinue, p.errorStatus, p.errorReason, p.headStart, p.headEnd,
  ];
  // The index is read only after an indexing parse (and is shared between parsers until the next one).
  if (indexing) out.push(p.irregular, Array.from(p.runs.subarray(0, p.runCount)));
  return out;
}

const outcomes = { same: 0, accepted: 0, decided: 0 };

/** Parses buf[start, end) with both parsers of the pair; the results must be identical. */
function same(pair: Pair, buf: Buffer, start: number, end: number, what: () => string): number {
  const before = nativeHeadsDecided();
  const rj = pair.js.parse(buf, start, end);
  const idxJs = pair.js.indexOnly || pair.js.indexToo;
  const sj = snap(pair.js, idxJs);
  // lazyMap: the parser reads its fields from the head's buffer until settleLazy(), which builds
  // the map if asked to: the bytes are scribbled over after it (the read chunk is reused).
  const lazy = pair.nat.lazyMap;
  const nb = lazy ? Buffer.from(buf) : buf;
  const rn = pair.nat.parse(nb, start, end);
  const decided = nativeHeadsDecided() - before;
  assert.equal(rn, rj, `${what()}: returned ${rn}, TypeScript ${rj} (${pair.js.errorStatus} ${pair.js.errorReason})`);
  let keep = true;
  if (lazy) {
    // One field at a time (before the map is built), as the map gives it.
    const names = [...Object.keys(pair.js.headers), 'host', 'content-type', 'x-request-id', 'x-absent', 'Host', 'HOST', 'constructor', '__proto__'];
    for (const n of names) assert.deepEqual(pair.nat.field(n), pair.js.headers[n], `${what()}: field(${n})`);
    keep = outcomes.same % 2 === 0;
    pair.nat.settleLazy(keep);
    nb.fill(0x7a);
    // Released unbuilt: reading the map is refused, not built from the overwritten bytes.
    if (!keep && decided > 0) assert.throws(() => pair.nat.headers, /released/, what());
  }
  if (keep) assert.deepEqual(snap(pair.nat, idxJs), sj, what());
  if (decided > 0) assert.ok(rj > 0, `${what()}: the native scanner accepted a head the TypeScript parser did not`);
  outcomes.same++;
  if (rj > 0) outcomes.accepted++;
  outcomes.decided += decided;
  if (rj === 0) {
    pair.js.reset();
    pair.nat.reset();
  }
  return rj;
}

/** The input on its own, inside a larger buffer, and fed in two pieces (a prefix, then all). */
function check(pair: Pair, data: Buffer, label: string): void {
  const what = (): string => `${label} [${JSON.stringify(pair.mode)}] ${JSON.stringify(data.toString('latin1').slice(0, 200))}`;
  same(pair, data, 0, data.length, what);
  const off = 1 + rnd(7);
  const big = fz.embed(data, off, pick([0x0d, 0x0a, 0x41, 0x20]), rnd(9));
  same(pair, big, off, off + data.length, what);
  const split = rnd(data.length + 1);
  if (same(pair, data, 0, split, what) === 0) {
    // the rest arrives: the same parser pair goes on (the native scanner is skipped for a resumed head)
    const again = Buffer.from(data);
    const r = pair.js.parse(again, 0, again.length);
    assert.equal(pair.nat.parse(again, 0, again.length), r, what());
    assert.deepEqual(snap(pair.nat, pair.nat.indexOnly || pair.nat.indexToo), snap(pair.js, pair.js.indexOnly || pair.js.indexToo), what());
    if (r === 0) {
      pair.js.reset();
      pair.nat.reset();
    }
  }
}

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const NAMES = [
  'Host', 'host', 'HOST', 'Content-Length', 'content-length', 'Transfer-Encoding', 'transfer-encoding', 'Connection', 'connection',
  'Upgrade', 'Expect', 'Keep-Alive', 'Proxy-Connection', 'HTTP2-Settings', 'TE', 'Trailer', 'User-Agent', 'Accept', 'Set-Cookie',
  'X-Request-Id', 'Content-Type', 'content-lengt', 'content-lengths', '__proto__', 'constructor', 'toString',
];
const VALUES: Record<string, string[]> = {
  'content-length': ['0', '5', '1024', '000', '2147483647', '2147483648', '999999999999999', '1234567890123456', '5, 5', '5,6', '', '+5', '5 ', ' 5'],
  'transfer-encoding': ['chunked', 'CHUNKED', 'gzip, chunked', 'chunked, gzip', 'gzip', '', ' , chunked', 'chunked,chunked', 'identity'],
  connection: ['close', 'keep-alive', 'Upgrade', 'keep-alive, Upgrade', 'close, x-foo', 'x-foo', '', ',,', 'TE, close'],
  expect: ['100-continue', '100-Continue', 'something'],
  upgrade: ['websocket', 'h2c'],
  host: ['a', 'example.com:8080', ''],
};

function randomToken(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += TCHARS[rnd(TCHARS.length)];
  return s;
}

function randomValue(): string {
  const n = rnd(4) === 0 ? 60 + rnd(40) : rnd(24);
  let s = '';
  for (let i = 0; i < n; i++) {
    const k = rnd(300);
    // now and then a byte a value may not hold (the scanner tests eight at a time)
    if (k === 0) s += String.fromCharCode(pick([0x00, 0x01, 0x0a, 0x0d, 0x1f, 0x7f]));
    else s += k < 15 ? '\t' : k < 30 ? ' ' : k < 45 ? String.fromCharCode(0x80 + rnd(128)) : String.fromCharCode(0x21 + rnd(94));
  }
  return s;
}

/** A random head, valid more often than not: the shapes the scanner decides and those it leaves. */
function randomHead(req: boolean): Buffer {
  let s = '';
  if (req) {
    if (rnd(8) === 0) s += '\r\n'.repeat(1 + rnd(5));
    const method = pick(['GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'PURGE', randomToken(1 + rnd(8))]);
    const target = method === 'CONNECT' ? pick(['a.example:443', 'a:1', '/x', 'a:', 'a:b']) : pick(['/', '/a?b=c', '*', 'http://h/p', 'HTTPS://h:1/', '/' + randomToken(rnd(30)), 'x:/y']);
    s += `${method} ${target} HTTP/1.${pick(['1', '1', '1', '0', '2'])}\r\n`;
  } else {
    s += `HTTP/1.${pick(['1', '1', '0'])} ${pick([100, 101, 200, 200, 204, 206, 304, 404, 500, 599])}${pick([' OK', ' ', '', ' Not Found', ' caf\xe9', ' a\tb'])}\r\n`;
  }
  const fields = rnd(10) === 0 ? 90 + rnd(30) : rnd(9);
  for (let i = 0; i < fields; i++) {
    const name = rnd(3) === 0 ? randomToken(1 + rnd(rnd(6) === 0 ? 60 : 12)) : pick(NAMES);
    const vals = VALUES[name.toLowerCase()];
    const value = vals !== undefined && rnd(4) !== 0 ? pick(vals) : randomValue();
    s += `${name}:${pick(['', ' ', '  ', '\t'])}${value}${pick(['', '', ' ', '\t '])}\r\n`;
  }
  return Buffer.from(s + '\r\n', 'latin1');
}

const PAIRS = MODES.map((m) => new Pair(m, 16384, 100));

test('h1 heads, native scanner vs TypeScript parser: the golden vectors and the tables', { skip: !NATIVE_HEAD_PARSER && 'no native head scanner' }, () => {
  const decided0 = nativeHeadsDecided();
  let valid = 0;
  for (const pair of PAIRS) {
    for (const g of fz.golden) if (g.req === pair.mode.req) check(pair, g.bytes, 'golden');
    for (const v of VALID) {
      if (v.req !== pair.mode.req) continue;
      const p = new Pair({ ...pair.mode, headRequest: v.opts?.headRequest ?? pair.mode.headRequest, connectRequest: v.opts?.connectRequest ?? pair.mode.connectRequest }, v.opts?.maxHeaderBytes ?? 16384, v.opts?.maxHeaders ?? 100);
      check(p, Buffer.from(v.head, 'latin1'), 'valid table');
      valid++;
    }
    for (const v of INVALID) {
      if ((v.req ?? true) !== pair.mode.req) continue;
      check(new Pair(pair.mode, v.opts?.maxHeaderBytes ?? 16384, v.opts?.maxHeaders ?? 100), Buffer.from(v.head, 'latin1'), 'invalid table');
    }
    if (pair.mode.req) for (const [req] of LLHTTP_TABLE) check(pair, Buffer.from(req, 'latin1'), 'llhttp table');
  }
  // every golden vector and valid-table head was given to the scanner at least once, whole; most must be decided there
  assert.ok(nativeHeadsDecided() - decided0 > valid, `the native scanner decided only ${nativeHeadsDecided() - decided0} heads`);
});

test(`h1 heads, native scanner vs TypeScript parser: ${ITERATIONS} random and mutated heads, seed ${SEED}`, { skip: !NATIVE_HEAD_PARSER && 'no native head scanner' }, () => {
  const t0 = Date.now();
  const start = { ...outcomes };
  const limits = [
    [16384, 100],
    [64, 100],
    [300, 5],
    [16384, 300],
  ];
  const pairs = MODES.flatMap((m) => limits.map(([b, h]) => new Pair(m, b, h)));
  for (let it = 0; it < ITERATIONS; it++) {
    const pair = pick(pairs);
    const req = pair.mode.req;
    const k = rnd(4);
    const data = k === 0 ? fz.headInput(req) : k === 1 ? fz.mutate(randomHead(req), req ? fz.goldenReq : fz.goldenRes) : randomHead(req);
    check(pair, data, k === 0 ? 'fuzz input' : k === 1 ? 'mutated random head' : 'random head');
  }
  const n = outcomes.same - start.same;
  const accepted = outcomes.accepted - start.accepted;
  const decided = outcomes.decided - start.decided;
  console.log(`h1 native vs TypeScript: ${n} parses in ${Date.now() - t0} ms, ${accepted} accepted, ${decided} decided natively`);
  // the inputs must reach both the scanner's answer and the cases it leaves to the TypeScript parser
  assert.ok(decided > accepted / 2, `the native scanner decided ${decided} of ${accepted} accepted heads`);
  assert.ok(decided < accepted, 'no accepted head was left to the TypeScript parser: the rare framing cases are not generated');
});
