/**
 * Secret redaction for anything that echoes configuration back (admin config_dump, logs).
 *
 * `redactConfig` returns a deep copy; the input is never modified. Keys are matched
 * case-insensitively (MOSN's JSON decoding is case-insensitive, so `PrivateKey`,
 * `private_key` and `PRIVATE_KEY` all reach the same field):
 *  - everywhere: private keys, passwords, secrets, tokens, credentials, api/access keys;
 *  - inside TLS contexts (`tls_context`, `tls_context_set`, `sds_source`, or any object that
 *    has a `cert_chain`/`private_key` field): every key-ish field (`*key*`) and the session
 *    `ticket` key;
 *  - any string holding a PEM private key block, wherever it appears.
 */

export const REDACTED = '[redacted]';

/** Normalize a key for matching: lowercase, `-` treated as `_`. */
function norm(key: string): string {
  return key.toLowerCase().replace(/-/g, '_');
}

const ALWAYS_SECRET = new Set([
  'private_key', 'privatekey', 'password', 'passwd', 'passphrase', 'secret', 'token',
  'credential', 'credentials', 'api_key', 'apikey', 'access_key', 'accesskey', 'secret_key', 'secretkey',
  'access_token', 'accesstoken', 'auth_token', 'authtoken', 'bearer_token', 'refresh_token', 'client_secret',
  'clientsecret', 'authorization',
]);

function isAlwaysSecret(key: string): boolean {
  const k = norm(key);
  if (ALWAYS_SECRET.has(k)) return true;
  return /(^|_)(password|passwd|secret|token|private_?key|credentials?)$/.test(k) || /(password|privatekey|secretkey|apikey)$/.test(k);
}

const TLS_CONTAINER_KEYS = new Set(['tls_context', 'tls_context_set', 'tlscontext', 'tls', 'sds_source', 'sdsconfig']);

function isTlsSecret(key: string): boolean {
  const k = norm(key);
  return k.includes('key') || k === 'ticket' || k === 'ticket_keys' || k === 'session_ticket';
}

const PEM_PRIVATE = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

function looksLikeTlsContext(o: Record<string, unknown>): boolean {
  for (const k of Object.keys(o)) {
    const n = norm(k);
    if (n === 'cert_chain' || n === 'private_key' || n === 'privatekey' || n === 'ca_cert') return true;
  }
  return false;
}

function walk(v: unknown, inTls: boolean, seen: WeakMap<object, unknown>): unknown {
  if (typeof v === 'string') return PEM_PRIVATE.test(v) ? REDACTED : v;
  if (v === null || typeof v !== 'object') return v;
  const prior = seen.get(v);
  if (prior !== undefined) return prior;
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    seen.set(v, out);
    for (const item of v) out.push(walk(item, inTls, seen));
    return out;
  }
  const src = v as Record<string, unknown>;
  const tlsHere = inTls || looksLikeTlsContext(src);
  const out: Record<string, unknown> = {};
  seen.set(v, out);
  for (const [k, val] of Object.entries(src)) {
    if (val !== null && val !== undefined && val !== '' && (isAlwaysSecret(k) || (tlsHere && isTlsSecret(k)))) {
      out[k] = REDACTED;
      continue;
    }
    out[k] = walk(val, tlsHere || TLS_CONTAINER_KEYS.has(norm(k)), seen);
  }
  return out;
}

/** Deep copy of `raw` with secrets replaced by "[redacted]". Idempotent. */
export function redactConfig<T = unknown>(raw: T): T {
  return walk(raw, false, new WeakMap()) as T;
}
