/** Messages between the main thread and worker threads (structured-cloned, never per request). */
import type { ClusterConfig, OutriggerConfig, LogLevel } from '../config/types';
import type { ResourceVersions } from '../config/versions';
import type { EncodedHistogram } from '../stats/histograms';
import type { StatsLayoutData } from '../stats/layout';

export interface WorkerInit {
  readonly workerId: number;
  /** CPU to pin to, or -1. */
  readonly cpu: number;
  readonly statsSab: SharedArrayBuffer;
  /** Circuit-breaker usage of all workers, and this worker's share (src/upstream/breakers.ts). */
  readonly breakerSab: SharedArrayBuffer;
  readonly breakerOwnSab: SharedArrayBuffer;
  /** Process-wide overload counters (src/overload/manager.ts), shared by every worker. */
  readonly overloadSab?: SharedArrayBuffer;
  /** Host health shared by every thread (src/upstream/health/shared.ts). */
  readonly healthSab?: SharedArrayBuffer;
  /** Rate-limit buckets and filter counters shared by every worker (src/filters/shared/cells.ts). */
  readonly filterSab?: SharedArrayBuffer;
  readonly logLevel: LogLevel;
  readonly logPath: string;
  /** V8's memory reducer is deferred in this process: the data plane's thread collects when idle (src/startup-memory.ts). */
  readonly idleCollection?: boolean;
}

/** How a worker gets a listener's socket. */
export type ListenSpec =
  | { readonly kind: 'fd'; readonly fd: number }
  | { readonly kind: 'bind'; readonly host: string; readonly port: number; readonly backlog: number }
  /** bind_port false: no socket; the listener gets connections only by hand-off (use_original_dst). */
  | { readonly kind: 'none' };

/**
 * Config versions, two-phase (src/server.ts reload):
 *   main -> every worker: prepare(v)   the worker builds snapshot v beside the running one
 *   worker -> main:       prepared(v) | prepare-error(v, path, message)
 *   main -> every worker: commit(v)    all prepared: listen on new listeners, install, swap (all or nothing:
 *                                      a worker whose commit fails keeps v prepared and the running one)
 *                         abort(v)     one failed: drop it, keep serving the running version
 *   worker -> main:       applied(v) | config-error(v)
 *   main -> every worker: settle(v)    all applied: drain removed listeners and retired filter chains
 *                         rollback(v)  a commit failed: workers that applied v run the previous version again
 * `config` builds and commits at once: a worker's first snapshot (start, restart after a crash),
 * always the main thread's committed version.
 */
export type MainToWorker =
  | { readonly type: 'config'; readonly version: number; readonly config: OutriggerConfig; readonly versions: ResourceVersions; readonly layout: StatsLayoutData; readonly listen: Readonly<Record<string, ListenSpec>>; readonly drainTimeMs: number }
  | { readonly type: 'prepare'; readonly version: number; readonly config: OutriggerConfig | ConfigDelta; readonly versions: ResourceVersions; readonly layout: StatsLayoutData; readonly drainTimeMs: number }
  | { readonly type: 'commit'; readonly version: number; readonly listen: Readonly<Record<string, ListenSpec>> }
  | { readonly type: 'abort'; readonly version: number }
  | { readonly type: 'settle'; readonly version: number }
  | { readonly type: 'rollback'; readonly version: number }
  | { readonly type: 'drain'; readonly graceMs: number }
  /** Hot upgrade: the new process died; accept again on these sockets and keep every connection (cancels a drain whose listeners are not all done). */
  | { readonly type: 'resume'; readonly listen: Readonly<Record<string, ListenSpec>> }
  | { readonly type: 'stop' }
  /** Ship the unshipped latency histograms now (the admin is answering a stats request). */
  | { readonly type: 'flush-histograms'; readonly seq: number }
  /** Test hook (OUTRIGGER_TEST_HOOKS=1): throw an uncaught exception. */
  | { readonly type: 'crash' }
  /** Hot upgrade (src/upgrade): hand every Bolt/Dubbo connection over once between requests / serve one handed over. */
  | { readonly type: 'migrate-out' }
  | { readonly type: 'adopt'; readonly listener: string; readonly fd: number; readonly unread: Uint8Array };

/**
 * A new config as the changes to the worker's running one (version `base`): a push of one
 * changed cluster clones that cluster, not thousands (src/worker/delta.ts).
 */
export interface ConfigDelta {
  readonly kind: 'delta';
  /** The version the worker must be running. */
  readonly base: number;
  readonly rest: Omit<OutriggerConfig, 'clusters' | 'raw'>;
  /** New and changed clusters, and the names of the removed ones. */
  readonly clusters: readonly ClusterConfig[];
  readonly removedClusters: readonly string[];
}

export type WorkerToMain =
  | { readonly type: 'bound'; readonly listener: string; readonly fd: number; readonly port: number }
  | { readonly type: 'applied'; readonly version: number; readonly pinned: boolean; readonly cpu: number; readonly ioMode: string; readonly nativeKind: string }
  | { readonly type: 'config-error'; readonly version: number; readonly message: string }
  /** Built; `rebuilt` names what was made anew (the rest was reused from the running snapshot). */
  | { readonly type: 'prepared'; readonly version: number; readonly rebuilt: { readonly listeners: readonly string[]; readonly clusters: readonly string[] } }
  | { readonly type: 'prepare-error'; readonly version: number; readonly message: string }
  /** `cut`: connections still open at the end of the grace period, closed. */
  | { readonly type: 'drained'; readonly cut?: number }
  /** Hot upgrade: a connection let go of (fd is a dup the main thread sends on and closes). */
  | { readonly type: 'migrate-conn'; readonly listener: string; readonly fd: number; readonly unread: Uint8Array }
  /** Latency histogram deltas (every second when something changed; seq > 0 answers a flush). */
  | { readonly type: 'histograms'; readonly seq: number; readonly items: readonly EncodedHistogram[] };
