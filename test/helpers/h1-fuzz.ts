// Input generators of the HTTP/1.1 codec's fuzz tests (test/fuzz/h1-codec.fuzz.test.ts and the
// native/TypeScript differential test test/unit/h1-native-head.test.ts): the golden vectors,
// generated heads and chunked bodies, and their mutations (bit flips, junk bytes, truncation,
// insertions, deletions, duplicated lines, splices), all driven by one seeded PRNG.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chunkHeader } from '../../src/http/h1/codec';
import { prng } from './prng';

/** The generators over one PRNG stream (seeded: the same seed gives the same inputs). */
export function h1Fuzz(seed: number) {
  const next = prng(seed);
  const rnd = (n: number): number => next() % n;
  const pick = <T>(a: readonly T[]): T => a[rnd(a.length)];

  const VECTORS = path.join(__dirname, '..', '..', '..', 'test', 'vectors', 'http1');
  const golden = fs
    .readdirSync(VECTORS)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((f) => ({ req: f.startsWith('req-'), bytes: fs.readFileSync(path.join(VECTORS, f)) }));
  const goldenReq = golden.filter((g) => g.req).map((g) => g.bytes);
  const goldenRes = golden.filter((g) => !g.req).map((g) => g.bytes);

  const NAMES = ['Host', 'Content-Length', 'Transfer-Encoding', 'Connection', 'Upgrade', 'Expect', 'X-A', 'accept', 'set-cookie', '__proto__', 'x-\xe9'];
  const VALUES = ['a', '0', '5', '10, 10', 'chunked', 'gzip, chunked', 'chunked, gzip', 'close', 'keep-alive', 'upgrade', 'websocket', '100-continue', '', ' x ', '\xe9', '-1', '+5', '1 2'];
  const METHODS = ['GET', 'POST', 'PUT', 'HEAD', 'OPTIONS', 'CONNECT', 'DELETE', 'PURGE', 'get', 'G T'];
  const TARGETS = ['/', '/a?b=c', '*', 'http://h/p', 'h.example:443', '/%20', 'x', ''];
  const JUNK = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x3a, 0x2c, 0x7f, 0x80, 0xe9, 0xff];

  function generatedHead(req: boolean): Buffer {
    let s = req ? `${pick(METHODS)} ${pick(TARGETS)} HTTP/1.${rnd(3)}\r\n` : `HTTP/1.${rnd(2)} ${pick([100, 101, 200, 204, 304, 404, 500, 99, 600])} ${pick(['OK', '', 'Not Found'])}\r\n`;
    if (req && rnd(4) === 0) s = '\r\n' + s;
    for (let i = rnd(8); i > 0; i--) s += `${pick(NAMES)}:${pick(['', ' ', '\t'])}${pick(VALUES)}${pick(['', ' '])}\r\n`;
    return Buffer.from(s + '\r\n', 'latin1');
  }

  /** A chunked body, valid unless mutated: random chunk sizes, extensions and trailers. */
  function generatedChunked(): Buffer {
    let s = '';
    for (let i = rnd(5); i > 0; i--) {
      const n = 1 + rnd(40);
      s += (rnd(2) ? chunkHeader(n) : n.toString(16).toUpperCase() + '\r\n').replace('\r\n', rnd(3) ? '\r\n' : ';e=v\r\n');
      s += 'd'.repeat(n) + '\r\n';
    }
    s += '0' + (rnd(4) ? '' : ';last') + '\r\n';
    for (let i = rnd(3); i > 0; i--) s += `${pick(NAMES)}: ${pick(VALUES)}\r\n`;
    return Buffer.from(s + '\r\n', 'latin1');
  }

  function mutate(src: Buffer, pool: Buffer[]): Buffer {
    let out = Buffer.from(src);
    for (let r = 1 + rnd(3); r > 0; r--) {
      switch (rnd(8)) {
        case 0:
          if (out.length) out[rnd(out.length)] ^= 1 << rnd(8);
          break;
        case 1:
        case 2:
          if (out.length) out[rnd(out.length)] = pick(JUNK);
          break;
        case 3:
          out = out.subarray(0, rnd(out.length + 1));
          break;
        case 4: {
          // insert a byte (an extra SP, CR, LF ...)
          const at = rnd(out.length + 1);
          out = Buffer.concat([out.subarray(0, at), Buffer.from([pick(JUNK)]), out.subarray(at)]);
          break;
        }
        case 5: {
          // delete a byte
          const at = rnd(out.length + 1);
          out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
          break;
        }
        case 6: {
          // duplicate a whole line (Host, Content-Length, Transfer-Encoding ...)
          const lines = out.toString('latin1').split('\r\n');
          if (lines.length > 2) {
            const i = 1 + rnd(lines.length - 2);
            lines.splice(i, 0, lines[i]);
            out = Buffer.from(lines.join('\r\n'), 'latin1');
          }
          break;
        }
        default:
          out = Buffer.concat([out.subarray(0, rnd(out.length + 1)), pick(pool).subarray(rnd(40))]);
      }
    }
    return out;
  }

  function headInput(req: boolean): Buffer {
    const pool = req ? goldenReq : goldenRes;
    switch (rnd(5)) {
      case 0:
        return mutate(pick(pool), pool);
      case 1:
        return mutate(generatedHead(req), pool);
      case 2:
        return generatedHead(req);
      case 3:
        return Buffer.from(Array.from({ length: rnd(80) }, () => (rnd(3) ? 0x20 + rnd(95) : pick(JUNK))));
      default:
        return pick(pool);
    }
  }

  function embed(data: Buffer, offset: number, fill: number, tail: number): Buffer {
    const b = Buffer.alloc(offset + data.length + tail, fill);
    data.copy(b, offset);
    return b;
  }
  return { rnd, pick, golden, goldenReq, goldenRes, generatedHead, generatedChunked, mutate, headInput, embed, JUNK };
}
