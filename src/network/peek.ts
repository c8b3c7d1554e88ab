/**
 * Listener filters that look at a connection's first bytes (the TLS inspector, protocol
 * sniffing) read them here: from an accepted, paused socket, until `enough` says so, then the
 * bytes go back into the socket's readable buffer (paused) for whoever reads it next.
 */
import type * as net from 'node:net';

function noop(): void {}

/**
 * Reads `sock` until enough(buf) is true, puts the bytes back and calls onPeek(buf). A socket
 * that does not send enough within `timeoutMs`, or half-closes first (bytes cannot be put back
 * after the end), gets onGiveUp instead (once; the caller closes it).
 */
export function peekSocket(sock: net.Socket, timeoutMs: number, enough: (buf: Buffer) => boolean, onPeek: (buf: Buffer) => void, onGiveUp: () => void): void {
  sock.on('error', noop); // errors before the handoff end in 'close'
  let have: Buffer | null = null;
  const stop = (): void => {
    clearTimeout(timer);
    sock.off('data', onData);
    sock.off('close', onClose);
    sock.off('end', onEnd);
  };
  const giveUp = (): void => {
    stop();
    onGiveUp();
  };
  const timer = setTimeout(giveUp, timeoutMs);
  const onClose = (): void => stop();
  const onEnd = giveUp;
  const onData = (chunk: Buffer): void => {
    const buf: Buffer = have === null ? chunk : Buffer.concat([have, chunk]);
    have = buf;
    if (!enough(buf)) return;
    stop();
    sock.pause();
    sock.unshift(buf);
    onPeek(buf);
  };
  sock.once('close', onClose);
  sock.once('end', onEnd);
  sock.on('data', onData);
  sock.resume();
}
