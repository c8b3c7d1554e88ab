// Deterministic fuzz of the HTTP/1.1 codec (src/http/h1/codec.ts): random bytes and mutations
// (bit flips, byte overwrites with CR/LF/SP/NUL/obs-text, truncation, line splices, header
// duplication) of the golden vectors and of generated heads and chunked bodies. Properties:
// - HeadParser.parse never throws and returns -1 (with a known status and a reason), 0, or an
//   offset in (start, end] no further than start + maxHeaderBytes;
// - a positive result is self-consistent (lower-case names, clean values, framing fields);
// - only bytes in [start, end) matter (garbage around them changes nothing);
// - feeding a prefix first gives 0 or the same error, and then the same result as one call;
// - ChunkedDecoder.decode never throws, returns -1, `end` or an offset in [start, end], hands
//   the sink only ranges inside [start, end), and gives the same result fed in random pieces.
// Then a differential check against Node's own llhttp (node:http server, strict parser) over
// raw sockets: a table of cases and the mutated requests; each disagreement must be one of
// the intentional differences listed in DIFFERENCES.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { BodyKind, ChunkedDecoder, HeadParser, requestHead, responseHead, type ChunkSink } from '../../src/http/h1/codec';
import { LLHTTP_TABLE as TABLE } from '../helpers/h1-cases';
import { h1Fuzz } from '../helpers/h1-fuzz';
import { close, listen } from '../helpers/net';

const SEED = Number(process.env.H1_FUZZ_SEED ?? 0x5eed_0011);
const ITERATIONS = Number(process.env.H1_FUZZ_ITERATIONS ?? 4000);
const DIFF_CASES = Number(process.env.H1_FUZZ_DIFF_CASES ?? 300);

const { rnd, pick, golden, goldenReq, generatedHead, generatedChunked, mutate, headInput, embed } = h1Fuzz(SEED);

function snap(p: HeadParser): unknown {
  return [p.method, p.target, p.versionMinor, p.status, p.reason, { ...p.headers }, p.headerCount, p.bodyKind, p.contentLength, p.keepAlive, p.upgrade, p.connect, p.expectContinue];
}

const STATUSES = new Set([400, 431, 501, 505]);

function checkResult(p: HeadParser, r: number, start: number, end: number): void {
  if (r === -1) {
    assert.ok(STATUSES.has(p.errorStatus), `status ${p.errorStatus}`);
    assert.ok(p.errorReason.length > 0);
    return;
  }
  if (r === 0) return;
  assert.ok(r > start && r <= end && r - start <= p.maxHeaderBytes, `parse returned ${r} for [${start}, ${end})`);
  assert.ok(p.headerCount <= p.maxHeaders);
  let count = 0;
  for (const k of Object.keys(p.headers)) {
    assert.equal(k, k.toLowerCase());
    assert.ok(k.length > 0);
    const v = p.headers[k];
    for (const x of Array.isArray(v) ? v : [v]) {
      assert.equal(typeof x, 'string');
      for (let i = 0; i < (x as string).length; i++) {
        const c = (x as string).charCodeAt(i);
        assert.ok((c >= 0x20 || c === 9) && c !== 0x7f && c < 0x100, `control byte in value ${JSON.stringify(x)}`);
      }
      assert.ok(!/^[ \t]|[ \t]$/.test(x as string), `OWS left around ${JSON.stringify(x)}`);
      count++;
    }
  }
  assert.ok(count <= p.headerCount);
  assert.ok(p.bodyKind >= BodyKind.None && p.bodyKind <= BodyKind.UntilClose);
  if (p.bodyKind === BodyKind.Length) assert.ok(p.contentLength >= 0 && Number.isSafeInteger(p.contentLength));
  else assert.equal(p.contentLength, -1);
  if (p.isRequest) {
    assert.ok(p.method.length > 0 && p.target.length > 0);
    assert.ok(p.bodyKind !== BodyKind.UntilClose);
    if (p.bodyKind === BodyKind.Chunked) assert.equal(p.headers['content-length'], undefined);
  } else {
    assert.ok(p.status >= 100 && p.status <= 599);
  }
}

