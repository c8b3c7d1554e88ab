/**
 * Readers over decoded xDS messages (src/xds/types.ts XdsMessage: camelCase keys, wrappers as
 * `{ value }`, Durations as `{ seconds: '1', nanos }`, Any expanded with '@type') and the field
 * policy every translator applies: a field is translated, skipped with a warning, or refused
 * (NACK) because ignoring it would change routing or weaken security.
 */
import { showValue } from '../../config/errors';
import { IssueCollector } from '../../config/reader';
import { XdsResourceError, type TranslationContext, type XdsMessage } from '../types';

export type Msg = Readonly<Record<string, unknown>>;

/** One translation: the resource name for errors and warnings. */
export class Tx {
  constructor(readonly resource: string, readonly ctx: TranslationContext) {}

  fail(path: string, reason: string): never {
    throw new XdsResourceError(this.resource, path, reason);
  }

  warn(path: string, message: string): void {
    this.ctx.warn(this.resource, path, message);
  }

  /**
   * Runs a MOSN-config validator on a MOSN-shaped object (the same code the JSON config path
   * runs) and turns its first error into a NACK; its warnings become ctx warnings.
   * `where` prefixes the MOSN paths (they mirror the xDS field they came from).
   */
  mosn<T>(where: string, fn: (issues: IssueCollector) => T): T {
    const issues = new IssueCollector();
    const out = fn(issues);
    for (const w of issues.warnings) this.warn(where, w);
    const e = issues.errors[0];
    if (e !== undefined) this.fail(e.path === '' ? where : `${where} (as MOSN config: ${e.path})`, e.message);
    return out;
  }
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

export function isMsg(v: unknown): v is Msg {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function msg(v: unknown): Msg | undefined {
  return isMsg(v) ? v : undefined;
}

/** A repeated message field (absent = []). */
export function list(v: unknown): Msg[] {
  return Array.isArray(v) ? v.filter(isMsg) : [];
}

export function strList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

export function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** A google.protobuf.*Value wrapper's value. */
export function wrapped(v: unknown): unknown {
  return isMsg(v) ? v.value : undefined;
}

/** A present wrapper without `value` holds the default (0 / false): proto3 does not encode defaults. */
export function wrappedNum(v: unknown): number | undefined {
  if (isMsg(v) && v.value === undefined) return 0;
  const w = wrapped(v);
  if (typeof w === 'number') return w;
  if (typeof w === 'string' && /^\d+$/.test(w)) return Number(w);
  return undefined;
}

export function wrappedBool(v: unknown): boolean | undefined {
  if (isMsg(v) && v.value === undefined) return false;
  const w = wrapped(v);
  return typeof w === 'boolean' ? w : undefined;
}

/** A google.protobuf.Duration in ms (sub-ms rounds up), undefined when absent. */
export function durationMs(v: unknown): number | undefined {
  if (!isMsg(v)) return undefined;
  const s = Number(v.seconds ?? 0);
  const n = Number(v.nanos ?? 0);
  if (!Number.isFinite(s) || !Number.isFinite(n)) return undefined;
  return Math.ceil(s * 1000 + n / 1e6);
}

/** A Duration as a Go duration string for the MOSN validators ("1500ms"). */
export function goDuration(ms: number): string {
  return `${ms}ms`;
}

/** The name of an Any's type ('' when absent): `type.googleapis.com/a.b.C` -> `a.b.C`. */
export function typeName(m: Msg | undefined): string {
  const t = m === undefined ? '' : str(m['@type']);
  return t.slice(t.lastIndexOf('/') + 1);
}

/** typedConfig without '@type' (what a MOSN-shaped filter config gets). */
export function withoutType(m: Msg | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (m === undefined) return out;
  for (const k of Object.keys(m)) if (k !== '@type') out[k] = m[k];
  return out;
}

export interface FieldPolicy {
  /** Translated by the caller (or labels without effect). */
  readonly ok: readonly string[];
  /** Not implemented and harmless: a warning with this message. */
  readonly warn?: Readonly<Record<string, string>>;
  /** Not implemented and unsafe to ignore: NACK with this reason. */
  readonly nack?: Readonly<Record<string, string>>;
}

/**
 * Applies a field policy to every field set in `m`. Fields in none of the lists are unknown to
 * the translator: warned about (Envoy's own behaviour for unknown fields), never silently used.
 */
export function checkFields(tx: Tx, m: XdsMessage | Msg, path: string, p: FieldPolicy): void {
  for (const k of Object.keys(m)) {
    if (k === '@type' || p.ok.includes(k)) continue;
    const reason = p.nack?.[k];
    if (reason !== undefined) tx.fail(join(path, k), `${reason} (NACK: ignoring it would change routing or weaken security)`);
    const w = p.warn?.[k];
    tx.warn(join(path, k), w ?? `${showValue(k)} is not supported; ignored`);
  }
}
