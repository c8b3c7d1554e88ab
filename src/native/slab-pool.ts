// Slab pool shared by both bindings: slabs (ArrayBuffers from the addon or from JS) are carved
// into fixed-size chunks whose Buffer views are created once, when the slab is created, so
// acquire()/release() never allocate. Each chunk view is registered in a WeakMap (view -> chunk
// id) when its slab is created, so release() recognises exactly the views it handed out (foreign
// buffers and sub-views of a chunk are rejected); a per-chunk in-use byte map catches double
// release. (Looking the slab up through `buf.buffer` instead costs ~40 ns more per release:
// the Buffer#buffer getter is slow.)
import type { SlabPool, SlabPoolOptions } from './types';

export type SlabAllocator = (size: number) => ArrayBuffer;

const DEFAULT_SLAB_BYTES = 1 << 20;

function checkInt(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

export class ChunkSlabPool implements SlabPool {
  readonly chunkSize: number;
  readonly chunksPerSlab: number;
  readonly maxSlabs: number;
  private readonly memoryKind: () => 'mmap' | 'v8' | 'js';
  private readonly alloc: SlabAllocator;
  private readonly chunkId = new WeakMap<Buffer, number>();
  private readonly chunks: Buffer[] = []; // chunk id (slab * chunksPerSlab + i) -> view
  private inUse = new Uint8Array(0); // chunk id -> 1 while acquired
  private free = new Uint32Array(0); // stack of free chunk ids
  private top = 0;
  private slabCount = 0;
  private overflowCount = 0;
  private readonly overflowLive = new WeakSet<Buffer>();

  constructor(opts: SlabPoolOptions, alloc: SlabAllocator, memoryKind: () => 'mmap' | 'v8' | 'js') {
    this.chunkSize = checkInt('chunkSize', opts.chunkSize, 1);
    this.chunksPerSlab = checkInt(
      'chunksPerSlab',
      opts.chunksPerSlab ?? Math.max(1, Math.floor(DEFAULT_SLAB_BYTES / this.chunkSize)),
      1,
    );
    const initial = checkInt('initialSlabs', opts.initialSlabs ?? 1, 0);
    this.maxSlabs = checkInt('maxSlabs', opts.maxSlabs ?? Math.max(64, initial), 0);
    if (initial > this.maxSlabs) throw new RangeError(`initialSlabs (${initial}) > maxSlabs (${this.maxSlabs})`);
    if (this.chunkSize * this.chunksPerSlab > 2 ** 32) throw new RangeError('slab size (chunkSize * chunksPerSlab) > 4 GiB');
    this.alloc = alloc;
    this.memoryKind = memoryKind;
    for (let i = 0; i < initial; i++) this.grow();
  }

  get memory(): 'mmap' | 'v8' | 'js' {
    return this.memoryKind();
  }
  get slabs(): number {
    return this.slabCount;
  }
  get total(): number {
    return this.slabCount * this.chunksPerSlab;
  }
  get available(): number {
    return this.top;
  }
  get overflow(): number {
    return this.overflowCount;
  }

  acquire(): Buffer {
    if (this.top === 0) {
      if (this.slabCount >= this.maxSlabs) {
        this.overflowCount++;
        const b = Buffer.allocUnsafeSlow(this.chunkSize);
        this.overflowLive.add(b);
        return b;
      }
      this.grow();
    }
    const id = this.free[--this.top];
    this.inUse[id] = 1;
    return this.chunks[id];
  }

  release(buf: Buffer): void {
    const id = this.chunkId.get(buf);
    if (id === undefined) {
      if (this.overflowLive.delete(buf)) return; // overflow buffer: dropped, the GC frees it
      throw new Error('SlabPool.release: not a chunk of this pool (foreign buffer, sub-view, or overflow buffer already released)');
    }
    if (this.inUse[id] !== 1) throw new Error('SlabPool.release: double release');
    this.inUse[id] = 0;
    this.free[this.top++] = id;
  }

  private grow(): void {
    const n = this.chunksPerSlab;
    const cs = this.chunkSize;
    const ab = this.alloc(cs * n);
    if (ab.byteLength < cs * n) throw new Error(`slab allocator returned ${ab.byteLength} bytes, wanted ${cs * n}`);
    const slab = this.slabCount;
    const newTotal = (slab + 1) * n;
    if (newTotal > this.inUse.length) {
      // Capacity doubles (bounded by maxSlabs) so growth copies O(total) bytes overall.
      const cap = Math.min(this.maxSlabs, Math.max(slab + 1, slab * 2)) * n;
      const inUse = new Uint8Array(cap);
      inUse.set(this.inUse);
      const free = new Uint32Array(cap);
      free.set(this.free.subarray(0, this.top));
      this.inUse = inUse;
      this.free = free;
    }
    for (let i = 0; i < n; i++) {
      const chunk = Buffer.from(ab, i * cs, cs);
      this.chunkId.set(chunk, slab * n + i);
      this.chunks.push(chunk);
    }
    // Push in reverse so the lowest chunk is handed out first.
    for (let i = n - 1; i >= 0; i--) this.free[this.top++] = slab * n + i;
    this.slabCount = slab + 1;
  }
}
