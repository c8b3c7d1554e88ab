/**
 * Worker thread entry. A worker owns its connections end to end (accept, read, filters,
 * upstream, write): the data path never crosses threads. It is told by the main thread which
 * CPU to pin to, which listening fds to accept on, and which immutable config snapshot to
 * serve; it reports nothing per request (stats are counters in a SharedArrayBuffer).
 */
import { ConfigError, formatIssue } from '../config/errors';
import type { ListenerConfig, OutriggerConfig } from '../config/types';
import type { ResourceVersions } from '../config/versions';
import { breakerCells } from '../upstream/breakers';
import { installHealthBuffer } from '../upstream/health/shared';
import { bindFilterCells } from '../filters/shared/cells';
import { ClusterManager } from '../upstream/cluster';
import { native } from '../native';
import { WorkerListener } from '../network/listener';
import { hostPort, listenFailure } from '../native/listen';
import { io } from '../network/io';
import { W, type StatsLayoutData } from '../stats/layout';
import { applyHostileTrafficConfig } from '../overload/manager';
import { applyTracing } from '../tracing/index';
import { bindRouteStats, drainHistograms } from '../http/route-stats';
import { closeLogs, createLogger, flushLoggerAsync, type AccessLogWriter } from '../log';
import { AccessLogCache } from './access-logs';
import { applyDelta, isDelta } from './delta';
import type { ConfigDelta, ListenSpec, MainToWorker, WorkerInit, WorkerToMain } from './messages';
import { buildSnapshot, discardSnapshot, type Snapshot } from './snapshot';
import { adoptConnection, resumeServing, startMigrateOut } from '../upgrade/worker-side';
import { dataPlaneHost } from './host';
import '../extensions';
import { collectWhenIdle } from '../startup-memory';

/** A worker thread's, or in one-isolate mode the main thread's (src/worker/host.ts). */
const host = dataPlaneHost();
const init: WorkerInit = host.init;
const port = host.port;
const counters = new Float64Array(init.statsSab);
const breakers = breakerCells(init.breakerSab, init.breakerOwnSab);
if (init.healthSab !== undefined) installHealthBuffer(init.healthSab);
bindFilterCells(init.filterSab);
const log = createLogger({ level: init.logLevel, path: init.logPath, name: `worker-${init.workerId}` });

collectWhenIdle(init.idleCollection === true); // V8's memory reducer deferred: this thread collects when idle

let pinned = false;
if (init.cpu >= 0) {
  try {
    pinned = native.pinThread(init.cpu);
  } catch (e) {
    log.warn({ err: String(e) }, 'cpu pinning failed');
  }
}

const listeners = new Map<string, WorkerListener>();
/** Drain time of changed chains and removed listeners (main thread's choice, from each config message). */
let drainTimeMs = 30_000;
/** A drain's listeners are all done: the worker is on its way out (a hot-upgrade resume comes too late). */
let drainEnded = false;
/** One cluster manager for the worker's life; a commit installs a snapshot's clusters into it. */
const clusters = new ClusterManager([], counters, {}, undefined, breakers);

function send(m: WorkerToMain): void {
  port.postMessage(m);
}

const accessLogs = new AccessLogCache();

function accessLogFor(name: string, cfg: ListenerConfig): AccessLogWriter | null {
  if (cfg.accessLogs.length === 0) return null;
  const a = cfg.accessLogs[0];
  return accessLogs.get(name, a.path, a.format);
}

/** The running snapshot, and the one prepared for commit (two-phase reload, see messages.ts). */
let running: Snapshot | undefined;
let prepared: Snapshot | undefined;
/** What the last commit replaced, kept until the main thread settles it (or rolls it back). */
let undo: { readonly version: number; readonly previous: Snapshot | undefined; readonly added: readonly string[]; readonly applyRoutes: readonly (() => void)[] } | undefined;

