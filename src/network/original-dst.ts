/**
 * Transparent interception, listener side: the original destination of an accepted connection
 * and the hand-off to the listener at that address (Envoy use_original_dst, MOSN
 * use_original_dst + the original_dst listener filter).
 *
 *   iptables REDIRECT / TPROXY ──> capture listener (e.g. 0.0.0.0:15001, use_original_dst)
 *     read the original destination: REDIRECT -> SO_ORIGINAL_DST (native addon),
 *                                     TPROXY   -> the socket's local address
 *     listener at that exact ip:port ─┐
 *     else one at 0.0.0.0:port / [::]:port (127.0.0.1:port with fallback_to_local)
 *     ─> that listener accepts it as its own (its chains, TLS, stats; bind_port false is fine)
 *     none ─> the capture listener's own chains (Istio: passthrough / blackhole)
 *
 * The original destination is recorded per socket: Connection.localAddress/localPort,
 * filter_chain_match (destination_port, prefix_ranges), tcp_proxy routes, access logs and
 * ORIGINAL_DST clusters (src/upstream/original-dst.ts) all see it instead of the capture port.
 * A connection whose destination was not read has none: an ORIGINAL_DST cluster then has no
 * host for it (a direct connection to the capture port would otherwise loop back into it).
 */
import * as net from 'node:net';
import type { ListenerConfig, OriginalDstMode } from '../config/types';
import { native } from '../native';
import { socketFd } from './user-buffer';

export interface OriginalDst {
  /** Plain IP text (IPv4-mapped IPv6 shown as IPv4). */
  readonly host: string;
  readonly port: number;
}

/**
 * Original destinations read by listeners, by socket (the raw one, and its TLS socket once
 * terminated) and by the socket's handle: an HTTP/2 session's `socket` is a Proxy of the
 * socket (another identity) whose `_handle` is the socket's own.
 */
const recorded = new WeakMap<object, OriginalDst>();

function handleOf(s: net.Socket): object | null {
  const h = (s as unknown as { _handle?: object | null })._handle;
  return typeof h === 'object' && h !== null ? h : null;
}

function record(s: net.Socket, d: OriginalDst): void {
  recorded.set(s, d);
  const h = handleOf(s);
  if (h !== null) recorded.set(h, d);
}

function plainIp(addr: string): string {
  return addr.startsWith('::ffff:') && net.isIPv4(addr.slice(7)) ? addr.slice(7) : addr;
}

/** The original destination a listener read for `socket`; null when none was read. */
export function originalDstOf(socket: net.Socket): OriginalDst | null {
  const d = recorded.get(socket);
  if (d !== undefined) return d;
  const h = handleOf(socket);
  return h !== null ? (recorded.get(h) ?? null) : null;
}

/** A socket wrapping `from` (the TLS socket of a terminated chain) has its original destination. */
export function inheritOriginalDst(to: net.Socket, from: net.Socket): void {
  const d = originalDstOf(from);
  if (d !== null) record(to, d);
}

/** Error text when a listener needs what this process cannot do ('' = fine). */
export function originalDstUnavailable(config: ListenerConfig): string {
  if (native.kind === 'native') return '';
  if (config.transparent === true && config.bindPort) {
    return `listener ${config.name}: a transparent listening socket (TPROXY: "transparent", use_original_dst "tproxy") needs the native addon (setsockopt IP_TRANSPARENT is not available from Node): build it with node scripts/build-native.js`;
  }
  if (config.originalDst !== 'redirect') return '';
  return `listener ${config.name}: the original destination of REDIRECTed connections (use_original_dst / original_dst "redirect") needs the native addon (getsockopt SO_ORIGINAL_DST is not available from Node): build it with node scripts/build-native.js, or intercept with TPROXY ("tproxy")`;
}

/**
 * Reads and records the original destination of an accepted socket of a listener on
 * `listenPort`. null: not intercepted (no NAT, or a TPROXY'd connection to the capture port
 * itself), or it cannot be read; the connection then keeps its own local address.
 */
