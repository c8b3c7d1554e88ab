/**
 * Kernel-side forwarding for tcp_proxy sessions (native/splice.cc): once a session has moved
 * `after` bytes through the JS path and both sockets are plain and idle (nothing queued, no
 * half-close yet), its bytes go socket -> pipe -> socket with splice(2) and never reach JS.
 * Nothing but tcp_proxy sees a tcp_proxy session's bytes (access logs only count them), so every
 * plaintext session qualifies; TLS sockets (stream mode) stay on the JS path.
 *
 * The pair returns to the JS path ("unsplice": the pipes' bytes are written through the
 * Connection, reading resumes) when it ends by itself (both FINs forwarded, or a socket error,
 * which is then raised on that connection), when either socket is closed by other code (drain,
 * idle timeout, stop), and for a hot-upgrade migration. Half-close, resets and closes therefore
 * run through the session's ordinary handlers, as on the JS path.
 *
 * Environment (read once per thread):
 *   OUTRIGGER_SPLICE        0 = never splice; 1 or auto (default) = when the addon has it
 *   OUTRIGGER_SPLICE_AFTER  bytes a session moves through JS before it is spliced (default 256 KiB:
 *                           request/response traffic of small messages stays on the JS path)
 *   OUTRIGGER_SPLICE_PIPE   pipe size per direction, bytes (default 64 KiB, the kernel's default: larger pipes
 *                           did not lower CPU per GiB; 0 = leave the kernel's size)
 */
import { native, type SpliceBinding } from '../../../native';
import { systemError } from '../../../network/user-buffer';

export interface SpliceSettings {
  readonly binding: SpliceBinding;
  readonly after: number;
  readonly pipeSize: number;
}

/** What a session needs from the pair registry. */
export interface SpliceOwner {
  /** The pair stopped by itself: side 0 = downstream, 1 = upstream; errno 0 = both FINs forwarded. */
  onSpliceEnd(side: number, errno: number): void;
  /** Runs the deferred check whether the session can switch to splice now. */
  trySplice(): void;
  /** Something threw while switching or unsplicing: close the session's connections with it. */
  abort(err: Error): void;
}

function envBytes(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name}: "${v}" is not a byte count (a non-negative integer)`);
  return n;
}

function settings(): SpliceSettings | null {
  const mode = (process.env.OUTRIGGER_SPLICE ?? 'auto').trim().toLowerCase();
  if (mode !== '0' && mode !== '1' && mode !== 'auto' && mode !== '') throw new Error(`OUTRIGGER_SPLICE must be 0, 1 or auto, got ${mode}`);
  const binding = native.splice;
  if (mode === '0' || binding === null) return null;
  return { binding, after: envBytes('OUTRIGGER_SPLICE_AFTER', 256 * 1024), pipeSize: envBytes('OUTRIGGER_SPLICE_PIPE', 64 * 1024) };
}

/** null: sessions never splice (no addon, OUTRIGGER_NATIVE=0, OUTRIGGER_SPLICE=0). */
export const splicing: SpliceSettings | null = settings();

const owners = new Map<number, SpliceOwner>();

/** Runs fn (a per-session closure, once per switch or end, not per read); a throw closes that session only. */
function guarded(o: SpliceOwner, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    o.abort(e instanceof Error ? e : new Error(String(e)));
  }
}

if (splicing !== null) {
  splicing.binding.setCallback((id, side, errno) => {
    const o = owners.get(id);
    if (o !== undefined) guarded(o, () => o.onSpliceEnd(side, errno));
  });
}

export function registerPair(id: number, owner: SpliceOwner): void {
  owners.set(id, owner);
}

export function unregisterPair(id: number): void {
  owners.delete(id);
}

/** Number of pairs forwarding in the kernel on this thread now. */
export function splicedPairs(): number {
  return owners.size;
}

// Sessions waiting for their switch check: one setImmediate for all of them, after the current
// reads' writes were flushed (a switch needs both write queues empty).
let checks: SpliceOwner[] = [];
let checkScheduled = false;

function runChecks(): void {
  const list = checks;
  checks = [];
  checkScheduled = false;
  for (const o of list) guarded(o, () => o.trySplice());
}

export function scheduleSpliceCheck(o: SpliceOwner): void {
  checks.push(o);
  if (!checkScheduled) {
    checkScheduled = true;
    setImmediate(runChecks);
  }
}

/** The Error a failed splice raises on its connection (like Node's: "read ECONNRESET"). */
export function spliceError(errno: number): Error {
  return systemError('splice', errno);
}

/** Whether Node still reads the socket (then its bytes would race the kernel's splice). */
export function handleReading(socket: object): boolean {
  const h = (socket as { _handle?: { reading?: boolean } | null })._handle;
  return h === undefined || h === null || h.reading !== false;
}
