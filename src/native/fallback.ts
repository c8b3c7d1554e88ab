// Pure-TypeScript implementation of NativeBinding, used when the addon is absent or
// OUTRIGGER_NATIVE=0. Same API and semantics as the addon except where noted:
// - slabs are plain `new ArrayBuffer(size)` (V8 heap, zero-filled);
// - writev uses fs.writevSync(fd, bufs) which performs writev(2) on the fd through libuv; libuv
//   itself loops over IOV_MAX batches, short writes and EINTR, and returns the bytes written so
//   far when it hits EAGAIN (it throws EAGAIN only if nothing was written: mapped to 0 here);
// - pinThread cannot set a thread's affinity from JS: it validates its argument and returns false;
// - getThreadAffinity reads Cpus_allowed_list from /proc/thread-self/status (calling thread);
// - listenReusePort and dupFd are impossible without the addon: they throw code 'ENOSYS'
//   (use openListenSocket, which falls back to listenShared).
import * as fs from 'node:fs';
import { ChunkSlabPool } from './slab-pool';
import { closeServer, listenShared } from './listen';
import type { ListenResult, ListenSocket, NativeBinding, OriginalDstAddress, SlabPool, SlabPoolOptions } from './types';

function enosys(what: string): Error {
  const e = new Error(`${what} needs the native addon (fallback binding in use)`) as NodeJS.ErrnoException;
  e.code = 'ENOSYS';
  return e;
}

export function checkFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw new RangeError(`fd must be a non-negative integer, got ${fd}`);
}

/**
 * The views writevRanges writes (the fallback's, and an addon built before writevRanges): checks
 * the arguments as the addon does (RangeError for a count or range out of bounds, TypeError for
 * a non-array or an entry that is not a Uint8Array).
 */
export function rangeViews(bufs: readonly Uint8Array[], starts: readonly number[], ends: readonly number[], count: number): Uint8Array[] {
  if (!Array.isArray(bufs) || !Array.isArray(starts) || !Array.isArray(ends)) {
    throw new TypeError('writevRanges(fd, bufs, starts, ends, count): bufs, starts and ends must be arrays');
  }
  if (!Number.isInteger(count) || count < 0 || count > Math.min(bufs.length, starts.length, ends.length)) {
    throw new RangeError('count must be an integer no larger than any of the three arrays');
  }
  const views: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const b = bufs[i];
    const s = starts[i];
    const e = ends[i];
    if (!(b instanceof Uint8Array)) throw new TypeError(`bufs[${i}] must be a Buffer or Uint8Array`);
    if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e < s || e > b.byteLength) {
      throw new RangeError(`range ${i} must satisfy 0 <= start <= end <= its buffer's length`);
    }
    views.push(b.subarray(s, e));
  }
  return views;
}

/**
 * The views writevArgs writes (the fallback's, and an addon built before writevArgs): the ranges
 * after its count (buffer, start, end each), checked as the addon checks them.
 */
export function argRangeViews(count: number, args: readonly unknown[]): Uint8Array[] {
  if (!Number.isInteger(count) || count < 0 || count > 4 || args.length < 3 * count) {
    throw new RangeError('writevArgs(fd, count, b0, s0, e0, ...): count must be an integer in [0, 4], with three arguments per range');
  }
  const bufs: Uint8Array[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < count; i++) {
    bufs.push(args[3 * i] as Uint8Array);
    starts.push(args[3 * i + 1] as number);
    ends.push(args[3 * i + 2] as number);
  }
  return rangeViews(bufs, starts, ends, count);
}

/** writev(2) through libuv (fs.writevSync); EAGAIN with nothing written is 0. */
function writevSync(fd: number, bufs: readonly Uint8Array[], count: number): number {
  checkFd(fd);
  if (!Number.isInteger(count) || count < 0 || count > bufs.length) {
    throw new RangeError(`count must be an integer in [0, ${bufs.length}], got ${count}`);
  }
  if (count === 0) return 0;
  const list = count === bufs.length ? (bufs as Uint8Array[]) : bufs.slice(0, count);
  try {
    return fs.writevSync(fd, list);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return 0;
    throw err;
  }
}

