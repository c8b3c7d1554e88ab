/**
 * The worker-thread half of connection migration (hot upgrade).
 *
 * Old process, `migrate-out`: every few ms each listener's connections are offered to their
 * handler's migrate(): a Bolt/Dubbo session with no request in flight and nothing left to write
 * answers with its unread bytes. The socket is then duplicated (the dup goes to the main thread,
 * which sends it to the new process) and this thread's copy is closed: close(2) of one of two
 * descriptors sends nothing to the peer, so the client sees no close.
 *
 * New process, `adopt`: the fd becomes a net.Socket served by the listener of the same name
 * (its filter chain of this process's config), the unread bytes first.
 */
import * as net from 'node:net';
import type { NetworkFilterFactory } from '../filters/network/types';
import { HttpProxyFactory } from '../http/filter';
import { native } from '../native';
import { connectionOf, startHandingOver, stopHandingOver } from '../network/connection';
import type { WorkerListener } from '../network/listener';
import { RpcProxyFactory } from '../proxy/proxy';
import type { ListenSpec, WorkerToMain } from '../worker/messages';

const SCAN_MS = 5;

let scanner: NodeJS.Timeout | null = null;

/** Starts handing over every migratable connection as soon as it is between requests. */
export function startMigrateOut(listeners: ReadonlyMap<string, WorkerListener>, send: (m: WorkerToMain) => void): void {
  if (scanner !== null) return;
  startHandingOver(); // the listener drain that follows leaves idle RPC connections to this scanner
  const scan = (): void => {
    for (const [name, wl] of listeners) {
      for (const t of wl.connections()) {
        const conn = connectionOf(t.outer);
        // TLS connections stay and drain: their session state lives in this process.
        if (conn === undefined || conn.state !== 'open' || conn.fd < 0 || conn.tlsInfo !== null) continue;
        const h = conn.currentHandler;
        if (h.migrate === undefined || conn.socket.readableLength > 0 || conn.socket.writableLength > 0) continue;
        const unread = h.migrate(conn);
        if (unread === null) continue;
        let fd: number;
        try {
          fd = native.dupFd(conn.fd);
        } catch {
          continue; // fd limit: it stays here and drains
        }
        t.moved = true; // not a destroy: the new process counts it as adopted
        conn.destroy();
        send({ type: 'migrate-conn', listener: name, fd, unread: new Uint8Array(unread) });
      }
    }
  };
  scan();
  scanner = setInterval(scan, SCAN_MS);
  scanner.unref();
}

/** Serves a handed-over connection; false when no listener of that name runs here (the fd is closed). */
export function adoptConnection(listeners: ReadonlyMap<string, WorkerListener>, name: string, fd: number, unread: Uint8Array): boolean {
  const wl = listeners.get(name);
  if (wl === undefined) {
    native.closeFd(fd);
    return false;
  }
  // pauseOnCreate: what net.Server does with pauseOnConnect (the listener resumes the socket).
  const socket = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true, pauseOnCreate: true } as net.SocketConstructorOpts);
  wl.adopt(socket, Buffer.from(unread.buffer, unread.byteOffset, unread.byteLength));
  return true;
}

/**
 * Old process, the new one died before the old one was done (`resume`): stops handing over,
 * undoes the drain (factories stop closing after each response; the grace timer is cancelled,
 * so nothing still here is cut) and accepts again on the main thread's sockets.
 */
export async function resumeServing(listeners: ReadonlyMap<string, WorkerListener>, listen: Readonly<Record<string, ListenSpec>>): Promise<void> {
  if (scanner !== null) clearInterval(scanner);
  scanner = null;
  stopHandingOver();
  for (const [name, spec] of Object.entries(listen)) {
    const wl = listeners.get(name);
    const fd = spec.kind === 'fd' ? spec.fd : null;
    if (wl === undefined) {
      if (fd !== null) native.closeFd(fd);
      continue;
    }
    await wl.resume(fd, undrain).catch(() => {
      if (fd !== null) native.closeFd(fd);
    });
  }
}

/** A factory's drain flag back to serving (the goodbyes it already sent stay sent). */
function undrain(f: NetworkFilterFactory): void {
  if (f instanceof RpcProxyFactory) f.draining = false;
  else if (f instanceof HttpProxyFactory) f.env.draining = false;
}
