/**
 * Strict HTTP/1.1 message codec (RFC 9110 / RFC 9112) for the raw HTTP/1.1 proxy path.
 *
 *   request-line  = method SP request-target SP HTTP-version CRLF
 *   status-line   = HTTP-version SP 3DIGIT SP [ reason-phrase ] CRLF   ("HTTP/1.1 200" CRLF also taken)
 *   field-line    = field-name ":" OWS field-value OWS CRLF
 *   message head  = *CRLF (requests only, at most MAX_LEADING_CRLF) start-line *( field-line ) CRLF
 *
 *   chunked-body  = *chunk last-chunk trailer-section CRLF
 *   chunk         = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   last-chunk    = 1*("0") [ chunk-ext ] CRLF
 *
 * The head parser reads bytes in place (buf[i] against Uint8Array tables) and builds strings
 * only for what it keeps: method (interned), header names (interned through a bounded table
 * keyed by the lower-cased bytes), target, reason and header values (through a direct-mapped
 * cache of short strings, so repeated values cost a byte compare, not an allocation; note the
 * cache keeps the last values seen, cookies included, in memory until overwritten). Anything a
 * peer can send is answered with a return value and errorStatus/errorReason; nothing here
 * throws on input. Encoders do not validate: header names and values given to requestHead /
 * responseHead must already be clean (the parser's output is).
 *
 * With the addon, a head is first given to its scanner (native/h1parse.cc, "The native head
 * scanner" below), which decides only complete, valid, common heads; everything else is parsed
 * here, so the acceptance rules are this file's.
 */
// The module's own binding: the global `Buffer` is an accessor property (a getter call on every use).
import { Buffer } from 'node:buffer';
import { STATUS_CODES } from 'node:http';
import { native } from '../../native';
import type { Headers } from '../headers';

export const enum BodyKind {
  None = 0,
  Length = 1,
  Chunked = 2,
  UntilClose = 3,
}

/** Buffer's unchecked latin1 slicer (present on every Node Buffer, absent from the typings). */
type Latin1Buf = Buffer & { latin1Slice(start: number, end: number): string };

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;
const COMMA = 44;

/** Empty lines (CRLF) skipped before a request line (RFC 9112 2.2 "at least one"). */
const MAX_LEADING_CRLF = 4;
/** Content-Length digits accepted (15 digits stay below Number.MAX_SAFE_INTEGER). */
const MAX_CL_DIGITS = 15;
/** Chunk-size hex digits accepted. */
const MAX_CHUNK_SIZE_DIGITS = 15;
/** Bytes of chunk extensions accepted on one chunk line (they are read, never kept). */
const MAX_CHUNK_EXT_BYTES = 16384;
/** A chunk size at or above this cannot take another hex digit and stay an exact Number. */
const MAX_CHUNK_SIZE_BEFORE_DIGIT = 2 ** 49;

// ---------------------------------------------------------------------------------------------
// Byte classes

/** tchar (RFC 9110 5.6.2): ALPHA / DIGIT / "!#$%&'*+-.^_`|~". */
const TCHAR = new Uint8Array(256);
/** field-value / reason-phrase bytes: HTAB, SP, VCHAR, obs-text. */
const FIELD = new Uint8Array(256);
/** request-target bytes: VCHAR only (no CTL, SP, DEL; no obs-text: a URI is ASCII, RFC 3986). */
const TARGET = new Uint8Array(256);
/** ASCII lower-casing. */
const LOWER = new Uint8Array(256);
/** Hex digit value + 1 (0 = not a hex digit). */
const HEX = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  LOWER[c] = c >= 0x41 && c <= 0x5a ? c + 32 : c;
  const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  TCHAR[c] = alnum || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c)) ? 1 : 0;
  FIELD[c] = c === HTAB || (c >= 0x20 && c !== 0x7f) ? 1 : 0;
  TARGET[c] = c > 0x20 && c < 0x7f ? 1 : 0;
  if (c >= 0x30 && c <= 0x39) HEX[c] = c - 0x30 + 1;
  else if (c >= 0x61 && c <= 0x66) HEX[c] = c - 0x61 + 11;
  else if (c >= 0x41 && c <= 0x46) HEX[c] = c - 0x41 + 11;
}

/** True when buf[s, e) equals the ASCII string `lit` exactly. */
function bytesIs(buf: Buffer, s: number, e: number, lit: string): boolean {
  if (e - s !== lit.length) return false;
  for (let i = 0; i < lit.length; i++) if (buf[s + i] !== lit.charCodeAt(i)) return false;
  return true;
}

/** True when buf[s, e) equals the lower-case ASCII string `lit` ignoring ASCII case. */
function bytesIsCi(buf: Buffer, s: number, e: number, lit: string): boolean {
  if (e - s !== lit.length) return false;
  for (let i = 0; i < lit.length; i++) if (LOWER[buf[s + i]] !== lit.charCodeAt(i)) return false;
  return true;
}

const METHODS = ['GET', 'PUT', 'POST', 'HEAD', 'PATCH', 'TRACE', 'DELETE', 'OPTIONS', 'CONNECT'];

/** The method string; the common ones come from a constant list (no allocation). */
function methodName(buf: Buffer, s: number, e: number): string {
  for (let i = 0; i < METHODS.length; i++) if (bytesIs(buf, s, e, METHODS[i])) return METHODS[i];
  return (buf as Latin1Buf).latin1Slice(s, e);
}

// ---------------------------------------------------------------------------------------------
// Header-name interning: open-addressed table keyed by a hash of the lower-cased name bytes.
// Known names carry a kind (the fields the parser acts on). Names first seen on the wire are
// added while the table has room (bounded, so a peer sending random names cannot grow it).

const enum Kind {
  Plain = 0,
  ContentLength = 1,
  TransferEncoding = 2,
  Connection = 3,
  Host = 4,
  Upgrade = 5,
  Expect = 6,
  /** keep-alive, proxy-connection, http2-settings: hop-by-hop, never forwarded. */
  HopByHop = 7,
  /** te (kept as `te: trailers`) and trailer (dropped unless chunked): forwarded as bytes only through the map path. */
  Rewritten = 8,
}

const NAME_SLOTS = 1024; // power of two
const NAME_MAX_ENTRIES = 512;
/** Longest name kept in the table (longer ones are lower-cased and sliced each time). */
const NAME_MAX_LEN = 40;
const nameStr: string[] = new Array<string>(NAME_SLOTS).fill('');
const nameHash = new Int32Array(NAME_SLOTS);
const nameKind = new Uint8Array(NAME_SLOTS);
/** Name length per slot, 0 = free slot. */
const nameLen = new Uint8Array(NAME_SLOTS);
/** The lower-case name bytes, NAME_MAX_LEN per slot (typed-array compares beat charCodeAt). */
const nameBytes = new Uint8Array(NAME_SLOTS * NAME_MAX_LEN);
let nameEntries = 0;

function strHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

function internAdd(name: string, hash: number, kind: number): number {
  let i = hash & (NAME_SLOTS - 1);
  while (nameLen[i] !== 0) i = (i + 1) & (NAME_SLOTS - 1);
  nameStr[i] = name;
  nameHash[i] = hash;
  nameKind[i] = kind;
  nameLen[i] = name.length;
  for (let j = 0; j < name.length; j++) nameBytes[i * NAME_MAX_LEN + j] = name.charCodeAt(j);
  nameEntries++;
  return i;
}

/**
 * Per interned name, the field-section generation that last stored it: a name not yet stored
 * in the section being read is set without first reading the map (one keyed load saved per
 * field). Generations only grow within a section, and a stale match merely takes the slow path.
 */
const nameSeen = new Int32Array(NAME_SLOTS);
let fieldGen = 0;

