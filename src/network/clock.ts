/**
 * One clock read per loop iteration's reads instead of one per read and per request.
 *
 * The native read path delivers every read of a loop iteration in one JS call (onNativeBatch in
 * connection.ts); the batch's time is read once at its start and lent here until it returns.
 * Everything that stamps activity or request times while that call runs (a connection's last
 * read, the proxy's idle and request clocks, the upstream pool's last read and request start)
 * takes the lent value: a clock read costs 50-200 ns where the clock source is not the vDSO's,
 * and at a low request rate a request is alone in its iteration, so several reads per request
 * were several clock reads. The lent time is at most one batch old (one chunk's worth of reads,
 * well under a millisecond); outside a batch (timers, connect events, Node's own reads) nowMs()
 * is Date.now().
 *
 * Where the batch's time comes from: the addon writes it into `batchClock` before each call
 * (native/read.cc WriteClock: the same clock and rounding as Date.now()), and the loan copies it
 * into a double field. Date.now() instead is a builtin call that returns a new heap number every
 * time (a time since the epoch is not a small integer): ~20 bytes and a C++ call per wakeup
 * (docs/rpc-low-rate.md, session 13). A double field (`loan.ms`, not a module variable: V8 boxes
 * a double stored in a module variable) holds it without allocating; nowMs() is small enough to be
 * inlined where it is stored, so its callers' double fields take it unboxed too. An addon built
 * before the clock (setup returned no `true`) lends Date.now() as before.
 */

/** The batch's time, written by the addon before each batch call (readSetup's clock array). */
export const batchClock = new Float64Array(1);

/** The loan: ms >= 0 while a batch runs. A double field from the start (-0.5, not -1: no small-integer field to generalize). */
const loan = { ms: -0.5 };

/** Date.now(), or the time lent by the read batch being processed. */
export function nowMs(): number {
  const ms = loan.ms;
  return ms >= 0 ? ms : Date.now();
}

/**
 * Starts a read batch's loan: the addon's time from batchClock when `fromAddon`, else Date.now().
 * Returns the previous loan (to restore, for nested calls).
 */
export function lendBatchClock(fromAddon: boolean): number {
  const prev = loan.ms;
  loan.ms = fromAddon ? batchClock[0] : Date.now();
  return prev;
}

/** Ends a loan (restoring `prev` from lendBatchClock). */
export function endBatchClock(prev: number): void {
  loan.ms = prev;
}
