/**
 * The live entries of a per-connection registry (a listener's connections, the TLS handshakes in
 * progress): an array with swap-remove, each entry keeping its index.
 *
 * Not a Map or Set, on purpose. V8 (Node 20) rehashes a Map/Set's table every few dozen changes
 * when entries come and go all the time, and the replaced table keeps a link to its successor
 * (for iterators) along with the entries it held. Once one of those tables is in the old
 * generation (any mark-compact promotes the table in use), the chain of its successors and
 * every entry they held survive each scavenge until the next mark-compact: every connection's
 * objects were copied and promoted (the tls-handshake bench: about 60 % of the young generation
 * survived each scavenge, a mark-compact every ~2,600 handshakes). An array's replaced backing
 * store links to nothing, and pop() leaves no reference behind.
 */
export interface Slotted {
  /** Index in its SlotList, -1 when in none (set by the list). */
  slot: number;
}

export class SlotList<T extends Slotted> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  add(t: T): void {
    t.slot = this.items.length;
    this.items.push(t);
  }

  /** Removes t (no-op when it is not in the list). */
  remove(t: T): void {
    const i = t.slot;
    const items = this.items;
    if (i < 0 || items[i] !== t) return;
    const last = items.pop() as T;
    if (last !== t) {
      items[i] = last;
      last.slot = i;
    }
    t.slot = -1;
  }

  /** A copy of the entries: the caller may remove entries (destroy their sockets) while it iterates. */
  values(): T[] {
    return this.items.slice();
  }
}
