// Helpers of the standalone bench scripts (admin-isolation, filters-cost, tracing-cost).
import { spawn, type ChildProcess } from 'node:child_process';

/** `--name N` from the command line, else `def`. */
export function numOpt(args: readonly string[], name: string, def: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
}

/** Resolves with the first match of `re` in a child's stdout + stderr (30 s at most; rejects if it exits first). */
export function firstLine(p: ChildProcess, re: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`timeout waiting for ${re}: ${out}`)), timeoutMs);
    const onExit = (): void => {
      clearTimeout(t);
      reject(new Error(`exited before printing ${re}:\n${out}`));
    };
    const on = (d: Buffer): void => {
      out += d.toString();
      const m = re.exec(out);
      if (m) {
        clearTimeout(t);
        p.stdout?.off('data', on);
        p.stderr?.off('data', on);
        p.off('exit', onExit);
        resolve(m);
      }
    };
    p.stdout?.on('data', on);
    p.stderr?.on('data', on);
    p.once('exit', onExit);
  });
}

/** HTTP/1.1 load with h2load --h1 at a fixed total rate over `conns` connections: the answers by status class. */
export function h2loadHttp1(port: number, conns: number, rate: number, seconds: number): Promise<{ ok: number; errors: number; output: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('h2load', ['--h1', '-c', String(conns), '-t', '1', '--rps', String(rate / conns), '-D', String(seconds), `http://127.0.0.1:${port}/`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', () => {
      const m = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
      if (!m) return reject(new Error(`h2load output not understood:\n${out}`));
      resolve({ ok: Number(m[1]), errors: Number(m[3]) + Number(m[4]), output: out });
    });
  });
}

/** `--name VALUE` from the command line, else undefined. */
export function strOpt(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}
