/**
 * Runs the real `outrigger start` command as a child process on a config written to a temp
 * file (listeners and admin on port 0), and reads the ports it prints.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const CLI = path.join(__dirname, '..', '..', 'src', 'cli.js');

export interface RunningSidecar {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly ports: ReadonlyMap<string, number>;
  readonly adminPort: number;
  readonly configPath: string;
  output(): string;
  /** SIGTERM and wait for exit; returns the exit code. */
  terminate(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
  /** Resolves once the process exited and both its pipes are read to their end (all its output is in output()). */
  closed: Promise<void>;
  stats(): Promise<any>;
}

export interface TcpProxyOpts {
  readonly upstreams: readonly number[];
  readonly lbType?: string;
  readonly connectTimeout?: string;
  readonly idleTimeout?: string;
  readonly bufferLimit?: number;
  readonly maxConnectAttempts?: number;
  readonly clusterBufferLimit?: number;
  readonly accessLogPath?: string;
}

/** A MOSN-format config with one tcp_proxy listener on 127.0.0.1:0. */
export function tcpProxyConfig(o: TcpProxyOpts): Record<string, unknown> {
  const proxyCfg: Record<string, unknown> = { stat_prefix: 'test', cluster: 'backend' };
  if (o.idleTimeout) proxyCfg.idle_timeout = o.idleTimeout;
  if (o.maxConnectAttempts) proxyCfg.max_connect_attempts = o.maxConnectAttempts;
  const listener: Record<string, unknown> = {
    name: 'tcp',
    address: '127.0.0.1:0',
    bind_port: true,
    filter_chains: [{ filters: [{ type: 'tcp_proxy', config: proxyCfg }] }],
  };
  if (o.bufferLimit) listener.per_connection_buffer_limit_bytes = o.bufferLimit;
  if (o.accessLogPath) listener.access_logs = [{ log_path: o.accessLogPath }];
  const cluster: Record<string, unknown> = {
    name: 'backend',
    type: 'SIMPLE',
    lb_type: o.lbType ?? 'LB_ROUNDROBIN',
    hosts: o.upstreams.map((p) => ({ address: `127.0.0.1:${p}` })),
  };
  if (o.connectTimeout) cluster.connect_timeout = o.connectTimeout;
  if (o.clusterBufferLimit) cluster.conn_buffer_limit_bytes = o.clusterBufferLimit;
  return {
    servers: [{ default_log_level: 'WARN', processor: 1, listeners: [listener] }],
    cluster_manager: { clusters: [cluster] },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
  };
}

export async function startSidecar(config: unknown, opts: { workers?: number; env?: NodeJS.ProcessEnv; args?: string[] } = {}): Promise<RunningSidecar> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-test-'));
  const configPath = path.join(dir, 'config.json');
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  const args = [CLI, 'start', '-c', configPath, '--workers', String(opts.workers ?? 1), ...(opts.args ?? [])];
  // Its own upgrade socket directory unless the test names one: sidecars of tests running side
  // by side must not find each other's socket (each would see "another running Outrigger").
  const env = { ...process.env, OUTRIGGER_UPGRADE_DIR: dir, ...opts.env };
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  // Never leave a sidecar behind, even when a test dies before its finally block.
  const reap = (): void => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  process.once('exit', reap);
  proc.once('exit', () => process.off('exit', reap));
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  // 'close' comes after the last bytes of both pipes; 'exit' may come before the text an abort printed.
  const closed = new Promise<void>((resolve) =>
    proc.once('close', (_code, signal) => {
      keepFatalOutput(proc.pid!, signal, () => out);
      resolve();
    }),
  );
  const { ports, adminPort } = await waitForStart(proc, () => out, exited, /admin on http:\/\/[^:]+:(\d+)\//, 'sidecar', 15_000);
  return {
    proc,
    pid: proc.pid!,
    ports,
    adminPort,
    configPath,
    output: () => out,
    exited,
    closed,
    async terminate(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
      return code;
    },
    async stats() {
      try {
        const r = await fetch(`http://127.0.0.1:${adminPort}/api/v1/stats`);
        return await r.json();
      } catch (e) {
        // undici says only 'fetch failed'; the reason (ECONNRESET, a timeout...) is its cause.
        const why = (e as { cause?: unknown }).cause;
        throw new Error(`admin stats: ${String(why ?? e)}; sidecar exit ${proc.exitCode}/${proc.signalCode}`, { cause: e });
      }
    },
  };
}

/** Signals the sidecar never sends itself: an abort (Node's fatal errors, a C++ terminate) or a crash. */
const FATAL_SIGNALS: ReadonlySet<string> = new Set(['SIGABRT', 'SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGTRAP']);

/**
 * A sidecar that died by a fatal signal: its whole output (Node prints the assertion, "FATAL
 * ERROR" or "terminate called after..." text before it aborts) goes to a file in the temp
 * directory, named on this process's stderr, whether or not the test that started it notices.
 */
function keepFatalOutput(pid: number, signal: NodeJS.Signals | null, out: () => string): void {
  if (signal === null || !FATAL_SIGNALS.has(signal)) return;
  const file = path.join(os.tmpdir(), `outrigger-sidecar-${pid}-${signal}.log`);
  fs.writeFileSync(file, out());
  process.stderr.write(`# sidecar ${pid} died by ${signal}; its output is in ${file}; the end of it:\n${out().slice(-4000)}\n`);
}

/** Waits until the CLI printed `started` (its admin line, matched by `re`), then reads the listener ports it printed. */
export function waitForStart(proc: ChildProcess, out: () => string, exited: Promise<number | null>, re: RegExp, what: string, ms: number): Promise<{ ports: Map<string, number>; adminPort: number }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} did not start in ${ms / 1000} s:\n${out()}`)), ms);
    const check = (): void => {
      const m = re.exec(out());
      if (m) {
        const ports = new Map<string, number>();
        for (const x of out().matchAll(/listener (\S+) on \S+:(\d+)/g)) ports.set(x[1], Number(x[2]));
        clearTimeout(t);
        proc.stdout!.off('data', check);
        resolve({ ports, adminPort: Number(m[1]) });
      }
    };
    proc.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(t);
      reject(new Error(`${what} exited with ${code} before starting:\n${out()}`));
    });
  });
}

/** VmRSS of a process, in bytes. */
/** The process's own resident memory (RssAnon: heap, stacks, malloc), without file pages that the start may release. */
export function anonRssOf(pid: number): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export function rssOf(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(s);
  return m ? Number(m[1]) * 1024 : 0;
}