test(`h1 head parser fuzz: ${ITERATIONS} inputs, seed ${SEED}`, () => {
  const t0 = Date.now();
  const outcomes = new Map<string, number>();
  for (let it = 0; it < ITERATIONS; it++) {
    const req = rnd(2) === 0;
    const data = headInput(req);
    const maxBytes = pick([32, 100, 512, 16384]);
    const maxHeaders = pick([2, 5, 100]);
    const opts = { head: rnd(4) === 0, conn: rnd(4) === 0 };
    const mk = (): HeadParser => {
      const p = new HeadParser(req, maxBytes, maxHeaders);
      p.headRequest = opts.head;
      p.connectRequest = opts.conn;
      return p;
    };
    const off = rnd(8);
    const a = embed(data, off, 0x0d, rnd(8));
    const b = embed(data, off, 0x41, rnd(8));
    const pa = mk();
    const pb = mk();
    let ra = 0;
    let rb = 0;
    assert.doesNotThrow(() => {
      ra = pa.parse(a, off, off + data.length);
      rb = pb.parse(b, off, off + data.length);
    }, JSON.stringify(data.toString('latin1')));
    checkResult(pa, ra, off, off + data.length);
    assert.equal(ra, rb, 'bytes outside [start, end) changed the result');
    if (ra === -1) assert.deepEqual([pa.errorStatus, pa.errorReason], [pb.errorStatus, pb.errorReason]);
    else assert.deepEqual(snap(pa), snap(pb));
    outcomes.set(ra > 0 ? 'ok' : ra === 0 ? 'more' : String(pa.errorStatus), (outcomes.get(ra > 0 ? 'ok' : ra === 0 ? 'more' : String(pa.errorStatus)) ?? 0) + 1);
    // a prefix first, then everything, on one parser
    const split = rnd(data.length + 1);
    const pc = mk();
    const rp = pc.parse(Buffer.from(data.subarray(0, split)), 0, split);
    assert.ok(rp === -1 || rp === 0 || (rp > 0 && rp <= split));
    if (rp === -1) {
      assert.equal(ra, -1, 'a prefix was refused but the whole input was not');
      assert.equal(pc.errorStatus, pa.errorStatus);
    } else if (rp === 0) {
      const rc = pc.parse(Buffer.from(data), 0, data.length);
      if (rc === 0 && ra === -1) {
        // resumed calls look only for the end of the head and for some errors: others (name
        // characters, framing fields) wait for the head to end; it must then be refused
        const ended = Buffer.concat([data, Buffer.from('\r\n\r\n')]);
        assert.equal(pc.parse(ended, 0, ended.length), -1, JSON.stringify(data.toString('latin1')));
      } else {
        assert.equal(rc, ra > 0 ? ra - off : ra, JSON.stringify(data.toString('latin1')));
        if (rc > 0) assert.deepEqual(snap(pc), snap(pa));
        else if (rc === -1) assert.equal(pc.errorStatus, pa.errorStatus);
      }
    } else {
      assert.equal(rp, ra - off);
    }
  }
  // the mix must reach every outcome, or the mutations are too tame or too wild
  for (const k of ['ok', 'more', '400', '431']) assert.ok((outcomes.get(k) ?? 0) > 0, `no "${k}" outcome: ${JSON.stringify([...outcomes])}`);
  console.log(`h1 head fuzz: ${ITERATIONS} inputs in ${Date.now() - t0} ms, outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`);
});