const KNOWN_NAMES: Array<[string, number]> = [
  ['content-length', Kind.ContentLength],
  ['transfer-encoding', Kind.TransferEncoding],
  ['connection', Kind.Connection],
  ['host', Kind.Host],
  ['upgrade', Kind.Upgrade],
  ['expect', Kind.Expect],
  ['keep-alive', Kind.HopByHop],
  ['proxy-connection', Kind.HopByHop],
  ['http2-settings', Kind.HopByHop],
  ['te', Kind.Rewritten],
  ['trailer', Kind.Rewritten],
];
for (const n of [
  'accept', 'accept-encoding', 'accept-language', 'accept-ranges', 'age', 'authorization', 'cache-control',
  'content-encoding', 'content-type', 'content-range', 'cookie', 'date', 'etag', 'expires', 'forwarded',
  'if-modified-since', 'if-none-match', 'last-modified', 'location', 'origin', 'pragma',
  'range', 'referer', 'server', 'set-cookie', 'user-agent', 'vary', 'via',
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip', 'x-request-id', 'grpc-status',
  'grpc-message', 'grpc-timeout', 'content-disposition', 'access-control-allow-origin', 'strict-transport-security',
  'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-accept', 'sec-websocket-protocol',
  'sec-websocket-extensions', 'x-content-type-options', 'traceparent', 'tracestate',
]) {
  KNOWN_NAMES.push([n, Kind.Plain]);
}
for (const [n, k] of KNOWN_NAMES) internAdd(n, strHash(n), k);
const HASH_HOST = strHash('host');
const HASH_CONTENT_TYPE = strHash('content-type');
const HASH_REQUEST_ID = strHash('x-request-id');

// ---------------------------------------------------------------------------------------------
// Value interning: a direct-mapped cache of short strings (header values, targets, reasons)
// keyed by a hash of their bytes. A proxy sees the same values again and again (host,
// user-agent, accept, content-type ...); a hit costs a byte compare instead of a C++ call
// and an allocation. Collisions simply overwrite the slot.

const VALUE_SLOTS = 4096; // power of two
const VALUE_MAX_LEN = 64;
const valueStr: string[] = new Array<string>(VALUE_SLOTS).fill('');
const valueHash = new Int32Array(VALUE_SLOTS);
/** Value length per slot (0 = free) and its bytes, VALUE_MAX_LEN per slot. */
const valueLen = new Uint8Array(VALUE_SLOTS);
const valueBytes = new Uint8Array(VALUE_SLOTS * VALUE_MAX_LEN);

/** Hash of buf[s, e) as valueString expects it (the scanning loops compute it on the way). */
function bytesHash(buf: Buffer, s: number, e: number): number {
  let h = 0;
  for (let i = s; i < e; i++) h = (Math.imul(h, 31) + buf[i]) | 0;
  return h;
}

/** The latin1 string for buf[s, e) (whose bytesHash is h), from the cache when seen before. */
function valueString(buf: Buffer, s: number, e: number, h: number): string {
  const len = e - s;
  if (len === 0) return '';
  if (len > VALUE_MAX_LEN) return (buf as Latin1Buf).latin1Slice(s, e);
  const slot = (h ^ (h >>> 13)) & (VALUE_SLOTS - 1);
  const base = slot * VALUE_MAX_LEN;
  if (valueLen[slot] === len && valueHash[slot] === h) {
    let j = 0;
    while (j < len && buf[s + j] === valueBytes[base + j]) j++;
    if (j === len) return valueStr[slot];
  }
  const v = (buf as Latin1Buf).latin1Slice(s, e);
  valueStr[slot] = v;
  valueHash[slot] = h;
  valueLen[slot] = len;
  buf.copy(valueBytes, base, s, e);
  return v;
}

/** Result slots of lookupName (module-level so the lookup returns three values without allocating). */
let foundKind = 0;
/** Table slot of the name, -1 when it is not interned. */
let foundSlot = -1;

/** The interned lower-case name for buf[s, e) whose lower-cased bytes hash to `hash`. */
function lookupName(buf: Buffer, s: number, e: number, hash: number, upper: boolean): string {
  const len = e - s;
  if (len <= NAME_MAX_LEN) {
    let i = hash & (NAME_SLOTS - 1);
    for (;;) {
      const l = nameLen[i];
      if (l === 0) break;
      if (l === len && nameHash[i] === hash) {
        const base = i * NAME_MAX_LEN;
        let j = 0;
        while (j < len && LOWER[buf[s + j]] === nameBytes[base + j]) j++;
        if (j === len) {
          foundKind = nameKind[i];
          foundSlot = i;
          return nameStr[i];
        }
      }
      i = (i + 1) & (NAME_SLOTS - 1);
    }
  }
  let name = (buf as Latin1Buf).latin1Slice(s, e);
  if (upper) name = name.toLowerCase();
  foundSlot = len <= NAME_MAX_LEN && nameEntries < NAME_MAX_ENTRIES ? internAdd(name, hash, Kind.Plain) : -1;
  foundKind = Kind.Plain;
  return name;
}

/**
 * Header map with no prototype chain below it: names such as "__proto__" or "constructor"
 * from the wire become own properties instead of reaching Object.prototype. Built by a
 * constructor (not Object.create(null)) so V8 keeps it in fast-property mode.
 */
function HeaderMapFn(): void {
  // fields are added by the parser
}
HeaderMapFn.prototype = Object.create(null);
const HeaderMap = HeaderMapFn as unknown as { new (): Headers };

/** `headers` after an indexOnly parse: never written. */
const NO_HEADERS: Headers = new HeaderMap();
/**
 * The field-line index of the last head parsed with indexOnly or indexToo, shared by every
 * parser of the thread: valid until the next such parse, which is all its users need (they send
 * the lines in the call that parsed them). Grown to the largest max_headers in use.
 */
let sharedRuns = new Int32Array(2 * 100 + 2);

/** A fresh empty header map of the kind the parser returns. */
export function newHeaders(): Headers {
  return new HeaderMap();
}

/**
 * Stores a parsed field in the map `h` (`slot`: the name's table slot from lookupName, -1 if not
 * interned): a name not yet stored in this field section (generation `gen`) is set without
 * reading the map first; a repeated name becomes the list the Headers type asks for.
 */
function storeField(h: Headers, name: string, value: string, slot: number, gen: number): void {
  if (slot >= 0 && nameSeen[slot] !== gen) {
    nameSeen[slot] = gen;
    h[name] = value;
    return;
  }
  const old = h[name];
  if (old === undefined) h[name] = value;
  else if (typeof old === 'string') h[name] = [old, value];
  else old.push(value);
  if (slot >= 0) nameSeen[slot] = gen;
}

// ---------------------------------------------------------------------------------------------
// The native head scanner (native/h1parse.cc): the common heads are scanned in C++, which
// writes offsets, the interning hashes and the framing facts into NIO; anything it does not
// decide (incomplete, invalid, rare framing) it leaves to the TypeScript parser below, which
// then parses the same bytes. OUTRIGGER_H1_PARSER=js turns it off (read once, at load).

/** NIO layout (native/h1parse.cc's enum, the same numbers). */
const enum NIO {
  Flags = 0,
  MaxHeaders = 1,
  Method = 2,
  TargetStart = 3,
  TargetEnd = 4,
  TargetHash = 5,
  Minor = 6,
  Status = 7,
  ReasonStart = 8,
  ReasonEnd = 9,
  ReasonHash = 10,
  Count = 11,
  BodyKind = 12,
  ContentLength = 13,
  KeepAlive = 14,
  Upgrade = 15,
  Connect = 16,
  Expect = 17,
  Irregular = 18,
  RunCount = 19,
  MethodStart = 20,
  /** in: where in the head slab (copyArea) the scanner may copy a request head's forwarded lines and empty line, -1 nowhere; in: the room's end; out: the copy's end, -1 none. */
  SlabAt = 21,
  SlabEnd = 22,
  CopiedEnd = 23,
  RunsAt = 32,
  /** RunsAt + 2 * NIO_MAX_FIELDS + 8 */
  FieldsAt = 552,
  /** FieldsAt + NIO_FIELD_INTS * NIO_MAX_FIELDS + 8 */
  Length = 2352,
}
/** Field records the area holds (a head with more is left to the TypeScript parser). */
const NIO_MAX_FIELDS = 256;
/** Per field: line start, name end, value start, value end, name hash, value hash, upper-case name. */
const NIO_FIELD_INTS = 7;

