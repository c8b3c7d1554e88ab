/**
 * One-isolate mode: the data plane of a one-worker sidecar runs on the main thread instead of
 * a worker thread, which saves the second V8 isolate and a second copy of every module
 * (~25 MB of idle RSS; numbers in the README).
 *
 * InlineWorker looks like a node:worker_threads Worker to src/server.ts (postMessage, the
 * 'message' / 'exit' / 'error' events, terminate) and hands src/worker/worker.ts the same
 * messages through src/worker/host.ts instead of parentPort. Messages keep the semantics of a
 * MessagePort: structured-cloned when posted (no object is shared between the two sides) and
 * delivered in order in a later macrotask, never inside the sender's call.
 *
 * What differs from a thread: an uncaught exception in the data plane is a process crash (the
 * process's supervisor, systemd or the kubelet, restarts it; with several workers, or
 * --worker-threads, the main thread restarts a crashed worker itself); and ending the data plane
 * (drain, stop) closes what it opened instead of relying on the thread's end. One data plane per
 * process runs inline; src/server.ts starts another sidecar's in a thread.
 */
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { setInlineHost, type DataPlaneHost } from './host';
import type { MainToWorker, WorkerInit, WorkerToMain } from './messages';

const WORKER_FILE = path.join(__dirname, 'worker.js');

/** What src/server.ts uses of a data plane: a node:worker_threads Worker, or an InlineWorker. */
export interface WorkerHandle {
  postMessage(m: MainToWorker): void;
  on(event: 'message', fn: (m: WorkerToMain) => void): unknown;
  on(event: 'error', fn: (e: Error) => void): unknown;
  on(event: 'exit', fn: (code: number) => void): unknown;
  once(event: 'exit', fn: (code: number) => void): unknown;
  off(event: 'message', fn: (m: WorkerToMain) => void): unknown;
  off(event: 'exit', fn: (code: number) => void): unknown;
  terminate(): Promise<number>;
}

let active: InlineWorker | null = null;

/** True when no data plane runs inline in this process (a second sidecar then uses a thread). */
export function inlineAvailable(): boolean {
  return active === null;
}

/** Starts the data plane on this thread (throws when one runs here already: see inlineAvailable). */
export function startInline(init: WorkerInit): InlineWorker {
  if (active !== null) throw new Error('a data plane already runs on the main thread');
  const w = new InlineWorker();
  active = w;
  w.load(init);
  return w;
}

export class InlineWorker extends EventEmitter {
  private exited = false;
  /** The data plane's side of the channel: main -> data plane messages. */
  private readonly inbox = new EventEmitter();

  /** Loads src/worker/worker.ts with this worker's host (startInline). */
  load(init: WorkerInit): void {
    const host: DataPlaneHost = {
      init,
      inline: true,
      port: {
        postMessage: (m: WorkerToMain) => this.deliver(this, m),
        on: (event, fn) => this.inbox.on(event, fn),
      },
      exit: (code) => this.ended(code),
    };
    setInlineHost(host);
    try {
      // A fresh module instance per data plane: its state (listeners, clusters, timers) is its own.
      delete require.cache[WORKER_FILE];
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require(WORKER_FILE);
    } catch (e) {
      // As a thread whose module fails to load: 'error', then 'exit' (the start is refused).
      setImmediate(() => this.emit('error', e instanceof Error ? e : new Error(String(e))));
      this.ended(1);
    }
  }

  postMessage(m: MainToWorker): void {
    if (!this.exited) this.deliver(this.inbox, m);
  }

  /**
   * A data plane that did not end within the caller's wait (release): its listeners were closed
   * by the stop message already; the main side forgets it.
   */
  terminate(): Promise<number> {
    this.ended(1);
    return Promise.resolve(1);
  }

  private deliver(to: EventEmitter, m: MainToWorker | WorkerToMain): void {
    // Cloned at post time, as a MessagePort does (once per control message, never per request).
    const copy = structuredClone(m);
    setImmediate(() => {
      if (to === this.inbox && this.exited) return;
      to.emit('message', copy);
    });
  }

  private ended(code: number): void {
    if (this.exited) return;
    this.exited = true;
    active = null; // only one InlineWorker is loaded at a time (startInline)
    setInlineHost(null);
    // After the messages it posted before ending (same queue).
    setImmediate(() => this.emit('exit', code));
  }
}
