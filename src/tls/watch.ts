/**
 * Certificate file watching for hot reload. Polls the files' stat (fs.watchFile): robust to
 * the usual rotation by rename (cert-manager, kubelet secret volumes swap a symlink), cheap
 * (one stat per file per interval per worker), and it never keeps the process alive.
 *
 * Changes are settled for a short delay before `onChange` runs, so a cert and key written
 * one after the other are picked up together rather than as a mismatched pair.
 */
import * as fs from 'node:fs';

/** Poll interval; OUTRIGGER_TLS_WATCH_MS overrides it (tests use a short one). */
function pollMs(): number {
  const v = Number(process.env.OUTRIGGER_TLS_WATCH_MS);
  return Number.isFinite(v) && v >= 10 ? v : 1000;
}

export class FileWatcher {
  private readonly paths: string[];
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly listener = (cur: fs.Stats, prev: fs.Stats): void => {
    if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size && cur.ino === prev.ino) return;
    this.schedule();
  };

  constructor(
    paths: Iterable<string>,
    private readonly onChange: () => void,
    private readonly settleMs = 200,
  ) {
    this.paths = [...new Set(paths)];
    const interval = pollMs();
    for (const p of this.paths) {
      const w = fs.watchFile(p, { interval, persistent: false }, this.listener);
      w.unref();
    }
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.closed) this.onChange();
    }, this.settleMs);
    this.timer.unref();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const p of this.paths) fs.unwatchFile(p, this.listener);
  }
}
