/**
 * Retiring filter chains after a listener change (src/network/listener.ts WorkerListener.retire).
 * A chain the new runtime kept (same ChainRuntime object: its version key did not move, see
 * src/worker/snapshot.ts) is not touched, nor are its live connections. Every connection of a
 * chain that changed or went away is drained:
 *   - at once, its protocol's goodbye through the chain's filter factories (onDrain): HTTP/1.1
 *     answers its in-flight request with `Connection: close` and closes, HTTP/2 sends GOAWAY
 *     and finishes its open streams, Bolt/Dubbo finish their in-flight requests then close;
 *   - after the drain time, whatever is still open is closed (TCP proxy connections included:
 *     TCP has no goodbye of its own).
 */
import type * as net from 'node:net';
import type { ChainRuntime, ListenerRuntime } from './listener';

interface TrackedConnection {
  readonly outer: net.Socket;
  readonly chain: ChainRuntime | null;
}

/** Chains of `replaced` runtimes that `current` does not have. */
export function retiredChains(current: ListenerRuntime, replaced: readonly ListenerRuntime[]): Set<ChainRuntime> {
  const kept = new Set(current.chains);
  const out = new Set<ChainRuntime>();
  for (const rt of replaced) for (const c of rt.chains) if (!kept.has(c)) out.add(c);
  return out;
}

export function retireChains(current: ListenerRuntime, replaced: readonly ListenerRuntime[], tracked: { values(): Iterable<TrackedConnection> }, drainMs: number): void {
  const retired = retiredChains(current, replaced);
  if (retired.size === 0) return;
  const liveTls = new Set(current.chains.map((c) => c.tls));
  for (const c of retired) {
    if (c.tls !== null && !liveTls.has(c.tls)) c.tls.close(); // live TLS connections keep their context
    for (const st of c.built.stages) st.factory.onDrain?.();
  }
  // Also for connections still in a listener filter under the old runtime: they reach a retired chain later.
  const timer = setTimeout(() => {
    for (const t of tracked.values()) if (t.chain !== null && retired.has(t.chain)) t.outer.destroy();
  }, drainMs);
  timer.unref();
}
