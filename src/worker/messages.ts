/** Messages between the main thread and worker threads (structured-cloned, never per request). */
import type { OutriggerConfig, LogLevel } from '../config/types';
import type { EncodedHistogram } from '../stats/histograms';
import type { StatsLayoutData } from '../stats/layout';

export interface WorkerInit {
  readonly workerId: number;
  /** CPU to pin to, or -1. */
  readonly cpu: number;
  readonly statsSab: SharedArrayBuffer;
  /** Process-wide overload counters (src/overload/manager.ts), shared by every worker. */
  readonly overloadSab?: SharedArrayBuffer;
  readonly logLevel: LogLevel;
  readonly logPath: string;
}

/** How a worker gets a listener's socket. */
export type ListenSpec =
  | { readonly kind: 'fd'; readonly fd: number }
  | { readonly kind: 'bind'; readonly host: string; readonly port: number; readonly backlog: number };

export type MainToWorker =
  | { readonly type: 'config'; readonly version: number; readonly config: OutriggerConfig; readonly layout: StatsLayoutData; readonly listen: Readonly<Record<string, ListenSpec>> }
  | { readonly type: 'drain'; readonly graceMs: number }
  | { readonly type: 'stop' }
  /** Ship the unshipped latency histograms now (the admin is answering a stats request). */
  | { readonly type: 'flush-histograms'; readonly seq: number }
  /** Test hook (OUTRIGGER_TEST_HOOKS=1): throw an uncaught exception. */
  | { readonly type: 'crash' };

export type WorkerToMain =
  | { readonly type: 'bound'; readonly listener: string; readonly fd: number; readonly port: number }
  | { readonly type: 'applied'; readonly version: number; readonly pinned: boolean; readonly cpu: number; readonly ioMode: string; readonly nativeKind: string }
  | { readonly type: 'config-error'; readonly version: number; readonly message: string }
  | { readonly type: 'drained' }
  /** Latency histogram deltas (every second when something changed; seq > 0 answers a flush). */
  | { readonly type: 'histograms'; readonly seq: number; readonly items: readonly EncodedHistogram[] };