/** NIO[Flags] bits. */
const enum NFlag {
  IsRequest = 1,
  IndexOnly = 2,
  IndexToo = 4,
  HeadRequest = 8,
  ConnectRequest = 16,
  Fields = 32,
}

const nativeH1 = native.h1Head;
const nio = new Int32Array(NIO.Length);
/** The scanner's forwarded-line runs, a fixed view of nio (the parser's `runs` after a native parse). */
const nioRuns = nio.subarray(NIO.RunsAt, NIO.RunsAt + 2 * NIO_MAX_FIELDS + 2);
type NativeHeadParse = (ab: ArrayBufferLike, base: number, start: number, lim: number) => number;
/** The scanner, or null (no addon, an addon without it, OUTRIGGER_H1_PARSER=js). */
const nativeParse: NativeHeadParse | null = ((): NativeHeadParse | null => {
  const mode = (process.env.OUTRIGGER_H1_PARSER ?? '').trim().toLowerCase();
  if (mode !== '' && mode !== 'native' && mode !== 'js') throw new Error(`OUTRIGGER_H1_PARSER must be native or js, got ${mode}`);
  if (mode === 'js' || nativeH1 === undefined) return null;
  // An addon of another layout (an older build) is not used.
  if (nativeH1.setup(nio) !== NIO.Length) return null;
  return nativeH1.parse;
})();

/** Native parses so far in this thread (each overwrites nio's records). */
let nativeParses = 0;

/** The Buffer whose ArrayBuffer and offset nativeParse was given last (HeadParser.parse). */
let abOf: Buffer | null = null;
let abBuf: ArrayBufferLike = new ArrayBuffer(0);
let abOffset = 0;

/**
 * The scanner copies an indexed request head's forwarded lines into `slab` (head-slab.ts), where
 * offerCopy() says, when a head is decided natively: false without the scanner.
 */
export function copyArea(slab: ArrayBuffer): boolean {
  if (nativeParse === null || nativeH1 === undefined) return false;
  nativeH1.setup(nio, slab);
  nio[NIO.SlabAt] = -1;
  return true;
}

/** The next parse may copy into the slab from `at` up to `end` (once: reset by the parse). */
export function offerCopy(at: number, end: number): void {
  nio[NIO.SlabAt] = at;
  nio[NIO.SlabEnd] = end;
}

/** Whether heads are scanned natively by default (HeadParser.useNative's initial value). */
export const NATIVE_HEAD_PARSER: boolean = nativeParse !== null;
let nativeDecided = 0;
/** Heads the native scanner decided so far in this thread (tests: proof that it ran). */
export function nativeHeadsDecided(): number {
  return nativeDecided;
}

// ---------------------------------------------------------------------------------------------
// Head parser

export class HeadParser {
  /** Set by the caller before parsing a RESPONSE head: the request was HEAD (no body whatever the headers say). */
  headRequest = false;
  /** Set by the caller before parsing a RESPONSE head: the request was CONNECT (2xx = tunnel, no body). */
  connectRequest = false;

  method = '';
  target = '';
  versionMinor = 1;
  status = 0;
  reason = '';
  /** The last head's header map (see `headers`). */
  private map: Headers = new HeaderMap();
  headerCount = 0;
  bodyKind: BodyKind = BodyKind.None;
  contentLength = -1;
  keepAlive = false;
  upgrade = false;
  connect = false;
  expectContinue = false;
  errorStatus = 0;
  errorReason = '';
  /**
   * Set by the caller before parsing: index the field lines instead of building `headers` (a
   * response head forwarded as its own bytes, h1/downstream.ts respondRaw). After such a parse
   * `headers` is empty and runs[0, runCount) holds [start, end) offsets of the field lines to
   * forward, CRLF included, adjacent lines merged: every line but the hop-by-hop ones
   * (connection, keep-alive, proxy-connection, transfer-encoding, upgrade, http2-settings).
   */
  indexOnly = false;
  /**
   * Set by the caller: index the field lines as indexOnly does, and build `headers` too (a
   * request head, forwarded as bytes when nothing changes it). Host and Expect lines are left
   * out of a request's runs (the proxy writes its own host; 100-continue is answered here), and
   * a request's Content-Length makes it irregular.
   */
  indexToo = false;
  /**
   * After an indexOnly parse: the head has a field the byte path would not forward as the map
   * path does (te, trailer, a repeated or listed Content-Length, Content-Length with
   * Transfer-Encoding, a Connection naming other fields): parse it again without indexOnly.
   */
  irregular = false;
  /**
   * Set by the caller: a head the native scanner decides gets no header map during the parse.
   * The parser keeps the head's buffer instead, and the scanner's field records stay in nio;
   * `headers` builds the map when first read and `field()` reads one field without it, while the
   * buffer still holds the head and no other native parse has run: until the caller's
   * settleLazy(), which builds the map then if it may be read later. The raw downstream's request heads: the exchange reads two or three fields of most
   * requests, and the map is needed only by filters, access logs, retries and requests sent later.
   */
  lazyMap = false;
  /** The last head's map is still to be built from `lazyBuf` and nio's records (lazyMap). */
  private lazy = false;
  /** The buffer of that head while it is valid (null after settleLazy). */
  private lazyBuf: Buffer | null = null;
  /** The native parse that left its field records in nio (nativeParses then). */
  private lazyGen = 0;
  /**
   * After a request head's parse: the end of the copy the native scanner made of its forwarded
   * lines and empty line into the head slab (offerCopy), -1 when it made none.
   */
  copiedEnd = -1;
  /** The index (valid until the next indexing parse of any parser, see sharedRuns). */
  runs: Int32Array = sharedRuns;
  runCount = 0;
  /** The last complete head's [start, end) in its buffer. */
  headStart = 0;
  headEnd = 0;
  /** indexOnly || indexToo for the head being parsed. */
  private indexing = false;
  /**
   * Heads go to the native scanner first (when it is there); false: this TypeScript parser
   * alone (tests compare the two).
   */
  useNative = NATIVE_HEAD_PARSER;

  // framing facts gathered while reading fields
  private clValue = -1;
  private teSeen = false;
  private teChunked = false;
  private teLastChunked = false;
  private teAnyCoding = false;
  private connClose = false;
  private connKeepAlive = false;
  private connUpgrade = false;
  /** Connection lists a token other than close, keep-alive and upgrade. */
  private connOther = false;
  private hasUpgrade = false;
  private hostCount = 0;
  /**
   * When the last parse returned 0: offset (from `start`) of the first incomplete line, every
   * line before it having been read and found valid. The next call only looks for the end of
   * the head from there and runs the full parse once it is present, so a head fed one byte at
   * a time costs linear, not quadratic, work. -1 = no saved position.
   */
  private resumeAt = -1;
  /** Header lines complete before resumeAt (-1: resumeAt is at the start line). */
  private resumeLines = -1;
  /** Start of the line being read when parsing stopped for want of bytes. */
  private lineStart = 0;
  /** Header lines complete before lineStart (-1: parsing stopped in the start line). */
  private linesDone = -1;

  constructor(
    readonly isRequest: boolean,
    readonly maxHeaderBytes: number,
    readonly maxHeaders: number,
  ) {}

