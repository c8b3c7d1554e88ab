/**
 * Hot-upgrade test helpers: the old process is a normal `outrigger start` (test/helpers/sidecar.ts)
 * with its own upgrade directory; `startUpgrade` runs `outrigger start --upgrade` against it and
 * reads what it prints (listeners, admin, and the line it prints once the old process is done).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, waitForStart } from './sidecar';

export function upgradeDirFor(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-upg-'));
}

export interface NewProcess {
  readonly proc: ChildProcess;
  readonly ports: ReadonlyMap<string, number>;
  readonly adminPort: number;
  output(): string;
  readonly exited: Promise<number | null>;
  /** Resolves with the old process's report once it is done: connections handed over, ms from hand-over to its exit. */
  readonly oldDone: Promise<{ migrated: number; ms: number; clean: boolean; cut: number }>;
  stats(): Promise<any>;
  terminate(): Promise<number | null>;
}

/** Runs `outrigger start --upgrade` (resolves when it serves, rejects when it exits first). */
export async function startUpgrade(dir: string, opts: { args?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<NewProcess> {
  const proc = spawn(process.execPath, [CLI, 'start', '--upgrade', ...(opts.args ?? [])], {
    env: { ...process.env, OUTRIGGER_UPGRADE_DIR: dir, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const reap = (): void => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  process.once('exit', reap);
  proc.once('exit', () => process.off('exit', reap));
  let out = '';
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  let doneCb: (r: { migrated: number; ms: number; clean: boolean; cut: number }) => void = () => {};
  const oldDone = new Promise<{ migrated: number; ms: number; clean: boolean; cut: number }>((r) => (doneCb = r));
  const onOut = (): void => {
    const m = /upgrade (complete|ended)[^:]*: pid \d+ handed over (\d+) connection\(s\) and exited (\d+) ms after the hand-over([^\n]*)\n/.exec(out);
    const cut = m === null ? null : /cutting (\d+) long-lived/.exec(m[4]);
    // cut: NaN when the line does not say (a process without the count)
    if (m) doneCb({ clean: m[1] === 'complete', migrated: Number(m[2]), ms: Number(m[3]), cut: cut === null ? NaN : Number(cut[1]) });
  };
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    onOut();
  });
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const { ports, adminPort } = await waitForStart(proc, () => out, exited, /took over[\s\S]*admin on http:\/\/[^:]+:(\d+)\//, 'upgrade', 20_000);
  return {
    proc,
    ports,
    adminPort,
    output: () => out,
    exited,
    oldDone,
    async stats() {
      const r = await fetch(`http://127.0.0.1:${adminPort}/api/v1/stats`);
      return r.json();
    },
    async terminate() {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/**
 * Watches the client sockets this test process opens to the given ports (any library: every
 * net.Socket connect goes through Socket.prototype.connect) and records the ones that close.
 */
export function watchClientSockets(ports: readonly number[]): { opened(): number; closed(): number; stop(): void } {
  const proto = net.Socket.prototype as unknown as { connect: (...a: unknown[]) => net.Socket };
  const orig = proto.connect;
  let opened = 0;
  let closed = 0;
  let watching = true;
  proto.connect = function (this: net.Socket, ...args: unknown[]) {
    const s = orig.apply(this, args);
    this.once('connect', () => {
      if (!watching || !ports.includes(this.remotePort ?? -1)) return;
      opened++;
      this.once('close', () => {
        if (watching) closed++;
      });
    });
    return s;
  };
  return {
    opened: () => opened,
    closed: () => closed,
    stop() {
      watching = false;
      proto.connect = orig;
    },
  };
}

/** Merges the servers[0] listeners / routers and the clusters of several MOSN configs into one. */
export function mergeConfigs(parts: readonly Record<string, any>[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  const server = { default_log_level: 'WARN', processor: 1, graceful_timeout: '20s', routers: [] as unknown[], listeners: [] as unknown[] };
  const clusters: unknown[] = [];
  for (const p of parts) {
    server.routers.push(...(p.servers[0].routers ?? []));
    server.listeners.push(...p.servers[0].listeners);
    clusters.push(...p.cluster_manager.clusters);
  }
  return { servers: [server], cluster_manager: { clusters }, admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } }, ...extra };
}

export interface SofaLoadResult {
  ok: number;
  failed: number;
  errors: string[];
  /** The argument of each failed call (the first 1,000). */
  failedArgs: string[];
  opened: number;
  closed: number;
  ms: number;
}

/** test/helpers/sofa-load.ts in a child process (sofa-rpc-node's RpcClient leaves a timer behind): `rate` calls/s for `ms`. */
export function runSofaLoad(port: number, svc: string, rate: number, ms: number): { ready: Promise<void>; done: Promise<SofaLoadResult> } {
  const p = spawn(process.execPath, [path.join(__dirname, 'sofa-load.js'), String(port), svc, String(rate), String(ms)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let readyCb: () => void = () => {};
  const ready = new Promise<void>((r) => (readyCb = r));
  p.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('ready\n')) readyCb();
  });
  const done = new Promise<SofaLoadResult>((resolve, reject) =>
    // 'close', not 'exit': the result line may still be in the pipe when the process exits.
    p.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code === 0 && line !== undefined) resolve(JSON.parse(line) as SofaLoadResult);
      else reject(new Error(`sofa load exited with ${code}: ${out}`));
    }),
  );
  return { ready, done };
}
