/** Collects the frames of any codec arriving on a socket (each frame copied), for raw-socket tests. */
import type * as net from 'node:net';

/** decode(buf, offset, end, maxFrameSize, out) -> frame length, 0 = need more, < 0 = error. */
export type FrameDecode<F> = (buf: Buffer, offset: number, end: number, maxFrameSize: number, out: F) => number;

export class FrameCollector<F> {
  readonly frames: { frame: F; buf: Buffer }[] = [];
  private pending = Buffer.alloc(0);
  private waiters: { n: number; resolve: () => void }[] = [];
  closed = false;
  readonly closedP: Promise<void>;

  constructor(
    readonly sock: net.Socket,
    private readonly make: () => F,
    private readonly decode: FrameDecode<F>,
  ) {
    sock.on('data', (d: Buffer) => this.push(d));
    this.closedP = new Promise((resolve) => {
      sock.once('close', () => {
        this.closed = true;
        for (const w of this.waiters) w.resolve();
        resolve();
      });
    });
    sock.on('error', () => {});
  }

  private push(d: Buffer): void {
    this.pending = Buffer.concat([this.pending, d]);
    for (;;) {
      const f = this.make();
      const n = this.decode(this.pending, 0, this.pending.length, 1 << 30, f);
      if (n <= 0) break;
      const buf = Buffer.from(this.pending.subarray(0, n));
      this.decode(buf, 0, n, 1 << 30, f); // offsets relative to the copy
      this.frames.push({ frame: f, buf });
      this.pending = this.pending.subarray(n);
    }
    this.waiters = this.waiters.filter((w) => {
      if (this.frames.length >= w.n) {
        w.resolve();
        return false;
      }
      return true;
    });
  }

  /** Resolves once `n` frames arrived (or the socket closed). */
  wait(n: number, timeoutMs = 10_000): Promise<void> {
    if (this.frames.length >= n || this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`only ${this.frames.length}/${n} frames after ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
  }
}