  /**
   * The last head's fields by lower-case name (a repeated name: a list in order); empty after an
   * indexOnly parse. Built on first read after a lazyMap parse.
   */
  get headers(): Headers {
    if (this.lazy) this.buildMap();
    return this.map;
  }

  set headers(h: Headers) {
    this.lazy = false;
    this.lazyBuf = null;
    this.map = h;
  }

  /**
   * One field of the last head, as `headers[name]` gives it (`name` in lower case), without
   * building the map of a lazyMap parse.
   */
  field(name: string): string | string[] | undefined {
    if (!this.lazy) return this.map[name];
    const b = this.lazyBytes();
    const r = nio;
    const len = name.length;
    // The names the exchange asks for on every request: no hashing of the constant.
    const hash = name === 'host' ? HASH_HOST : name === 'content-type' ? HASH_CONTENT_TYPE : name === 'x-request-id' ? HASH_REQUEST_ID : strHash(name);
    let out: string | string[] | undefined;
    for (let i = 0, f = NIO.FieldsAt as number; i < this.headerCount; i++, f += NIO_FIELD_INTS) {
      const s = r[f];
      if (r[f + 1] - s !== len || r[f + 4] !== hash) continue;
      let j = 0;
      while (j < len && LOWER[b[s + j]] === name.charCodeAt(j)) j++;
      if (j !== len) continue;
      const v = valueString(b, r[f + 2], r[f + 3], r[f + 5]);
      if (out === undefined) out = v;
      else if (typeof out === 'string') out = [out, v];
      else out.push(v);
    }
    return out;
  }

  /** The map of a lazyMap parse (the same as takeNative builds). */
  private buildMap(): void {
    const b = this.lazyBytes();
    this.lazy = false;
    const r = nio;
    const h = new HeaderMap();
    this.map = h;
    const gen = (fieldGen = (fieldGen + 1) | 0);
    for (let i = 0, f = NIO.FieldsAt as number; i < this.headerCount; i++, f += NIO_FIELD_INTS) {
      const name = lookupName(b, r[f], r[f + 1], r[f + 4], r[f + 6] === 1);
      storeField(h, name, valueString(b, r[f + 2], r[f + 3], r[f + 5]), foundSlot, gen);
    }
  }

  /** The buffer of a lazyMap head whose map is not built yet (its field records are nio's). */
  private lazyBytes(): Buffer {
    const b = this.lazyBuf;
    // settleLazy(false) said nothing would read the map, and the records stay in nio only until
    // the next native parse: a caller past either is a bug to see, not a map to build from
    // bytes or records since overwritten.
    if (b === null || this.lazyGen !== nativeParses) throw new Error('HTTP/1.1 head fields read after their bytes were released');
    return b;
  }

  /**
   * The caller is done with the buffer of the last head (its bytes are about to be reused): the
   * map of a lazyMap parse is built now when `keep` (it may be read later), else never.
   */
  settleLazy(keep: boolean): void {
    if (this.lazy && keep) this.buildMap();
    this.lazyBuf = null;
  }

  /** Forgets a partial head (call when the bytes given to an unfinished parse are discarded). */
  reset(): void {
    this.resumeAt = -1;
  }

  /**
   * Parses one message head starting at buf[start]. Returns the offset just past the empty line
   * ending the head (> start) when a whole head is in [start, end); 0 when more bytes are needed
   * (the caller keeps bytes from `start` and calls again with them plus new ones); -1 when invalid
   * or over a limit (errorStatus / errorReason set). No head complete within maxHeaderBytes -> -1, 431.
   * More than maxHeaders header lines -> -1, 431.
   */
  parse(buf: Buffer, start: number, end: number): number {
    const max = this.maxHeaderBytes;
    const lim = end - start > max ? start + max : end;
    this.copiedEnd = -1;
    // A head resumed after a partial one stays here (linear work for a trickled head).
    if (this.useNative && this.resumeAt < 0 && nativeParse !== null) {
      nio[NIO.Flags] =
        (this.isRequest ? NFlag.IsRequest : 0) |
        (this.indexOnly ? NFlag.IndexOnly : NFlag.Fields) |
        (this.indexToo ? NFlag.IndexToo : 0) |
        (this.headRequest ? NFlag.HeadRequest : 0) |
        (this.connectRequest ? NFlag.ConnectRequest : 0);
      nio[NIO.MaxHeaders] = this.maxHeaders;
      // `buffer` and `byteOffset` are getters (`buffer` a C++ builtin, ~100 instructions): the
      // read chunk is the same Buffer read after read, so they are read once per Buffer.
      if (buf !== abOf) {
        abOf = buf;
        abBuf = buf.buffer;
        abOffset = buf.byteOffset;
      }
      const n = nativeParse(abBuf, abOffset, start, lim);
      nativeParses = (nativeParses + 1) | 0;
      // An offer of slab room is for this parse only (offerCopy).
      nio[NIO.SlabAt] = -1;
      if (n > 0) {
        if (this.isRequest && (this.indexOnly || this.indexToo)) this.copiedEnd = nio[NIO.CopiedEnd];
        nativeDecided++;
        this.takeNative(buf);
        if (this.lazyMap && !this.indexOnly) {
          // The head's buffer, and its field records left in nio (until settleLazy).
          this.lazyBuf = buf;
          this.lazyGen = nativeParses;
          this.lazy = true;
        }
        this.headStart = start;
        this.headEnd = n;
        return n;
      }
    }
    if (nativeParse !== null) nio[NIO.SlabAt] = -1;
    if (this.resumeAt >= 0 && lim - start > this.resumeAt) {
      // at the size limit, the full parse runs anyway: it names an error it finds before the limit
      const atLimit = lim < end || lim - start >= max;
      if (!this.headEndAhead(buf, start, start + this.resumeAt, lim) && !atLimit) return 0;
    }
    const r = this.isRequest ? this.parseRequest(buf, start, lim) : this.parseResponse(buf, start, lim);
    if (r !== 0) {
      this.resumeAt = -1;
      this.headStart = start;
      this.headEnd = r;
      return r;
    }
    this.resumeAt = this.lineStart - start;
    this.resumeLines = this.linesDone;
    return this.needMore(start, end, lim);
  }

  /** The results of a head the native scanner accepted (the same as parseRequest/parseResponse give). */
  private takeNative(buf: Buffer): void {
    const io = nio;
    const minor = io[NIO.Minor];
    this.versionMinor = minor;
    if (this.isRequest) {
      const m = io[NIO.Method];
      const ts = io[NIO.TargetStart];
      this.method = m >= 0 ? METHODS[m] : (buf as Latin1Buf).latin1Slice(io[NIO.MethodStart], ts - 1);
      this.target = valueString(buf, ts, io[NIO.TargetEnd], io[NIO.TargetHash]);
      this.status = 0;
      this.reason = '';
    } else {
      this.method = '';
      this.target = '';
      this.status = io[NIO.Status];
      this.reason = valueString(buf, io[NIO.ReasonStart], io[NIO.ReasonEnd], io[NIO.ReasonHash]);
    }
    const count = io[NIO.Count];
    this.headerCount = count;
    if (this.indexOnly) this.headers = NO_HEADERS;
    else if (this.lazyMap) this.map = NO_HEADERS; // built when read (headers), see parse()
    else {
      const h = new HeaderMap();
      this.headers = h;
      const gen = (fieldGen = (fieldGen + 1) | 0);
      for (let i = 0, f = NIO.FieldsAt; i < count; i++, f += NIO_FIELD_INTS) {
        const name = lookupName(buf, io[f], io[f + 1], io[f + 4], io[f + 6] === 1);
        storeField(h, name, valueString(buf, io[f + 2], io[f + 3], io[f + 5]), foundSlot, gen);
      }
    }
    this.indexing = this.indexOnly || this.indexToo;
    if (this.indexing) {
      this.irregular = io[NIO.Irregular] === 1;
      this.runCount = io[NIO.RunCount];
      this.runs = nioRuns;
    }
    this.bodyKind = io[NIO.BodyKind];
    this.contentLength = io[NIO.ContentLength];
    this.keepAlive = io[NIO.KeepAlive] === 1;
    this.upgrade = io[NIO.Upgrade] === 1;
    this.connect = io[NIO.Connect] === 1;
    this.expectContinue = io[NIO.Expect] === 1;
    this.errorStatus = 0;
    this.errorReason = '';
  }

