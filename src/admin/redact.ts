/**
 * Defensive redaction for the config dump: any key that looks like it holds a secret
 * (private_key, privateKey, password, secret, ...) has its value replaced, at any depth.
 */
export const REDACTED = '[redacted]';

const SECRET_KEY = /(private[_-]?key|passw(or)?d|secret|passphrase|credential)/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Returns a redacted deep copy (cycles become "[circular]"); the input is not modified. */
export function redactSecrets(value: unknown): unknown {
  const seen = new Set<object>();
  const walk = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v;
    const o = v as object;
    if (seen.has(o)) return '[circular]';
    seen.add(o);
    let out: unknown;
    if (Array.isArray(o)) out = o.map(walk);
    else if (o instanceof Map) {
      const m: Record<string, unknown> = {};
      for (const [k, x] of o) m[String(k)] = isSecretKey(String(k)) ? REDACTED : walk(x);
      out = m;
    } else {
      const src = typeof (o as { toJSON?: unknown }).toJSON === 'function' ? (o as { toJSON: () => unknown }).toJSON() : o;
      if (src === null || typeof src !== 'object') out = src;
      else {
        const m: Record<string, unknown> = {};
        for (const k of Object.keys(src)) m[k] = isSecretKey(k) ? REDACTED : walk((src as Record<string, unknown>)[k]);
        out = m;
      }
    }
    seen.delete(o);
    return out;
  };
  return walk(value);
}
