/** Polling waits of the integration tests. */
import * as assert from 'node:assert/strict';

/** Polls every 25 ms until `pred` holds; the elapsed ms, or a failure after `limitMs`. */
export async function until(what: string, limitMs: number, pred: () => boolean | Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await pred()) return Date.now() - t0;
    if (Date.now() - t0 > limitMs) assert.fail(`${what}: not within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