  private needMore(start: number, end: number, lim: number): number {
    if (lim < end || lim - start >= this.maxHeaderBytes) {
      this.resumeAt = -1;
      return this.fail(431, 'message head larger than the limit');
    }
    return 0;
  }

  /**
   * Scans lines from `from` (a line start) for the empty line ending the head. True when it is
   * there, or when the full parse would refuse what has arrived for a reason this scan sees
   * (malformed line ending, a control byte, obs-fold, too many lines): the full parse then
   * reports it. False when the bytes run out first (resumeAt moves to the last line start).
   * Errors it does not look for (name characters, framing fields) are found by the full parse
   * once the head is complete or refused at the size limit.
   */
  private headEndAhead(buf: Buffer, start: number, from: number, lim: number): boolean {
    let p = from;
    let ls = from;
    let lines = this.resumeLines;
    while (p < lim) {
      const c = buf[p];
      if (FIELD[c] === 1) {
        if (p === ls && (c === SP || c === HTAB) && lines >= 0) return true;
        p++;
        continue;
      }
      if (c !== CR || p + 1 >= lim) {
        if (c === CR) break;
        return true; // bare LF or another control byte
      }
      if (buf[p + 1] !== LF || p === ls || ++lines > this.maxHeaders) return true;
      p += 2;
      ls = p;
    }
    this.resumeAt = ls - start;
    this.resumeLines = lines;
    return false;
  }

  private fail(status: number, reason: string): number {
    this.errorStatus = status;
    this.errorReason = reason;
    return -1;
  }

  private resetResults(): void {
    this.method = '';
    this.target = '';
    this.versionMinor = 1;
    this.status = 0;
    this.reason = '';
    // The result object the interface hands out, one per head (none when only indexing).
    this.headers = this.indexOnly ? NO_HEADERS : new HeaderMap();
    this.indexing = this.indexOnly || this.indexToo;
    if (this.indexing) {
      this.irregular = false;
      this.runCount = 0;
      // A run per field line at most (grown once per larger max_headers).
      if (sharedRuns.length < 2 * this.maxHeaders + 2) sharedRuns = new Int32Array(2 * this.maxHeaders + 2);
      this.runs = sharedRuns;
    }
    this.headerCount = 0;
    this.bodyKind = BodyKind.None;
    this.contentLength = -1;
    this.keepAlive = false;
    this.upgrade = false;
    this.connect = false;
    this.expectContinue = false;
    this.errorStatus = 0;
    this.errorReason = '';
    this.clValue = -1;
    this.teSeen = false;
    this.teChunked = false;
    this.teLastChunked = false;
    this.teAnyCoding = false;
    this.connClose = false;
    this.connKeepAlive = false;
    this.connUpgrade = false;
    this.connOther = false;
    this.hasUpgrade = false;
    this.hostCount = 0;
  }

  /**
   * Reads the HTTP-version at [p, ...) up to the byte `stop` (SP or CR). Returns the offset of
   * that byte, 0 when more bytes are needed, -1 on error. Sets versionMinor.
   */
  private version(buf: Buffer, p: number, lim: number, stop: number): number {
    const vs = p;
    if (
      lim - p > 8 &&
      buf[p] === 0x48 && buf[p + 1] === 0x54 && buf[p + 2] === 0x54 && buf[p + 3] === 0x50 &&
      buf[p + 4] === 0x2f && buf[p + 5] === 0x31 && buf[p + 6] === 0x2e &&
      (buf[p + 7] === 0x31 || buf[p + 7] === 0x30) && buf[p + 8] === stop
    ) {
      this.versionMinor = buf[p + 7] - 0x30;
      return p + 8;
    }
    // slow path: find the end of the version to tell 505 (another HTTP version) from 400
    while (p < lim && buf[p] !== stop && buf[p] !== CR && buf[p] !== LF) p++;
    if (p >= lim) return p - vs > 12 ? this.fail(400, 'invalid HTTP version') : 0;
    if (buf[p] === LF) return this.fail(400, stop === SP ? 'bare LF in status line' : 'bare LF in request line');
    if (buf[p] !== stop) return this.fail(400, stop === SP ? 'invalid status line' : 'invalid HTTP version');
    // "HTTP/" 1*DIGIT [ "." 1*DIGIT ]
    let q = vs + 5;
    if (!bytesIs(buf, vs, Math.min(q, p), 'HTTP/') || q >= p) return this.fail(400, 'invalid HTTP version');
    const d0 = q;
    while (q < p && buf[q] >= 0x30 && buf[q] <= 0x39) q++;
    if (q === d0) return this.fail(400, 'invalid HTTP version');
    if (q < p) {
      if (buf[q] !== 0x2e) return this.fail(400, 'invalid HTTP version');
      const d1 = ++q;
      while (q < p && buf[q] >= 0x30 && buf[q] <= 0x39) q++;
      if (q === d1 || q !== p) return this.fail(400, 'invalid HTTP version');
    }
    return this.fail(505, 'HTTP version not supported');
  }

  private parseRequest(buf: Buffer, start: number, lim: number): number {
    this.resetResults();
    let p = start;
    // empty lines before the request line
    if (p < lim && buf[p] === LF) return this.fail(400, 'bare LF before request line');
    for (let n = 0; p < lim && buf[p] === CR; ) {
      if (p + 1 >= lim) return this.stop(p);
      if (buf[p + 1] !== LF) return this.fail(400, 'bare CR before request line');
      p += 2;
      if (++n > MAX_LEADING_CRLF) return this.fail(400, 'too many empty lines before request line');
    }
    const ls = p;
    // method
    while (p < lim && TCHAR[buf[p]] === 1) p++;
    if (p >= lim) return this.stop(ls);
    if (buf[p] !== SP || p === ls) {
      if (buf[p] === LF) return this.fail(400, 'bare LF in request line');
      return this.fail(400, p === ls ? 'invalid character in method' : 'invalid character in method or missing SP');
    }
    const method = methodName(buf, ls, p);
    this.method = method;
    // request-target
    const ts = ++p;
    let th = 0;
    while (p < lim && TARGET[buf[p]] === 1) th = (Math.imul(th, 31) + buf[p++]) | 0;
    if (p >= lim) return this.stop(ls);
    if (buf[p] !== SP) {
      if (p === ts) return this.fail(400, buf[p] === LF ? 'bare LF in request line' : 'empty request-target');
      if (buf[p] === LF) return this.fail(400, 'missing HTTP version (and a bare LF)');
      return this.fail(400, buf[p] === CR ? 'missing HTTP version' : 'invalid character in request-target');
    }
    if (p === ts) return this.fail(400, 'more than one SP after method');
    const form = this.checkTarget(buf, ts, p, method);
    if (form !== null) return this.fail(400, form);
    this.target = valueString(buf, ts, p, th);
    // version
    if (++p < lim && buf[p] === SP) return this.fail(400, 'more than one SP before HTTP version');
    p = this.version(buf, p, lim, CR);
    if (p <= 0) return p === 0 ? this.stop(ls) : -1;
    if (p + 1 >= lim) return this.stop(ls);
    if (buf[p + 1] !== LF) return this.fail(400, 'bare CR in request line');
    p = this.parseFields(buf, p + 2, lim, false);
    if (p <= 0) return p;
    return this.finishRequest(p);
  }

