/**
 * What a data plane (src/worker/worker.ts) talks to: its init data, its message port to the
 * main thread, and how it ends.
 *
 *   worker thread (several workers, or --worker-threads):  workerData, parentPort, process.exit
 *                                                           (which ends the thread only)
 *   one-isolate mode (src/worker/inline.ts, one worker):    the same init, an in-process channel
 *                                                           with the same messages, and an exit
 *                                                           that ends the data plane, not the process
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { MainToWorker, WorkerInit, WorkerToMain } from './messages';

/** The part of a MessagePort the data plane uses. */
export interface DataPlanePort {
  postMessage(m: WorkerToMain): void;
  on(event: 'message', fn: (m: MainToWorker) => void): unknown;
}

export interface DataPlaneHost {
  readonly init: WorkerInit;
  readonly port: DataPlanePort;
  /** True in one-isolate mode: log destinations and process-wide state belong to the main thread too. */
  readonly inline: boolean;
  /** Ends the data plane (a thread: process.exit; one-isolate: tells the main side it exited). */
  exit(code: number): void;
}

let inlineHost: DataPlaneHost | null = null;

/** One-isolate mode: the host of the data plane running on the main thread (null once it ended). */
export function setInlineHost(h: DataPlaneHost | null): void {
  inlineHost = h;
}

/** This data plane's host; throws on a main thread without a one-isolate data plane. */
export function dataPlaneHost(): DataPlaneHost {
  if (inlineHost !== null) return inlineHost;
  if (isMainThread || parentPort === null) throw new Error('worker.ts runs in a worker thread or inline (src/worker/inline.ts)');
  const port = parentPort;
  return { init: workerData as WorkerInit, port, inline: false, exit: (code) => process.exit(code) };
}

/** Log settings of the data plane of this thread (worker thread or one-isolate mode); null elsewhere (tests, tools). */
export function dataPlaneLogInit(): Pick<WorkerInit, 'logLevel' | 'logPath' | 'workerId'> | null {
  if (inlineHost !== null) return inlineHost.init;
  const wd = workerData as Partial<WorkerInit> | null | undefined;
  if (isMainThread || !wd || typeof wd.logPath !== 'string') return null;
  return { logLevel: wd.logLevel ?? 'info', logPath: wd.logPath, workerId: wd.workerId ?? 0 };
}
