/**
 * Worker thread entry. A worker owns its connections end to end (accept, read, filters,
 * upstream, write): the data path never crosses threads. It is told by the main thread which
 * CPU to pin to, which listening fds to accept on, and which immutable config snapshot to
 * serve; it reports nothing per request (stats are counters in a SharedArrayBuffer).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { OutriggerConfig } from '../config/types';
import { ClusterManager } from '../upstream/cluster';
import { native } from '../native';
import { buildListenerRuntime, WorkerListener } from '../network/listener';
import { io } from '../network/io';
import { W } from '../stats/layout';
import { applyHostileTrafficConfig } from '../overload/manager';
import { bindRouteStats, drainHistograms } from '../http/route-stats';
import { closeLogs, createAccessLog, createLogger, type AccessLogWriter } from '../log';
import type { ListenSpec, MainToWorker, WorkerInit, WorkerToMain } from './messages';
import '../filters/network/tcp_proxy/tcp-proxy';
import '../proxy/proxy';
import '../http/filter';

const init = workerData as WorkerInit;
const port = parentPort;
if (port === null) throw new Error('worker.ts must run in a worker thread');
const counters = new Float64Array(init.statsSab);
const log = createLogger({ level: init.logLevel, path: init.logPath, name: `worker-${init.workerId}` });

let pinned = false;
if (init.cpu >= 0) {
  try {
    pinned = native.pinThread(init.cpu);
  } catch (e) {
    log.warn({ err: String(e) }, 'cpu pinning failed');
  }
}

const listeners = new Map<string, WorkerListener>();
const accessLogs = new Map<string, AccessLogWriter>();
let clusters: ClusterManager | undefined;

function send(m: WorkerToMain): void {
  port!.postMessage(m);
}

function accessLogFor(name: string, cfg: OutriggerConfig['servers'][number]['listeners'][number]): AccessLogWriter | null {
  if (cfg.accessLogs.length === 0) return null;
  let sink = accessLogs.get(name);
  if (sink === undefined) {
    const a = cfg.accessLogs[0];
    sink = createAccessLog({ path: a.path, format: a.format, listenerName: name });
    accessLogs.set(name, sink);
  }
  return sink;
}

async function applyConfig(version: number, config: OutriggerConfig, layout: { listeners: Readonly<Record<string, number>>; clusters: Readonly<Record<string, number>>; routes: Readonly<Record<string, number>> }, listen: Readonly<Record<string, ListenSpec>>): Promise<void> {
  bindRouteStats(counters, layout.routes);
  applyHostileTrafficConfig(config, init.overloadSab); // limits + overload_manager (src/overload)
  clusters = new ClusterManager(config.clusters, counters, layout.clusters, clusters);
  const wanted = new Set<string>();
  for (const server of config.servers) {
    for (const lc of server.listeners) {
      wanted.add(lc.name);
      const base = layout.listeners[lc.name];
      if (base === undefined) throw new Error(`stats layout has no slot for listener ${lc.name}`);
      const rt = buildListenerRuntime(lc, {
        name: lc.name,
        counters,
        base,
        clusters,
        idleTimeoutMs: lc.connectionIdleTimeoutMs,
        bufferLimit: lc.perConnBufferLimitBytes,
        accessLog: accessLogFor(lc.name, lc),
        routers: server.routers,
      });
      const existing = listeners.get(lc.name);
      if (existing) {
        existing.swap(rt);
        continue;
      }
      const spec = listen[lc.name];
      if (spec === undefined) throw new Error(`no listening socket for listener ${lc.name}`);
      const wl = new WorkerListener(rt);
      if (spec.kind === 'fd') {
        await wl.listenFd(spec.fd);
      } else {
        const r = await native.openListenSocket(spec.host, spec.port, spec.backlog);
        if (r.server) wl.adoptServer(r.server);
        else await wl.listenFd(r.fd);
        send({ type: 'bound', listener: lc.name, fd: r.fd, port: r.port });
      }
      listeners.set(lc.name, wl);
    }
  }
  for (const [name, wl] of listeners) {
    if (!wanted.has(name)) {
      void wl.drain(30_000);
      listeners.delete(name);
    }
  }
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

port.on('message', (m: MainToWorker) => {
  switch (m.type) {
    case 'config':
      applyConfig(m.version, m.config, m.layout, m.listen).then(
        () => send({ type: 'applied', version: m.version, pinned, cpu: init.cpu, ioMode: ctx.mode, nativeKind: ctx.nativeKind }),
        (e: unknown) => {
          log.error({ err: String(e) }, 'config snapshot rejected');
          send({ type: 'config-error', version: m.version, message: e instanceof Error ? e.message : String(e) });
        },
      );
      break;
    case 'drain': {
      const all = [...listeners.values()].map((l) => l.drain(m.graceMs));
      void Promise.all(all)
        // Flush the async log and access-log destinations first, but never hang the exit on it.
        .then(() => Promise.race([closeLogs(), new Promise<void>((r) => setTimeout(r, 1000).unref())]))
        .then(() => {
          shipHistograms(0);
          send({ type: 'drained' });
          setImmediate(() => process.exit(0));
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
    case 'stop':
      for (const l of listeners.values()) l.closeAll();
      void closeLogs().finally(() => process.exit(0));
      setTimeout(() => process.exit(0), 1000).unref();
      break;
  }
});
