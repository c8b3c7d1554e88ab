#!/usr/bin/env node
/**
 * The `outrigger` command.
 *
 *   outrigger start [-c FILE] [--workers N] [--log-level L]   run the sidecar (default config if no -c; MOSN JSON,
 *                                                             or an Envoy v3 bootstrap in JSON/YAML for xDS);
 *                                                             SIGHUP reloads FILE, SIGTERM drains, SIGINT stops
 *   outrigger start --upgrade [-c FILE] [--upgrade-dir DIR]   take over from the running process (src/upgrade)
 *   outrigger validate -c FILE                                check a config file without starting
 *   outrigger version
 */
import { releaseStartupMemory } from './startup-memory'; // first: holds TurboFan off while the modules load
import * as path from 'node:path';
import type { LogLevel, OutriggerConfig } from './config/types';
import { ConfigError, validateConfigFile } from './config';
import { loadAnyConfigFile } from './config/any-file';
import type { XdsRuntime } from './xds/bootstrap';
import { Sidecar } from './server';
import { checkBuild } from './worker/snapshot';
import './extensions';
import { flushLoggerAsync } from './log';
import { fdPass } from './upgrade/fdpass';
import { upgradeStart, UpgradeError } from './upgrade/new';
import { UpgradeServer } from './upgrade/old';
import { upgradeDir } from './upgrade/protocol';

const LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

// The embedded default config ships in the source tree (tsc does not copy JSON it does not import).
export const DEFAULT_CONFIG = path.join(__dirname, '..', '..', 'src', 'config', 'default.json');

interface Args {
  cmd: string;
  config?: string;
  workers?: number;
  logLevel?: LogLevel;
  adminPort?: number;
  /** Share listening addresses with another process (SO_REUSEPORT) for a deliberate hand-over. */
  reusePort?: boolean;
  /** Take the listeners and connections of the running process (hot upgrade). */
  upgrade?: boolean;
  upgradeDir?: string;
  /** Run one worker in a worker thread too (default: on the main thread). */
  workerThreads?: boolean;
}

function usage(code: number): never {
  const out = code === 0 ? process.stdout : process.stderr;
  out.write(
    [
      'usage: outrigger <command> [options]',
      '',
      'commands:',
      '  start      run the sidecar (embedded default config when -c is not given)',
      '  validate   check a config file and exit (0 = valid)',
      '  version    print the version',
      '',
      'options:',
      '  -c, --config FILE     MOSN-format JSON config, or an xDS bootstrap (MOSN dynamic_resources, Envoy v3 JSON/YAML)',
      '  --workers N           workers (overrides servers[0].processor); one worker runs on the main thread,',
      '                        several in worker threads',
      '  --worker-threads      run one worker in a worker thread too: ~25 MB more RSS; a crash of the data',
      '                        plane then restarts the worker instead of ending the process; same as',
      '                        OUTRIGGER_WORKER_THREADS=1',
      '  --log-level L         trace|debug|info|warn|error|fatal|silent',
      '  --admin-port P        admin server port (overrides admin.address)',
      '  --reuse-port          share listener and admin addresses with another process (SO_REUSEPORT),',
      '                        for a deliberate hand-over only; same as OUTRIGGER_REUSE_PORT=1. Without it',
      '                        an address held by any other process (another outrigger too) fails the start',
      '  --upgrade             hot upgrade: take the listening sockets and the Bolt/Dubbo connections of the',
      '                        running outrigger (its config too when -c is not given); it then drains and exits.',
      '                        Needs the native addon (Node cannot pass sockets between unrelated processes)',
      '  --upgrade-dir DIR     directory of the upgrade socket reconfig.sock (default: OUTRIGGER_UPGRADE_DIR,',
      '                        else <tmpdir>/outrigger); share it between containers for an upgrade across images',
      '',
    ].join('\n'),
  );
  process.exit(code);
}

function fail(msg: string): never {
  process.stderr.write(`outrigger: ${msg}\n`);
  process.exit(2);
}