export function readOriginalDst(socket: net.Socket, mode: OriginalDstMode, listenPort: number): OriginalDst | null {
  let d: OriginalDst | null = null;
  if (mode === 'tproxy') {
    const a = socket.localAddress;
    const p = socket.localPort;
    // A connection to the capture port itself was not intercepted (see the REDIRECT case).
    if (a !== undefined && p !== undefined && p !== listenPort) d = { host: plainIp(a), port: p }; // one per connection
  } else {
    const fd = socketFd(socket);
    if (fd < 0) return null;
    try {
      const r = native.getOriginalDst(fd);
      // Conntrack answers for connections that were not NATed too (their own local address):
      // those were not intercepted; proxying them to "their original destination" would loop.
      if (r !== null && !(r.port === socket.localPort && plainIp(r.address) === plainIp(socket.localAddress ?? ''))) {
        d = { host: plainIp(r.address), port: r.port }; // one per connection
      }
    } catch {
      return null; // socket gone (EBADF, ENOTCONN): it closes on its own
    }
  }
  if (d !== null) record(socket, d);
  return d;
}

/**
 * Makes a listener's listening socket transparent when its config asks (main thread, right
 * after the socket is made); the error names the listener and the cause (EPERM: no CAP_NET_ADMIN).
 */
export function prepareListenSocket(config: ListenerConfig, fd: number): void {
  if (config.transparent !== true) return;
  try {
    native.setTransparent(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new Error(`listener ${config.name}: cannot make the listening socket transparent (IP_TRANSPARENT for TPROXY): ${code === 'EPERM' ? 'EPERM (needs CAP_NET_ADMIN)' : code}`, { cause: e });
  }
}

/** What the directory needs of a worker's listener. */
export interface DirectoryEntry {
  readonly config: ListenerConfig;
  readonly accepting: boolean;
}

const V4_ANY = '0.0.0.0';
const V6_ANY = '::';

function key(host: string, port: number): string {
  return `${host}|${port}`;
}

/**
 * The listeners of one worker by address, for the hand-off. Rebuilt lazily after a listener
 * is added, removed or swapped (not per connection).
 */
export class ListenerDirectory<T extends DirectoryEntry> {
  private readonly members = new Set<T>();
  private byAddress: Map<string, T> | null = null;

  add(l: T): void {
    this.members.add(l);
    this.byAddress = null;
  }

  remove(l: T): void {
    this.members.delete(l);
    this.byAddress = null;
  }

  /** A member's config changed (its address may have). */
  changed(): void {
    this.byAddress = null;
  }

  private index(): Map<string, T> {
    if (this.byAddress !== null) return this.byAddress;
    const m = new Map<string, T>();
    for (const l of this.members) {
      const a = l.config.address;
      const k = key(plainIp(a.host === '' ? V4_ANY : a.host), a.port);
      if (!m.has(k)) m.set(k, l);
    }
    this.byAddress = m;
    return m;
  }

  /**
   * The listener for original destination `d`, other than `self`: the exact ip:port, else the
   * wildcard of the port (the family's any address, then the other's; `fallbackToLocal`:
   * 127.0.0.1 instead, as MOSN's fallback_to_local). null: none (or only `self`, or not accepting).
   */
  find(d: OriginalDst, self: T, fallbackToLocal: boolean): T | null {
    const m = this.index();
    const usable = (l: T | undefined): l is T => l !== undefined && l !== self && l.accepting;
    const exact = m.get(key(d.host, d.port));
    if (usable(exact)) return exact;
    if (fallbackToLocal) {
      const local = m.get(key('127.0.0.1', d.port));
      return usable(local) ? local : null;
    }
    const v6 = net.isIPv6(d.host);
    const first = m.get(key(v6 ? V6_ANY : V4_ANY, d.port));
    if (usable(first)) return first;
    // A dual-stack [::]:port listener takes IPv4 destinations too (Linux bindv6only=0).
    const second = v6 ? undefined : m.get(key(V6_ANY, d.port));
    return usable(second) ? second : null;
  }
}
