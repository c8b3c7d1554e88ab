/**
 * Stateless session resumption (TLS session tickets; TLS 1.3 PSK tickets) for listeners, shared
 * by every worker thread of the process, with key rotation.
 *
 *   main thread: a random 32-byte secret, given to the workers as environment data
 *   every worker: ticket key of epoch e = HKDF-SHA256(secret, "outrigger tls tickets", e)
 *                 (e = floor(now / rotation interval)), set on each listener context
 *
 * So a ticket issued by one worker decrypts in any other without messages between threads,
 * and every worker switches key at the same epoch boundary. One key is active at a time
 * (Node's SecureContext takes one): a ticket lives until the next rotation at most, after
 * which the client gets a full handshake (and a new ticket). A new process (restart, hot
 * upgrade) has a new secret.
 *
 * The session id context (what OpenSSL compares before resuming, and requires when client
 * certificates are verified) is a hash of what the context checks: certificate, CA and the
 * client-certificate policy. A ticket from a listener with another CA or policy is never
 * resumed here; it gets a full handshake instead.
 *
 * With the native addon (src/native, native/tls_tickets.cc) the keys live in C instead: each
 * listener context gets a ticket-key callback that derives the same epoch keys, issues tickets
 * under the current one and accepts the current and the previous one (a ticket survives one
 * rotation: no full handshake at the boundary), with no timer and no JS call per ticket, and
 * sends one TLS 1.3 ticket per handshake instead of OpenSSL's two (none when tickets are off).
 * Without the addon (OUTRIGGER_NATIVE=0) Node's SecureContext holds one key, rotated by a timer.
 *
 * OUTRIGGER_TLS_TICKET_ROTATE_S sets the rotation interval (seconds, default 3600).
 */
import * as crypto from 'node:crypto';
import type * as tls from 'node:tls';
import { getEnvironmentData, isMainThread, setEnvironmentData } from 'node:worker_threads';
import { native } from '../native';

const SECRET_KEY = 'outrigger.tls.ticketSecret';

/** Node's ticket key: 16 bytes name, 16 bytes HMAC key, 16 bytes AES key. */
const TICKET_KEY_BYTES = 48;

/** Rotation interval in ms (OUTRIGGER_TLS_TICKET_ROTATE_S, default one hour, at least one second). */
export function rotationMs(): number {
  const v = Number(process.env.OUTRIGGER_TLS_TICKET_ROTATE_S);
  return Number.isFinite(v) && v >= 1 ? Math.floor(v * 1000) : 3_600_000;
}

let secret: Buffer | null = null;

/**
 * The process-wide ticket secret. The main thread makes it (and shares it with workers created
 * after this call: call shareTicketSecret before starting them); a worker reads the shared one.
 */
function ticketSecret(): Buffer {
  if (secret !== null) return secret;
  const shared = getEnvironmentData(SECRET_KEY);
  if (shared instanceof Uint8Array && shared.length === 32) {
    secret = Buffer.from(shared);
  } else {
    secret = crypto.randomBytes(32);
    if (isMainThread) setEnvironmentData(SECRET_KEY, secret);
  }
  return secret;
}

/** Makes the ticket secret now so that worker threads started after this share it. */
export function shareTicketSecret(): void {
  ticketSecret();
}

/** The ticket key of an epoch (same in every thread of the process). */
export function ticketKey(epoch: number): Buffer {
  const info = Buffer.alloc(8);
  info.writeBigUInt64BE(BigInt(epoch));
  return Buffer.from(crypto.hkdfSync('sha256', ticketSecret(), 'outrigger tls tickets', info, TICKET_KEY_BYTES));
}

/** The session id context of a listener context: a hash of what it verifies (max 32 chars for OpenSSL). */
export function sessionIdContext(cert: string, ca: string, policy: string): string {
  return crypto.createHash('sha256').update(cert).update('\0').update(ca).update('\0').update(policy).digest('hex').slice(0, 32);
}

interface NativeContext {
  setTicketKeys(keys: Buffer): void;
  setOptions(options: number): void;
  setSessionIdContext(id: string): void;
}

function nativeOf(ctx: tls.SecureContext): NativeContext {
  return (ctx as unknown as { context: NativeContext }).context;
}

/** Contexts whose ticket key follows the epoch; weakly held (a reloaded context is dropped). */
const contexts = new Set<WeakRef<tls.SecureContext>>();
let timer: NodeJS.Timeout | null = null;
let epochNow = -1;
let keyNow: Buffer | null = null;

function currentKey(): Buffer {
  const e = Math.floor(Date.now() / rotationMs());
  if (e !== epochNow || keyNow === null) {
    epochNow = e;
    keyNow = ticketKey(e);
  }
  return keyNow;
}

function rotate(): void {
  timer = null;
  const key = currentKey();
  for (const ref of contexts) {
    const ctx = ref.deref();
    if (ctx === undefined) contexts.delete(ref);
    else nativeOf(ctx).setTicketKeys(key);
  }
  schedule();
}

function schedule(): void {
  if (timer !== null || contexts.size === 0) return;
  const ms = rotationMs();
  const wait = ms - (Date.now() % ms) + 5; // just past the boundary, so Date.now() is in the new epoch
  timer = setTimeout(rotate, wait);
  timer.unref();
}

/**
 * Turns on shared, rotating ticket keys for a listener context and sets its session id
 * context. Called once per SecureContext when it is built (never per handshake).
 */
export function enableTickets(ctx: tls.SecureContext, sidCtx: string): void {
  const n = nativeOf(ctx);
  n.setSessionIdContext(sidCtx);
  const c = native.tlsTickets;
  if (c !== undefined) {
    c.init(ticketSecret(), rotationMs());
    c.context(n, true);
    return;
  }
  n.setTicketKeys(currentKey());
  contexts.add(new WeakRef(ctx));
  schedule();
}

/** Turns tickets off for a listener context (disable_stateless_session_resumption); the session id context is still set. */
export function disableTickets(ctx: tls.SecureContext, sidCtx: string): void {
  const n = nativeOf(ctx);
  n.setOptions(crypto.constants.SSL_OP_NO_TICKET);
  n.setSessionIdContext(sidCtx);
  native.tlsTickets?.context(n, false);
}