export function parseArgs(argv: readonly string[]): Args {
  const a: Args = { cmd: argv[0] ?? 'start' };
  if (a.cmd === '-h' || a.cmd === '--help' || a.cmd === 'help') usage(0);
  for (let i = 1; i < argv.length; i++) {
    const k = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) fail(`${k} needs a value`);
      return x;
    };
    switch (k) {
      case '-c':
      case '--config':
        a.config = v();
        break;
      case '--workers': {
        const n = Number(v());
        if (!Number.isInteger(n) || n < 1 || n > 256) fail(`--workers: "${argv[i]}" is not a whole number from 1 to 256`);
        a.workers = n;
        break;
      }
      case '--log-level': {
        const l = v().toLowerCase() as LogLevel;
        if (!LEVELS.includes(l)) fail(`--log-level: "${argv[i]}" is not one of ${LEVELS.join(', ')}`);
        a.logLevel = l;
        break;
      }
      case '--admin-port': {
        const n = Number(v());
        if (!Number.isInteger(n) || n < 0 || n > 65535) fail(`--admin-port: "${argv[i]}" is not a port`);
        a.adminPort = n;
        break;
      }
      case '--reuse-port':
        a.reusePort = true;
        break;
      case '--worker-threads':
        a.workerThreads = true;
        break;
      case '--upgrade':
        a.upgrade = true;
        break;
      case '--upgrade-dir':
        a.upgradeDir = v();
        break;
      case '-h':
      case '--help':
        usage(0);
        break;
      default:
        fail(`unknown option "${k}" (see outrigger --help)`);
    }
  }
  return a;
}

/**
 * Exits once the log files are open and flushed (at most 500 ms): pino's exit hook flushes
 * synchronously and throws "sonic boom is not ready yet" on a file still opening.
 */
function exitAfterLogs(code: number): void {
  const t = setTimeout(() => process.exit(code), 500);
  void flushLoggerAsync().then(() => {
    clearTimeout(t);
    process.exit(code);
  });
}

/**
 * The xDS modules (gRPC, protobuf: ~180 modules, ~15 MB of RSS, ~40 ms of the main thread's
 * start), loaded only for an xDS config (YAML, for a YAML file: src/config/any-file.ts).
 */
function xdsModules(): typeof import('./xds/bootstrap') & typeof import('./xds/translate') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return { ...(require('./xds/bootstrap') as typeof import('./xds/bootstrap')), ...(require('./xds/translate') as typeof import('./xds/translate')) };
}

/** A config file (JSON or YAML) with the static Envoy resources of an xDS bootstrap translated in. */
function loadStartConfig(file: string): OutriggerConfig {
  const c = loadAnyConfigFile(file);
  return c.xds ? xdsModules().withStaticResources(c, xdsModules().translator) : c;
}

/** The running xDS client, once started (null for a static config). */
interface XdsBox {
  rt: XdsRuntime | null;
}

/** Starts the ADS client of an xDS config (after the sidecar serves its static part). */
function startXdsFor(sidecar: Sidecar, config: OutriggerConfig): XdsRuntime | null {
  if (!config.xds) return null;
  const { startXds, translator } = xdsModules();
  return startXds({
    base: config, translator, apply: (c) => sidecar.reload(c), log: sidecar.log, version: version(),
    metric: (name, value, type, help) => sidecar.hub.setExtra(name, value, { type, help }),
  });
}

