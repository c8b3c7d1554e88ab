// Wraps the compiled addon (build/Release/outrigger_native.node) as a NativeBinding.
// The addon provides slab memory, writev, affinity and SO_REUSEPORT sockets; the chunk
// bookkeeping of the slab pool and listenShared are the shared TypeScript code.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { ChunkSlabPool } from './slab-pool';
import { listenShared } from './listen';
import { argRangeViews, rangeViews } from './fallback';
import type { ListenResult, ListenSocket, NativeBinding, NativeReadBinding, SpliceBinding, NativeTlsClient, NativeTlsConn, NativeTlsEngine, NativeTlsTickets, OriginalDstAddress, SlabPool, SlabPoolOptions, WritevArgs } from './types';

/** Raw functions exported by outrigger_native.node. */
export interface AddonExports {
  allocSlab(size: number): ArrayBuffer;
  slabMemoryKind(): 'mmap' | 'v8';
  pageSize(): number;
  writev(fd: number, bufs: readonly Uint8Array[], count: number): number;
  /** native/writev.cc (absent from builds older than it: writev with a view then). */
  writeRange?(fd: number, buf: Uint8Array, start: number, end: number): number;
  /** native/writev.cc (absent from builds older than it: writev with views then). */
  writevRanges?(fd: number, bufs: readonly Uint8Array[], starts: readonly number[], ends: readonly number[], count: number): number;
  /** native/writev.cc (absent from builds older than it: writev with views then). */
  writevArgs?: WritevArgs;
  /** native/addon.cc (absent from builds older than it). */
  singlePoll?(): boolean;
  pinThread(cpu: number): boolean;
  getThreadAffinity(): number[];
  listenReusePort(host: string, port: number, backlog: number): ListenResult;
  listenTcp(host: string, port: number, backlog: number, reusePort: boolean): ListenResult;
  dupFd(fd: number): number;
  closeFd(fd: number): void;
  /** native/origdst.cc (absent from builds older than it). */
  getOriginalDst?(fd: number): OriginalDstAddress | null;
  setTransparent?(fd: number): void;
  /** native/tls_tickets.cc (absent from builds older than it). */
  tlsTicketInit?(secret: Uint8Array, intervalMs: number): void;
  tlsContextTickets?(external: unknown, on: boolean): void;
  tlsTicketKey?(epoch: number): Buffer;
  tlsNumTickets?(external: unknown): number;
  /** native/tls_conn.cc. */
  TlsConn?: new (context: unknown, server: boolean, verify: number, alpn?: Uint8Array) => NativeTlsConn;
  tlsStatus?(): Int32Array;
  /** native/tls_client.cc (absent from builds older than it). */
  tlsClientSetup?(conn: NativeTlsConn, servername: string, alpn: Uint8Array | undefined, key: string): boolean;
  tlsClientForget?(context: unknown, key: string): void;
  tlsClientSessions?(context: unknown): number;
  tlsVerifyErrorString?(code: number): string;
  /** native/splice.cc (absent from builds older than it). */
  spliceSetCallback?(fn: (id: number, side: number, errno: number) => void): void;
  spliceStart?(fdA: number, fdB: number, state: Float64Array, counters: Float64Array, slots: readonly number[], pipeSize: number): number;
  spliceStop?(id: number): [Buffer | null, Buffer | null];
  /** native/read.cc (absent from builds older than it). */
  readSetup?(
    buffer: Buffer,
    state: Int32Array,
    fn: (id: number) => void,
    viaCallback?: boolean,
    ownPollAfter?: number,
    clock?: Float64Array,
  ): boolean | undefined;
  readNext?(): number;
  readWatch?(fd: number, owned?: boolean): number;
  readOnWritable?(fn: (id: number) => void): void;
  readWantWrite?(id: number): void;
  /** native/listen.cc native accept (absent from builds older than it). */
  acceptStart?(fd: number, fn: (fd: number, remoteAddress: string, remotePort: number, localAddress: string, localPort: number) => void): number;
  acceptStop?(id: number): void;
  shutdownWrite?(fd: number): void;
  connectTcp?(host: string, port: number): number;
  connectResult?(fd: number): number;
  socketName?(fd: number): [string, number];
  readPause?(id: number, paused: boolean): void;
  readClose?(id: number): void;
  readStats?(): number[];
  /** native/h1parse.cc (absent from builds older than it). */
  h1HeadSetup?(io: Int32Array): number;
  h1HeadParse?(ab: ArrayBufferLike, base: number, start: number, lim: number): number;
}

function readOf(a: AddonExports): NativeReadBinding | null {
  const { readSetup, readNext, readWatch, readPause, readClose, readStats } = a;
  if (readSetup === undefined || readNext === undefined || readWatch === undefined || readPause === undefined || readClose === undefined || readStats === undefined) return null;
  return { setup: readSetup, next: readNext, watch: readWatch, pause: readPause, close: readClose, stats: readStats, onWritable: a.readOnWritable, wantWrite: a.readWantWrite };
}

