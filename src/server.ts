/**
 * The main thread: loads the config, creates listening sockets, starts and supervises the
 * pinned worker threads, pushes immutable config snapshots to them, runs the admin server,
 * and drains on SIGTERM. It never touches a data-path connection.
 */
import { overloadSharedBuffer } from './overload/manager';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ListenerConfig, LogLevel, OutriggerConfig } from './config/types';
import { redactConfig } from './config/redact';
import { ConfigError } from './config/errors';
import { versionResources, type ResourceVersions } from './config/versions';
import { native } from './native';
import { hostPort, listenFailure, reusePortHint, reusePortRequested } from './native/listen';
import { prepareListenSocket } from './network/original-dst';
import { StatsLayout } from './stats/layout';
import { StatsHub } from './stats/aggregate';
import { startAdmin } from './admin/server';
import { allowedCpus } from './worker/cpus';
import { createLogger, flushLogger, logFatalSync, logSynchronously, type Logger } from './log';
import { newBreakerBuffer, releaseWorkerShare } from './upstream/breakers';
import { HealthService } from './upstream/health/service';
import { faultToleranceOf } from './filters/stream/fault_tolerance/config';
import { healthTable } from './upstream/health/shared';
import { filterCellsBuffer, publishFilterCounters, shareFilterCellsWithThreads } from './filters/shared/cells';
import { rpcMetricsJson, rpcMetricsPrometheus } from './filters/stream/dubbo_stream/rpc-metrics';
import type { ListenSpec, MainToWorker, WorkerInit, WorkerToMain } from './worker/messages';
import { assignStats, checkBuild, releaseStats } from './worker/snapshot';
import { shareTicketSecret } from './tls/tickets';
import { configDelta, withoutRaw } from './worker/delta';
import { inlineAvailable, startInline, type InlineWorker, type WorkerHandle } from './worker/inline';
import './extensions';
import { memoryReducerDeferred } from './startup-memory';

export interface SidecarOptions {
  readonly config: OutriggerConfig;
  /** Overrides servers[0].processor. */
  readonly workers?: number;
  readonly logLevel?: LogLevel;
  /** Overrides the admin port (0 = any free port); tests use it. */
  readonly adminPort?: number;
  readonly listenBacklog?: number;
  /** Hot upgrade (src/upgrade): listening fds received from the old process, by listener name; used instead of binding. */
  readonly inherited?: ReadonlyMap<string, { readonly fd: number; readonly port: number }>;
  /** Hot upgrade: the admin server starts later (startAdmin()), once the old process released its port. */
  readonly deferAdmin?: boolean;
  /** config_dump's body instead of the running config's `raw` (xDS: live versions and NACKs). */
  readonly configDump?: () => unknown;
  /** An extra readiness condition for /ready (xDS: the first CDS and LDS responses were handled). */
  readonly ready?: () => boolean;
  /**
   * Drain time of a reload: connections of changed or removed filter chains (and of removed
   * listeners) get their protocol's goodbye at once and are closed after it. Default: the
   * config's servers[0].graceful_timeout (30 s), the time MOSN gives a listener it stops.
   */
  readonly drainTimeMs?: number;
  /**
   * Run the data plane in a worker thread even with one worker (default: one worker runs on the
   * main thread, src/worker/inline.ts; OUTRIGGER_WORKER_THREADS=1 asks the same).
   */
  readonly threads?: boolean;
}

/** Options of one reload (the second argument of Sidecar.reload). */
export interface ReloadOptions {
  /** Overrides the drain time for this reload (see SidecarOptions.drainTimeMs). */
  readonly drainTimeMs?: number;
}

interface WorkerSlot {
  id: number;
  cpu: number;
  worker: WorkerHandle | null;
  /** Generation counter, so stats of a dead worker are folded once. */
  statsKey: string;
  restarts: number;
  appliedVersion: number;
  pinned: boolean;
}

