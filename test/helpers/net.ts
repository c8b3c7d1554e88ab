/** Small TCP peers for tests: echo, byte source/sink with hashing, and a deterministic data stream. */
import * as crypto from 'node:crypto';
import * as net from 'node:net';

/** Listens on 127.0.0.1:0 with a deep accept queue (Node's default 511 overflows under 5,000 connects). */
export function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => resolve((server.address() as net.AddressInfo).port)));
}

export function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Echo server that half-closes when its peer does. */
export async function echoServer(): Promise<{ server: net.Server; port: number; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  return { server, port: await listen(server), sockets };
}

/** Deterministic pseudo-random block; the stream is the block repeated with a counter stamped in. */
export function makeStream(total: number, seed: number): { next(): Buffer | null } {
  const block = crypto.createHash('sha512').update(String(seed)).digest();
  const chunk = Buffer.alloc(256 * 1024);
  for (let i = 0; i < chunk.length; i += block.length) block.copy(chunk, i);
  let sent = 0;
  let n = 0;
  return {
    next() {
      if (sent >= total) return null;
      const len = Math.min(chunk.length, total - sent);
      const b = Buffer.from(chunk.subarray(0, len));
      b.writeUInt32BE(n++ >>> 0, 0);
      b.writeUInt32BE(seed >>> 0, Math.min(4, len - 4));
      sent += len;
      return b;
    },
  };
}

/** Writes a stream to a socket honoring backpressure, hashing what was sent; ends the socket when done. */
export function pump(sock: net.Socket, total: number, seed: number, endAfter = true): Promise<string> {
  const h = crypto.createHash('sha1');
  const src = makeStream(total, seed);
  return new Promise((resolve, reject) => {
    sock.on('error', reject);
    const go = (): void => {
      for (;;) {
        const b = src.next();
        if (b === null) {
          if (endAfter) sock.end();
          resolve(h.digest('hex'));
          return;
        }
        h.update(b);
        if (!sock.write(b)) {
          sock.once('drain', go);
          return;
        }
      }
    };
    go();
  });
}

/** Hashes everything read from a socket until its end. */
export function drainHash(sock: net.Socket): Promise<{ hash: string; bytes: number }> {
  const h = crypto.createHash('sha1');
  let bytes = 0;
  return new Promise((resolve, reject) => {
    sock.on('data', (d: Buffer) => {
      bytes += d.length;
      h.update(d);
    });
    sock.on('end', () => resolve({ hash: h.digest('hex'), bytes }));
    sock.on('error', reject);
  });
}

export function connect(port: number, opts: net.NetConnectOpts | Record<string, unknown> = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true, ...opts } as net.NetConnectOpts, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Resolves when the peer has closed its side (FIN or reset) or the socket is gone. */
export function waitPeerClose(sock: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (sock.destroyed || sock.readableEnded) return resolve();
    sock.once('end', () => resolve());
    sock.once('close', () => resolve());
    sock.once('error', () => resolve());
  });
}

export function waitClose(sock: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (sock.destroyed) return resolve();
    sock.once('close', () => resolve());
  });
}