/** Prepare: builds version `version` beside the running snapshot (nothing running changes). */
function prepare(version: number, config: OutriggerConfig, versions: ResourceVersions, layout: StatsLayoutData): Snapshot {
  if (prepared !== undefined) abort();
  if (undo !== undefined) settle(); // a new version implies the last one was settled everywhere
  if (process.env.OUTRIGGER_TEST_HOOKS === '1' && process.env.OUTRIGGER_TEST_FAIL_PREPARE === String(init.workerId) && running !== undefined) {
    throw new Error('prepare failure requested by test hook'); // the abort path, with a config the main thread accepts
  }
  bindRouteStats(counters, layout.routes);
  applyTracing(config.tracing); // src/tracing (before the pipelines are built); OpenTelemetry loaded only when enabled
  prepared = buildSnapshot(version, config, versions, { counters, layout, manager: clusters, accessLogFor }, running);
  return prepared;
}

/** A delta's config: the running one with the delta applied (src/worker/delta.ts). */
function onRunning(d: ConfigDelta): OutriggerConfig {
  if (running === undefined) throw new Error('config delta without a running version');
  return applyDelta(running.config, running.version, d);
}

/** Abort: drops the prepared snapshot, keeps the running one. */
function abort(): void {
  if (prepared === undefined) return;
  discardSnapshot(prepared, clusters, running);
  closeUnusedAccessLogs(0);
  prepared = undefined;
  applyTracing(running?.config.tracing);
}

/** Starts accepting on a new listener's socket (fd from the main thread, or bound here in fallback mode). */
async function openListener(name: string, wl: WorkerListener, spec: ListenSpec | undefined): Promise<{ fd: number; port: number } | null> {
  if (spec === undefined) throw new Error(`no listening socket for listener ${name}`);
  if (spec.kind === 'none') return null; // bind_port false: reached only through a use_original_dst listener's hand-off
  if (spec.kind === 'fd') {
    await wl.listenFd(spec.fd);
    return null;
  }
  const r = await native.openListenSocket(spec.host, spec.port, spec.backlog).catch((e: unknown) => {
    throw new Error(`listener ${name}: cannot listen on ${hostPort(spec.host, spec.port)}: ${listenFailure(e)}`);
  });
  if (r.server) wl.adoptServer(r.server);
  else await wl.listenFd(r.fd);
  return { fd: r.fd, port: r.port };
}

/**
 * Commit, all or nothing: first what can fail (listening on the new listeners; their accepted
 * connections wait, paused, until the swap), then what cannot (clusters installed, listener
 * runtimes swapped, route tables of kept chains swapped). A failure closes the new listeners
 * and leaves the running snapshot and the prepared one as they were (the main thread aborts).
 * Removed listeners and retired chains are drained only on settle, so a rollback can restore.
 */
async function commit(listen: Readonly<Record<string, ListenSpec>>): Promise<void> {
  const snap = prepared;
  if (snap === undefined) throw new Error('commit without a prepared snapshot');
  const opened = new Map<string, WorkerListener>();
  const bound: WorkerToMain[] = [];
  try {
    for (const [name, built] of snap.listeners) {
      if (listeners.has(name)) continue;
      const wl = new WorkerListener(built.runtime, true);
      opened.set(name, wl);
      const r = await openListener(name, wl, listen[name]);
      if (r !== null) bound.push({ type: 'bound', listener: name, fd: r.fd, port: r.port });
    }
    if (process.env.OUTRIGGER_TEST_HOOKS === '1' && process.env.OUTRIGGER_TEST_FAIL_COMMIT === String(init.workerId) && running !== undefined) {
      throw new Error('commit failure requested by test hook'); // after the new listeners were bound
    }
  } catch (e) {
    for (const wl of opened.values()) wl.closeAll();
    throw e;
  }
  // Nothing below throws.
  prepared = undefined;
  const previous = running;
  running = snap;
  applyHostileTrafficConfig(snap.config, init.overloadSab); // limits + overload_manager (src/overload)
  clusters.install(snap.clusters);
  const applyRoutes: (() => void)[] = [];
  for (const [name, built] of snap.listeners) {
    const existing = listeners.get(name);
    if (existing !== undefined) {
      existing.swap(built.runtime);
      for (const r of built.routeUpdates) {
        r.apply();
        applyRoutes.push(r.undo);
      }
    }
  }
  for (const [name, wl] of opened) {
    listeners.set(name, wl);
    wl.open();
  }
  for (const m of bound) send(m);
  undo = { version: snap.version, previous, added: [...opened.keys()], applyRoutes };
}

