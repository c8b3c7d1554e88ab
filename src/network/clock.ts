/**
 * One clock read per loop iteration's reads instead of one per read and per request.
 *
 * The native read path delivers every read of a loop iteration in one JS call (onNativeBatch in
 * connection.ts); it reads Date.now() once at its start and lends it here until it returns.
 * Everything that stamps activity or request times while that call runs (a connection's last
 * read, the proxy's idle and request clocks, the upstream pool's last read and request start)
 * takes the lent value: a clock read costs 50-200 ns where the clock source is not the vDSO's,
 * and at a low request rate a request is alone in its iteration, so several reads per request
 * were several clock reads. The lent time is at most one batch old (one chunk's worth of reads,
 * well under a millisecond); outside a batch (timers, connect events, Node's own reads) nowMs()
 * is Date.now().
 */

let batchMs = -1;

/** Date.now(), or the time lent by the read batch being processed. */
export function nowMs(): number {
  return batchMs >= 0 ? batchMs : Date.now();
}

/** Starts a read batch's loan: returns the previous one (to restore, for nested calls). */
export function lendBatchClock(): number {
  const prev = batchMs;
  batchMs = Date.now();
  return prev;
}

/** Ends a loan (restoring `prev` from lendBatchClock). */
export function endBatchClock(prev: number): void {
  batchMs = prev;
}