  /** null when the request-target's form suits the method, else the reason it does not. */
  private checkTarget(buf: Buffer, s: number, e: number, method: string): string | null {
    const c = buf[s];
    if (method === 'CONNECT') {
      // authority-form: uri-host ":" port
      let colon = -1;
      for (let i = s; i < e; i++) {
        const b = buf[i];
        if (b === 0x2f || b === 0x3f || b === 0x23 || b === 0x40) return 'CONNECT needs an authority-form target (host:port)';
        if (b === COLON) colon = i;
      }
      if (colon <= s || colon === e - 1) return 'CONNECT needs an authority-form target (host:port)';
      for (let i = colon + 1; i < e; i++) if (buf[i] < 0x30 || buf[i] > 0x39) return 'CONNECT target has an invalid port';
      return null;
    }
    if (c === 0x2f) return null; // origin-form
    if (c === 0x2a && e - s === 1) return method === 'OPTIONS' ? null : 'asterisk-form target is only for OPTIONS';
    // absolute-form: scheme "://" ...
    const isAlpha = (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a;
    if (isAlpha) {
      let i = s + 1;
      while (i < e) {
        const b = buf[i];
        const ok = ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2b || b === 0x2d || b === 0x2e;
        if (!ok) break;
        i++;
      }
      if (e - i > 3 && buf[i] === COLON && buf[i + 1] === 0x2f && buf[i + 2] === 0x2f) return null;
    }
    return 'invalid request-target (authority-form is only for CONNECT)';
  }

  private finishRequest(p: number): number {
    if (this.hostCount > 1) return this.fail(400, 'more than one Host header');
    if (this.indexing && this.connOther) this.irregular = true;
    if (this.teSeen) {
      if (this.versionMinor === 0) return this.fail(400, 'Transfer-Encoding in an HTTP/1.0 request');
      if (this.clValue >= 0) return this.fail(400, 'both Transfer-Encoding and Content-Length');
      if (!this.teAnyCoding) return this.fail(400, 'empty Transfer-Encoding');
      if (!this.teChunked) return this.fail(501, 'transfer-coding other than chunked');
      if (!this.teLastChunked) return this.fail(400, 'chunked is not the final transfer-coding');
      this.bodyKind = BodyKind.Chunked;
    } else if (this.clValue > 0) {
      this.bodyKind = BodyKind.Length;
      this.contentLength = this.clValue;
    }
    this.keepAlive = this.versionMinor === 1 ? !this.connClose : this.connKeepAlive && !this.connClose;
    this.upgrade = this.hasUpgrade && this.connUpgrade;
    this.connect = this.method === 'CONNECT';
    return p;
  }

  private parseResponse(buf: Buffer, start: number, lim: number): number {
    this.resetResults();
    let p = this.version(buf, start, lim, SP);
    if (p <= 0) return p === 0 ? this.stop(start) : -1;
    // status code
    if (lim - p < 5) return this.stop(start);
    const d0 = buf[p + 1] - 0x30;
    const d1 = buf[p + 2] - 0x30;
    const d2 = buf[p + 3] - 0x30;
    if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return this.fail(400, 'invalid status code');
    this.status = d0 * 100 + d1 * 10 + d2;
    p += 4;
    let c = buf[p];
    if (c === SP) {
      const rs = ++p;
      while (p < lim && FIELD[buf[p]] === 1) p++;
      if (p >= lim) return this.stop(start);
      c = buf[p];
      if (c !== CR) return this.fail(400, c === LF ? 'bare LF in status line' : 'invalid character in reason phrase');
      this.reason = valueString(buf, rs, p, bytesHash(buf, rs, p));
    } else if (c !== CR) {
      return this.fail(400, c === LF ? 'bare LF in status line' : 'invalid status code');
    }
    if (p + 1 >= lim) return this.stop(start);
    if (buf[p + 1] !== LF) return this.fail(400, 'bare CR in status line');
    p = this.parseFields(buf, p + 2, lim, false);
    if (p <= 0) return p;
    return this.finishResponse(p);
  }

  private finishResponse(p: number): number {
    const s = this.status;
    this.keepAlive = this.versionMinor === 1 ? !this.connClose : this.connKeepAlive && !this.connClose;
    this.upgrade = s === 101;
    if (this.indexOnly && (this.connOther || (this.teSeen && this.clValue >= 0))) this.irregular = true;
    if (this.teSeen && this.clValue >= 0) {
      // RFC 9112 6.3: Transfer-Encoding overrides Content-Length; the length is not forwarded
      delete this.headers['content-length'];
      this.clValue = -1;
    }
    if (s < 200 || s === 204 || s === 304 || this.headRequest || (this.connectRequest && s < 300)) {
      this.bodyKind = BodyKind.None;
    } else if (this.teSeen) {
      if (this.teChunked && !this.teLastChunked) return this.fail(400, 'chunked is not the final transfer-coding');
      // RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing: read it, then close
      if (this.versionMinor === 0) this.keepAlive = false;
      if (this.teLastChunked) {
        this.bodyKind = BodyKind.Chunked;
      } else {
        // codings other than chunked last: the body ends when the connection does
        this.bodyKind = BodyKind.UntilClose;
        this.keepAlive = false;
      }
    } else if (this.clValue >= 0) {
      this.bodyKind = BodyKind.Length;
      this.contentLength = this.clValue;
    } else {
      this.bodyKind = BodyKind.UntilClose;
      this.keepAlive = false;
    }
    return p;
  }

  /** Records where the unfinished line began and reports "more bytes needed". */
  private stop(lineStart: number, linesDone = -1): number {
    this.lineStart = lineStart;
    this.linesDone = linesDone;
    return 0;
  }

  /**
   * Reads field lines from p up to and including the empty line. Returns the offset past that
   * empty line, 0 when the bytes end first (stop() called), -1 on error. `trailers`: only the
   * syntax and count rules apply (no framing fields acted on).
   */
  parseFields(buf: Buffer, p: number, lim: number, trailers: boolean): number {
    const h = this.headers;
    const maxHeaders = this.maxHeaders;
    const gen = (fieldGen = (fieldGen + 1) | 0);
    let count = 0;
    for (;;) {
      if (p >= lim) return this.stop(p, count);
      const ls = p;
      let c = buf[p];
      if (c === CR) {
        if (p + 1 >= lim) return this.stop(ls, count);
        if (buf[p + 1] !== LF) return this.fail(400, 'bare CR in header section');
        this.headerCount = count;
        return p + 2;
      }
      if (c === LF) return this.fail(400, 'bare LF in header section');
      if (c === SP || c === HTAB) return this.fail(400, count === 0 ? 'whitespace before the first header field' : 'obs-fold (header line starting with whitespace)');
      // field-name: hash the lower-cased bytes on the way
      let hash = 0;
      let upper = false;
      while (TCHAR[c] === 1) {
        const l = LOWER[c];
        if (l !== c) upper = true;
        hash = (Math.imul(hash, 31) + l) | 0;
        if (++p >= lim) return this.stop(ls, count);
        c = buf[p];
      }
      if (c !== COLON) {
        if (c === SP || c === HTAB) {
          let q = p;
          while (q < lim && (buf[q] === SP || buf[q] === HTAB)) q++;
          return this.fail(400, q < lim && buf[q] === COLON ? 'whitespace before colon in header' : 'invalid character in header name (SP)');
        }
        if (c === LF) return this.fail(400, 'bare LF in header section');
        if (c === CR) return this.fail(400, 'header line without colon');
        return this.fail(400, 'invalid character in header name');
      }
      if (p === ls) return this.fail(400, 'empty header name');
      const ne = p++;
      while (p < lim && (buf[p] === SP || buf[p] === HTAB)) p++;
      const vs = p;
      let vh = 0;
      if (this.indexOnly) {
        // No value string will be made: no hash.
        while (p < lim && FIELD[buf[p]] === 1) p++;
      } else {
        while (p < lim && FIELD[(c = buf[p])] === 1) {
          vh = (Math.imul(vh, 31) + c) | 0;
          p++;
        }
      }
      if (p >= lim) return this.stop(ls, count);
      c = buf[p];
      if (c !== CR) return this.fail(400, c === LF ? 'bare LF in header section' : 'invalid character in header value');
      if (p + 1 >= lim) return this.stop(ls, count);
      if (buf[p + 1] !== LF) return this.fail(400, 'bare CR in header value');
      let ve = p;
      if (buf[ve - 1] === SP || buf[ve - 1] === HTAB) {
        while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
        if (!this.indexOnly) vh = bytesHash(buf, vs, ve);
      }
      p += 2;
      if (++count > maxHeaders) return this.fail(431, 'too many header fields');
      const name = lookupName(buf, ls, ne, hash, upper);
      const kind = foundKind;
      if (kind !== Kind.Plain && !trailers) {
        const r = this.special(kind, buf, vs, ve);
        if (r < 0) return -1;
        if (r === 0) {
          // field folded into one kept value
          if (this.indexing) this.irregular = true;
          continue;
        }
      }
      if (this.indexing) {
        if (kind === Kind.Rewritten || (kind === Kind.ContentLength && this.isRequest)) this.irregular = true;
        else if (kind === Kind.Plain || (!this.isRequest && (kind === Kind.ContentLength || kind === Kind.Host || kind === Kind.Expect))) {
          // A line forwarded as it is: extends the run that ends where it starts, else opens one.
          const runs = this.runs;
          const rc = this.runCount;
          if (rc > 0 && runs[rc - 1] === ls) runs[rc - 1] = p;
          else {
            runs[rc] = ls;
            runs[rc + 1] = p;
            this.runCount = rc + 2;
          }
        }
        if (this.indexOnly) continue;
      }
      storeField(h, name, valueString(buf, vs, ve, vh), foundSlot, gen);
    }
  }

  /** Acts on a framing/connection field. Returns 1 = keep the field, 0 = do not add it, -1 = error. */
  private special(kind: number, buf: Buffer, vs: number, ve: number): number {
    switch (kind) {
      case Kind.ContentLength:
        return this.contentLengthField(buf, vs, ve);
      case Kind.TransferEncoding:
        return this.transferEncodingField(buf, vs, ve);
      case Kind.Connection:
        this.connectionField(buf, vs, ve);
        return 1;
      case Kind.Host:
        this.hostCount++;
        return 1;
      case Kind.Upgrade:
        this.hasUpgrade = true;
        return 1;
      case Kind.Expect:
        if (bytesIsCi(buf, vs, ve, '100-continue')) this.expectContinue = true;
        return 1;
      default:
        return 1;
    }
  }

  private contentLengthField(buf: Buffer, vs: number, ve: number): number {
    let p = vs;
    let elements = 0;
    let v = -1;
    for (;;) {
      const ds = p;
      let n = 0;
      while (p < ve && buf[p] >= 0x30 && buf[p] <= 0x39) n = n * 10 + (buf[p++] - 0x30);
      if (p === ds) return this.fail(400, 'invalid Content-Length');
      if (p - ds > MAX_CL_DIGITS) return this.fail(400, 'Content-Length too large');
      if (v >= 0 && n !== v) return this.fail(400, 'differing Content-Length values');
      v = n;
      elements++;
      while (p < ve && (buf[p] === SP || buf[p] === HTAB)) p++;
      if (p === ve) break;
      if (buf[p] !== COMMA) return this.fail(400, 'invalid Content-Length');
      p++;
      while (p < ve && (buf[p] === SP || buf[p] === HTAB)) p++;
    }
    if (this.clValue >= 0) {
      if (this.clValue !== v) return this.fail(400, 'differing Content-Length values');
      return 0; // same value repeated: keep the first line only
    }
    this.clValue = v;
    if (elements > 1) {
      this.headers['content-length'] = String(v);
      return 0;
    }
    return 1;
  }

  private transferEncodingField(buf: Buffer, vs: number, ve: number): number {
    this.teSeen = true;
    let p = vs;
    while (p < ve) {
      while (p < ve && (buf[p] === SP || buf[p] === HTAB || buf[p] === COMMA)) p++;
      if (p === ve) break;
      const es = p;
      while (p < ve && buf[p] !== COMMA) p++;
      let ee = p;
      while (ee > es && (buf[ee - 1] === SP || buf[ee - 1] === HTAB)) ee--;
      this.teAnyCoding = true;
      if (bytesIsCi(buf, es, ee, 'chunked')) {
        if (this.teChunked) return this.fail(400, 'chunked applied more than once');
        this.teChunked = true;
        this.teLastChunked = true;
      } else {
        this.teLastChunked = false;
      }
    }
    return 1;
  }

  private connectionField(buf: Buffer, vs: number, ve: number): void {
    let p = vs;
    while (p < ve) {
      while (p < ve && (buf[p] === SP || buf[p] === HTAB || buf[p] === COMMA)) p++;
      const es = p;
      while (p < ve && buf[p] !== COMMA) p++;
      let ee = p;
      while (ee > es && (buf[ee - 1] === SP || buf[ee - 1] === HTAB)) ee--;
      const n = ee - es;
      if (n === 5 && bytesIsCi(buf, es, ee, 'close')) this.connClose = true;
      else if (n === 10 && bytesIsCi(buf, es, ee, 'keep-alive')) this.connKeepAlive = true;
      else if (n === 7 && bytesIsCi(buf, es, ee, 'upgrade')) this.connUpgrade = true;
      else if (n > 0) this.connOther = true;
    }
  }

  /** Prepares for a trailer section (used by ChunkedDecoder): a fresh map, no framing state. */
  beginFields(): void {
    this.headers = new HeaderMap();
    this.headerCount = 0;
    this.errorStatus = 0;
    this.errorReason = '';
  }
}

// ---------------------------------------------------------------------------------------------
// Chunked body decoder

export interface ChunkSink {
  onChunkData(buf: Buffer, start: number, end: number): void;
}

const enum CState {
  Size = 0, // reading hex digits (at least one)
  SizeWs = 1, // whitespace after the size: only ';' may follow
  Ext = 2, // inside chunk extensions
  SizeLf = 3, // CR seen after the size line, LF expected
  Data = 4,
  DataCr = 5,
  DataLf = 6,
  Trailer = 7, // at the start of a trailer line or the final empty line
  TrailerLine = 8, // inside a trailer line
  TrailerLf = 9, // CR seen inside a trailer line
  EndLf = 10, // CR of the final empty line seen
  Done = 11,
  Error = 12,
}

export class ChunkedDecoder {
  done = false;
  error = '';
  trailers: Headers | null = null;

