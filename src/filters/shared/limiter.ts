/**
 * Rate-limit state in the cells every worker shares (./cells.ts), updated with Atomics only:
 * one limit holds for the whole process, whatever the number of workers. No locks, no
 * messages, nothing allocated per request.
 *
 * Token bucket (Envoy's local_ratelimit): cells [tokens, fill period]. The fill period is
 * floor(now / fill_interval) on the shared clock; the first worker that sees a new period
 * claims it (compareExchange) and adds tokens_per_fill per elapsed period, capped at
 * max_tokens; a request takes one token or is limited.
 *
 * Sliding window (Sentinel's QPS check, as MOSN's flowControlFilter runs it): two half-window
 * buckets [bucket number, count] x 2; a request passes when the counts of the current and the
 * previous bucket stay within the threshold. A bucket is reset by the worker that claims its
 * new number; a request counted by another worker in that instant may be lost from the
 * window (a rare extra pass, never a false rejection).
 */
import { allocCells, filterCellsThreaded, sharedCells, sharedNowMs } from './cells';

export const TOKEN_BUCKET_CELLS = 2;
export const WINDOW_CELLS = 4;

/** Main thread, at validation: a token bucket's cells (full at first allocation); -1 when exhausted. */
export function allocTokenBucket(key: string, maxTokens: number, fillIntervalMs: number): number {
  return allocCells(`tb:${key}:${maxTokens}:${fillIntervalMs}`, TOKEN_BUCKET_CELLS, (c, at) => {
    c[at] = maxTokens;
    c[at + 1] = Math.floor(sharedNowMs() / fillIntervalMs);
  });
}

/** Main thread, at validation: a sliding window's cells; -1 when exhausted. */
export function allocWindow(key: string): number {
  return allocCells(`win:${key}`, WINDOW_CELLS, (c, at) => {
    c[at] = -1;
    c[at + 2] = -1;
  });
}

/**
 * Takes a token: the tokens left after it (>= 0), or -1 when the bucket is empty.
 * `now` is sharedNowMs().
 */
export function takeToken(at: number, maxTokens: number, tokensPerFill: number, fillIntervalMs: number, now: number): number {
  return takeTokens(at, maxTokens, tokensPerFill, fillIntervalMs, now, 1);
}

/**
 * Takes up to `want` tokens at once (at least one): the bucket's tokens left after them (>= 0)
 * and the number taken in `taken.n`, or -1 (nothing taken) when the bucket is empty.
 */
function takeTokens(at: number, maxTokens: number, tokensPerFill: number, fillIntervalMs: number, now: number, want: number): number {
  if (!filterCellsThreaded()) return takeSolo(at, maxTokens, tokensPerFill, fillIntervalMs, now, want);
  const c = sharedCells();
  const period = Math.floor(now / fillIntervalMs);
  // Plain reads first (an Atomics call is a builtin call, ~200 instructions; a plain read of the
  // shared cells is one load): a stale period only sends this thread into the compareExchange
  // loop, which reads the current one; an empty bucket is confirmed by an Atomics.load below.
  let last = c[at + 1];
  while (period > last) {
    const prev = Atomics.compareExchange(c, at + 1, last, period);
    if (prev === last) {
      // This thread claimed the new period: it adds the tokens of the periods that passed.
      const add = Math.min(maxTokens, (period - last) * tokensPerFill);
      let t = Atomics.load(c, at);
      for (;;) {
        const nt = Math.min(maxTokens, t + add);
        const p = Atomics.compareExchange(c, at, t, nt);
        if (p === t) break;
        t = p;
      }
      break;
    }
    last = prev;
  }
  let t = c[at];
  if (t <= 0) t = Atomics.load(c, at);
  while (t > 0) {
    const n = t < want ? t : want;
    const p = Atomics.compareExchange(c, at, t, t - n);
    if (p === t) {
      taken.n = n;
      return t - n;
    }
    t = p;
  }
  return -1;
}

const taken = { n: 0 };

