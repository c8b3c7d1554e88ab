/**
 * Request timeouts without a timer per request: a hashed timer wheel per worker thread.
 *
 * Entries are intrusive (the pending request object carries its own links), so arming and
 * disarming a deadline allocate nothing and cost O(1). One timer, set for the first tick whose
 * slot holds an entry, sweeps the wheel; after a sweep it is set again for the next non-empty
 * slot, or not at all when the wheel is empty. Disarming never touches the timer: when the
 * entry it waited for was answered, it fires once for nothing and looks further. So requests
 * answered well within their timeout (the common case) cost no timer work at all: at a low
 * request rate, where the wheel empties between requests, the worker is not woken every tick
 * nor is a timer created and cleared per request. Deadlines fire up to TICK_MS (plus the event
 * loop's lateness) late, never early.
 *
 *   slot = ceil(deadline / TICK_MS) mod SLOTS; a sweep visits the slots whose tick has passed
 *   and fires the entries that are due (entries more than one turn ahead stay for later turns).
 *   The first non-empty slot after the current tick is a lower bound of the earliest deadline
 *   (an entry one or more turns ahead shares its slot with nearer ticks): the timer may wake
 *   early for such an entry, then sweeps nothing and looks again.
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
  /**
   * Bit s of busy[s >> 5] set: slot s holds an entry. A sweep after a quiet spell and the look
   * for the next deadline step over 32 empty slots at a time (a timer that fires once per
   * timeout at a low request rate used to load every slot since the last sweep, hundreds).
   */
  private readonly busy = new Int32Array(SLOTS >> 5);
  private count = 0;
  /** The last tick swept (the next sweep starts there). */
  private lastTick = Math.floor(Date.now() / TICK_MS);
  private timer: NodeJS.Timeout | null = null;
  /** The tick the timer is set for (while timer !== null). */
  private timerTick = 0;
  private readonly fire = (): void => {
    this.timer = null;
    const now = Date.now();
    this.sweep(now);
    this.schedule(Math.floor(now / TICK_MS));
  };

  get size(): number {
    return this.count;
  }

  /** Whether the timer is set (tests). */
  get timerSet(): boolean {
    return this.timer !== null;
  }

  arm(e: DeadlineEntry, deadline: number): void {
    if (e.deadline !== 0) this.disarm(e);
    e.deadline = deadline;
    // A deadline already due goes to the slot the next sweep visits first.
    const t = Math.max(Math.ceil(deadline / TICK_MS), this.lastTick);
    const slot = t & MASK;
    e.dlSlot = slot;
    e.dlPrev = null;
    const head = this.heads[slot];
    e.dlNext = head;
    if (head !== null) head.dlPrev = e;
    else this.busy[slot >> 5] |= 1 << (slot & 31);
    this.heads[slot] = e;
    this.count++;
    // Requests with the same timeout arm later ticks than the one the timer waits for: nothing to do.
    if (this.timer === null || t < this.timerTick) this.setTimer(t);
  }

  disarm(e: DeadlineEntry): void {
    if (e.deadline === 0) return;
    e.deadline = 0;
    if (e.dlPrev !== null) e.dlPrev.dlNext = e.dlNext;
    else {
      const slot = e.dlSlot;
      this.heads[slot] = e.dlNext;
      if (e.dlNext === null) this.busy[slot >> 5] &= ~(1 << (slot & 31));
    }
    if (e.dlNext !== null) e.dlNext.dlPrev = e.dlPrev;
    e.dlPrev = e.dlNext = null;
    this.count--;
  }

  /** Fires every entry whose deadline is <= now (exposed for tests with a fake clock). */
  sweep(now: number): void {
    const nowTick = Math.floor(now / TICK_MS);
    let from = this.lastTick;
    // After a long stall, one full turn visits every slot.
    if (nowTick - from >= SLOTS) from = nowTick - SLOTS + 1;
    for (let t = this.nextBusy(from, nowTick); t >= 0 && this.count > 0; t = this.nextBusy(t + 1, nowTick)) {
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
    if (nowTick > this.lastTick) this.lastTick = nowTick;
  }

  /** After a sweep at `nowTick`: the timer for the first non-empty slot ahead (every entry left is due after nowTick). */
  private schedule(nowTick: number): void {
    if (this.count === 0) return;
    const t = this.nextBusy(nowTick + 1, nowTick + SLOTS);
    if (t >= 0 && (this.timer === null || t < this.timerTick)) this.setTimer(t);
  }

  /** The first tick of [t, last] whose slot holds an entry (busy), or -1. */
  private nextBusy(t: number, last: number): number {
    const busy = this.busy;
    while (t <= last) {
      const slot = t & MASK;
      const w = busy[slot >> 5] >>> (slot & 31); // this slot's bit and the ones above it in its word
      if (w !== 0) {
        const found = t + 31 - Math.clz32(w & -w); // the lowest set bit
        return found <= last ? found : -1;
      }
      t += 32 - (slot & 31);
    }
    return -1;
  }

  private setTimer(t: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerTick = t;
    // A Timeout object when the wheel goes from empty (timer fired) to busy, or for an earlier
    // deadline than the one waited for: not per request while requests share a timeout.
    this.timer = setTimeout(this.fire, Math.max(1, t * TICK_MS - Date.now()));
    this.timer.unref();
  }
}

let wheel: DeadlineWheel | undefined;

/** This thread's wheel. */
export function deadlines(): DeadlineWheel {
  if (wheel === undefined) wheel = new DeadlineWheel();
  return wheel;
}
