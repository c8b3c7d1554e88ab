/**
 * The per-worker IO context: the buffer pool, the shared read buffer, the flush list and the
 * write strategy. One instance per worker thread (module state), never shared across threads.
 *
 * Zero-copy read path (the IoBuffer idea): every socket of the worker reads into ONE shared
 * slab chunk (`useUserBuffer`). A read callback hands views of that chunk to the filters;
 * whatever they queue for writing is flushed with one writev per connection before the
 * callback returns, so the chunk is free again before libuv reads the next socket into it.
 * Bytes the kernel did not take, and bytes queued on a connection that is still connecting
 * or already backed up, are copied into pooled chunks (the only copies on the data path).
 *
 * Write strategies (OUTRIGGER_IO):
 *   writev (default)  ranges gathered per tick, one writev(2) per connection (addon, or the
 *                     TypeScript fallback), remainder copied and queued on the libuv stream.
 *   cork              Node's own read buffers ('data' events, one allocation per read), writes
 *                     gathered the same way and flushed with socket.cork()/write()/uncork().
 */
import { native } from '../native';
import type { SlabPool } from '../native/types';

export type IoMode = 'writev' | 'cork';

export interface Flushable {
  /** Writes everything gathered since the last flush. */
  flush(): void;
  /** true while on the flush list. */
  queuedForFlush: boolean;
}

const READ_CHUNK = 64 * 1024;

function pickMode(): IoMode {
  const m = process.env.OUTRIGGER_IO;
  if (m === undefined || m === '' || m === 'writev') return 'writev';
  if (m === 'cork') return 'cork';
  throw new Error(`OUTRIGGER_IO: "${m}" is not one of writev, cork`);
}

export class IoContext {
  readonly mode: IoMode = pickMode();
  readonly pool: SlabPool;
  /** The one read buffer every socket of this worker reads into (writev mode). */
  readonly readBuffer: Buffer;
  /** One range without an array or a view (a flush of one entry). */
  readonly writeRange = native.writeRange;
  /** Several ranges without a view object each (a flush of several entries). */
  readonly writevRanges = native.writevRanges;
  /** Two to four ranges as arguments: not even the arrays (the addon reads arguments in place). */
  readonly writevArgs = native.writevArgs;
  readonly nativeKind = native.kind;
  private readonly dirty: Flushable[] = [];
  private dirtyCount = 0;
  private tickScheduled = false;
  /** Depth of read callbacks on the stack: a flush is run when the outermost one ends. */
  private inRead = 0;
  private readonly flushTick = (): void => {
    this.tickScheduled = false;
    this.flushAll();
  };

  /** Counters of the IO layer itself (for the worker stats). */
  flushes = 0;
  writevCalls = 0;
  copies = 0;

  constructor() {
    // 64 KiB chunks, 16 per slab (1 MiB slabs), up to 256 slabs (256 MiB) before the pool
    // overflows to plain allocations; watermarks keep far below that in practice.
    this.pool = native.createSlabPool({ chunkSize: READ_CHUNK, chunksPerSlab: 16, maxSlabs: 256 });
    this.readBuffer = this.pool.acquire();
  }

  /** Marks a connection as having gathered output; it is flushed at the end of this tick. */
  markDirty(f: Flushable): void {
    if (f.queuedForFlush === true) return; // a boolean field compared with true: one compare (connection.ts write())
    f.queuedForFlush = true;
    this.dirty[this.dirtyCount++] = f;
    if (this.inRead === 0 && !this.tickScheduled) {
      // Outside a read callback (timers, connect events): one nextTick for the whole batch.
      this.tickScheduled = true;
      process.nextTick(this.flushTick);
    }
  }

  enterRead(): void {
    this.inRead++;
  }

  /** Ends a read callback; the outermost one flushes every dirty connection. */
  exitRead(): void {
    if (--this.inRead === 0 && this.dirtyCount > 0) this.flushAll();
  }

  flushAll(): void {
    // A flush can make other connections dirty (e.g. an error closes a peer): loop.
    for (let i = 0; i < this.dirtyCount; i++) {
      const f = this.dirty[i];
      this.dirty[i] = undefined as unknown as Flushable;
      f.queuedForFlush = false;
      f.flush();
    }
    this.dirtyCount = 0;
    this.flushes++;
  }
}

let ctx: IoContext | undefined;

/** This thread's IO context (created on first use). */
export function io(): IoContext {
  if (ctx === undefined) ctx = new IoContext();
  return ctx;
}