/**
 * Settle (every worker committed): what the new version no longer uses goes: removed listeners
 * drain, connections of retired filter chains get their protocol's goodbye and are closed after
 * the drain time, replaced TLS watchers stop, unused access-log writers close after it.
 */
function settle(): void {
  const u = undo;
  undo = undefined;
  const snap = running;
  if (u === undefined || snap === undefined) return;
  for (const [name, wl] of listeners) {
    if (!snap.listeners.has(name)) {
      void wl.drain(drainTimeMs);
      listeners.delete(name);
    } else {
      wl.retire(drainTimeMs);
    }
  }
  closeUnusedAccessLogs(drainTimeMs);
}

/** Rollback (another worker failed its commit): the previous snapshot runs again, as before the commit. */
function rollback(): void {
  const u = undo;
  undo = undefined;
  if (u === undefined) return;
  const cur = running;
  running = u.previous;
  for (const name of u.added) {
    listeners.get(name)?.closeAll();
    listeners.delete(name);
  }
  for (const r of u.applyRoutes) r();
  if (u.previous !== undefined) {
    applyHostileTrafficConfig(u.previous.config, init.overloadSab);
    clusters.install(u.previous.clusters);
    for (const [name, built] of u.previous.listeners) listeners.get(name)?.swap(built.runtime);
  }
  if (cur !== undefined) discardSnapshot(cur, clusters, u.previous);
  for (const wl of listeners.values()) wl.retire(drainTimeMs);
  closeUnusedAccessLogs(0);
}

/** Access-log writers no snapshot (running, prepared) uses close after `afterMs` (connections still draining log into them). */
function closeUnusedAccessLogs(afterMs: number): void {
  const used = new Set<AccessLogWriter>();
  for (const snap of [running, prepared]) {
    if (snap === undefined) continue;
    for (const b of snap.listeners.values()) if (b.runtime.ctx.accessLog !== null) used.add(b.runtime.ctx.accessLog);
  }
  accessLogs.retain(used, afterMs);
}

function errorText(e: unknown): string {
  if (e instanceof ConfigError) return e.errors.map((i) => formatIssue(i)).join('; ');
  return e instanceof Error ? e.message : String(e);
}

function applied(version: number): void {
  send({ type: 'applied', version, pinned, cpu: init.cpu, ioMode: ctx.mode, nativeKind: ctx.nativeKind });
}

function configError(version: number, e: unknown): void {
  const message = errorText(e);
  log.error({ version, err: message }, 'config snapshot rejected');
  send({ type: 'config-error', version, message });
}

/** Ships the latency histograms recorded since the last time (none: no message unless asked). */
function shipHistograms(seq: number): void {
  const items = drainHistograms();
  if (items !== null || seq > 0) send({ type: 'histograms', seq, items: items ?? [] });
}

// Publish the IO layer's own counters once a second (cheap, no message), and the histograms
// that changed (one message).
const ctx = io();
const statsTimer = setInterval(() => {
  counters[W.FLUSHES] = ctx.flushes;
  counters[W.WRITEV_CALLS] = ctx.writevCalls;
  counters[W.WRITE_COPIES] = ctx.copies;
  shipHistograms(0);
}, 1000);
statsTimer.unref();

let ended = false;

/**
 * Ends this data plane. A thread's end takes everything along; on the main thread (one-isolate
 * mode) what it opened is closed here: pools, certificate watchers, timers, access logs.
 */
