// The peers a workload can run against. Every proxy peer is started pinned to the
// proxy CPU with a generated config that is equivalent for the workload.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { freePort, waitForPort } from '../lib/net';
import { startPinned, placement, type Owned } from '../lib/proc-spawn';
import { DIST_BENCH, REPO_ROOT } from '../lib/paths';
import {
  envoyConfig,
  haproxyConfig,
  mosnConfig,
  nginxConfig,
  NGINX_STREAM_MODULE_PATHS,
  nginxUsesStream,
  outriggerConfig,
  proxyLayer,
  type ConfigInput,
  type ProxyMode,
  type TlsListener,
} from './configs';
import { makeCerts, type CertFiles, type CertKind } from '../lib/certs';
import { withBenchFilters } from '../lib/bench-filters';
import { startOtlpSink } from '../lib/otlp-sink';

export interface PeerTarget {
  mode: ProxyMode;
  backendPort: number;
  /** Scratch directory for this peer's config/logs */
  dir: string;
  /** mode `tls`: the server certificates, one TLS listener each */
  certs?: Partial<Record<CertKind, CertFiles>>;
  /** mode `http2`: the backend's HTTP/1.1 port (nginx proxies h2c to HTTP/1.1) */
  http1BackendPort?: number;
}

export interface RunningPeer {
  /** Port the load generator connects to */
  port: number;
  /** mode `tls`: the port of each certificate's listener */
  ports?: Partial<Record<CertKind, number>>;
  /** Root PIDs of the proxy (CPU/RSS are summed over these and their descendants) */
  pids: number[];
  stop(): Promise<void>;
}

export interface PeerDef {
  name: string;
  description: string;
  /** Hidden peers are for the harness's own tests and never in the default list. */
  hidden?: boolean;
  /** undefined when the peer can run here, else why not (e.g. "Envoy not found"). */
  unavailable(): string | undefined;
  /** undefined when the peer can proxy this mode, else why not. */
  unsupported(mode: ProxyMode): string | undefined;
  version(): string;
  start(t: PeerTarget): Promise<RunningPeer>;
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/local/sbin'])) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').find((l) => l.trim()) ?? 'unknown';
}

/** Starts a pinned proxy process and waits until its listener accepts. */
async function launch(
  name: string, cmd: string, args: string[], port: number, cwd?: string, timeoutMs = 10_000, env?: NodeJS.ProcessEnv,
  ports?: Partial<Record<CertKind, number>>,
): Promise<RunningPeer> {
  const proc: Owned = startPinned(placement().proxy, cmd, args, { cwd, env: env ? { ...process.env, ...env } : undefined });
  try {
    for (const p of new Set([port, ...Object.values(ports ?? {})])) await waitForPort(p, { timeoutMs, alive: () => proc.exited() });
  } catch (e) {
    await proc.stop();
    const out = proc.output();
    throw new Error(`${name} failed to start: ${(e as Error).message}${out ? `\n${out.split('\n').slice(-12).join('\n')}` : ''}`, { cause: e });
  }
  return { port, ...(ports ? { ports } : {}), pids: [proc.pid], stop: () => proc.stop() };
}

/** Mode `tls`: a free port per certificate; `port` is the first one's. */
async function tlsPorts(t: PeerTarget): Promise<{ tls?: TlsListener[]; ports?: Partial<Record<CertKind, number>> }> {
  if (t.mode !== 'tls') return {};
  const certs = Object.values(t.certs ?? {});
  if (!certs.length) throw new Error('mode tls started without certificates');
  const tls: TlsListener[] = [];
  for (const cert of certs) tls.push({ name: cert.kind, port: await freePort(), cert });
  return { tls, ports: Object.fromEntries(tls.map((l) => [l.name, l.port])) };
}

/**
 * Starts a peer configured by a JSON file: `make` builds the config for the target (its
 * listener port(s), a fresh admin port), written to `<dir>/<name>.json`; `args` gets that path.
 */