/** takeTokens when this thread alone writes the cells (cells.ts): plain arithmetic, the same steps. */
function takeSolo(at: number, maxTokens: number, tokensPerFill: number, fillIntervalMs: number, now: number, want: number): number {
  const c = sharedCells();
  const period = Math.floor(now / fillIntervalMs);
  const last = c[at + 1];
  if (period > last) {
    c[at + 1] = period;
    c[at] = Math.min(maxTokens, c[at] + Math.min(maxTokens, (period - last) * tokensPerFill));
  }
  const t = c[at];
  if (t <= 0) return -1;
  const n = t < want ? t : want;
  c[at] = t - n;
  taken.n = n;
  return t - n;
}

/**
 * A worker's lease on a shared token bucket: a small batch of tokens taken from the bucket at
 * once (threaded cells) and spent one per request with plain arithmetic, so that the bucket's
 * Atomics run once per batch rather than per request. A batch is 1 % of max_tokens (at least
 * one: small buckets stay exact); what a worker leased and did not spend when the fill period
 * ends is dropped, so the limit holds within 1 % per worker (the issue asks 10 %). One thread
 * alone (cells.ts): no lease, the bucket itself is plain arithmetic.
 */
export class TokenLease {
  /** Tokens leased and not spent. */
  private tokens = 0;
  /** The fill period they were leased in. */
  private period = -1;
  /** The bucket's tokens after the last batch (the remaining count a request is told). */
  private left = 0;
  private readonly batch: number;

  constructor(
    private readonly at: number,
    private readonly maxTokens: number,
    private readonly tokensPerFill: number,
    private readonly fillIntervalMs: number,
  ) {
    this.batch = Math.max(1, Math.floor(maxTokens / 100));
  }

  /** Takes a token: the tokens left (>= 0; leased ones included), or -1 when the bucket is empty. */
  take(now: number): number {
    if (!filterCellsThreaded()) return takeSolo(this.at, this.maxTokens, this.tokensPerFill, this.fillIntervalMs, now, 1);
    if (this.batch === 1) return takeTokens(this.at, this.maxTokens, this.tokensPerFill, this.fillIntervalMs, now, 1);
    if (this.tokens > 0 && Math.floor(now / this.fillIntervalMs) === this.period) return --this.tokens + this.left;
    const left = takeTokens(this.at, this.maxTokens, this.tokensPerFill, this.fillIntervalMs, now, this.batch);
    if (left < 0) {
      this.tokens = 0;
      return -1;
    }
    this.tokens = taken.n - 1;
    this.period = Math.floor(now / this.fillIntervalMs);
    this.left = left;
    return this.tokens + left;
  }
}

/** The tokens a bucket holds now (after a takeToken of this request). */
export function tokensLeft(at: number): number {
  return Atomics.load(sharedCells(), at);
}

/** Milliseconds until the bucket's next fill. */
export function msToNextFill(fillIntervalMs: number, now: number): number {
  return fillIntervalMs - (now % fillIntervalMs);
}

/**
 * Counts a request in a sliding window of `windowMs` (two buckets); false (and not counted)
 * when that would pass `threshold`.
 */
export function windowPass(at: number, threshold: number, windowMs: number, now: number): boolean {
  const c = sharedCells();
  const len = windowMs / 2;
  const cur = Math.floor(now / len);
  const mine = at + (cur & 1) * 2;
  const other = at + ((cur & 1) ^ 1) * 2;
  const seen = Atomics.load(c, mine);
  if (seen !== cur && Atomics.compareExchange(c, mine, seen, cur) === seen) Atomics.store(c, mine + 1, 0);
  const prev = Atomics.load(c, other) === cur - 1 ? Math.max(0, Atomics.load(c, other + 1)) : 0;
  if (prev >= threshold) return false;
  const n = Atomics.add(c, mine + 1, 1) + 1;
  if (n + prev > threshold) {
    Atomics.sub(c, mine + 1, 1);
    return false;
  }
  return true;
}
