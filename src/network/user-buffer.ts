/**
 * Reading a socket into a caller-owned buffer (Node's `onread` option) for sockets that Node
 * creates itself: net.Server hands out accepted sockets without that option. Node keeps the
 * option in two private symbols on the socket and tells the libuv handle to use the buffer;
 * we find those symbols once on a probe socket and do the same for accepted sockets.
 *
 * If a future Node changes this, `supported` is false and callers use 'data' events.
 */
import * as net from 'node:net';
import * as util from 'node:util';
import type { FdSocket } from './fd-socket';

export type ReadCallback = (nread: number, buf: Buffer) => boolean | void;

let kBuffer: symbol | undefined;
let kBufferCb: symbol | undefined;
{
  const probe = new net.Socket({ onread: { buffer: Buffer.alloc(1), callback: () => true } } as net.SocketConstructorOpts);
  for (const s of Object.getOwnPropertySymbols(probe)) {
    if (s.description === 'kBuffer') kBuffer = s;
    else if (s.description === 'kBufferCb') kBufferCb = s;
  }
  probe.destroy();
}

export const userBufferSupported = kBuffer !== undefined && kBufferCb !== undefined;

/**
 * Makes an accepted socket (created with pauseOnConnect) read into `buf` and call `cb`.
 * Must be called before the socket is resumed. Returns false when unsupported.
 */
export function installUserBuffer(socket: net.Socket, buf: Buffer, cb: ReadCallback): boolean {
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (b: Buffer) => void } })._handle;
  if (!userBufferSupported || handle === undefined || typeof handle.useUserBuffer !== 'function') return false;
  const s = socket as unknown as Record<symbol, unknown>;
  s[kBuffer as symbol] = buf;
  s[kBufferCb as symbol] = cb;
  handle.useUserBuffer(buf);
  return true;
}

/**
 * Whether `s` is an FdSocket (network/fd-socket.ts) standing in for a net.Socket, by its brand:
 * here, where every module that meets one can import it (fd-socket.ts imports connection.ts,
 * which imports tls/native.ts).
 */
export function isFdSocket(s: object): s is FdSocket {
  return (s as { fdSocket?: unknown }).fdSocket === true;
}

/** The OS file descriptor behind a connected socket, or -1. */
export function socketFd(socket: net.Socket): number {
  const h = (socket as unknown as { _handle?: { fd?: number } })._handle;
  return h !== undefined && typeof h.fd === 'number' ? h.fd : -1;
}

/**
 * Whether Node's handle of the socket is not reading and nothing it read waits in the socket:
 * created paused, never started (a client paused at 'connect'), or paused with a user buffer.
 */
export function handleIdle(socket: net.Socket): boolean {
  const h = (socket as unknown as { _handle?: { reading?: boolean } | null })._handle;
  return h !== undefined && h !== null && h.reading !== true && socket.readableLength === 0;
}

/** An Error like Node's system errors: "<syscall> ECONNRESET", with code, errno (negative) and syscall. */
export function systemError(syscall: string, errno: number): Error {
  let code: string;
  try {
    code = util.getSystemErrorName(-errno);
  } catch {
    code = `E${errno}`;
  }
  return Object.assign(new Error(`${syscall} ${code}`), { code, errno: -errno, syscall });
}
