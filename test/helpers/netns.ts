/**
 * A network namespace a test creates for itself (transparent interception with iptables):
 * its own loopback, addresses and nat rules, so nothing touches the host's network. Needs root
 * and the `ip` and `iptables` commands; `netnsUnavailable()` says why not when they are missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

/** Why namespaces cannot be used here ('' = they can). */
export function netnsUnavailable(): string {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root (network namespaces and iptables need root)';
  for (const cmd of ['ip', 'iptables', 'setpriv', 'curl']) {
    const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
    if (r.status !== 0) return `${cmd} is not installed (scripts/install-peers.sh installs iptables)`;
  }
  // Root without CAP_NET_ADMIN (some containers) or without the nat table: say so rather than fail.
  const probe = `outrigger-probe-${process.pid}`;
  const r = spawnSync('sh', ['-c', `ip netns add ${probe} && ip netns exec ${probe} iptables -t nat -L OUTPUT -n >/dev/null; s=$?; ip netns del ${probe} 2>/dev/null; exit $s`], { encoding: 'utf8' });
  if (r.status !== 0) return `cannot create a network namespace with an iptables nat table here: ${(r.stderr || '').trim().split('\n')[0]}`;
  return '';
}

export interface Spawned {
  readonly proc: ChildProcess;
  output(): string;
  /** Resolves once the output matches `re` (rejects after `ms` or when the process exits first). */
  waitFor(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  kill(): Promise<void>;
}

export class NetNs {
  readonly name: string;

  constructor(tag: string) {
    this.name = `outrigger-${tag}-${process.pid}`;
    this.run('ip', ['netns', 'add', this.name], false);
    this.exec('ip', ['link', 'set', 'lo', 'up']);
  }

  private run(cmd: string, args: string[], inNs = true): string {
    const full = inNs ? ['netns', 'exec', this.name, cmd, ...args] : args;
    const r = spawnSync(inNs ? 'ip' : cmd, full, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
  }

  /** Runs a command inside the namespace and returns its stdout (throws on failure). */
  exec(cmd: string, args: string[]): string {
    return this.run(cmd, args);
  }

  /** Runs a command inside the namespace: exit code and output, never throws. */
  try(cmd: string, args: string[], timeoutMs = 10_000): { code: number; out: string; err: string } {
    const r = spawnSync('ip', ['netns', 'exec', this.name, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs });
    return { code: r.status ?? -1, out: r.stdout ?? '', err: r.stderr ?? '' };
  }

  /** A long-running process inside the namespace (`ip netns exec` execs it: proc.pid is the command itself). */
  spawn(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Spawned {
    const proc = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    const waiters = new Set<() => void>();
    const onData = (d: Buffer): void => {
      out += d.toString();
      for (const w of [...waiters]) w();
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const reap = (): void => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    };
    process.once('exit', reap);
    return {
      proc,
      output: () => out,
      waitFor(re: RegExp, ms = 15_000) {
        return new Promise((resolve, reject) => {
          const check = (): void => {
            const m = re.exec(out);
            if (m) {
              done();
              resolve(m);
            }
          };
          const timer = setTimeout(() => {
            done();
            reject(new Error(`timed out waiting for ${re}:\n${out}`));
          }, ms);
          const onExit = (): void => {
            done();
            reject(new Error(`${cmd} exited before ${re}:\n${out}`));
          };
          const done = (): void => {
            clearTimeout(timer);
            waiters.delete(check);
            proc.off('exit', onExit);
          };
          waiters.add(check);
          proc.once('exit', onExit);
          check();
        });
      },
      async kill() {
        process.off('exit', reap);
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      },
    };
  }

  /** Deletes the namespace (its addresses, rules and any process left in it lose their network). */
  destroy(): void {
    spawnSync('ip', ['netns', 'del', this.name]);
  }
}