class Ranges implements ChunkSink {
  payload: Buffer[] = [];
  constructor(
    private lo: number,
    private hi: number,
  ) {}
  bound(lo: number, hi: number): void {
    this.lo = lo;
    this.hi = hi;
  }
  onChunkData(buf: Buffer, start: number, end: number): void {
    assert.ok(this.lo <= start && start <= end && end <= this.hi, `sink range [${start}, ${end}) outside [${this.lo}, ${this.hi})`);
    this.payload.push(Buffer.from(buf.subarray(start, end)));
  }
}

/** Decodes `data` in pieces cut at `cuts`; returns [result offset in data or -1 or -2 (needs more), payload, trailers]. */
function decodePieces(data: Buffer, cuts: number[], maxTrailer: number): [number, string, unknown] {
  const d = new ChunkedDecoder(maxTrailer);
  const sink = new Ranges(0, 0);
  let from = 0;
  for (const to of [...cuts, data.length]) {
    if (to < from) continue;
    const off = rnd(4);
    const buf = embed(data.subarray(from, to), off, 0x30, rnd(4));
    sink.bound(off, off + to - from);
    let r = 0;
    assert.doesNotThrow(() => {
      r = d.decode(buf, off, off + to - from, sink);
    });
    if (r === -1) {
      assert.ok(d.error.length > 0);
      return [-1, '', null];
    }
    assert.ok(r >= off && r <= off + to - from, `decode returned ${r} for [${off}, ${off + to - from})`);
    if (d.done) return [from + r - off, Buffer.concat(sink.payload).toString('latin1'), d.trailers === null ? null : { ...d.trailers }];
    assert.equal(r, off + to - from, 'not done but did not consume everything');
    from = to;
  }
  return [-2, Buffer.concat(sink.payload).toString('latin1'), null];
}

test(`h1 chunked decoder fuzz: ${ITERATIONS} inputs, seed ${SEED}`, () => {
  const bodies = golden.map((g) => {
    const i = g.bytes.indexOf('\r\n\r\n');
    return g.bytes.subarray(i + 4);
  });
  const outcomes = [0, 0, 0];
  for (let it = 0; it < ITERATIONS; it++) {
    const src = rnd(3) === 0 ? pick(bodies) : generatedChunked();
    const data = rnd(3) === 0 ? src : mutate(src, bodies);
    const maxTrailer = pick([0, 16, 1024]);
    const whole = decodePieces(data, [], maxTrailer);
    const cuts = Array.from({ length: rnd(6) }, () => rnd(data.length + 1)).sort((x, y) => x - y);
    const pieces = decodePieces(data, cuts, maxTrailer);
    // pieces may fail earlier than the whole only if the whole fails too; otherwise identical
    if (whole[0] === -1) assert.ok(pieces[0] === -1 || pieces[0] === -2 || false, 'pieces succeeded where the whole failed');
    else assert.deepEqual(pieces, whole, JSON.stringify(data.toString('latin1')));
    outcomes[whole[0] >= 0 ? 0 : whole[0] === -1 ? 1 : 2]++;
  }
  assert.ok(outcomes.every((n) => n > 0), `outcomes done/error/more ${outcomes}`);
});

// ---------------------------------------------------------------------------------------------
// Differential check against node:http (llhttp, insecureHTTPParser false)

type Verdict = { accepted: boolean; code: string };

/**
 * Intentional differences, each a rule that explains one disagreement:
 * `oursRejects`: our parser refuses (the reason names the rule) where llhttp accepts;
 * `nodeRejects`: llhttp (or node:http around it) refuses where our parser accepts.
 */
