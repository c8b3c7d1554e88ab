/**
 * Cuts a byte stream into frames with an XCodec, without copying whole frames.
 *
 * Frames that lie entirely inside a read are handed to the sink as views of the read buffer
 * (the worker's shared read chunk): valid until the read callback returns, which is when the
 * Connection layer flushes whatever the sink wrote. Only a frame cut by a read boundary is
 * copied, into a buffer owned by this reader, until it is complete:
 *
 *   read 1: [frame][frame][fra|     -> 2 views, "fra" copied to the partial buffer
 *   read 2: |me][frame][frame]      -> "me" appended, 1 frame from the partial buffer, 2 views
 *
 * A frame delivered from the partial buffer may be queued for writing (gathered until the end
 * of the tick, or held by the socket's write queue in cork mode), so a buffer handed to the
 * sink is never written again: the next partial frame gets a new one.
 * The length of a partial frame is read from its fixed header before any body byte is
 * buffered, so an oversized frame is refused without buffering it.
 */
import { NEED_MORE, type XCodec, type XFrame } from '../protocol/types';

export interface FrameSink<F extends XFrame> {
  /** One decoded frame at buf[frame.frameStart, +frameLen). Return false to stop reading (closed). */
  onFrame(buf: Buffer, frame: F): boolean;
  /** The stream is broken (code < 0 from the codec): the owner closes the connection. */
  onDecodeError(code: number): void;
}

/** Partial buffers start this size and grow by doubling up to the frame size. */
const MIN_PARTIAL = 4096;
/** A partial buffer larger than this is dropped after use instead of kept for the next one. */
const KEEP_PARTIAL = 64 * 1024;

export class FrameReader<F extends XFrame> {
  readonly frame: F;
  private partial: Buffer | null = null;
  private partialLen = 0;
  /** Length of the partial frame once its header is in, else 0. */
  private partialNeed = 0;

  constructor(
    readonly codec: XCodec<F>,
    readonly maxFrameSize: number,
  ) {
    this.frame = codec.newFrame();
  }

  /** Hot upgrade: the bytes of the incomplete frame (a copy), and the reader starts empty. */
  takeBuffered(): Buffer {
    const out = this.partial === null ? Buffer.alloc(0) : Buffer.from(this.partial.subarray(0, this.partialLen));
    this.partialLen = 0;
    this.partialNeed = 0;
    return out;
  }

  /** Bytes of an incomplete frame held between reads. */
  get buffered(): number {
    return this.partialLen;
  }

  /**
   * Feed bytes just read. Calls sink.onFrame for each complete frame, in order. Stops at the
   * first decode error (after calling onDecodeError) or when the sink returns false.
   */
  feed(buf: Buffer, start: number, end: number, sink: FrameSink<F>): void {
    const codec = this.codec;
    const max = this.maxFrameSize;
    const frame = this.frame;
    let p = start;
    if (this.partialLen > 0) {
      p = this.fillPartial(buf, p, end, sink);
      if (p < 0) return;
    }
    while (p < end) {
      // Decode first: a whole frame in the read (the common case) is read once, not measured by
      // frameLength and then decoded (every codec's decode takes more bytes than the frame and
      // says NEED_MORE, or the error frameLength would, when the frame is not all there).
      const r = codec.decode(buf, p, end, max, frame);
      if (r > 0) {
        p += r;
        if (sink.onFrame(buf, frame) !== true) return; // a boolean compared with true: one compare
        continue;
      }
      if (r < 0) {
        sink.onDecodeError(r);
        return;
      }
      const len = codec.frameLength(buf, p, end, max);
      if (len < 0) {
        sink.onDecodeError(len);
        return;
      }
      if (len !== NEED_MORE && p + len <= end) {
        sink.onDecodeError(-1); // the codec decoded less than its own length says is there
        return;
      }
      this.startPartial(buf, p, end, len);
      return;
    }
  }

  /** Completes the partial frame from buf[p, end); returns the new p, or -1 when reading stops. */
  private fillPartial(buf: Buffer, p: number, end: number, sink: FrameSink<F>): number {
    const codec = this.codec;
    if (this.partialNeed === 0) {
      // Header incomplete: take at most enough bytes for any fixed header, then ask the length.
      const take = Math.min(codec.maxHeaderSize - this.partialLen, end - p);
      this.append(buf, p, p + take);
      p += take;
      const len = codec.frameLength(this.partial as Buffer, 0, this.partialLen, this.maxFrameSize);
      if (len < 0) {
        this.reset();
        sink.onDecodeError(len);
        return -1;
      }
      if (len === NEED_MORE) return p; // p === end here
      if (len < this.partialLen) {
        // The frame is shorter than the header bytes taken: give the excess back to the read.
        p -= this.partialLen - len;
        this.partialLen = len;
      }
      this.partialNeed = len;
      this.ensure(len);
    }
    const take = Math.min(this.partialNeed - this.partialLen, end - p);
    this.append(buf, p, p + take);
    p += take;
    if (this.partialLen < this.partialNeed) return p;
    const pb = this.partial as Buffer;
    const len = this.partialNeed;
    this.partialLen = 0;
    this.partialNeed = 0;
    this.partial = null; // lent to the sink: may be gathered for writev
    const r = this.codec.decode(pb, 0, len, this.maxFrameSize, this.frame);
    if (r <= 0) {
      sink.onDecodeError(r === NEED_MORE ? -1 : r);
      return -1;
    }
    if (!sink.onFrame(pb, this.frame)) return -1;
    return p;
  }

  private startPartial(buf: Buffer, p: number, end: number, len: number): void {
    this.partialLen = 0;
    this.partialNeed = len > 0 ? len : 0;
    this.ensure(len > 0 ? len : Math.max(end - p, this.codec.maxHeaderSize));
    this.append(buf, p, end);
  }

  /** Makes sure the partial buffer holds `size` bytes, keeping what it has. */
  private ensure(size: number): void {
    const pb = this.partial;
    if (pb !== null && pb.length >= size) return;
    let n = pb === null ? MIN_PARTIAL : pb.length * 2;
    while (n < size) n *= 2;
    // Allocation at a read boundary only (a frame split across reads), never per frame.
    const nb = Buffer.allocUnsafe(n);
    if (pb !== null && this.partialLen > 0) pb.copy(nb, 0, 0, this.partialLen);
    this.partial = nb;
  }

  private append(buf: Buffer, s: number, e: number): void {
    if (e <= s) return;
    this.ensure(this.partialLen + (e - s));
    buf.copy(this.partial as Buffer, this.partialLen, s, e);
    this.partialLen += e - s;
  }

  private reset(): void {
    this.partialLen = 0;
    this.partialNeed = 0;
    if (this.partial !== null && this.partial.length > KEEP_PARTIAL) this.partial = null;
  }
}
