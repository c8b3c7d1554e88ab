// listenShared: pure-TS shared listening socket. A net.Server listens in the calling thread and
// its handle's fd is exposed so other worker threads can adopt it with listen({ fd }). There is
// no SO_REUSEPORT and no dup(2) here: the calling thread's server owns the fd, it also accepts
// connections itself (attach a 'connection' listener), and closing any server listening on the
// fd (including a worker's, or a worker exiting) closes it for everyone.
import * as net from 'node:net';
import type { SharedListen } from './types';

export function listenShared(host: string, port: number, backlog: number): Promise<SharedListen> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host, port, backlog }, () => {
      server.off('error', reject);
      const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
      const addr = server.address();
      if (typeof fd !== 'number' || fd < 0 || addr === null || typeof addr === 'string') {
        server.close();
        reject(new Error('listenShared: the server handle exposes no fd on this platform'));
        return;
      }
      resolve({ server, fd, port: addr.port });
    });
  });
}

export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
}
