/**
 * Request timeouts without a timer per request: a hashed timer wheel per worker thread.
 *
 * Entries are intrusive (the pending request object carries its own links), so arming and
 * disarming a deadline allocate nothing and cost O(1). One interval timer sweeps the wheel
 * every TICK_MS while at least one deadline is armed, and stops when none is: an idle worker
 * is never woken. Deadlines fire up to TICK_MS late, never early.
 *
 *   slot = ceil(deadline / TICK_MS) mod SLOTS; a sweep visits the slots whose tick has passed
 *   and fires the entries that are due (entries more than one turn ahead stay for later turns).
 */

export interface DeadlineEntry {
  /** Absolute time (ms, Date.now() clock) the entry fires at; 0 when not armed. */
  deadline: number;
  dlPrev: DeadlineEntry | null;
  dlNext: DeadlineEntry | null;
  dlSlot: number;
  /** Called once when the deadline passes (the entry is already disarmed). */
  onDeadline(now: number): void;
}

export const TICK_MS = 5;
const SLOTS = 1024; // 5.12 s per turn
const MASK = SLOTS - 1;

export class DeadlineWheel {
  private readonly heads: (DeadlineEntry | null)[] = new Array<DeadlineEntry | null>(SLOTS).fill(null);
  private count = 0;
  private lastTick = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly sweepFn = (): void => this.sweep(Date.now());

  get size(): number {
    return this.count;
  }

  arm(e: DeadlineEntry, deadline: number): void {
    if (e.deadline !== 0) this.disarm(e);
    e.deadline = deadline;
    if (this.count === 0) this.lastTick = Math.floor(Date.now() / TICK_MS);
    // A deadline already due goes to the slot the next sweep visits first.
    const t = Math.max(Math.ceil(deadline / TICK_MS), this.lastTick);
    const slot = t & MASK;
    e.dlSlot = slot;
    e.dlPrev = null;
    const head = this.heads[slot];
    e.dlNext = head;
    if (head !== null) head.dlPrev = e;
    this.heads[slot] = e;
    if (this.count++ === 0) {
      this.timer = setInterval(this.sweepFn, TICK_MS);
      this.timer.unref();
    }
  }

  disarm(e: DeadlineEntry): void {
    if (e.deadline === 0) return;
    e.deadline = 0;
    if (e.dlPrev !== null) e.dlPrev.dlNext = e.dlNext;
    else this.heads[e.dlSlot] = e.dlNext;
    if (e.dlNext !== null) e.dlNext.dlPrev = e.dlPrev;
    e.dlPrev = e.dlNext = null;
    if (--this.count === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** Fires every entry whose deadline is <= now (exposed for tests with a fake clock). */
  sweep(now: number): void {
    const nowTick = Math.floor(now / TICK_MS);
    let from = this.lastTick;
    // After a long stall, one full turn visits every slot.
    if (nowTick - from >= SLOTS) from = nowTick - SLOTS + 1;
    for (let t = from; t <= nowTick && this.count > 0; t++) {
      let e = this.heads[t & MASK];
      while (e !== null) {
        const next = e.dlNext;
        if (e.deadline <= now) {
          this.disarm(e);
          e.onDeadline(now);
        }
        e = next;
      }
    }
    this.lastTick = nowTick;
  }
}

let wheel: DeadlineWheel | undefined;

/** This thread's wheel. */
export function deadlines(): DeadlineWheel {
  if (wheel === undefined) wheel = new DeadlineWheel();
  return wheel;
}