async function start(a: Args): Promise<void> {
  const file = a.config ?? DEFAULT_CONFIG;
  const fp = fdPass();
  if (a.upgrade && typeof fp === 'string') fail(`--upgrade: ${fp}`);
  let config;
  if (!a.upgrade || a.config !== undefined) {
    try {
      config = loadStartConfig(file);
    } catch (e) {
      fail(`${file}: ${e instanceof Error ? e.message : String(e)}`);
    }
    // What a worker would refuse is refused here, with its JSON path (as `validate` does).
    const built = checkBuild(config);
    if (built.length > 0) fail(`${file}: ${new ConfigError(built, file).message}`);
    for (const w of config.warnings ?? []) process.stderr.write(`outrigger: warning: ${w}\n`);
  }
  if (a.reusePort) process.env.OUTRIGGER_REUSE_PORT = '1';
  if (a.workerThreads) process.env.OUTRIGGER_WORKER_THREADS = '1'; // read by src/server.ts (the upgrade path too)
  if (a.upgrade) {
    await upgrade(a, config ?? null);
    return;
  }
  config = config as NonNullable<typeof config>;
  const xds: XdsBox = { rt: null };
  const staticRaw = config.raw;
  const sidecar = new Sidecar({
    config, workers: a.workers, logLevel: a.logLevel, adminPort: a.adminPort,
    configDump: config.xds ? () => (xds.rt ? xds.rt.dump(staticRaw) : staticRaw) : undefined,
    ready: config.xds ? () => xds.rt !== null && xds.rt.initialized() : undefined,
  });
  // Signals end the process in every state: while starting (release everything, exit), running
  // (SIGTERM drains for the graceful timeout; SIGINT stops now), and a second signal while
  // draining or stopping ends it at once.
  let state: 'starting' | 'running' | 'stopping' = 'starting';
  const grace = config.servers[0]?.gracefulTimeoutMs ?? 30_000;
  signals(sidecar, file, grace, (s) => (state = s), () => state, xds);
  try {
    await sidecar.start();
  } catch (e) {
    if ((state as string) === 'stopping') return; // a signal ended the start; its handler exits
    // start() released every socket and worker before throwing; one line, no stack.
    const why = e instanceof Error ? e.message : String(e);
    process.stderr.write(`outrigger: start failed: ${why.split('\n')[0]}\n`);
    exitAfterLogs(1);
    return;
  }
  state = 'running';
  xds.rt = startXdsFor(sidecar, config);
  const lines = [`outrigger ${version()} started: ${sidecar.workerCount} worker(s)${sidecar.oneIsolate ? ' (on the main thread)' : ''}, config ${file}`];
  for (const l of sidecar.listeners()) lines.push(`  listener ${l.name} on ${l.host}:${l.port}`);
  const adm = config.admin.address;
  if (config.xds) {
    lines.push(`  xds ${config.xds.delta ? 'delta' : 'state-of-the-world'} ADS from ${config.xds.target} (cluster ${config.xds.adsCluster})`);
  }
  lines.push(`  admin on http://${adm.host}:${sidecar.adminPort}/ (stats: /api/v1/stats, /stats/prometheus)`);
  process.stdout.write(lines.join('\n') + '\n');
  serveUpgrades(a, sidecar, config, false);
  releaseStartupMemory();
}

/** `start --upgrade`: takes over from the running process (src/upgrade/new.ts). */
async function upgrade(a: Args, fileConfig: OutriggerConfig | null): Promise<void> {
  let state: 'starting' | 'running' | 'stopping' = 'starting';
  process.on('SIGTERM', () => state !== 'running' && process.exit(143));
  process.on('SIGINT', () => state !== 'running' && process.exit(130));
  let up;
  try {
    up = await upgradeStart({
      dir: upgradeDir(a.upgradeDir),
      config: fileConfig,
      workers: a.workers,
      logLevel: a.logLevel,
      adminPort: a.adminPort,
      dieAt: process.env.OUTRIGGER_TEST_UPGRADE_DIE,
    });
  } catch (e) {
    const why = e instanceof UpgradeError || e instanceof Error ? e.message : String(e);
    process.stderr.write(`outrigger: upgrade failed: ${why.split('\n')[0]}\n`);
    exitAfterLogs(1);
    return;
  }
  const { sidecar, config } = up;
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
  state = 'running';
  const xds: XdsBox = { rt: startXdsFor(sidecar, config) };
  signals(sidecar, a.config ?? null, config.servers[0]?.gracefulTimeoutMs ?? 30_000, (s) => (state = s), () => state, xds);
  const lines = [`outrigger ${version()} took over from pid ${up.oldPid}: ${sidecar.workerCount} worker(s), config ${a.config ?? 'of the running process'}`];
  for (const l of sidecar.listeners()) lines.push(`  listener ${l.name} on ${l.host}:${l.port}`);
  lines.push(`  admin on http://${config.admin.address.host}:${sidecar.adminPort}/ (stats: /api/v1/stats, /stats/prometheus)`);
  process.stdout.write(lines.join('\n') + '\n');
  serveUpgrades(a, sidecar, config, true);
  releaseStartupMemory();
  const r = await up.oldDone;
  process.stdout.write(`outrigger upgrade ${r.clean ? 'complete' : 'ended (the old process went away)'}: pid ${up.oldPid} handed over ${r.migrated} connection(s) and exited ${r.ms} ms after the hand-over, cutting ${r.cut} long-lived connection(s) at graceful_timeout\n`);
}