export interface ListenerInfo {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

const WORKER_FILE = path.join(__dirname, 'worker', 'worker.js');
/** How long a worker may take to build a new config version before the reload is aborted. */
const PREPARE_TIMEOUT_MS = 30_000;

/** A start failure with a message meant for the operator as is (one line, names the address). */
export class StartError extends Error {}

/** The main thread's listening socket for a listener (native mode), or a StartError naming the address. */
function listenOrFail(name: string, host: string, port: number, backlog: number, l?: ListenerConfig): { fd: number; port: number } {
  let r: { fd: number; port: number };
  try {
    r = native.listenTcp(host, port, backlog, reusePortRequested());
  } catch (e) {
    throw new StartError(`listener ${name}: cannot listen on ${hostPort(host, port)}: ${listenFailure(e)}`);
  }
  if (l !== undefined) {
    try {
      prepareListenSocket(l, r.fd); // TPROXY: IP_TRANSPARENT (src/network/original-dst.ts)
    } catch (e) {
      native.closeFd(r.fd);
      throw new StartError((e as Error).message, { cause: e });
    }
  }
  return r;
}

export class Sidecar {
  readonly log: Logger;
  readonly layout = new StatsLayout();
  readonly hub: StatsHub;
  /** Circuit-breaker usage shared by every worker (src/upstream/breakers.ts). */
  private readonly breakerSab = newBreakerBuffer();
  /** Active health checks and outlier sweeps, once per process; host health shared with the workers. */
  private readonly health: HealthService;
  private config: OutriggerConfig;
  private version = 0;
  private readonly slots: WorkerSlot[] = [];
  /** Listener name -> the main thread's own listening fd (native mode) and resolved port. */
  private readonly sockets = new Map<string, { fd: number; host: string; port: number }>();
  private admin: { port: number; close(): void } | null = null;
  private stopping = false;
  private ready = false;
  private readonly nWorkers: number;
  /** Fallback mode: the worker count asked for when it was more than the one that runs (0: not clamped). */
  private readonly fallbackClamped: number;
  private restarts = 0;
  /** One-isolate mode: the one worker's data plane runs on the main thread (src/worker/inline.ts). */
  private inline = false;
  readonly startedAt = Date.now();

  constructor(private readonly opts: SidecarOptions) {
    this.config = opts.config;
    this.versions = versionResources(1, opts.config, undefined, (f) => (this.forms = f));
    const server = this.config.servers[0];
    const level = opts.logLevel ?? server?.defaultLogLevel ?? 'info';
    this.log = createLogger({ level, path: server?.defaultLogPath ?? 'stdout', name: 'main' });
    const processor = opts.workers ?? server?.processor ?? 1;
    const asked = Math.max(1, processor === 0 ? os.availableParallelism() : processor);
    // Without the addon a listening socket can only be shared between worker threads as one fd
    // number (Node 20 has neither dup() nor SO_REUSEPORT), and every thread that stops (a crash,
    // a restart, a drain) closes that number under the others: whatever the process opens next
    // may get it, and the next close from another thread closes that instead (seen as libuv
    // aborting on a descriptor it still polled). So the fallback runs one worker, in a thread
    // when more were asked for, so that a crash is still restarted in place.
    this.nWorkers = native.kind === 'native' ? asked : 1;
    this.fallbackClamped = native.kind !== 'native' && asked > 1 ? asked : 0;
    this.hub = new StatsHub(this.layout);
    this.health = new HealthService(this.log);
    this.hub.addSection('rpc', { json: rpcMetricsJson, prometheus: rpcMetricsPrometheus }); // dubbo_stream filter
    this.hub.setClusterSection({ json: () => this.health.clusterStats(), prometheus: () => this.health.prometheus() });
    this.hub.setRefresher(() => {
      publishFilterCounters(this.hub); // rate-limit and RBAC counters live in shared cells, not in the stats layout
      return this.flushHistograms();
    });
    // Stats slots of removed resources are reused once their connections had time to drain.
    this.layout.quarantineMs = server?.gracefulTimeoutMs ?? 30_000;
    this.layout.onReuse = (base, slots) => this.hub.clearSlots(base, slots);
  }

  get workerCount(): number {
    return this.nWorkers;
  }

  /** True when the data plane runs on the main thread (one worker, no --worker-threads). */
  get oneIsolate(): boolean {
    return this.inline;
  }

  get adminPort(): number {
    return this.admin ? this.admin.port : -1;
  }

  listeners(): ListenerInfo[] {
    return [...this.sockets.entries()].map(([name, s]) => ({ name, host: s.host, port: s.port }));
  }

  /**
   * Opens every socket (listeners, admin) first, then starts the workers. A start that fails
   * at any step releases everything it opened (sockets, workers) before it throws, so no
   * process keeps a listener it will not serve. A listener address held by another socket
   * (another Outrigger included) is refused unless a hand-over is asked for (OUTRIGGER_REUSE_PORT=1).
   */
  async start(): Promise<void> {
    try {
      await this.startSteps();
    } catch (e) {
      await this.release(500);
      throw e;
    }
    if (this.stopping) throw new StartError('stopped while starting');
  }

