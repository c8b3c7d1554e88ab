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

/**
 * Whether listening sockets may share their address with another process (SO_REUSEPORT): only
 * for a deliberate hand-over (hot upgrade), asked for with OUTRIGGER_REUSE_PORT=1 (or the CLI's
 * --reuse-port, which sets it). Default: a port held by any other socket is refused.
 */
export function reusePortRequested(): boolean {
  return process.env.OUTRIGGER_REUSE_PORT === '1';
}

/** host:port for messages ([v6]:port). */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** What a refused address message adds when sharing was not asked for. */
export function reusePortHint(): string {
  return reusePortRequested() ? '' : '; another process may hold it (OUTRIGGER_REUSE_PORT=1 shares it for a deliberate hand-over)';
}

/** Why a listen failed, in words (EADDRINUSE -> "address already in use"), without a stack. */
export function listenFailure(err: unknown): string {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  if (code === 'EADDRINUSE') return `address already in use${reusePortHint()}`;
  if (code === 'EADDRNOTAVAIL') return 'address not available on this host';
  if (code === 'EACCES') return 'permission denied (ports below 1024 need privileges)';
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
}