function tlsEngineOf(a: AddonExports): NativeTlsEngine | undefined {
  const { TlsConn, tlsStatus } = a;
  if (!TlsConn || !tlsStatus) return undefined;
  const { tlsClientSetup, tlsClientForget, tlsClientSessions, tlsVerifyErrorString } = a;
  const client: NativeTlsClient | undefined =
    tlsClientSetup && tlsClientForget && tlsClientSessions && tlsVerifyErrorString
      ? { setup: tlsClientSetup, forget: tlsClientForget, sessions: tlsClientSessions, verifyErrorString: tlsVerifyErrorString }
      : undefined;
  return { status: tlsStatus(), create: (context, server, verify, alpn) => new TlsConn(context, server, verify, alpn), client };
}

function tlsTicketsOf(a: AddonExports): NativeTlsTickets | undefined {
  const { tlsTicketInit, tlsContextTickets, tlsTicketKey, tlsNumTickets } = a;
  if (!tlsTicketInit || !tlsContextTickets || !tlsTicketKey || !tlsNumTickets) return undefined;
  return { init: tlsTicketInit, context: tlsContextTickets, key: tlsTicketKey, numTickets: tlsNumTickets };
}

function spliceOf(addon: AddonExports): SpliceBinding | null {
  const { spliceSetCallback, spliceStart, spliceStop } = addon;
  if (spliceSetCallback === undefined || spliceStart === undefined || spliceStop === undefined) return null;
  return { setCallback: spliceSetCallback, start: spliceStart, stop: spliceStop };
}

function rebuildNeeded(fn: string): Error {
  return Object.assign(new Error(`outrigger_native.node lacks ${fn}(): rebuild it (node scripts/build-native.js)`), { code: 'ENOSYS' });
}

const ADDON_FILE = path.join('build', 'Release', 'outrigger_native.node');

/** Finds the addon from src/native (ts) or dist/src/native (compiled js). */
export function addonPath(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const p = path.join(dir, ADDON_FILE);
    if (fs.existsSync(p)) return p;
    dir = path.dirname(dir);
  }
  return path.join(__dirname, '..', '..', '..', ADDON_FILE);
}

export function loadAddonBinding(): NativeBinding {
  const addon = createRequire(__filename)(addonPath()) as AddonExports;
  for (const fn of ['allocSlab', 'writev', 'pinThread', 'getThreadAffinity', 'listenReusePort', 'listenTcp', 'dupFd', 'closeFd'] as const) {
    if (typeof addon[fn] !== 'function') throw new Error(`outrigger_native.node lacks ${fn}(): rebuild it`);
  }
  return {
    kind: 'native',
    tlsTickets: tlsTicketsOf(addon),
    tlsEngine: tlsEngineOf(addon),
    splice: spliceOf(addon),
    read: readOf(addon),
    h1Head: addon.h1HeadSetup !== undefined && addon.h1HeadParse !== undefined ? { setup: addon.h1HeadSetup, parse: addon.h1HeadParse } : undefined,
    accept: addon.acceptStart !== undefined && addon.acceptStop !== undefined && addon.shutdownWrite !== undefined ? { start: addon.acceptStart, stop: addon.acceptStop, shutdownWrite: addon.shutdownWrite } : undefined,
    connect:
      addon.connectTcp !== undefined && addon.connectResult !== undefined && addon.socketName !== undefined
        ? { connect: addon.connectTcp, result: addon.connectResult, name: addon.socketName }
        : undefined,
    createSlabPool(opts: SlabPoolOptions): SlabPool {
      return new ChunkSlabPool(opts, (size) => addon.allocSlab(size), () => addon.slabMemoryKind());
    },
    writev: addon.writev,
    writeRange:
      addon.writeRange ??
      ((fd: number, buf: Uint8Array, start: number, end: number): number => addon.writev(fd, [buf.subarray(start, end)], 1)),
    writevRanges:
      addon.writevRanges ??
      ((fd: number, bufs: readonly Uint8Array[], starts: readonly number[], ends: readonly number[], count: number): number =>
        addon.writev(fd, rangeViews(bufs, starts, ends, count), count)),
    writevArgs:
      addon.writevArgs ??
      ((fd: number, count: number, ...args: unknown[]): number => {
        const views = argRangeViews(count, args);
        return addon.writev(fd, views, views.length);
      }),
    singlePoll: addon.singlePoll ?? ((): boolean => false),
    pinThread: addon.pinThread,
    getThreadAffinity: addon.getThreadAffinity,
    listenReusePort: addon.listenReusePort,
    listenTcp: addon.listenTcp,
    dupFd: addon.dupFd,
    closeFd: addon.closeFd,
    getOriginalDst: addon.getOriginalDst ?? (() => {
      throw rebuildNeeded('getOriginalDst');
    }),
    setTransparent: addon.setTransparent ?? (() => {
      throw rebuildNeeded('setTransparent');
    }),
    listenShared,
    async openListenSocket(host: string, port: number, backlog: number): Promise<ListenSocket> {
      const r = addon.listenReusePort(host, port, backlog);
      let open = true;
      return {
        fd: r.fd,
        port: r.port,
        owner: 'native',
        close: async () => {
          if (open) {
            open = false;
            addon.closeFd(r.fd);
          }
        },
      };
    },
  };
}