  private state = CState.Size;
  private size = 0;
  private digits = 0;
  private extBytes = 0;
  private remaining = 0;
  private tbuf: Buffer | null = null;
  private tlen = 0;
  private fields: HeadParser | null = null;

  constructor(readonly maxTrailerBytes: number) {}

  reset(): void {
    this.done = false;
    this.error = '';
    this.trailers = null;
    this.state = CState.Size;
    this.size = 0;
    this.digits = 0;
    this.extBytes = 0;
    this.remaining = 0;
    this.tlen = 0;
  }

  private fail(reason: string): number {
    this.error = reason;
    this.state = CState.Error;
    return -1;
  }

  /**
   * Consumes chunked-body bytes from buf[start, end); payload ranges go to sink (if not null).
   * Returns the offset just past the end of the body (then done = true; trailers parsed), or `end`
   * when it needs more, or -1 when malformed (error set). Keeps its state across calls.
   */
  decode(buf: Buffer, start: number, end: number, sink: ChunkSink | null): number {
    let p = start;
    let st = this.state;
    if (st === CState.Error) return -1;
    if (st === CState.Done) return start;
    while (p < end) {
      switch (st) {
        case CState.Size: {
          const c = buf[p];
          const h = HEX[c];
          if (h !== 0) {
            if (++this.digits > MAX_CHUNK_SIZE_DIGITS) return this.fail('chunk size has too many digits');
            if (this.size >= MAX_CHUNK_SIZE_BEFORE_DIGIT) return this.fail('chunk size too large');
            this.size = this.size * 16 + (h - 1);
            p++;
            break;
          }
          if (this.digits === 0) return this.fail('invalid chunk size');
          if (c === CR) st = CState.SizeLf;
          else if (c === 0x3b) st = CState.Ext;
          else if (c === SP || c === HTAB) st = CState.SizeWs;
          else return this.fail(c === LF ? 'bare LF after chunk size' : 'invalid chunk size');
          p++;
          break;
        }
        case CState.SizeWs: {
          const c = buf[p++];
          if (c === 0x3b) st = CState.Ext;
          else if (c !== SP && c !== HTAB) return this.fail('whitespace after chunk size not followed by a chunk extension');
          break;
        }
        case CState.Ext: {
          const s = p;
          let c = 0;
          while (p < end && ((c = buf[p]) >= 0x20 || c === HTAB) && c !== 0x7f) p++;
          this.extBytes += p - s;
          if (this.extBytes > MAX_CHUNK_EXT_BYTES) return this.fail('chunk extensions too long');
          if (p === end) break;
          if (c !== CR) return this.fail(c === LF ? 'bare LF after chunk extension' : 'invalid character in chunk extension');
          p++;
          st = CState.SizeLf;
          break;
        }
        case CState.SizeLf:
          if (buf[p++] !== LF) return this.fail('bare CR in chunk size line');
          this.digits = 0;
          this.extBytes = 0;
          if (this.size === 0) {
            st = CState.Trailer;
            this.tlen = 0;
          } else {
            this.remaining = this.size;
            this.size = 0;
            st = CState.Data;
          }
          break;
        case CState.Data: {
          const avail = end - p;
          const n = avail < this.remaining ? avail : this.remaining;
          if (sink !== null) sink.onChunkData(buf, p, p + n);
          p += n;
          this.remaining -= n;
          if (this.remaining === 0) st = CState.DataCr;
          break;
        }
        case CState.DataCr:
          if (buf[p++] !== CR) return this.fail('chunk data not followed by CRLF');
          st = CState.DataLf;
          break;
        case CState.DataLf:
          if (buf[p++] !== LF) return this.fail('chunk data not followed by CRLF');
          st = CState.Size;
          break;
        case CState.Trailer:
          if (buf[p] === CR) {
            p++;
            st = CState.EndLf;
            break;
          }
          st = CState.TrailerLine;
          break;
        case CState.TrailerLine: {
          const s = p;
          while (p < end && buf[p] !== CR && buf[p] !== LF) p++;
          if (!this.keepTrailer(buf, s, p)) return -1;
          if (p === end) break;
          if (buf[p] === LF) return this.fail('bare LF in trailer section');
          p++;
          st = CState.TrailerLf;
          break;
        }
        case CState.TrailerLf:
          if (buf[p++] !== LF) return this.fail('bare CR in trailer section');
          if (!this.keepTrailer(CRLF_BYTES, 0, 2)) return -1;
          st = CState.Trailer;
          break;
        case CState.EndLf:
          if (buf[p++] !== LF) return this.fail('bare CR at the end of the chunked body');
          if (this.tlen > 0 && !this.parseTrailers()) return -1;
          this.state = CState.Done;
          this.done = true;
          return p;
        default:
          return this.fail('decoder state lost');
      }
    }
    this.state = st;
    return end;
  }

