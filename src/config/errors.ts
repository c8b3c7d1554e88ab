/**
 * Config validation errors. Every problem found while parsing a document is collected as a
 * ConfigIssue (the JSON path of the offending value plus a message naming the bad value);
 * parsing then throws ONE ConfigError carrying all of them.
 */

export interface ConfigIssue {
  /** e.g. `servers[0].listeners[1].address`; empty for document-level problems. */
  readonly path: string;
  readonly message: string;
}

/** `path: message`, or just `message` for a document-level issue. */
export function formatIssue(issue: ConfigIssue): string {
  return issue.path ? `${issue.path}: ${issue.message}` : issue.message;
}

/** A frozen issue that also stringifies as `path: message` (so `${issue}` prints well). */
export function makeIssue(path: string, message: string): ConfigIssue {
  const issue = { path, message };
  Object.defineProperty(issue, 'toString', { value: () => formatIssue(issue), enumerable: false });
  return Object.freeze(issue);
}

export class ConfigError extends Error {
  readonly errors: readonly ConfigIssue[];
  /** Warnings gathered before the errors stopped the parse (the CLI prints them too). */
  readonly warnings: readonly string[];
  readonly source?: string;

  constructor(errors: readonly ConfigIssue[], source?: string, warnings: readonly string[] = []) {
    const where = source ? ` (${source})` : '';
    const n = errors.length;
    const lines = errors.map((e) => `  ${formatIssue(e)}`);
    super(`invalid config${where}: ${n} error${n === 1 ? '' : 's'}\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.errors = Object.freeze(errors.map((e) => makeIssue(e.path, e.message)));
    this.warnings = Object.freeze([...warnings]);
    if (source !== undefined) this.source = source;
  }
}

/** Render a config value for an error message: JSON, truncated so one line stays readable. */
export function showValue(v: unknown): string {
  if (v === undefined) return 'undefined';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
