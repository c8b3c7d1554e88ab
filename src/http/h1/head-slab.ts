/**
 * Message heads (latin1 strings) written into a shared 64 KiB slab and queued on a
 * connection as views of it: one slab per ~200 heads instead of Buffer.from's 8 KiB pool
 * slice and Buffer object per head. A slab is only ever appended to; when it is full a new
 * one takes its place and the old one is freed by the GC once no queued write refers to it,
 * so a view stays valid however long its connection holds it.
 */
import { Buffer } from 'node:buffer';
import type { Connection } from '../../network/connection';
import type { RawHeadLines } from '../upstream';
import { copyArea, offerCopy } from './codec';


/**
 * Buffer's own latin1 writer: Buffer.prototype.write validates its arguments and looks the
 * encoding up by name on every call; the callers here pass checked ranges.
 */
type Latin1Buf = Buffer & { latin1Write(s: string, offset: number, length: number): number };

const SLAB_SIZE = 64 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
let used = 0;
/** The native scanner copies request heads' forwarded lines into the slab (offerRoom). */
const copies = slab.byteOffset === 0 && copyArea(slab.buffer);

/** A new slab (the old one lives on while queued writes refer to it). */
function newSlab(): void {
  slab = Buffer.allocUnsafeSlow(SLAB_SIZE); // once per ~64 KiB of heads
  used = 0;
  if (copies) copyArea(slab.buffer);
}

/**
 * Room kept in front of a request head's copied lines for the proxy's own lines (request line,
 * host, x-request-id, framing): the last such prefix's length and some slack, so that a slab
 * (an external allocation, which V8 counts towards its next GC) holds as many heads as before;
 * a longer prefix takes writeHead's path.
 */
const ROOM_SLACK = 32;
const ROOM_MAX = 1024;
let prefixRoom = 128;
/** The last copy the scanner made (tookRoom): by which parser, in which slab, its room and lines. */
let copiedBy: object | null = null;
let copiedSlab = slab;
let copiedFrom = 0;
let copiedAt = 0;
let copiedEnd = 0;

/**
 * Before a request head's parse: the scanner may copy its forwarded lines and empty line into the
 * slab, prefixRoom bytes after what is used (a native memcpy, where writeHead's JavaScript byte
 * loop costs ~28 instructions a byte).
 */
export function offerRoom(): void {
  if (!copies) return;
  if (SLAB_SIZE - used < prefixRoom + 1024) newSlab();
  offerCopy(used + prefixRoom, Math.min(SLAB_SIZE, used + prefixRoom + (SLAB_SIZE >>> 2)));
}

/** After that parse: a copy it made takes its room (for writeCopiedHead, until the next parse). */
export function tookRoom(lines: { readonly copiedEnd: number }): void {
  if (lines.copiedEnd < 0) {
    copiedBy = null;
    return;
  }
  copiedBy = lines;
  copiedSlab = slab;
  copiedFrom = used;
  copiedAt = used + prefixRoom;
  copiedEnd = lines.copiedEnd;
  used = copiedEnd;
}

/**
 * Queues the request head whose lines the scanner copied in the last parse (`lines`: its
 * parser): `prefix` written in the room in front of them, the head one write entry. Returns its
 * byte length, or -1 when there is no such copy or the prefix does not fit (writeHead then).
 */
export function writeCopiedHead(conn: Connection, prefix: string, lines: object): number {
  if (lines !== copiedBy) return -1;
  copiedBy = null;
  const n = prefix.length;
  // The next offer fits this prefix (requests on a route mostly have the same length).
  prefixRoom = n + ROOM_SLACK > ROOM_MAX ? ROOM_MAX : n + ROOM_SLACK;
  const start = copiedAt - n;
  if (start < copiedFrom) return -1;
  const b = copiedSlab;
  (b as Latin1Buf).latin1Write(prefix, start, n);
  writtenBuf = b;
  writtenAt = start;
  conn.write(b, start, copiedEnd);
  return copiedEnd - start;
}

/** Queues `s` (latin1: one byte per character, as node:http writes header bytes) on `conn`; returns its byte length. */
export function writeLatin1(conn: Connection, s: string): number {
  const n = s.length;
  if (n > SLAB_SIZE >>> 2) {
    // A rare very large head: its own Buffer.
    const b = Buffer.from(s, 'latin1');
    conn.write(b, 0, b.length);
    return b.length;
  }
  if (n > SLAB_SIZE - used) newSlab();
  const start = used;
  const w = (slab as Latin1Buf).latin1Write(s, start, n);
  used = start + w;
  conn.write(slab, start, used);
  return w;
}

/**
 * Rewrites a head in place, right-aligned against its end (its body follows): `prefix` (a start
 * line and the lines the proxy writes), the lines `lines` indexes, the empty line. Returns where
 * the new head starts, or -1 when it is longer than the old one (nothing changed then). The
 * bytes before the head's end are the old head's, which nothing else refers to.
 */
export function headInPlace(buf: Buffer, prefix: string, lines: RawHeadLines): number {
  const runs = lines.runs;
  const n = lines.runCount;
  let kept = 0;
  for (let i = 0; i < n; i += 2) kept += runs[i + 1] - runs[i];
  const start = lines.headEnd - 2 - kept - prefix.length;
  if (start < lines.headStart) return -1;
  // The empty line stays where it is; the kept lines move up to it, the last first (a line only
  // ever moves towards the end, over bytes already moved or left out).
  let cur = lines.headEnd - 2;
  for (let i = n - 2; i >= 0; i -= 2) {
    const len = runs[i + 1] - runs[i];
    cur -= len;
    if (cur !== runs[i]) buf.copyWithin(cur, runs[i], runs[i + 1]);
  }
  (buf as Latin1Buf).latin1Write(prefix, start, prefix.length);
  return start;
}

/**
 * The buffer holding the bytes of the last head writeHead queued (from `writtenAt` to its length
 * later): the slab (never overwritten) or the head's own buffer. Kept by a caller that may send
 * the same head again (h1/pool.ts: a request retried on a new connection).
 */
export let writtenBuf: Buffer = slab;
export let writtenAt = 0;

/**
 * Queues one message head: `prefix` (a start line and the lines the proxy writes, latin1), the
 * field lines `lines` indexes in `buf`, and the empty line, all copied into the slab so that the
 * head is one contiguous write entry (a view per line would cost more at the writev than the
 * copy of a few dozen bytes). Returns the head's byte length.
 */
export function writeHead(conn: Connection, prefix: string, buf: Buffer, lines: RawHeadLines): number {
  const runs = lines.runs;
  const n = lines.runCount;
  let size = prefix.length + 2;
  for (let i = 0; i < n; i += 2) size += runs[i + 1] - runs[i];
  let b: Buffer;
  let start: number;
  if (size > SLAB_SIZE >>> 2) {
    // A rare very large head: a buffer of its own.
    b = Buffer.allocUnsafe(size);
    start = 0;
  } else {
    if (size > SLAB_SIZE - used) newSlab();
    b = slab;
    start = used;
  }
  let u = start + (b as Latin1Buf).latin1Write(prefix, start, prefix.length);
  for (let i = 0; i < n; i += 2) {
    // A byte loop: the lines are short, and Buffer.copy would make a view per call.
    for (let j = runs[i], e = runs[i + 1]; j < e; j++) b[u++] = buf[j];
  }
  b[u] = 13;
  b[u + 1] = 10;
  if (b === slab) used = u + 2;
  writtenBuf = b;
  writtenAt = start;
  conn.write(b, start, u + 2);
  return u + 2 - start;
}
