/**
 * The addon's fd-passing primitives (native/fdpass.cc), or the reason they are missing.
 * Node itself cannot hand a file descriptor to an unrelated process (its IPC channel passes
 * handles only to a child it forked), so without the addon no hot upgrade is possible: every
 * entry point says so with `HANDOVER_IMPOSSIBLE`.
 */
import { createRequire } from 'node:module';
import { addonPath } from '../native/addon';

export interface Received {
  readonly payload: Buffer;
  readonly fds: number[];
  readonly eof: boolean;
}

export interface FdPass {
  fdListen(path: string, backlog: number): number;
  fdAccept(fd: number): number;
  fdConnect(path: string): number;
  fdSend(fd: number, payload: Buffer, fds: readonly number[], timeoutMs: number): number;
  fdRecv(fd: number, timeoutMs: number): Received | null;
  closeFd(fd: number): void;
  dupFd(fd: number): number;
  /** The connected peer's uid and pid (SO_PEERCRED); absent in an addon built before it (src/upgrade/peer.ts falls back). */
  fdPeerCred?(fd: number): { uid: number; pid: number };
}

export const HANDOVER_IMPOSSIBLE =
  'hot upgrade impossible: passing listening sockets and connections to another process needs the native addon ' +
  '(build/Release/outrigger_native.node with fdpass; Node alone cannot send file descriptors between unrelated processes)';

let cached: FdPass | string | undefined;

/** The primitives, or a one-line reason why the hand-over cannot happen in this process. */
export function fdPass(): FdPass | string {
  if (cached !== undefined) return cached;
  const mode = (process.env.OUTRIGGER_NATIVE ?? 'auto').trim().toLowerCase();
  if (mode === '0') return (cached = `${HANDOVER_IMPOSSIBLE}; OUTRIGGER_NATIVE=0 disables it`);
  try {
    const a = createRequire(__filename)(addonPath()) as Partial<FdPass>;
    for (const fn of ['fdListen', 'fdAccept', 'fdConnect', 'fdSend', 'fdRecv', 'closeFd', 'dupFd'] as const) {
      if (typeof a[fn] !== 'function') return (cached = `${HANDOVER_IMPOSSIBLE}; the addon lacks ${fn}() (rebuild it: node scripts/build-native.js)`);
    }
    cached = a as FdPass;
  } catch (e) {
    cached = `${HANDOVER_IMPOSSIBLE}; the addon did not load (${(e instanceof Error ? e.message : String(e)).split('\n')[0]})`;
  }
  return cached;
}
