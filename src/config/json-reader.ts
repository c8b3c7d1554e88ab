/** Reading a config file: JSON syntax errors with line and column, size and nesting limits. */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import embeddedDefault from './default.json';
import { DEFAULTS } from './defaults';
import { parseConfig } from './document';
import { ConfigError, type ConfigIssue } from './errors';
import type { OutriggerConfig } from './types';

/** 1-based line:column of a character offset, for JSON syntax errors. */
function lineCol(text: string, pos: number): string {
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  return `line ${line} column ${col}`;
}

/**
 * Offset of the first JSON syntax error (V8 does not always say where). Only called after
 * JSON.parse failed, so it just needs to stop at the right place.
 */
function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const str = (): void => {
    if (text[i] !== '"') fail();
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail();
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      }
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const value = (): void => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++;
      ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws(); str(); ws();
        if (text[i] !== ':') fail();
        i++;
        value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return; }
        fail();
      }
    } else if (ch === '[') {
      i++;
      ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return; }
        fail();
      }
    } else if (ch === '"') {
      str();
    } else {
      const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
      if (!m) fail();
      i += m![0].length;
    }
  };
  try {
    value();
    ws();
    return i < text.length ? i : undefined;
  } catch (at) {
    return typeof at === 'number' ? at : undefined;
  }
}

/**
 * Offset of the first bracket nested deeper than `max` (strings skipped), or -1. Linear and
 * iterative: it runs before JSON.parse and the recursive walks after it, which a deep enough
 * document would take past the stack.
 */
export function nestingBeyond(text: string, max: number): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip a string, escapes included (an unterminated one ends the scan: JSON.parse reports it).
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return i;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return -1;
}

function readJson(path: string): unknown {
  let text: string;
  try {
    const size = fs.statSync(path).size;
    if (size > DEFAULTS.maxConfigBytes) {
      throw new ConfigError([{ path: '', message: `config file is ${size} bytes; the limit is ${DEFAULTS.maxConfigBytes} bytes` }], path);
    }
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError([{ path: '', message: `cannot read config file: ${(e as Error).message}` }], path);
  }
  if (text.length > DEFAULTS.maxConfigBytes) {
    throw new ConfigError([{ path: '', message: `config file is larger than the limit of ${DEFAULTS.maxConfigBytes} bytes` }], path);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const deep = nestingBeyond(text, DEFAULTS.maxConfigDepth);
  if (deep >= 0) {
    throw new ConfigError([{ path: '', message: `the config nests objects and arrays deeper than ${DEFAULTS.maxConfigDepth} levels at ${lineCol(text, deep)} (the limit)` }], path);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const msg = (e as Error).message.replace(/\r?\n/g, '\\n');
    const m = /position (\d+)/.exec(msg);
    const pos = m ? Number(m[1]) : jsonErrorOffset(text);
    const where = pos !== undefined && !/line \d+/.test(msg) ? ` (${lineCol(text, pos)})` : '';
    throw new ConfigError([{ path: '', message: `invalid JSON: ${msg}${where}` }], path);
  }
}

/** Read, parse and validate a MOSN JSON config file. Throws ConfigError. */
export function loadConfigFile(path: string): OutriggerConfig {
  return parseConfig(readJson(path), path);
}

export interface ValidationResult {
  readonly ok: boolean;
  readonly errors: readonly ConfigIssue[];
  readonly warnings: readonly string[];
}

/**
 * For `outrigger validate -c FILE`: never throws for config problems. `build` is the check that
 * builds what a worker builds (src/worker/snapshot.ts checkBuild; the config layer cannot import it).
 */
export function validateConfigFile(
  path: string, build?: (config: OutriggerConfig) => readonly ConfigIssue[], load: (path: string) => OutriggerConfig = loadConfigFile,
): ValidationResult {
  try {
    const cfg = load(path);
    const errors = build ? build(cfg) : [];
    return { ok: errors.length === 0, errors, warnings: cfg.warnings ?? [] };
  } catch (e) {
    if (e instanceof ConfigError) return { ok: false, errors: e.errors, warnings: e.warnings };
    throw e;
  }
}

/** Where the embedded default config lives (tsc copies default.json next to the compiled module). */
export const DEFAULT_CONFIG_PATH = nodePath.join(__dirname, 'default.json');

/** The embedded default config (used by `npm start` without -c): TCP proxy 127.0.0.1:2045 -> 127.0.0.1:8080. */
export function loadDefaultConfig(): OutriggerConfig {
  return parseConfig(embeddedDefault, 'embedded default.json');
}
