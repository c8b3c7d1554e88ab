/**
 * The requests pending on one upstream connection, by the request id the pool gave them: an
 * array whose size is a power of two, indexed by the id's low bits. The pool picks ids itself
 * (a counter per connection), so it skips an id whose slot is taken (sendable ids are
 * plentiful) instead of chaining: get, set and delete are one array access, allocate nothing,
 * and never rehash (a Map whose size goes 0, 1, 0, 1 at a low request rate rebuilds its table
 * every few requests). The table doubles when it is half full, so an id with a free slot is
 * always near; two ids in distinct slots stay distinct after doubling.
 */
export interface IdEntry {
  upId: number;
}

const INITIAL = 16;

export class IdTable<T extends IdEntry> {
  private slots: (T | null)[] = new Array<T | null>(INITIAL).fill(null);
  private mask = INITIAL - 1;
  /** Where takeAny looks first. */
  private scan = 0;
  size = 0;

  /** Whether `id` can be given to a new entry (its slot is empty). */
  free(id: number): boolean {
    return this.slots[id & this.mask] === null;
  }

  get(id: number): T | undefined {
    const e = this.slots[id & this.mask];
    return e !== null && e.upId === id ? e : undefined;
  }

  /** Adds `e` under e.upId, whose slot must be free(). */
  set(e: T): void {
    this.slots[e.upId & this.mask] = e;
    if (++this.size * 2 > this.slots.length) this.grow();
  }

  /** Removes the entry under `id`; false when there is none. */
  delete(id: number): boolean {
    const i = id & this.mask;
    const e = this.slots[i];
    if (e === null || e.upId !== id) return false;
    this.slots[i] = null;
    this.size--;
    return true;
  }

  /** Removes and returns any one entry (null when empty): for failing everything on close (O(slots) for all of them). */
  takeAny(): T | null {
    if (this.size === 0) {
      this.scan = 0;
      return null;
    }
    const s = this.slots;
    for (let n = 0; n < s.length; n++) {
      const i = (this.scan + n) & this.mask;
      const e = s[i];
      if (e !== null) {
        s[i] = null;
        this.size--;
        this.scan = i + 1;
        return e;
      }
    }
    return null;
  }

  private grow(): void {
    const old = this.slots;
    // Doubling happens while in-flight requests grow (never per request once the size is reached).
    const next = new Array<T | null>(old.length * 2).fill(null);
    const mask = next.length - 1;
    for (let i = 0; i < old.length; i++) {
      const e = old[i];
      if (e !== null) next[e.upId & mask] = e;
    }
    this.slots = next;
    this.mask = mask;
  }
}
