/**
 * Linear-time regular expressions for everything matched against request data (route path
 * regexes, header regexes, RPC service/method regexes).
 *
 * Engine: V8's non-backtracking engine (`--enable-experimental-regexp-engine`, the `l` flag):
 * an NFA simulation whose cost is O(pattern x input) whatever the pattern, so `^/(a+)+$` on a
 * 64 KiB path takes milliseconds instead of never ending. The flag is process-wide, set once
 * when this module loads (before any worker starts: workers share the isolate flags), and it
 * only adds the `l` flag: other regexes are unchanged. V8 refuses, at compile time, what it
 * cannot run in linear time: backreferences, lookahead/lookbehind, the `i`, `u`, `y` flags and
 * counted repetitions whose expansion exceeds 16 copies (`x{17}`, `(?:x{8}){4}`; `x{16}`, `x{2,}` pass). Config validation
 * therefore refuses exactly those patterns, with the JSON path and the value.
 *
 * Case-insensitive matching (`case_sensitive: false`) cannot use the `i` flag: the pattern is
 * folded instead (every ASCII letter `x` outside a class becomes `[xX]`, every class gains the
 * other case of its letters and letter ranges), which is what `i` means on ASCII input.
 *
 * Measured cost per match: README.md in this folder (rerun: node dist/bench/router-regex.js).
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--enable-experimental-regexp-engine');

/** The linear engine's flag (a variable: lint rules know only the standard flags). */
const LINEAR = 'l';

/** Whether the running V8 accepts the linear-engine flag (checked once). */
const LINEAR_OK = ((): boolean => {
  try {
    new RegExp('a', LINEAR);
    return true;
  } catch {
    return false;
  }
})();

function isLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function otherCase(c: number): number {
  return c >= 0x61 ? c - 0x20 : c + 0x20;
}

/** The length of the escape sequence starting at src[i] === '\\' (backslash included). */
function escapeLength(src: string, i: number): number {
  const n = src[i + 1];
  if (n === 'x') return 4;
  if (n === 'u') return src[i + 2] === '{' ? Math.max(3, src.indexOf('}', i) - i + 1) : 6;
  if (n === 'c') return 3;
  if (n === 'k' && src[i + 2] === '<') return Math.max(3, src.indexOf('>', i) - i + 1);
  return 2;
}

/** The letters and letter ranges of the other case that a class body `[...]` needs under `i`. */
function classExtra(body: string): string {
  let extra = '';
  for (let i = 0; i < body.length; ) {
    if (body[i] === '\\') {
      i += escapeLength(body, i);
      continue;
    }
    const lo = body.charCodeAt(i);
    if (body[i + 1] === '-' && i + 2 < body.length && body[i + 2] !== '\\') {
      const hi = body.charCodeAt(i + 2);
      // The parts of [lo, hi] that fall in A-Z and a-z, shifted to the other case.
      for (const [a, b] of [
        [0x41, 0x5a],
        [0x61, 0x7a],
      ]) {
        const s = Math.max(lo, a);
        const e = Math.min(hi, b);
        if (s <= e) extra += `${String.fromCharCode(otherCase(s))}-${String.fromCharCode(otherCase(e))}`;
      }
      i += 3;
      continue;
    }
    if (isLetter(lo)) extra += String.fromCharCode(otherCase(lo));
    i++;
  }
  return extra;
}

/** `src` rewritten so that, without the `i` flag, it matches what `src` with `i` matches (ASCII). */
export function foldCase(src: string): string {
  let out = '';
  for (let i = 0; i < src.length; ) {
    const ch = src[i];
    if (ch === '\\') {
      const n = escapeLength(src, i);
      out += src.slice(i, i + n);
      i += n;
    } else if (ch === '[') {
      // A class: copy up to its closing bracket, escapes included, then add the other case.
      let j = i + 1;
      if (src[j] === '^') j++;
      const bodyStart = j;
      if (src[j] === ']') j++; // a leading ']' is literal
      while (j < src.length && src[j] !== ']') j += src[j] === '\\' ? escapeLength(src, j) : 1;
      const body = src.slice(bodyStart, j);
      out += src.slice(i, bodyStart) + body + classExtra(body) + (j < src.length ? ']' : '');
      i = j + 1;
    } else if (ch === '(' && src[i + 1] === '?' && src[i + 2] === '<' && src[i + 3] !== '=' && src[i + 3] !== '!') {
      // A named group: its name is not a pattern.
      const end = src.indexOf('>', i);
      const stop = end < 0 ? src.length : end + 1;
      out += src.slice(i, stop);
      i = stop;
    } else {
      const c = src.charCodeAt(i);
      out += isLetter(c) ? `[${ch}${String.fromCharCode(otherCase(c))}]` : ch;
      i++;
    }
  }
  return out;
}

/** Characters with a meaning in a pattern (a literal prefix stops before them). */
const META = new Set(['\\', '^', '$', '.', '|', '?', '*', '+', '(', ')', '[', ']', '{', '}']);

/**
 * The literal text every match must start with ('' when unknown): the pattern's leading plain
 * characters, minus the last one when a quantifier follows it; nothing when the pattern has an
 * alternation anywhere (a top-level `|` would make the prefix optional).
 */
export function literalPrefix(src: string): string {
  if (src.includes('|')) return '';
  let i = src[0] === '^' ? 1 : 0;
  const start = i;
  while (i < src.length && !META.has(src[i])) i++;
  const q = src[i];
  const end = q === '?' || q === '*' || q === '+' || q === '{' ? i - 1 : i;
  return end > start ? src.slice(start, end) : '';
}

/** A compiled request-data regex: a literal-prefix check, then the linear engine. */
export class LinearRegex {
  constructor(
    private readonly re: RegExp,
    /** Literal text every match starts with: most non-matching paths are refused by one startsWith. */
    readonly prefix: string,
  ) {}

  test(s: string): boolean {
    return (this.prefix === '' || s.startsWith(this.prefix)) && this.re.test(s);
  }
}

/**
 * Compiles a regex matched against request data: anchored to the whole value (`^(?:src)$`),
 * linear time. Throws an Error naming `where` and the value when the pattern is invalid or
 * cannot run in linear time.
 */
export function linearRegex(src: string, where: string, caseInsensitive = false): LinearRegex {
  const source = `^(?:${caseInsensitive ? foldCase(src) : src})$`;
  try {
    new RegExp(source); // syntax errors first, with V8's usual message
  } catch (e) {
    throw new Error(`${where}: bad regex ${JSON.stringify(src)}: ${(e as Error).message}`, { cause: e });
  }
  if (!LINEAR_OK) throw new Error(`${where}: regex ${JSON.stringify(src)}: this Node.js has no linear-time regex engine (needs V8's experimental engine)`);
  let re: RegExp;
  try {
    re = new RegExp(source, LINEAR);
  } catch (e) {
    throw new Error(
      `${where}: regex ${JSON.stringify(src)} cannot be matched in linear time (refused: backreferences, lookahead/lookbehind, and counted repetitions above 16 in all, such as x{32} or (?:x{8}){4}; use + or * there)`,
      { cause: e },
    );
  }
  return new LinearRegex(re, caseInsensitive ? '' : literalPrefix(src));
}
