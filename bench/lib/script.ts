// Helpers of the standalone bench scripts (admin-isolation, filters-cost).
import type { ChildProcess } from 'node:child_process';

/** `--name N` from the command line, else `def`. */
export function numOpt(args: readonly string[], name: string, def: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
}

/** Resolves with the first match of `re` in a child's stdout + stderr (30 s at most). */
export function firstLine(p: ChildProcess, re: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`timeout waiting for ${re}: ${out}`)), timeoutMs);
    const on = (d: Buffer): void => {
      out += d.toString();
      const m = re.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m);
      }
    };
    p.stdout?.on('data', on);
    p.stderr?.on('data', on);
  });
}