function end(code: number): void {
  clearInterval(statsTimer);
  if (host.inline && !ended) {
    ended = true;
    for (const l of listeners.values()) l.closeAll();
    listeners.clear();
    if (prepared !== undefined) abort();
    if (running !== undefined) discardSnapshot(running, clusters); // listener TLS (cluster TLS: below)
    clusters.install(new Map()); // every pool drained, upstream TLS watchers stopped
    running = undefined;
    undo = undefined;
    applyTracing(undefined);
    applyHostileTrafficConfig({}, undefined); // the overload manager's memory sampler stops
    accessLogs.retain(new Set(), 0);
  }
  host.exit(code);
}

/** Flushes the logs before the end; a thread closes its destinations, the main thread keeps its own open. */
function endLogs(): Promise<void> {
  return host.inline ? flushLoggerAsync() : closeLogs();
}

port.on('message', (m: MainToWorker) => {
  switch (m.type) {
    case 'config':
      try {
        prepare(m.version, m.config, m.versions, m.layout);
      } catch (e) {
        configError(m.version, e);
        break;
      }
      drainTimeMs = m.drainTimeMs;
      commit(m.listen).then(
        () => {
          settle();
          applied(m.version);
        },
        (e: unknown) => {
          abort();
          configError(m.version, e);
        },
      );
      break;
    case 'prepare':
      drainTimeMs = m.drainTimeMs;
      try {
        const config = isDelta(m.config) ? onRunning(m.config) : m.config;
        const snap = prepare(m.version, config, m.versions, m.layout);
        log.debug({ version: m.version, rebuilt: snap.rebuilt }, 'config snapshot prepared');
        send({ type: 'prepared', version: m.version, rebuilt: snap.rebuilt });
      } catch (e) {
        const message = errorText(e);
        log.error({ version: m.version, err: message }, 'config snapshot failed to build; the running one stays');
        send({ type: 'prepare-error', version: m.version, message });
      }
      break;
    case 'commit':
      if (prepared?.version !== m.version) {
        configError(m.version, new Error(`commit of version ${m.version}, but ${prepared === undefined ? 'none' : `version ${prepared.version}`} is prepared`));
        break;
      }
      commit(m.listen).then(() => applied(m.version), (e: unknown) => configError(m.version, e));
      break;
    case 'abort':
      if (prepared?.version === m.version) abort();
      break;
    case 'settle':
      if (undo?.version === m.version) settle();
      break;
    case 'rollback':
      if (undo?.version === m.version) rollback();
      break;
    case 'drain': {
      const all = [...listeners.values()].map((l) => l.drain(m.graceMs));
      let cut = 0;
      drainEnded = false;
      void Promise.all(all)
        .then((cuts) => {
          drainEnded = true; // too late for a resume
          for (const n of cuts) cut += n;
        })
        .then(() => clusters.drainAll()) // upstream pools close once their last request is done
        // Flush the async log and access-log destinations first, but never hang the exit on it.
        .then(() => Promise.race([endLogs(), new Promise<void>((r) => setTimeout(r, 1000).unref())]))
        .then(() => {
          shipHistograms(0);
          send({ type: 'drained', cut });
          setImmediate(() => end(0));
        });
      break;
    }
    case 'flush-histograms':
      shipHistograms(m.seq);
      break;
    case 'crash':
      if (process.env.OUTRIGGER_TEST_HOOKS === '1') {
        setImmediate(() => {
          throw new Error('crash requested by test hook');
        });
      }
      break;
    case 'migrate-out':
      startMigrateOut(listeners, send);
      break;
    case 'resume':
      // A resumable drain not ended yet: serve again. Else this worker exits and the main thread starts another.
      if (drainEnded) {
        for (const spec of Object.values(m.listen)) if (spec.kind === 'fd') native.closeFd(spec.fd);
      } else {
        void resumeServing(listeners, m.listen);
      }
      break;
    case 'adopt':
      adoptConnection(listeners, m.listener, m.fd, m.unread);
      break;
    case 'stop':
      for (const l of listeners.values()) l.closeAll();
      void endLogs().finally(() => end(0));
      setTimeout(() => end(0), 1000).unref();
      break;
  }
});