async function startWithJsonConfig(
  name: string, t: PeerTarget, bin: string, make: (c: ConfigInput) => object, args: (cfg: string) => string[],
  o: { cwd?: string; timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<RunningPeer> {
  const { tls, ports } = await tlsPorts(t);
  const port = tls?.[0].port ?? (await freePort());
  const adminPort = await freePort();
  const cfg = path.join(t.dir, `${name}.json`);
  fs.writeFileSync(cfg, JSON.stringify(make({ mode: t.mode, port, backendPort: t.backendPort, dir: t.dir, adminPort, tls }), null, 2));
  return launch(name, bin, args(cfg), port, o.cwd, o.timeoutMs, o.env, ports);
}

/** A binary named by the environment variable `envVar` (when that file exists), else `cmd` on PATH. */
function binFromEnvOrPath(envVar: string, cmd: string): string | undefined {
  const env = process.env[envVar];
  if (env) return fs.existsSync(env) ? env : undefined;
  return which(cmd);
}

/** Why an optional peer's binary (binFromEnvOrPath) is missing. */
function binNotFound(label: string, envVar: string, cmd: string): string {
  const env = process.env[envVar];
  return `${label} not found, skipped (put ${cmd} on PATH or set ${envVar}${env ? `; ${env} does not exist` : ''})`;
}

const outriggerCli = (): string => path.join(REPO_ROOT, 'dist', 'src', 'cli.js');

/**
 * Whether the built Outrigger accepts the config `mode` generates: `outrigger validate`
 * exits 0 on it. Used to notice features (bolt) as soon as they are merged.
 */
export function outriggerValidates(mode: ProxyMode): { ok: boolean; output: string } {
  if (!fs.existsSync(outriggerCli())) return { ok: false, output: `${outriggerCli()} not built` };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-validate-'));
  try {
    const cfg = path.join(dir, 'outrigger.json');
    // TLS validation loads the certificate files: make real ones (the workload's kinds).
    let tls: TlsListener[] | undefined;
    if (mode === 'tls') {
      try {
        const c = makeCerts(path.join(dir, 'certs'));
        tls = [{ name: 'ecdsa', port: 34570, cert: c.ecdsa }, { name: 'rsa', port: 34571, cert: c.rsa }];
      } catch (e) {
        return { ok: false, output: `could not make test certificates: ${(e as Error).message}` };
      }
    }
    // Fixed example ports: validation neither binds nor connects.
    fs.writeFileSync(cfg, JSON.stringify(outriggerConfig({ mode, port: 34567, backendPort: 34568, dir, adminPort: 34569, tls }), null, 2));
    const r = spawnSync(process.execPath, [outriggerCli(), 'validate', '-c', cfg], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 15_000 });
    return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

let detected: Set<string> | undefined;
/**
 * Outrigger features that exist today: tcp_proxy, plus bolt when the built CLI validates
 * the bolt workload's config. Override with OUTRIGGER_FEATURES=tcp_proxy,bolt,http1,...
 */
export function outriggerFeatures(): Set<string> {
  const env = process.env.OUTRIGGER_FEATURES;
  if (env !== undefined) return new Set(env.split(',').map((s) => s.trim()).filter(Boolean));
  if (!detected) {
    detected = new Set(['tcp_proxy']);
    for (const [feature, mode] of FEATURE_MODES) if (outriggerValidates(mode).ok) detected.add(feature);
  }
  return detected;
}

/** Features detected by validating a workload config, and the config mode that shows each. */
const FEATURE_MODES: [string, ProxyMode][] = [['bolt', 'bolt'], ['dubbo', 'dubbo'], ['tls', 'tls'], ['http1', 'http1'], ['http2', 'http2']];

/** Why Outrigger is skipped for a workload needing `missing` features. */
export function outriggerSkipReason(missing: string[]): string {
  let why = `Outrigger has not built ${missing.join(', ')} yet`;
  if (process.env.OUTRIGGER_FEATURES !== undefined) return why;
  for (const [feature, mode] of FEATURE_MODES) {
    if (!missing.includes(feature)) continue;
    const v = outriggerValidates(mode);
    if (v.ok) continue;
    const line = v.output.split('\n').find((l) => /error|not supported|not built|unknown/i.test(l)) ?? v.output.split('\n')[0] ?? '';
    why += ` (\`outrigger validate\` rejects the ${mode} config${line ? `: ${line.trim().slice(0, 200)}` : ''}; OUTRIGGER_FEATURES=tcp_proxy,${feature} forces it on)`;
  }
  return why;
}

/**
 * Outrigger with one worker. Variants compare its IO strategies in the same run:
 * `outrigger-cork` (OUTRIGGER_IO=cork: Node's read buffers + cork/uncork) and
 * `outrigger-fallback` (OUTRIGGER_NATIVE=0: TypeScript fallbacks instead of the addon) and
 * `outrigger-libh1` (HTTP/1.1 on node:http downstream and undici upstream instead of the raw engine).
 */
function outriggerPeer(
  name: string, description: string, env?: NodeJS.ProcessEnv, root?: () => string | undefined, filters = false,
): PeerDef {
  const cli = (): string => (root === undefined ? outriggerCli() : path.join(root() ?? '', 'dist', 'src', 'cli.js'));
  return {
    name,
    description,
    unavailable: () => {
      if (root !== undefined && root() === undefined) return 'set OUTRIGGER_REF to another built checkout (a before/after comparison)';
      return fs.existsSync(cli()) ? undefined : `${cli()} not built`;
    },
    // The filters are stream filters: they run where Outrigger's config has an L7 proxy filter.
    unsupported: (mode) => (filters && proxyLayer('outrigger', mode) !== 'L7' ? 'n/a: the bench filters are stream filters (bolt, dubbo, http1, http2, grpc)' : undefined),
    version: () => {
      try {
        return `outrigger ${JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version}`;
      } catch {
        return 'outrigger';
      }
    },
    start: async (t) => {
      const collector = filters ? await otlpSink() : '';
      const make = filters ? (c: ConfigInput): object => withBenchFilters(outriggerConfig(c), collector) : outriggerConfig;
      return startWithJsonConfig(name, t, process.execPath, make, (cfg) => [cli(), 'start', '-c', cfg, '--workers', '1', '--log-level', 'warn'], {
        cwd: root?.() ?? REPO_ROOT,
        timeoutMs: 10_000,
        // Its own upgrade socket directory (in the run's temp dir), not the shared default
        // <tmp>/outrigger that every other Outrigger on the machine (tests, other runs) would use.
        env: { OUTRIGGER_UPGRADE_DIR: path.join(t.dir, `${name}-upgrade`), ...env },
      });
    },
  };
}

let sink: Promise<string> | undefined;
/**
 * The OTLP collector the filters peers export their sampled spans to: one stand-in sink in this
 * process for the whole run (it accepts and discards; unref'd so it never keeps the run alive).
 */
function otlpSink(): Promise<string> {
  sink ??= startOtlpSink().then(({ server, url }) => {
    server.unref();
    return url;
  });
  return sink;
}

const outrigger = outriggerPeer('outrigger', 'this project (node dist/src/cli.js start --workers 1)');
const outriggerCork = outriggerPeer('outrigger-cork', 'this project with OUTRIGGER_IO=cork (cork/uncork writes, Node read buffers)', { OUTRIGGER_IO: 'cork' });
const outriggerFallback = outriggerPeer('outrigger-fallback', 'this project with OUTRIGGER_NATIVE=0 (TypeScript fallbacks, no addon)', { OUTRIGGER_NATIVE: '0' });
/** `outrigger-ref`: the Outrigger built in the checkout OUTRIGGER_REF names (before/after measurements in one run). */
const outriggerRef = outriggerPeer('outrigger-ref', 'Outrigger built in $OUTRIGGER_REF (another checkout, for before/after comparisons)', undefined, () => process.env.OUTRIGGER_REF);
/**
 * `outrigger-filters` / `outrigger-ref-filters`: the same builds with issue 13's three filters
 * added to the workload's config (RBAC with 10 policies, a local rate limit that never rejects,
 * tracing at 1 % exported to a sink in this process: bench/lib/bench-filters.ts), so the
 * filters' CPU per request is read off the workload itself against `outrigger` in one run.
 */
const outriggerFilters = outriggerPeer('outrigger-filters', 'this project with RBAC (10 policies) + local_ratelimit + tracing at 1 % (issue 13)', undefined, undefined, true);
const outriggerRefFilters = outriggerPeer(
  'outrigger-ref-filters', 'the $OUTRIGGER_REF build with the same three filters', undefined, () => process.env.OUTRIGGER_REF, true,
);
const outriggerLibH1 = outriggerPeer('outrigger-libh1', 'this project with the library HTTP/1.1 engines (OUTRIGGER_H1_DOWNSTREAM=node, OUTRIGGER_H1_UPSTREAM=undici)', {
  OUTRIGGER_H1_DOWNSTREAM: 'node',
  OUTRIGGER_H1_UPSTREAM: 'undici',
});

const haproxyBin = (): string | undefined => which('haproxy');
const haproxy: PeerDef = {
  name: 'haproxy',
  description: 'HAProxy from Debian, nbthread 1',
  unavailable: () => (haproxyBin() ? undefined : 'haproxy not installed (run scripts/install-peers.sh)'),
  unsupported: () => undefined,
  version: () => firstLine(haproxyBin() ?? 'haproxy', ['-v']).replace(/ - https?:.*$/, ''),
  async start(t) {
    const { tls, ports } = await tlsPorts(t);
    const port = tls?.[0].port ?? (await freePort());
    const cfg = path.join(t.dir, 'haproxy.cfg');
    fs.writeFileSync(cfg, haproxyConfig({ mode: t.mode, port, backendPort: t.backendPort, dir: t.dir, tls }));
    return launch('haproxy', haproxyBin()!, ['-db', '-f', cfg], port, undefined, 10_000, undefined, ports);
  },
};

const nginxBin = (): string | undefined => which('nginx');
const streamModule = (): string | undefined => NGINX_STREAM_MODULE_PATHS.find((p) => fs.existsSync(p));
const nginx: PeerDef = {
  name: 'nginx',
  description: 'nginx from Debian, worker_processes 1 (stream module for TCP)',
  unavailable: () => (nginxBin() ? undefined : 'nginx not installed (run scripts/install-peers.sh)'),
  unsupported: (mode) =>
    nginxUsesStream(mode) && !streamModule() ? 'ngx_stream_module.so not found (install libnginx-mod-stream)' : undefined,
  version: () => firstLine(nginxBin() ?? 'nginx', ['-v']).replace(/^nginx version: /, ''),
  async start(t) {
    const { tls, ports } = await tlsPorts(t);
    const port = tls?.[0].port ?? (await freePort());
    const cfg = path.join(t.dir, 'nginx.conf');
    fs.writeFileSync(
      cfg,
      nginxConfig({ mode: t.mode, port, backendPort: t.backendPort, dir: t.dir, tls, http1BackendPort: t.http1BackendPort }, streamModule()),
    );
    return launch('nginx', nginxBin()!, ['-p', t.dir, '-e', path.join(t.dir, 'error.log'), '-c', cfg], port, undefined, 10_000, undefined, ports);
  },
};

/**
 * An optional peer run from a binary named by `envVar` or found on PATH as `name`, configured
 * by a JSON file (Envoy, MOSN); skipped with a message saying how to provide it when absent.
 */
function binaryPeer(o: {
  name: string;
  label: string;
  envVar: string;
  description: string;
  version: (bin: string) => string;
  config: (c: ConfigInput) => object;
  args: (cfg: string) => string[];
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  /** run in the peer's scratch directory (files a peer writes beside itself stay there) */
  cwdInDir?: boolean;
}): PeerDef {
  const bin = (): string | undefined => binFromEnvOrPath(o.envVar, o.name);
  return {
    name: o.name,
    description: o.description,
    unavailable: () => (bin() ? undefined : binNotFound(o.label, o.envVar, o.name)),
    unsupported: () => undefined,
    version: () => o.version(bin() ?? o.name),
    start: (t) => startWithJsonConfig(o.name, t, bin()!, o.config, o.args, { cwd: o.cwdInDir ? t.dir : undefined, timeoutMs: o.timeoutMs, env: o.env }),
  };
}

const envoy = binaryPeer({
  name: 'envoy',
  label: 'Envoy',
  envVar: 'ENVOY_BIN',
  description: 'Envoy (from PATH or ENVOY_BIN), --concurrency 1',
  version: (bin) => firstLine(bin, ['--version']).trim(),
  config: envoyConfig,
  args: (cfg) => ['-c', cfg, '--concurrency', '1', '--log-level', 'warn', '--disable-hot-restart'],
  timeoutMs: 30_000,
});

/**
 * MOSN (a `mosn` binary on PATH or named by MOSN_BIN, e.g. one built from its v0.26.0 source):
 * one processor (`processor: 1` in the config, GOMAXPROCS=1), the same MOSN-format config
 * Outrigger gets (logs under the peer's directory), pinned to the proxy CPU like every peer.
 * GODEBUG=tls13=1: MOSN's TLS (a fork of Go 1.12's crypto/tls) offers TLS 1.3 only when asked,
 * and every other peer negotiates 1.3.
 */
const mosn = binaryPeer({
  name: 'mosn',
  label: 'MOSN',
  envVar: 'MOSN_BIN',
  description: 'MOSN (from PATH or MOSN_BIN), processor 1, GOMAXPROCS=1, GODEBUG=tls13=1',
  // `mosn -v` prints its log lines first; the version is the line saying so.
  version: (bin) => {
    const r = spawnSync(bin, ['-v'], { encoding: 'utf8', timeout: 5000 });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').find((l) => /^mosn version /.test(l))?.trim() ?? 'unknown';
  },
  config: mosnConfig,
  args: (cfg) => ['start', '-c', cfg],
  timeoutMs: 15_000,
  env: { GOMAXPROCS: '1', GODEBUG: 'tls13=1' },
  cwdInDir: true,
});

const direct: PeerDef = {
  name: 'direct',
  description: 'no proxy: the load generator connects to the backend itself',
  unavailable: () => undefined,
  unsupported: (mode) =>
    mode === 'tls' ? 'n/a: no TLS terminator (the backend speaks plaintext; node-tls is the TLS reference peer)' : undefined,
  version: () => '-',
  async start(t) {
    return { port: t.backendPort, pids: [], stop: async () => undefined };
  },
};

/**
 * Reference TLS terminator: a plain Node `tls` server (tickets off, no session cache)
 * piping each connection to the backend; what Node's own TLS costs, without Outrigger.
 */
const nodeTls: PeerDef = {
  name: 'node-tls',
  description: 'reference: plain Node tls.createServer piping to the backend (TLS workloads only)',
  unavailable: () => undefined,
  unsupported: (mode) => (mode === 'tls' ? undefined : 'n/a: node-tls is a TLS-only reference peer'),
  version: () => `node ${process.version}`,
  async start(t) {
    const { tls, ports } = await tlsPorts(t);
    const cfg = path.join(t.dir, 'node-tls.json');
    fs.writeFileSync(cfg, JSON.stringify({ backendPort: t.backendPort, listeners: tls!.map((l) => ({ port: l.port, cert: l.cert.cert, key: l.cert.key })) }));
    return launch('node-tls', process.execPath, [path.join(DIST_BENCH, 'peers', 'node-tls-main.js'), cfg], tls![0].port, undefined, 10_000, undefined, ports);
  },
};

/** Prototype: node-tls's job on the addon's memory-BIO TLS (no TLSSocket); src/tls/README.md. */
const nativeTlsProto: PeerDef = {
  ...nodeTls,
  name: 'native-tls-proto',
  description: 'prototype: node-tls on the addon\'s memory-BIO TLS (native/tls_conn.cc), TLS workloads only',
  unsupported: (mode) => (mode === 'tls' ? undefined : 'n/a: TLS-only prototype peer'),
  async start(t) {
    const { tls, ports } = await tlsPorts(t);
    const cfg = path.join(t.dir, 'native-tls-proto.json');
    fs.writeFileSync(cfg, JSON.stringify({ backendPort: t.backendPort, listeners: tls!.map((l) => ({ port: l.port, cert: l.cert.cert, key: l.cert.key })) }));
    return launch('native-tls-proto', process.execPath, [path.join(DIST_BENCH, 'peers', 'native-tls-proto-main.js'), cfg], tls![0].port, undefined, 10_000, undefined, ports);
  },
};

/** Version of an npm package from its package.json, or undefined when it is not installed. */
function npmVersion(pkg: string): string | undefined {
  try {
    return (JSON.parse(fs.readFileSync(require.resolve(`${pkg}/package.json`, { paths: [REPO_ROOT] }), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

/**
 * Reference Node proxy: the npm library a Node user would pick instead of Outrigger.
 * http1: node-http-proxy (`http-proxy`); http2: `http2-proxy` on an h2c node:http2 server,
 * which forwards over HTTP/1.1 only, so its upstream is the backend's HTTP/1.1 listener.
 */
const nodeHttpProxy: PeerDef = {
  name: 'node-http-proxy',
  description:
    'reference: one Node process; http1 = http.createServer + http-proxy (node-http-proxy) proxy.web, ' +
    'http2 = h2c http2.createServer + http2-proxy web() with an HTTP/1.1 upstream (http2-proxy cannot send HTTP/2; ' +
    'like nginx, it uses the backend\'s HTTP/1.1 listener); keep-alive http.Agent, maxSockets 256',
  unavailable: () => {
    const missing = ['http-proxy', 'http2-proxy'].filter((p) => !npmVersion(p));
    return missing.length ? `npm package ${missing.join(', ')} not installed (npm install)` : undefined;
  },
  unsupported: (mode) => {
    if (mode === 'http1' || mode === 'http2') return undefined;
    if (mode === 'grpc') return 'n/a: http2-proxy forwards over HTTP/1.1 only, and gRPC needs HTTP/2 to the backend';
    return 'n/a: node-http-proxy is an HTTP reference peer (http1, http2)';
  },
  version: () => `http-proxy ${npmVersion('http-proxy') ?? '?'}, http2-proxy ${npmVersion('http2-proxy') ?? '?'}, node ${process.version}`,
  async start(t) {
    const port = await freePort();
    const upstream = t.mode === 'http2' ? t.http1BackendPort : t.backendPort;
    if (!upstream) throw new Error('node-http-proxy: mode http2 needs the backend\'s HTTP/1.1 port');
    return launch('node-http-proxy', process.execPath, [path.join(DIST_BENCH, 'peers', 'node-http-proxy-main.js'), t.mode, String(port), String(upstream)], port);
  },
};

/**
 * The HTTP/1.1 downstream candidate of issue #4: uWebSockets.js in front of Outrigger (one
 * process, http1 only). `outrigger-uws`: every request through the same Exchange as the
 * `outrigger` peer (routing, stats, histograms, request ids, timeouts) — the like-for-like
 * comparison; `outrigger-uws-min` (UWS_FRONT_MINIMAL=1): uWS straight to the raw upstream pool.
 */
function uwsPeer(name: string, description: string, env?: NodeJS.ProcessEnv): PeerDef {
  return {
    name,
    description,
    unavailable: () => {
      if (!npmVersion('uWebSockets.js')) return 'npm package uWebSockets.js not installed (npm install)';
      const main = path.join(DIST_BENCH, 'peers', 'uws-front-main.js');
      return fs.existsSync(main) ? undefined : `${main} not built`;
    },
    unsupported: (mode) => (mode === 'http1' ? undefined : `n/a: ${name} compares HTTP/1.1 downstreams only (uWS has no HTTP/2 and no raw TCP)`),
    version: () => `uWebSockets.js ${npmVersion('uWebSockets.js') ?? '?'}, node ${process.version}`,
    async start(t) {
      const port = await freePort();
      return launch(name, process.execPath, [path.join(DIST_BENCH, 'peers', 'uws-front-main.js'), String(port), String(t.backendPort)], port, REPO_ROOT, 10_000, env);
    },
  };
}
const outriggerUws = uwsPeer(
  'outrigger-uws',
  "uWS downstream + Outrigger's Exchange and raw upstream pool (the candidate the issue asks to measure, like for like): " +
    'one process, uWebSockets.js app.any -> the same Exchange (routing, stats, histograms, x-request-id) -> startH1; http1 only',
);
const outriggerUwsMin = uwsPeer(
  'outrigger-uws-min',
  "uWS downstream + Outrigger's raw upstream pool, no Exchange (no routing, stats, histograms, request ids): " +
    'one process, uWebSockets.js app.any + startRawH1 (64 connections) to the backend; http1 only',
  { UWS_FRONT_MINIMAL: '1' },
);

/** Delay per chunk of the test-only slow relay, ms (SLOW_RELAY_DELAY_MS). */
const slowRelay: PeerDef = {
  name: 'slow-relay',
  description: 'test-only Node relay adding a fixed delay to every chunk',
  hidden: true,
  unavailable: () => undefined,
  unsupported: () => undefined,
  version: () => `node ${process.version}`,
  async start(t) {
    const port = await freePort();
    const delay = process.env.SLOW_RELAY_DELAY_MS ?? '2';
    return launch(
      'slow-relay',
      process.execPath,
      [path.join(DIST_BENCH, 'peers', 'slow-relay-main.js'), String(port), String(t.backendPort), delay],
      port,
    );
  },
};

export const PEERS: PeerDef[] = [outrigger, outriggerCork, outriggerFallback, outriggerLibH1, outriggerRef, outriggerFilters, outriggerRefFilters, haproxy, nginx, envoy, mosn, direct, nodeTls, nativeTlsProto, nodeHttpProxy, outriggerUws, outriggerUwsMin, slowRelay];
export const DEFAULT_PEERS = ['outrigger', 'haproxy', 'nginx', 'envoy', 'mosn', 'direct'];

export function peerByName(name: string): PeerDef | undefined {
  return PEERS.find((p) => p.name === name);
}