  /** Appends trailer bytes to the private trailer buffer (bounded by maxTrailerBytes). */
  private keepTrailer(buf: Buffer, s: number, e: number): boolean {
    const n = e - s;
    if (n === 0) return true;
    if (this.tlen + n > this.maxTrailerBytes) {
      this.fail('trailer section larger than the limit');
      return false;
    }
    // the trailer buffer is allocated once per decoder, on its first trailer (rare path)
    if (this.tbuf === null) this.tbuf = Buffer.allocUnsafe(this.maxTrailerBytes + 2);
    buf.copy(this.tbuf, this.tlen, s, e);
    this.tlen += n;
    return true;
  }

  private parseTrailers(): boolean {
    const tb = this.tbuf as Buffer;
    tb[this.tlen] = CR;
    tb[this.tlen + 1] = LF;
    // one field reader per decoder, made on its first trailer section (rare path)
    if (this.fields === null) this.fields = new HeadParser(false, this.maxTrailerBytes + 2, 1000);
    const f = this.fields;
    f.beginFields();
    const r = f.parseFields(tb, 0, this.tlen + 2, true);
    if (r <= 0) {
      this.fail(r === 0 ? 'incomplete trailer section' : `trailer: ${f.errorReason}`);
      return false;
    }
    this.trailers = f.headers;
    return true;
  }
}

const CRLF_BYTES = Buffer.from('\r\n', 'latin1');

// ---------------------------------------------------------------------------------------------
// Encoding

/** "name: value\r\n" lines for every defined header (a list gives one line per element). */
/** "name: value\r\n" for every header (a list as repeated lines). */
export function headerLines(headers: Headers): string {
  let s = '';
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined) continue;
    if (typeof v === 'string') s += k + ': ' + v + '\r\n';
    else for (let i = 0; i < v.length; i++) s += k + ': ' + v[i] + '\r\n';
  }
  return s;
}

/** "METHOD target HTTP/1.1\r\nhost: <host>\r\n<headers><extra>\r\n" as a latin1 string; `headers` must not contain host. */
export function requestHead(method: string, target: string, host: string, headers: Headers, extra: string): string {
  return method + ' ' + target + ' HTTP/1.1\r\nhost: ' + host + '\r\n' + headerLines(headers) + extra + '\r\n';
}

/** Status lines "HTTP/1.1 <status> <reason>\r\n" for 100..599, built once. */
const STATUS_LINES: string[] = [];
for (let s = 100; s < 600; s++) STATUS_LINES[s - 100] = `HTTP/1.1 ${s} ${STATUS_CODES[s] ?? 'Unknown'}\r\n`;

export function statusLine(status: number): string {
  return status >= 100 && status < 600 ? STATUS_LINES[status - 100] : `HTTP/1.1 ${status} Unknown\r\n`;
}

/** "HTTP/1.1 <status> <reason>\r\n<headers><extra>\r\n" (reason from node:http STATUS_CODES, "Unknown" else). */
export function responseHead(status: number, headers: Headers, extra: string): string {
  return statusLine(status) + headerLines(headers) + extra + '\r\n';
}

/** A bodiless reply after which the connection closes (errors, refused tunnels): `extra` lines go before the framing. */
export function closingReply(status: number, extra = ''): string {
  return statusLine(status) + extra + 'content-length: 0\r\nconnection: close\r\n\r\n';
}

/** Chunk framing: "<hex len>\r\n" for a chunk of n bytes; the caller writes the payload then "\r\n". */
export function chunkHeader(n: number): string {
  return n.toString(16) + '\r\n';
}

/** The last chunk with no trailers: "0\r\n\r\n". */
export const LAST_CHUNK: Buffer = Buffer.from('0\r\n\r\n', 'latin1');