const DIFFERENCES = {
  oursRejects: [
    'too many empty lines before request line', // we skip at most 4 leading CRLF; llhttp any number
    'HTTP version not supported', // we take only 1.0 and 1.1; llhttp also 0.9 and 2.0 heads
    'transfer-coding other than chunked', // 501 for a request TE without chunked; llhttp reads such a body to EOF
    'Transfer-Encoding in an HTTP/1.0 request', // RFC 9112 6.1 faulty framing; llhttp accepts
    'empty Transfer-Encoding', // llhttp ignores an empty TE value
    'asterisk-form target is only for OPTIONS', // RFC 9112 3.2.4; llhttp takes "*" with any method
    'more than one Host header', // RFC 9112 3.2; node:http keeps the first
    'more than one SP after method', // RFC 9112 3: exactly one SP; llhttp skips extra spaces
    'more than one SP before HTTP version',
    'CONNECT needs an authority-form target', // RFC 9112 3.2.3; llhttp takes any target
    'CONNECT target has an invalid port',
    'invalid request-target (authority-form is only for CONNECT)', // llhttp accepts some schemes/forms we do not
    'bare LF before request line', // llhttp skips a lone CR or LF before the request line
    'bare CR before request line',
    'missing HTTP version', // llhttp still takes an HTTP/0.9 request line (method SP target CRLF)
    'empty request-target', // the same with an empty target ("CONNECT " CRLF)
  ],
  nodeRejects: {
    /** node:http answers 400 to an HTTP/1.1 request without Host (requireHostHeader); we leave that to the caller. */
    noHost: (p: HeadParser): boolean => p.headers['host'] === undefined,
    /** node:http answers 417 itself to an Expect other than 100-continue; expectations are the caller's business here. */
    otherExpectation: (p: HeadParser): boolean => p.headers['expect'] !== undefined && !p.expectContinue,
    /** llhttp refuses HTAB around a Content-Length value; it is OWS (RFC 9110 5.5) and trimmed here. */
    tabAroundLength: (_p: HeadParser, raw: Buffer): boolean => /\r\ncontent-length:[^\r]*\t/i.test(raw.toString('latin1')),
    /** llhttp knows a fixed list of methods; any token is a method for us (RFC 9110 9.1). */
    unknownMethod: (p: HeadParser): boolean => !http.METHODS.includes(p.method),
    /** llhttp refuses any repeated Content-Length; RFC 9110 8.6 lets equal values through as one. */
    repeatedEqualLength: (p: HeadParser, raw: Buffer): boolean => (raw.toString('latin1').match(/\r\ncontent-length:[^\r]*/gi) ?? []).join('').split(/[:,]/).length > 2,
  },
};

/** Sends one request on a raw socket (then half-closes) and reports what node:http made of it. */
async function nodeVerdict(server: http.Server, port: number, bytes: Buffer): Promise<Verdict> {
  let verdict: Verdict | null = null;
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    verdict ??= { accepted: true, code: 'request' };
    req.resume();
    res.end('ok');
  };
  const onConnect = (_req: http.IncomingMessage, sock: net.Socket): void => {
    verdict ??= { accepted: true, code: 'connect' };
    sock.destroy();
  };
  const onClientError = (err: NodeJS.ErrnoException, sock: net.Socket): void => {
    verdict ??= { accepted: false, code: err.code ?? 'error' };
    sock.destroy();
  };
  server.on('request', onRequest);
  server.on('connect', onConnect);
  server.on('clientError', onClientError);
  try {
    await new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.end(bytes));
      s.on('error', () => {});
      s.on('data', () => {});
      s.on('close', () => resolve());
    });
    // node:http answers a missing Host itself (400) without emitting anything
    return verdict ?? { accepted: false, code: 'no event (400 from node:http)' };
  } finally {
    server.off('request', onRequest);
    server.off('connect', onConnect);
    server.off('clientError', onClientError);
  }
}

