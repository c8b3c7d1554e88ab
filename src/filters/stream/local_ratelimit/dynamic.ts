/**
 * Dynamic descriptors of `local_ratelimit` (Envoy semantics): a listed descriptor with a blank
 * entry value matches every value of that entry, and each distinct request descriptor it matches
 * gets a token bucket of its own, made on first use; at most `max_dynamic_descriptors` (20) are
 * held, the least recently used one is replaced by a new one (its count starts full again).
 *
 * The buckets live in the cells every worker shares (../../shared/cells.ts), so a limit holds
 * for the process as the static buckets do: a table of `max` slots per dynamic descriptor, each
 * [id, tokens, fill period, last use]; id is a 32-bit FNV-1a hash of the request descriptor's
 * text (0: free). Two distinct descriptors with the same hash would share a bucket (about one
 * chance in 2^32 per pair). A slot is claimed with compareExchange on its id; two workers that
 * meet the same new descriptor in the same instant may each claim a slot (one of them is then
 * evicted first): never a false rejection of a descriptor that had tokens.
 */
import { allocCells, sharedCells } from '../../shared/cells';
import { TOKEN_BUCKET_CELLS } from '../../shared/limiter';

const SLOT = 2 + TOKEN_BUCKET_CELLS;
const ID = 0;
const TB = 1; // the token bucket's cells (tokens, fill period), as limiter.ts reads them
const USED = 1 + TOKEN_BUCKET_CELLS;

export const DEFAULT_MAX_DYNAMIC_DESCRIPTORS = 20;

/** Main thread, at validation: a table of `max` slots; -1 when the shared cells are exhausted. */
export function allocDynamicTable(key: string, max: number): number {
  return allocCells(`dyn:${key}`, max * SLOT, () => {});
}

/** The descriptor text's id (never 0). */
export function descriptorId(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h === 0 ? 1 : h | 0;
}

/**
 * The token bucket (cell index for takeToken) of descriptor `id` in the table at `at`: its slot,
 * or the free / least recently used slot, claimed and filled to `maxTokens`. `now`: sharedNowMs().
 */
export function dynamicBucket(at: number, max: number, id: number, maxTokens: number, fillIntervalMs: number, now: number): number {
  const c = sharedCells();
  const stamp = Math.floor(now / 8) | 0; // 8 ms steps: an int32 lasts for months
  for (let attempt = 0; attempt < 3; attempt++) {
    let lru = at;
    let lruUsed = Infinity;
    for (let i = 0, s = at; i < max; i++, s += SLOT) {
      const sid = Atomics.load(c, s + ID);
      if (sid === id) {
        Atomics.store(c, s + USED, stamp);
        return s + TB;
      }
      const used = sid === 0 ? -Infinity : Atomics.load(c, s + USED);
      if (used < lruUsed) {
        lruUsed = used;
        lru = s;
      }
    }
    const old = Atomics.load(c, lru + ID);
    if (Atomics.compareExchange(c, lru + ID, old, id) === old) {
      Atomics.store(c, lru + TB, maxTokens);
      Atomics.store(c, lru + TB + 1, Math.floor(now / fillIntervalMs));
      Atomics.store(c, lru + USED, stamp);
      return lru + TB;
    }
    // Another worker claimed that slot meanwhile: look again (it may be this descriptor's now).
  }
  return -1;
}