  private async startSteps(): Promise<void> {
    this.assignStats(this.config);
    if (native.kind === 'native') {
      for (const server of this.config.servers) {
        for (const l of server.listeners) {
          if (!l.bindPort) continue; // MOSN/Envoy bind_port false: no socket (hand-off only)
          const r = this.opts.inherited?.get(l.name) ?? listenOrFail(l.name, l.address.host, l.address.port, this.opts.listenBacklog ?? 4096, l);
          this.sockets.set(l.name, { fd: r.fd, host: l.address.host, port: r.port });
        }
      }
    }
    if (this.opts.deferAdmin !== true) await this.startAdmin();
    await this.startWorkers();
  }

  /** Opens the admin server (part of start() unless deferAdmin: a hot upgrade opens it once the old process closed its own). */
  async startAdmin(port?: number): Promise<void> {
    const adminCfg = this.config.admin;
    const adminPort = port ?? this.opts.adminPort ?? adminCfg.address.port;
    try {
      this.admin = await startAdmin(
        { host: adminCfg.address.host, port: adminPort },
        {
          stats: this.hub,
          configDump: () => redactConfig(this.opts.configDump ? this.opts.configDump() : this.config.raw),
          ready: () => this.ready && !this.stopping && (this.opts.ready?.() ?? true),
          log: this.log,
          clusters: () => this.health.report(),
        },
      );
    } catch {
      throw new StartError(`admin: cannot listen on ${hostPort(adminCfg.address.host, adminPort)}: address in use or not available${reusePortHint()}`);
    }
  }

  private async startWorkers(): Promise<void> {
    const cpus = allowedCpus();
    const threads = (this.opts.threads ?? process.env.OUTRIGGER_WORKER_THREADS === '1') || this.fallbackClamped > 0;
    if (this.fallbackClamped > 0) {
      this.log.warn(
        { asked: this.fallbackClamped },
        'fallback mode (no native addon): 1 worker thread instead of the workers asked for: without dup() the worker threads would share each listening socket as one descriptor, which a stopping thread closes under the others (build the addon for more workers)',
      );
    }
    this.inline = this.nWorkers === 1 && !threads && inlineAvailable();
    for (let i = 0; i < this.nWorkers; i++) {
      // Pin each worker to its own CPU of the process's affinity mask when there are enough of them.
      // Not the main thread (one-isolate mode): every thread it starts later (libuv's pool: log
      // writes, DNS) would inherit the pin and share the data plane's CPU.
      this.slots.push({ id: i, cpu: this.nWorkers <= cpus.length && !this.inline ? cpus[i] : -1, worker: null, statsKey: '', restarts: 0, appliedVersion: 0, pinned: false });
    }
    this.version = 1;
    await this.health.prepare(this.config.clusters); // Envoy-semantics clusters: first checks, bounded
    // The first worker starts alone: in fallback mode it is the only one, and binds the sockets.
    await this.spawn(this.slots[0]);
    if (this.stopping) return;
    await Promise.all(this.slots.slice(1).map((s) => this.spawn(s)));
    this.hub.setExtra('worker_restarts', 0, { type: 'counter', help: 'worker threads restarted after a crash' });
    this.health.update(this.config.clusters, faultToleranceOf(this.config.servers));
    this.ready = true;
    if (process.env.OUTRIGGER_TEST_HOOKS === '1') {
      // Test-only: SIGUSR2 makes worker 0 throw an uncaught exception (a real crash).
      process.on('SIGUSR2', () => this.slots[0]?.worker?.postMessage({ type: 'crash' } satisfies MainToWorker));
    }
  }

  /**
   * One-isolate mode: the data plane on this thread. Its uncaught exception ends the process
   * (logged first): the process's supervisor restarts it, as for any crash of the main thread.
   */
  private inlineWorker(init: WorkerInit): InlineWorker {
    const w = startInline(init);
    const crashed = (e: Error): void => {
      logFatalSync(this.log, { err: e.stack ?? String(e) }, 'uncaught exception in the process (one worker, on the main thread): it exits; its supervisor restarts it (with --worker-threads the main thread restarts a crashed worker)');
    };
    process.on('uncaughtExceptionMonitor', crashed);
    w.once('exit', () => process.off('uncaughtExceptionMonitor', crashed));
    return w;
  }