/** Parses a kernel CPU list such as "0-3,8,10-11". */
export function parseCpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.trim().split(',')) {
    if (part === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`bad CPU list: ${list}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (let c = lo; c <= hi; c++) out.push(c);
  }
  return out;
}

class FallbackBinding implements NativeBinding {
  readonly kind = 'fallback' as const;
  /** No splice(2) from JS: the TCP proxy forwards through its own read and write path. */
  readonly splice = null;
  /** No native read path: sockets read through Node's stream machinery. */
  readonly read = null;

  createSlabPool(opts: SlabPoolOptions): SlabPool {
    return new ChunkSlabPool(opts, (size) => new ArrayBuffer(size), () => 'js');
  }

  writev(fd: number, bufs: readonly Uint8Array[], count: number): number {
    return writevSync(fd, bufs, count);
  }

  // The IO context takes these functions off the binding (io.ts): neither may use `this`.
  writevRanges(fd: number, bufs: readonly Uint8Array[], starts: readonly number[], ends: readonly number[], count: number): number {
    checkFd(fd);
    const views = rangeViews(bufs, starts, ends, count);
    return writevSync(fd, views, views.length);
  }

  writevArgs(fd: number, count: number, ...args: unknown[]): number {
    checkFd(fd);
    const views = argRangeViews(count, args);
    return writevSync(fd, views, views.length);
  }

  singlePoll(): boolean {
    return false;
  }

  writeRange(fd: number, buf: Uint8Array, start: number, end: number): number {
    checkFd(fd);
    if (!(buf instanceof Uint8Array)) throw new TypeError('buf must be a Buffer or Uint8Array');
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > buf.byteLength) {
      throw new RangeError(`range must satisfy 0 <= start <= end <= ${buf.byteLength}, got [${start}, ${end})`);
    }
    let done = 0;
    try {
      while (start + done < end) done += fs.writeSync(fd, buf, start + done, end - start - done);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return done;
      throw err;
    }
    return done;
  }

  pinThread(cpu: number): boolean {
    if (!Number.isInteger(cpu) || cpu < 0) throw new RangeError(`cpu must be a non-negative integer, got ${cpu}`);
    return false;
  }

  getThreadAffinity(): number[] {
    const status = fs.readFileSync('/proc/thread-self/status', 'latin1');
    const m = /^Cpus_allowed_list:\s*(.*)$/m.exec(status);
    if (!m) throw new Error('Cpus_allowed_list missing from /proc/thread-self/status');
    return parseCpuList(m[1]);
  }

  listenReusePort(_host: string, _port: number, _backlog: number): ListenResult {
    throw enosys('listenReusePort (SO_REUSEPORT)');
  }

  listenTcp(_host: string, _port: number, _backlog: number, _reusePort: boolean): ListenResult {
    throw enosys('listenTcp');
  }

  dupFd(_fd: number): number {
    throw enosys('dupFd');
  }

  closeFd(fd: number): void {
    checkFd(fd);
    fs.closeSync(fd);
  }

  getOriginalDst(_fd: number): OriginalDstAddress | null {
    throw enosys('getOriginalDst (SO_ORIGINAL_DST)');
  }

  setTransparent(_fd: number): void {
    throw enosys('setTransparent (IP_TRANSPARENT)');
  }

  listenShared(host: string, port: number, backlog: number) {
    return listenShared(host, port, backlog);
  }

  async openListenSocket(host: string, port: number, backlog: number): Promise<ListenSocket> {
    const { server, fd, port: bound } = await listenShared(host, port, backlog);
    return { fd, port: bound, owner: 'server', server, close: () => closeServer(server) };
  }
}

export const fallbackBinding: NativeBinding = new FallbackBinding();