/** Listens on the upgrade socket so that a later `start --upgrade` finds this process (unless disable_upgrade). */
function serveUpgrades(a: Args, sidecar: Sidecar, config: OutriggerConfig, takeover: boolean): void {
  if (isTrue((config.raw as Record<string, unknown> | null)?.disable_upgrade)) {
    sidecar.log.info('disable_upgrade: no upgrade socket; this process cannot be upgraded in place');
    return;
  }
  const fp = fdPass();
  if (typeof fp === 'string') {
    sidecar.log.info(fp);
    return;
  }
  const srv = new UpgradeServer(fp, sidecar, { dir: upgradeDir(a.upgradeDir), takeover, exit: () => exitAfterLogs(0) });
  const warn = srv.start();
  if (warn !== null) sidecar.log.warn(warn);
  else process.once('exit', () => srv.close());
}

function isTrue(v: unknown): boolean {
  return v === true || v === 'true';
}

/** SIGTERM drains, SIGINT stops, SIGHUP reloads FILE (none: the config is not from a file). */
function signals(sidecar: Sidecar, file: string | null, grace: number, setState: (s: 'stopping') => void, getState: () => string, xds: XdsBox): void {
  const endNow = (code: number): void => {
    void sidecar.release(300).finally(() => exitAfterLogs(code));
    setTimeout(() => process.exit(code), 1000).unref();
  };
  const onSignal = (sig: 'SIGTERM' | 'SIGINT'): void => {
    const code = sig === 'SIGINT' ? 130 : 143;
    xds.rt?.close(); // no config pushes while stopping
    if (getState() !== 'running') {
      // Starting, or a second signal: nothing is being served that a drain would protect.
      setState('stopping');
      endNow(code);
      return;
    }
    setState('stopping');
    if (sig === 'SIGINT') {
      void sidecar.stop().then(() => process.exit(0));
      setTimeout(() => process.exit(0), 2000).unref();
      return;
    }
    void sidecar.drain().then(() => process.exit(0));
    // The drain ends by itself after the graceful timeout; never outlive it by much.
    setTimeout(() => process.exit(0), grace + 5000).unref();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGHUP', () => {
    if (file === null) {
      sidecar.log.warn('SIGHUP: this process took its config from the process it replaced; there is no file to reload');
      return;
    }
    // Reload: a bad file keeps the running config.
    let next: OutriggerConfig;
    try {
      next = loadStartConfig(file);
    } catch (e) {
      sidecar.log.error({ err: e instanceof Error ? e.message : String(e) }, 'SIGHUP: config rejected; keeping the running one');
      return;
    }
    // xDS: the new static part is assembled with the dynamic resources (the ADS server is not changed).
    const reloaded = xds.rt ? xds.rt.store.rebase(next).then((errs) => (errs.length > 0 ? Promise.reject(new Error(errs.join('; '))) : undefined)) : sidecar.reload(next);
    reloaded.then(
      () => {
        const lines = ['outrigger config reloaded'];
        for (const l of sidecar.listeners()) lines.push(`  listener ${l.name} on ${l.host}:${l.port}`);
        process.stdout.write(lines.join('\n') + '\n');
      },
      (e: unknown) => sidecar.log.error({ err: e instanceof Error ? e.message : String(e) }, 'SIGHUP: reload failed'),
    );
  });
}

function version(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(path.join(__dirname, '..', '..', 'package.json')) as { version: string }).version;
}

function main(argv: readonly string[]): void {
  const a = parseArgs(argv);
  switch (a.cmd) {
    case 'start':
      void start(a);
      break;
    case 'validate': {
      if (!a.config) fail('validate needs -c FILE');
      const file = a.config;
      // The same steps as start: YAML or JSON, the static Envoy resources of an xDS bootstrap translated in, then built.
      const r = validateConfigFile(file, checkBuild, loadStartConfig);
      for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      if (r.ok) {
        process.stdout.write(`${a.config}: valid\n`);
        process.exit(0);
      }
      for (const e of r.errors) process.stderr.write(`error: ${e}\n`);
      process.exit(1);
      break;
    }
    case 'version':
      process.stdout.write(`${version()}\n`);
      break;
    default:
      fail(`unknown command "${a.cmd}" (see outrigger --help)`);
  }
}

if (require.main === module) main(process.argv.slice(2));