  /**
   * Ends everything at once: workers are asked to stop and terminated after `ms`; the admin
   * server and the main thread's listening sockets are closed. Used by a failed start and by
   * a signal that must end the process whatever state it is in.
   */
  async release(ms: number): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.slots.map((s) => {
        const w = s.worker;
        if (w === null) return Promise.resolve();
        return new Promise<void>((resolve) => {
          const t = setTimeout(() => void w.terminate().then(() => resolve(), () => resolve()), ms);
          w.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          w.postMessage({ type: 'stop' } satisfies MainToWorker);
        });
      }),
    );
    this.closeMain();
  }

  private assignStats(config: OutriggerConfig): void {
    assignStats(this.layout, config);
  }

  private flushSeq = 0;
  private readonly flushWaits = new Map<number, () => void>();

  /** Asks every live worker to ship its unshipped histograms; resolves when all have (<= 250 ms). */
  private flushHistograms(): Promise<void> {
    const live = this.slots.filter((s) => s.worker !== null);
    if (live.length === 0) return Promise.resolve();
    const seq = ++this.flushSeq;
    return new Promise<void>((resolve) => {
      let left = live.length;
      const done = (): void => {
        clearTimeout(timer);
        this.flushWaits.delete(seq);
        resolve();
      };
      const timer = setTimeout(done, 250);
      this.flushWaits.set(seq, () => {
        if (--left === 0) done();
      });
      for (const s of live) s.worker?.postMessage({ type: 'flush-histograms', seq } satisfies MainToWorker);
    });
  }

  /** The drain time of changed chains and removed listeners (SidecarOptions.drainTimeMs). */
  private drainTimeMs(override?: number): number {
    return override ?? this.opts.drainTimeMs ?? this.config.servers[0]?.gracefulTimeoutMs ?? 30_000;
  }

  /** Sockets for the listeners of `config` a worker does not run yet (`only`), or for all of them. */
  private listenSpecs(config: OutriggerConfig, forFirstFallback: boolean, only?: ReadonlySet<string>): Record<string, ListenSpec> {
    const out: Record<string, ListenSpec> = {};
    for (const server of config.servers) {
      for (const l of server.listeners) {
        if (only && !only.has(l.name)) continue;
        const s = this.sockets.get(l.name);
        if (!l.bindPort) {
          out[l.name] = { kind: 'none' };
        } else if (native.kind === 'native' && s) {
          out[l.name] = { kind: 'fd', fd: native.dupFd(s.fd) };
        } else if (s && !forFirstFallback) {
          out[l.name] = { kind: 'fd', fd: s.fd };
        } else {
          // Rebinding (fallback restart) keeps the port that port 0 resolved to.
          const port = s ? s.port : (this.resolvedPorts.get(l.name) ?? l.address.port);
          out[l.name] = { kind: 'bind', host: l.address.host, port, backlog: this.opts.listenBacklog ?? 4096 };
        }
      }
    }
    return out;
  }

  private spawn(slot: WorkerSlot): Promise<void> {
    const key = `w${slot.id}.${slot.restarts}`;
    slot.statsKey = key;
    const sab = this.hub.addWorker(key);
    const breakerOwnSab = newBreakerBuffer();
    const init: WorkerInit = {
      workerId: slot.id,
      cpu: slot.cpu,
      statsSab: sab,
      breakerSab: this.breakerSab,
      breakerOwnSab,
      overloadSab: overloadSharedBuffer(),
      healthSab: healthTable().sab,
      filterSab: filterCellsBuffer(),
      logLevel: this.opts.logLevel ?? this.config.servers[0]?.defaultLogLevel ?? 'info',
      logPath: this.config.servers[0]?.defaultLogPath ?? 'stdout',
      idleCollection: memoryReducerDeferred(),
    };
    shareTicketSecret(); // TLS session tickets issued by one worker resume in any other
    const inlined = this.inline && inlineAvailable();
    if (!inlined) shareFilterCellsWithThreads(); // the filter cells: Atomics from now on (src/filters/shared/cells.ts)
    const w: WorkerHandle = inlined ? this.inlineWorker(init) : new Worker(WORKER_FILE, { workerData: init });
    slot.worker = w;
    const version = this.version;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      w.on('message', (m: WorkerToMain) => {
        this.onWorkerMessage?.(m);
        switch (m.type) {
          case 'bound':
            this.sockets.set(m.listener, { fd: m.fd, host: this.listenerHost(m.listener), port: m.port });
            this.resolvedPorts.set(m.listener, m.port);
            break;
          case 'applied':
            slot.appliedVersion = m.version;
            slot.pinned = m.pinned;
            if (!settled) {
              settled = true;
              this.log.info({ worker: slot.id, cpu: m.cpu, pinned: m.pinned, io: m.ioMode, native: m.nativeKind, thread: w instanceof Worker }, 'worker ready');
              resolve();
            }
            break;
          case 'config-error':
            this.log.error({ worker: slot.id, version: m.version, err: m.message }, 'worker rejected config');
            if (!settled) {
              settled = true;
              reject(new Error(`worker ${slot.id}: ${m.message}`));
            }
            break;
          case 'drained':
            break;
          case 'histograms':
            this.hub.addHistograms(m.items);
            if (m.seq > 0) this.flushWaits.get(m.seq)?.();
            break;
        }
      });
      w.on('error', (e) => {
        // A crash line is written now, not at the next periodic flush through the threadpool the workers share.
        logSynchronously(() => this.log.error({ worker: slot.id, err: e.stack ?? String(e) }, 'worker crashed'));
      });
      w.on('exit', (code) => {
        this.hub.removeWorker(key);
        releaseWorkerShare(this.breakerSab, breakerOwnSab); // what a crashed worker held
        if (slot.worker === w) slot.worker = null;
        if (!settled) {
          settled = true;
          reject(new Error(`worker ${slot.id} exited with code ${code} before it was ready`));
          return;
        }
        if (this.stopping || this.restartingAll) return;
        logSynchronously(() => this.log.error({ worker: slot.id, code }, 'worker exited; restarting'));
        slot.restarts++;
        this.restarts++;
        this.hub.setExtra('worker_restarts', this.restarts, { type: 'counter', help: 'worker threads restarted after a crash' });
        if (native.kind !== 'native') {
          // Fallback mode: the listening fds belong to worker 0's net.Server and are shared
          // without dup, so a dead worker may have taken them along: rebuild every listener.
          void this.restartAll();
          return;
        }
        setTimeout(() => {
          if (!this.stopping) this.spawn(slot).catch((e) => this.log.error({ worker: slot.id, err: String(e) }, 'worker restart failed'));
        }, 100).unref();
      });
      const msg: MainToWorker = {
        type: 'config',
        version,
        config: withoutRaw(this.config),
        versions: this.versions,
        layout: this.layout.toData(),
        listen: this.listenSpecs(this.config, native.kind !== 'native' && slot.id === 0 && !this.sockets.size),
        drainTimeMs: this.drainTimeMs(),
      };
      w.postMessage(msg);
    });
  }

  /**
   * Applies a new config snapshot without dropping connections: new listeners start, removed
   * ones drain, existing ones swap their filter chains and clusters for new connections (live
   * connections keep the snapshot they were accepted under). Changing the address of an
   * existing listener needs a restart and is refused, as are worker count changes.
   *
   * One transaction (see src/worker/messages.ts): the main thread first builds the snapshot
   * itself (what a worker would refuse is refused here, with the JSON path); then every worker
   * prepares it beside the running one; only when all of them built it is it committed
   * everywhere. Otherwise every worker drops it, the running version stays (here too: current
   * config, config_dump, the config a restarting worker gets) and the log names the worker and
   * the error. Reloads run one at a time.
   */
  reload(config: OutriggerConfig, opts: ReloadOptions = {}): Promise<void> {
    const run = this.reloadChain.then(() => this.reloadNow(config, opts));
    this.reloadChain = run.catch(() => undefined);
    return run;
  }

  private reloadChain: Promise<void> = Promise.resolve();
  /** Last version number handed out (prepared or committed); `version` is the committed one. */
  private lastVersion = 0;
  /** Per-resource versions of the committed snapshot (src/config/versions.ts), and its canonical forms. */
  private versions: ResourceVersions;
  private forms: Map<string, string> | undefined;
  /** Where the last committed reload spent its time (ms): versions, main-thread check, prepare on the workers, commit. */
  lastTiming: Readonly<Record<string, number>> = {};

  private async reloadNow(config: OutriggerConfig, opts: ReloadOptions): Promise<void> {
    const oldByName = new Map<string, string>();
    for (const sv of this.config.servers) for (const l of sv.listeners) oldByName.set(l.name, `${l.address.host}:${l.address.port}`);
    const added = new Set<string>();
    for (const sv of config.servers) {
      for (const l of sv.listeners) {
        const was = oldByName.get(l.name);
        if (was === undefined) added.add(l.name);
        else if (was !== `${l.address.host}:${l.address.port}`) {
          throw new Error(`listener ${l.name}: address change ${was} -> ${l.address.host}:${l.address.port} needs a restart`);
        }
      }
    }
    const removed = [...oldByName.keys()].filter((n) => !config.servers.some((sv) => sv.listeners.some((l) => l.name === n)));
    const version = Math.max(this.lastVersion, this.version) + 1;
    const t0 = performance.now();
    let forms: Map<string, string> | undefined;
    const versions = versionResources(version, config, { config: this.config, versions: this.versions, forms: this.forms }, (f) => (forms = f));
    // Only what changed is built here (the rest was checked when it came).
    const t1 = performance.now();
    const issues = checkBuild(config, versions, version);
    if (issues.length > 0) throw new ConfigError(issues);
    const t2 = performance.now();
    this.lastVersion = version;
    const drainTimeMs = this.drainTimeMs(opts.drainTimeMs);
    this.assignStats(config);
    const opened: string[] = [];
    /** Undoes what this reload opened or assigned (a failure at any step before every worker applied it). */
    const undoMain = (): void => {
      for (const name of opened) {
        const s = this.sockets.get(name);
        if (s && native.kind === 'native') native.closeFd(s.fd);
        this.sockets.delete(name);
      }
      // Fallback mode: sockets a worker bound for an added listener were closed by its rollback.
      if (native.kind !== 'native') for (const name of added) this.sockets.delete(name);
      releaseStats(this.layout, this.config, false);
    };
    try {
      if (native.kind === 'native') {
        for (const sv of config.servers) {
          for (const l of sv.listeners) {
            if (!added.has(l.name) || !l.bindPort) continue;
            const r = listenOrFail(l.name, l.address.host, l.address.port, this.opts.listenBacklog ?? 4096, l);
            this.sockets.set(l.name, { fd: r.fd, host: l.address.host, port: r.port });
            opened.push(l.name);
          }
        }
      }
    } catch (e) {
      undoMain();
      throw e;
    }
    // Envoy-semantics clusters (xDS health checks): the first check of their new hosts, bounded.
    await this.health.prepare(config.clusters);
    // Phase 1: every live worker builds the new version beside the running one.
    const layout = this.layout.toData();
    const live = this.slots.flatMap((slot) => (slot.worker === null ? [] : [{ slot, worker: slot.worker }]));
    // Workers get what changed since the version they run (the main thread keeps the whole config).
    const delta = configDelta(this.version, this.config, config, versions, version);
    const answers = await Promise.all(live.map(({ slot, worker }) => this.prepareOn(slot, worker, { type: 'prepare', version, config: slot.appliedVersion === this.version ? delta : withoutRaw(config), versions, layout, drainTimeMs })));
    const failed = answers.filter((a) => a.error !== undefined);
    if (failed.length > 0) {
      for (const { worker } of live) worker.postMessage({ type: 'abort', version } satisfies MainToWorker);
      undoMain();
      for (const f of failed) this.log.error({ worker: f.id, version, err: f.error }, 'worker could not build the new config; it is dropped everywhere');
      this.log.error({ version, running: this.version }, 'config reload aborted; every worker keeps the running version');
      throw new Error(`config version ${version} not applied: ${failed.map((f) => `worker ${f.id}: ${f.error}`).join('; ')}`);
    }
    const rebuilt = answers.find((a) => a.rebuilt !== undefined)?.rebuilt;
    const t3 = performance.now();
    // Phase 2: commit everywhere, all or nothing: a worker whose commit fails keeps the running
    // version (and the prepared one, aborted below); workers that applied it roll back.
    const preparedBy = new Set(live.map((p) => p.worker));
    const appliedOn: WorkerHandle[] = [];
    const commit = (slot: WorkerSlot): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const w = slot.worker;
        if (w === null) return resolve(); // a restarting worker gets the committed snapshot at spawn
        const on = (m: WorkerToMain): void => {
          if (m.type === 'applied' && m.version === version) {
            w.off('message', on);
            appliedOn.push(w);
            resolve();
          } else if (m.type === 'config-error' && m.version === version) {
            w.off('message', on);
            reject(new Error(`worker ${slot.id}: ${m.message}`));
          }
        };
        w.on('message', on);
        const listen = this.listenSpecs(config, native.kind !== 'native' && slot.id === 0, added);
        // A worker that restarted during the prepare phase did not prepare this version: it gets it whole.
        const msg: MainToWorker = preparedBy.has(w)
          ? { type: 'commit', version, listen }
          : { type: 'config', version, config: withoutRaw(config), versions, layout: this.layout.toData(), listen, drainTimeMs };
        w.postMessage(msg);
      });
    this.pendingHosts.clear();
    for (const sv of config.servers) for (const l of sv.listeners) if (added.has(l.name)) this.pendingHosts.set(l.name, l.address.host);
    // Worker 0 first: in fallback mode (the only worker) it binds the new listeners.
    let errors: string[];
    try {
      await commit(this.slots[0]);
      const rest = await Promise.allSettled(this.slots.slice(1).map(commit));
      errors = rest.flatMap((r) => (r.status === 'rejected' ? [r.reason instanceof Error ? r.reason.message : String(r.reason)] : []));
    } catch (e) {
      errors = [e instanceof Error ? e.message : String(e)];
    }
    if (errors.length > 0) {
      for (const s of this.slots) {
        const w = s.worker;
        if (w === null) continue;
        w.postMessage((appliedOn.includes(w) ? { type: 'rollback', version } : { type: 'abort', version }) satisfies MainToWorker);
      }
      undoMain();
      this.log.error({ version, running: this.version, err: errors.join('; ') }, 'config commit failed; every worker runs the previous version again');
      throw new Error(`config version ${version} not applied: ${errors.join('; ')}`);
    }
    this.config = config;
    this.version = version;
    this.versions = versions;
    this.forms = forms;
    for (const s of this.slots) s.worker?.postMessage({ type: 'settle', version } satisfies MainToWorker);
    for (const name of removed) {
      const sck = this.sockets.get(name);
      if (sck && native.kind === 'native') native.closeFd(sck.fd);
      this.sockets.delete(name);
    }
    releaseStats(this.layout, config);
    this.health.update(config.clusters, faultToleranceOf(config.servers));
    this.hub.setExtra('config_version', version, { help: 'config snapshots applied' });
    const ms = (a: number, b: number): number => Math.round((b - a) * 10) / 10;
    const timing = { versions: ms(t0, t1), check: ms(t1, t2), prepare: ms(t2, t3), commit: ms(t3, performance.now()) };
    this.lastTiming = timing;
    this.log.info({ version, added: [...added], removed, rebuilt, ms: timing }, 'config reloaded');
  }

  /** Sends a prepare to one worker; resolves with its answer (a worker that exits meanwhile is not an error). */
  private prepareOn(slot: WorkerSlot, w: WorkerHandle, msg: MainToWorker & { type: 'prepare' }): Promise<{ id: number; error?: string; rebuilt?: { listeners: readonly string[]; clusters: readonly string[] } }> {
    return new Promise((resolve) => {
      const done = (r: { id: number; error?: string; rebuilt?: { listeners: readonly string[]; clusters: readonly string[] } }): void => {
        clearTimeout(timer);
        w.off('message', on);
        w.off('exit', gone);
        resolve(r);
      };
      const on = (m: WorkerToMain): void => {
        if (m.type === 'prepared' && m.version === msg.version) done({ id: slot.id, rebuilt: m.rebuilt });
        else if (m.type === 'prepare-error' && m.version === msg.version) done({ id: slot.id, error: m.message });
      };
      const gone = (): void => done({ id: slot.id });
      const timer = setTimeout(() => done({ id: slot.id, error: `no answer within ${PREPARE_TIMEOUT_MS} ms` }), PREPARE_TIMEOUT_MS);
      w.on('message', on);
      w.once('exit', gone);
      w.postMessage(msg);
    });
  }

  private restartingAll = false;
  private readonly resolvedPorts = new Map<string, number>();

  /** Fallback mode only: stop every worker, then start them again (worker 0 binds anew). */
  private async restartAll(): Promise<void> {
    this.restartingAll = true;
    this.log.warn('fallback mode (no native addon): restarting the worker, which binds the listening sockets anew');
    await this.endWorkers({ type: 'stop' });
    this.sockets.clear();
    this.restartingAll = false;
    if (this.stopping) return;
    try {
      await this.spawn(this.slots[0]);
      await Promise.all(this.slots.slice(1).map((s) => this.spawn(s)));
    } catch (e) {
      this.log.error({ err: String(e) }, 'restarting workers failed');
    }
  }

  /** Host of a listener of the committed config, else of the version being committed. */
  private listenerHost(name: string): string {
    for (const s of this.config.servers) for (const l of s.listeners) if (l.name === name) return l.address.host;
    return this.pendingHosts.get(name) ?? '';
  }

  /** Listener hosts of the version being committed (a fallback worker reports their bound sockets). */
  private readonly pendingHosts = new Map<string, string>();

  /** SIGTERM: stop accepting everywhere, let live connections finish up to the grace period. */
  async drain(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const grace = this.config.servers[0]?.gracefulTimeoutMs ?? 30_000;
    this.log.info({ graceMs: grace }, 'draining');
    // Close the main thread's copies of the listening sockets: once the workers close theirs
    // the port refuses new connections while live ones finish.
    this.closeListenFds();
    await this.endWorkers({ type: 'drain', graceMs: grace });
    this.closeMain();
  }

  /**
   * Hot upgrade, old process: drain() that keeps the main thread's listening sockets until it
   * ends, so that resumeServing() can take the listeners back (the new process died).
   */
  async drainResumable(): Promise<'drained' | 'resumed'> {
    if (this.stopping) return 'drained';
    this.stopping = true;
    const grace = this.config.servers[0]?.gracefulTimeoutMs ?? 30_000;
    const resumed = new Promise<'resumed'>((r) => (this.resumeWait = () => r('resumed')));
    const how = await Promise.race([this.endWorkers({ type: 'drain', graceMs: grace }).then(() => 'drained' as const), resumed]);
    this.resumeWait = null;
    if (how === 'drained') this.closeMain();
    return how;
  }

  private resumeWait: (() => void) | null = null;

  /** Ends drainResumable(): every worker accepts again and keeps what it still has; workers already gone are started anew. */
  resumeServing(): boolean {
    if (this.resumeWait === null) return false;
    this.resumeWait();
    this.stopping = false;
    for (const s of this.slots) {
      if (s.worker !== null) s.worker.postMessage({ type: 'resume', listen: this.listenSpecs(this.config, false) } satisfies MainToWorker);
      else this.spawn(s).catch((e) => this.log.error({ worker: s.id, err: String(e) }, 'worker restart failed'));
    }
    return true;
  }

  /** SIGINT / tests: stop now. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.endWorkers({ type: 'stop' });
    this.closeMain();
  }

  private closeMain(): void {
    this.health.stop();
    if (this.admin) {
      this.admin.close();
      this.admin = null;
    }
    this.closeListenFds();
    flushLogger();
  }

  /** Sends every live worker a message that ends it (drain or stop) and waits for all exits. */
  private endWorkers(msg: MainToWorker): Promise<void> {
    return Promise.all(
      this.slots.map(
        (s) =>
          new Promise<void>((resolve) => {
            const w = s.worker;
            if (w === null) return resolve();
            w.once('exit', () => resolve());
            w.postMessage(msg);
          }),
      ),
    ).then(() => undefined);
  }

  private closeListenFds(): void {
    if (native.kind === 'native') for (const s of this.sockets.values()) native.closeFd(s.fd);
    this.sockets.clear();
  }

  /** Hot upgrade hooks (src/upgrade): the running config, the listening sockets, early admin close, worker messages. */
  get currentConfig(): OutriggerConfig {
    return this.config;
  }

  listenSockets(): { name: string; fd: number; host: string; port: number }[] {
    return [...this.sockets.entries()].map(([name, s]) => ({ name, ...s }));
  }

  closeAdmin(): void {
    this.admin?.close();
    this.admin = null;
  }

  /** Hears every worker's messages (src/upgrade/migrate.ts). */
  onWorkerMessage: ((m: WorkerToMain) => void) | null = null;

  /** Sends a message to every live worker; returns how many. */
  postToWorkers(m: MainToWorker): number {
    const live = this.slots.filter((s) => s.worker !== null);
    for (const s of live) s.worker?.postMessage(m);
    return live.length;
  }

  /** Sends a message to one live worker, round robin (an adopted connection). */
  postToOneWorker(m: MainToWorker): boolean {
    const live = this.slots.filter((s) => s.worker !== null);
    if (live.length === 0) return false;
    live[this.nextWorker++ % live.length].worker?.postMessage(m);
    return true;
  }

  private nextWorker = 0;

  /** For tests: the workers (threads, or the one-isolate data plane). */
  workerThreads(): (WorkerHandle | null)[] {
    return this.slots.map((s) => s.worker);
  }
}
