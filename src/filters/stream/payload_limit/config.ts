/**
 * MOSN's `payload_limit` stream filter config (pkg/filter/stream/payloadlimit):
 *   { "type": "payload_limit", "config": { "max_entity_size": 4096, "http_status": 413 } }
 * max_entity_size: bytes of request payload allowed (0 = no limit); http_status: the answer
 * to a larger request (HTTP; RPC protocols answer with their own error, see pipeline.ts).
 */
import type { StreamFilterValidationContext } from '../../../api/stream-filter';
import { intInRange } from '../config-int';

export interface PayloadLimitConfig {
  readonly maxEntitySize: number;
  readonly httpStatus: number;
}

const KEYS = new Set(['max_entity_size', 'http_status']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function validatePayloadLimit(raw: unknown, path: string, ctx: StreamFilterValidationContext): PayloadLimitConfig | undefined {
  if (!isObject(raw)) {
    ctx.error(path, `${JSON.stringify(raw)} must be an object`);
    return undefined;
  }
  let ok = true;
  const get = (key: string): unknown => {
    for (const k of Object.keys(raw)) if (k.toLowerCase() === key) return raw[k];
    return undefined;
  };
  for (const k of Object.keys(raw)) {
    if (!KEYS.has(k.toLowerCase())) {
      ctx.error(`${path}.${k}`, `unknown key (payload_limit knows ${[...KEYS].join(', ')})`);
      ok = false;
    }
  }
  const int = (key: string, def: number, min: number, max: number): number => {
    const v = intInRange(get(key), def, min, max, `${path}.${key}`, ctx);
    if (v === undefined) ok = false;
    return v ?? def;
  };
  const maxEntitySize = int('max_entity_size', 0, 0, 0x7fffffff);
  const httpStatus = int('http_status', 413, 200, 599);
  return ok ? { maxEntitySize, httpStatus } : undefined;
}
