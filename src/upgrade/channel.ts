/**
 * One hand-over connection between two Outrigger processes: JSON messages with optional file
 * descriptors over a unix SOCK_SEQPACKET socket (native/fdpass.cc). A message larger than one
 * packet is split: every packet starts with one byte, 1 = more packets of this message follow,
 * 0 = last; the fds travel with the last packet. Reads are polled (the socket is not a libuv
 * handle), every few ms while a reader waits; nothing runs while nobody waits.
 */
import type { FdPass } from './fdpass';

/** Packet payload limit of the addon, minus the flag byte. */
const CHUNK = 65535;
const POLL_MS = 2;
const SEND_TIMEOUT_MS = 5000;

export interface Message {
  readonly t: string;
  readonly [k: string]: unknown;
}

export interface Incoming {
  readonly msg: Message;
  readonly fds: number[];
}

export class ChannelClosed extends Error {}

export class Channel {
  private closed = false;
  private parts: Buffer[] = [];

  constructor(
    private readonly fp: FdPass,
    readonly fd: number,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  send(msg: Message, fds: readonly number[] = []): void {
    if (this.closed) throw new ChannelClosed('hand-over channel closed');
    const body = Buffer.from(JSON.stringify(msg));
    for (let off = 0; ; off += CHUNK) {
      const last = off + CHUNK >= body.length;
      const part = Buffer.allocUnsafe(1 + Math.min(CHUNK, body.length - off)); // one per packet (hand-over only)
      part[0] = last ? 0 : 1;
      body.copy(part, 1, off, off + part.length - 1);
      this.fp.fdSend(this.fd, part, last ? fds : [], SEND_TIMEOUT_MS);
      if (last) return;
    }
  }

  /** The next whole message, or null when none came within `timeoutMs`. Throws ChannelClosed at EOF. */
  async recv(timeoutMs: number): Promise<Incoming | null> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const r = this.tryRecv();
      if (r !== null) return r;
      if (Date.now() >= until) return null;
      await new Promise<void>((res) => setTimeout(res, POLL_MS));
    }
  }

  /** A message already received, or null. */
  tryRecv(): Incoming | null {
    for (;;) {
      if (this.closed) throw new ChannelClosed('hand-over channel closed');
      const r = this.fp.fdRecv(this.fd, 0);
      if (r === null) return null;
      if (r.eof) {
        this.close();
        throw new ChannelClosed('the other process closed the hand-over channel');
      }
      this.parts.push(r.payload.subarray(1));
      if (r.payload[0] === 1) {
        for (const f of r.fds) this.fp.closeFd(f); // fds only ride on a message's last packet
        continue;
      }
      const body = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
      this.parts = [];
      let msg: Message;
      try {
        msg = JSON.parse(body.toString('utf8')) as Message;
      } catch {
        for (const f of r.fds) this.fp.closeFd(f);
        throw new ChannelClosed('hand-over channel: malformed message');
      }
      if (typeof msg !== 'object' || msg === null || typeof msg.t !== 'string') {
        for (const f of r.fds) this.fp.closeFd(f);
        throw new ChannelClosed('hand-over channel: malformed message');
      }
      return { msg, fds: r.fds };
    }
  }

  /** Waits for a message of type `t` (others are errors); throws on timeout or EOF. */
  async expect(t: string, timeoutMs: number): Promise<Incoming> {
    const r = await this.recv(timeoutMs);
    if (r === null) throw new ChannelClosed(`hand-over: no "${t}" within ${timeoutMs} ms`);
    if (r.msg.t === 'error') {
      for (const f of r.fds) this.fp.closeFd(f);
      throw new ChannelClosed(`hand-over refused by the running process: ${String(r.msg.message)}`);
    }
    if (r.msg.t !== t) {
      for (const f of r.fds) this.fp.closeFd(f);
      throw new ChannelClosed(`hand-over: expected "${t}", got "${r.msg.t}"`);
    }
    return r;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.fp.closeFd(this.fd);
    } catch {
      /* already gone */
    }
  }
}
