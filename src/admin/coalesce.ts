/**
 * Admin isolation: expensive admin work (asking every worker to ship its histograms, summing
 * every stats slot, rendering JSON or Prometheus text) runs at most once per `minIntervalMs`,
 * however many clients poll, and every answer is still fresh: a caller gets the result of a
 * run that STARTED AFTER its call. Calls that arrive while a run is scheduled share it; a call
 * that arrives during a run (which started before it) waits for the next one.
 *
 *   t ──call A──┬── run 1 (A) ─────────┐            (run 1 started at A's call)
 *               │   call B, C arrive ──┼── wait until run1.start + minInterval ── run 2 (B, C)
 *
 * So N pollers cost at most 1000 / minIntervalMs runs per second, and a test that reads stats
 * after sending traffic still sees that traffic.
 */
export class FreshCoalescer<T> {
  private lastStart = Number.NEGATIVE_INFINITY;
  /** The next run, scheduled and not started yet: whoever calls now can share it. */
  private scheduled: Promise<T> | null = null;
  /** Runs started (tests). */
  runs = 0;

  constructor(
    private readonly produce: () => T | Promise<T>,
    readonly minIntervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    if (this.scheduled !== null) return this.scheduled;
    const wait = this.lastStart + this.minIntervalMs - this.now();
    if (wait <= 0) return this.start();
    const p = new Promise<T>((resolve, reject) => {
      // Not unref'd: callers are waiting on it (and it is at most minIntervalMs away).
      setTimeout(() => {
        this.scheduled = null;
        this.start().then(resolve, reject);
      }, wait);
    });
    this.scheduled = p;
    return p;
  }

  private start(): Promise<T> {
    this.lastStart = this.now();
    this.runs++;
    try {
      return Promise.resolve(this.produce());
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