/** Checks one request: agreement, or a disagreement explained by DIFFERENCES. Returns the rule used. */
function judge(bytes: Buffer, v: Verdict): string {
  const p = new HeadParser(true, 16384, 100);
  const r = p.parse(bytes, 0, bytes.length);
  const ours = r > 0;
  const what = `${JSON.stringify(bytes.toString('latin1').slice(0, 120))}: ours ${r > 0 ? 'accept' : r === 0 ? 'incomplete' : `${p.errorStatus} ${p.errorReason}`}, node ${v.accepted ? 'accept' : v.code}`;
  if (ours === v.accepted) return 'agree';
  if (!ours) {
    assert.equal(r, -1, `unexplained difference (incomplete for us): ${what}`);
    const rule = DIFFERENCES.oursRejects.find((x) => p.errorReason.startsWith(x));
    assert.ok(rule !== undefined, `unexplained difference: ${what}`);
    return rule;
  }
  for (const [name, f] of Object.entries(DIFFERENCES.nodeRejects)) if (f(p, bytes)) return name;
  assert.fail(`unexplained difference: ${what}`);
}


test('h1 codec vs node:http (llhttp): accept/reject agreement on a table, differences explained', async () => {
  const server = http.createServer({ insecureHTTPParser: false });
  const port = await listen(server);
  const rules = new Map<string, number>();
  try {
    for (const [req, nodeAccepts] of TABLE) {
      const bytes = Buffer.from(req, 'latin1');
      const v = await nodeVerdict(server, port, bytes);
      assert.equal(v.accepted, nodeAccepts, `node:http changed its verdict on ${JSON.stringify(req)}: ${v.code}`);
      const rule = judge(bytes, v);
      rules.set(rule, (rules.get(rule) ?? 0) + 1);
    }
  } finally {
    server.closeAllConnections();
    await close(server);
  }
  assert.ok((rules.get('agree') ?? 0) >= TABLE.length / 2, JSON.stringify([...rules]));
  console.log(`h1 vs llhttp table: ${JSON.stringify(Object.fromEntries(rules))}`);
});

test(`h1 codec vs node:http (llhttp): ${DIFF_CASES} mutated requests, seed ${SEED}`, async () => {
  const server = http.createServer({ insecureHTTPParser: false });
  const port = await listen(server);
  const rules = new Map<string, number>();
  try {
    for (let i = 0; i < DIFF_CASES; i++) {
      // whole heads only: an unfinished head is "incomplete" for us and an EOF error for node
      let bytes = rnd(2) ? mutate(pick(goldenReq), goldenReq) : mutate(generatedHead(true), goldenReq);
      const he = bytes.indexOf('\r\n\r\n');
      if (he < 0) bytes = Buffer.concat([bytes, Buffer.from('\r\n\r\n')]);
      else bytes = bytes.subarray(0, he + 4);
      const v = await nodeVerdict(server, port, bytes);
      const rule = judge(bytes, v);
      rules.set(rule, (rules.get(rule) ?? 0) + 1);
    }
  } finally {
    server.closeAllConnections();
    await close(server);
  }
  assert.ok((rules.get('agree') ?? 0) >= DIFF_CASES / 2, JSON.stringify([...rules]));
  console.log(`h1 vs llhttp, mutated: ${JSON.stringify(Object.fromEntries(rules))}`);
});

test('h1 codec: encoded heads always parse back (random header maps)', () => {
  for (let it = 0; it < 500; it++) {
    const headers: Record<string, string | string[]> = {};
    for (let i = rnd(6); i > 0; i--) {
      const name = pick(['x-a', 'x-b', 'accept', 'x-list', 'etag']);
      headers[name] = rnd(3) ? pick(['1', 'v w', '"q"', '\xe9']) : ['a', 'b'];
    }
    const req = rnd(2) === 0;
    const s = req ? requestHead(pick(['GET', 'POST', 'PURGE']), pick(['/', '/x?y']), 'h:1', headers, '') : responseHead(pick([200, 404, 599]), headers, '');
    const b = Buffer.from(s, 'latin1');
    const p = new HeadParser(req, 16384, 100);
    assert.equal(p.parse(b, 0, b.length), b.length, s);
    const { host: _host, ...rest } = { ...p.headers };
    assert.deepEqual(rest, headers);
  }
});
