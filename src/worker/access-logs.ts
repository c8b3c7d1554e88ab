/**
 * A worker's access-log writers, one per (listener, path, format): a reload that changes a
 * listener's access_logs gets a new writer at once, and the old one is closed once no
 * snapshot uses it any more (after the drain time: connections of the old snapshot still log).
 */
import { createAccessLog, type AccessLogWriter } from '../log';

export class AccessLogCache {
  private readonly writers = new Map<string, AccessLogWriter>();
  /** Writers no snapshot uses, with their close timers (cancelled when a snapshot uses them again). */
  private readonly closing = new Map<AccessLogWriter, NodeJS.Timeout>();

  get(listener: string, path: string, format: string | undefined): AccessLogWriter {
    const key = `${listener}\u0000${path}\u0000${format ?? ''}`;
    let w = this.writers.get(key);
    if (w === undefined) {
      w = createAccessLog({ path, format, listenerName: listener });
      this.writers.set(key, w);
    }
    const t = this.closing.get(w);
    if (t !== undefined) {
      clearTimeout(t);
      this.closing.delete(w);
    }
    return w;
  }

  /** Writers outside `used` are closed after `afterMs` (0: now). */
  retain(used: ReadonlySet<AccessLogWriter>, afterMs: number): void {
    for (const [key, w] of this.writers) {
      if (used.has(w) || this.closing.has(w)) continue;
      const close = (): void => {
        this.closing.delete(w);
        if (this.writers.get(key) === w) this.writers.delete(key);
        void w.close();
      };
      if (afterMs <= 0) {
        close();
        continue;
      }
      const t = setTimeout(close, afterMs);
      t.unref();
      this.closing.set(w, t);
    }
  }

  get size(): number {
    return this.writers.size;
  }
}
