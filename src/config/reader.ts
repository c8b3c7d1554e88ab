/** The case-insensitive object reader and the issue collector every section parses with. */
import { ConfigIssue, formatIssue, showValue } from './errors';
import { MAX_TIMER_MS, UINT32_MAX } from './defaults';
import { isPlainObject, isPresent, isSet, joinPath, parseGoDurationNs } from './values';

// Collection context and case-insensitive object reader
// ---------------------------------------------------------------------------------------------

/** Collects errors and warnings; shared by the whole parse. */
export class IssueCollector {
  readonly errors: ConfigIssue[] = [];
  readonly warnings: string[] = [];
  error(path: string, message: string): void {
    this.errors.push({ path, message });
  }
  warn(path: string, message: string): void {
    this.warnings.push(formatIssue({ path, message }));
  }
}

export interface IntOptions {
  min?: number;
  max?: number;
  def?: number;
}

export interface DurationOptions {
  /** Default (ms) when the key is absent. */
  def: number;
  /** Unit of a bare JSON number: 'ns' where MOSN decodes time.Duration; otherwise numbers other than 0 are rejected. */
  numberUnit?: 'ns';
  /** Reject 0 (e.g. connect_timeout). */
  positive?: boolean;
}

/**
 * Read-only view of a JSON object whose keys are matched case-insensitively (MOSN/Go style).
 * Getters take the canonical lowercase key, record it as consumed and report problems against
 * `path.key`; `done()` warns about keys nobody consumed.
 */
export class ConfigObject {
  private readonly byLower = new Map<string, { key: string; value: unknown }>();
  private readonly used = new Set<string>();

  constructor(readonly issues: IssueCollector, readonly path: string, readonly source: Record<string, unknown>) {
    for (const [key, value] of Object.entries(source)) {
      const lower = key.toLowerCase();
      const prior = this.byLower.get(lower);
      if (prior) {
        issues.error(joinPath(path, lower), `keys ${showValue(prior.key)} and ${showValue(key)} differ only in case; give it once`);
        continue;
      }
      this.byLower.set(lower, { key, value });
    }
  }

  /** Wrap `value` if it is an object; otherwise report "must be an object" and return undefined. */
  static from(issues: IssueCollector, path: string, value: unknown): ConfigObject | undefined {
    if (!isPlainObject(value)) {
      issues.error(path, `${showValue(value)} must be an object`);
      return undefined;
    }
    return new ConfigObject(issues, path, value);
  }

  at(key: string): string {
    return joinPath(this.path, key);
  }

  has(key: string): boolean {
    const e = this.byLower.get(key);
    return e !== undefined && e.value !== undefined && e.value !== null;
  }

  /** The raw value (null is treated as absent, as Go does for non-pointer fields). */
  get(key: string): unknown {
    this.used.add(key);
    const v = this.byLower.get(key)?.value;
    return v === null ? undefined : v;
  }

  /** The key as the user spelled it (for messages). */
  spelled(key: string): string {
    return this.byLower.get(key)?.key ?? key;
  }

  /** Mark keys as known with no effect (accepted silently). */
  accept(...keys: string[]): void {
    for (const k of keys) this.used.add(k);
  }

  /** Known but unsupported and harmless: warn when it is set to something non-empty. */
  warnIfSet(key: string, why: string): void {
    const v = this.get(key);
    if (isSet(v)) this.issues.warn(this.at(key), why);
  }

  /** Known but unsupported and unsafe to ignore: error when it is set to something non-empty. */
  errorIfSet(key: string, why: string): void {
    const v = this.get(key);
    if (isPresent(v)) this.issues.error(this.at(key), why);
  }

  str(key: string, opts: { required?: boolean; def?: string; nonEmpty?: boolean } = {}): string | undefined {
    const v = this.get(key);
    if (v === undefined) {
      if (opts.required) this.issues.error(this.at(key), 'is required');
      return opts.def;
    }
    if (typeof v !== 'string') {
      this.issues.error(this.at(key), `${showValue(v)} must be a string`);
      return opts.def;
    }
    if ((opts.nonEmpty || opts.required) && v.trim() === '') {
      this.issues.error(this.at(key), `${showValue(v)} must not be empty`);
      return opts.def;
    }
    return v;
  }

  bool(key: string, def: boolean): boolean {
    const v = this.get(key);
    if (v === undefined) return def;
    if (typeof v !== 'boolean') {
      this.issues.error(this.at(key), `${showValue(v)} must be true or false`);
      return def;
    }
    return v;
  }

  int(key: string, opts: IntOptions = {}): number {
    const def = opts.def ?? 0;
    const v = this.get(key);
    if (v === undefined) return def;
    return this.checkInt(v, this.at(key), opts) ?? def;
  }

  checkInt(v: unknown, path: string, opts: IntOptions = {}): number | undefined {
    const min = opts.min ?? 0;
    const max = opts.max ?? UINT32_MAX;
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      this.issues.error(path, `${showValue(v)} must be an integer`);
      return undefined;
    }
    if (v < min || v > max) {
      this.issues.error(path, `${showValue(v)} is out of range ${min}..${max}`);
      return undefined;
    }
    return v;
  }

  /** A duration in ms (sub-millisecond values round up so they never turn into "disabled"). */
  duration(key: string, opts: DurationOptions): number {
    const v = this.get(key);
    if (v === undefined) return opts.def;
    return checkDuration(this.issues, v, this.at(key), opts) ?? opts.def;
  }

  obj(key: string): ConfigObject | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    return ConfigObject.from(this.issues, this.at(key), v);
  }

  /** Array items with their paths; a non-array is reported and yields []. */
  list(key: string): { value: unknown; path: string }[] {
    const v = this.get(key);
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      this.issues.error(this.at(key), `${showValue(v)} must be an array`);
      return [];
    }
    return v.map((value, i) => ({ value, path: `${this.at(key)}[${i}]` }));
  }

  /** Warn about every key no getter asked for. */
  done(): void {
    for (const [lower, e] of this.byLower) {
      if (!this.used.has(lower)) this.issues.warn(joinPath(this.path, e.key), 'unknown key (ignored)');
    }
  }
}

/** Validate one duration value (string with unit, 0, or ns number where allowed); ms or undefined. */
export function checkDuration(issues: IssueCollector, v: unknown, path: string, opts: DurationOptions): number | undefined {
  let ns: number | undefined;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) ns = undefined;
    else if (v === 0) ns = 0;
    else if (opts.numberUnit === 'ns') ns = v;
    else {
      issues.error(path, `${showValue(v)} is not a duration: write it with a unit, e.g. "${v}s" or "${v}ms"`);
      return undefined;
    }
  } else if (typeof v === 'string') {
    ns = parseGoDurationNs(v);
  }
  if (ns === undefined) {
    issues.error(path, `${showValue(v)} is not a duration (expected e.g. "30s", "500ms", "1m30s")`);
    return undefined;
  }
  if (ns < 0) {
    issues.error(path, `${showValue(v)} must not be negative`);
    return undefined;
  }
  const ms = Math.ceil(ns / 1e6);
  if (ms > MAX_TIMER_MS) {
    issues.error(path, `${showValue(v)} is too large (max ${MAX_TIMER_MS} ms, about 24.8 days)`);
    return undefined;
  }
  if (ms === 0 && opts.positive) {
    issues.error(path, `${showValue(v)} must be greater than 0`);
    return undefined;
  }
  return ms;
}

/** What every section parser shares during one parse. */
export interface ParseState {
  readonly issues: IssueCollector;
  readonly clusterNames: Map<string, string>; // name -> path of its definition
}
