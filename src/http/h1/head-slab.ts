/**
 * Message heads (latin1 strings) written into a shared 64 KiB slab and queued on a
 * connection as views of it: one slab per ~200 heads instead of Buffer.from's 8 KiB pool
 * slice and Buffer object per head. A slab is only ever appended to; when it is full a new
 * one takes its place and the old one is freed by the GC once no queued write refers to it,
 * so a view stays valid however long its connection holds it.
 */
import { Buffer } from 'node:buffer';
import type { Connection } from '../../network/connection';

const SLAB_SIZE = 64 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
let used = 0;

/** Queues `s` (latin1: one byte per character, as node:http writes header bytes) on `conn`; returns its byte length. */
export function writeLatin1(conn: Connection, s: string): number {
  const n = s.length;
  if (n > SLAB_SIZE >>> 2) {
    // A rare very large head: its own Buffer.
    const b = Buffer.from(s, 'latin1');
    conn.write(b, 0, b.length);
    return b.length;
  }
  if (n > SLAB_SIZE - used) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE); // once per ~64 KiB of heads
    used = 0;
  }
  const start = used;
  const w = slab.write(s, start, n, 'latin1');
  used = start + w;
  conn.write(slab, start, used);
  return w;
}
