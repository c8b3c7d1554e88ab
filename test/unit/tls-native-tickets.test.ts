// Session tickets in the native addon (native/tls_tickets.cc via src/tls/tickets.ts):
//   - the C callback derives the same epoch keys as the TypeScript derivation;
//   - a listener context sends one TLS 1.3 ticket per handshake (none with tickets off);
//   - a ticket issued in one epoch still resumes after one rotation (the previous key is kept),
//     and no longer after two.
// Skipped when the addon is not loaded (OUTRIGGER_NATIVE=0 or no build): Node's own ticket
// path has one key and the two tickets OpenSSL sends by default.
process.env.OUTRIGGER_TLS_TICKET_ROTATE_S = '1';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { native } from '../../src/native';
import { disableTickets, enableTickets, rotationMs, sessionIdContext, ticketKey } from '../../src/tls/tickets';
import { Pki } from '../helpers/certs';

const skip = native.kind !== 'native' ? 'native addon not loaded' : false;

function externalOf(ctx: tls.SecureContext): unknown {
  return (ctx as unknown as { context: { _external: unknown } }).context._external;
}

interface Served {
  port: number;
  close(): void;
}

/** A server that handshakes every connection with `ctx` and answers "ok". */
function serve(ctx: tls.SecureContext): Promise<Served> {
  const srv = net.createServer((raw) => {
    const s = new tls.TLSSocket(raw, { isServer: true, secureContext: ctx });
    s.on('error', () => s.destroy());
    s.on('secure', () => s.end('ok'));
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ port: (srv.address() as net.AddressInfo).port, close: () => srv.close() })));
}

/** Connects (offering `session`), reads to the end; resolves with the tickets received and whether it resumed. */
function connect(port: number, ca: string, session?: Buffer): Promise<{ tickets: Buffer[]; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const tickets: Buffer[] = [];
    const c = tls.connect({ port, host: '127.0.0.1', ca, servername: 'a.test', session });
    c.on('session', (s: Buffer) => tickets.push(s));
    c.on('error', reject);
    c.on('data', () => {});
    c.on('end', () => {
      const reused = c.isSessionReused();
      c.end();
      // Post-handshake tickets travel with the server's data; give the last one a tick.
      setImmediate(() => resolve({ tickets, reused }));
    });
  });
}

/** Waits until `ms` into the next epoch (so a step does not straddle a boundary). */
async function atEpochOffset(ms: number): Promise<number> {
  const r = rotationMs();
  const wait = r - (Date.now() % r) + ms;
  await new Promise((res) => setTimeout(res, wait));
  return Math.floor(Date.now() / r);
}

test('native ticket keys match the TypeScript derivation', { skip }, () => {
  const ctx = tls.createSecureContext({});
  enableTickets(ctx, 'x');
  const t = native.tlsTickets!;
  for (const e of [0, 1, 490_000_000, 1_764_000_000]) assert.equal(t.key(e).toString('hex'), ticketKey(e).toString('hex'), `epoch ${e}`);
});

test('listener contexts: one ticket per handshake, none with tickets off; a ticket survives one rotation, not two', { skip, timeout: 20_000 }, async () => {
  const pki = new Pki();
  const cert = pki.issue({ cn: 'a.test', dns: ['a.test'] });
  const ca = fs.readFileSync(pki.ca.cert, 'utf8');
  const opts = { cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key), minVersion: 'TLSv1.3' as const };
  const on = tls.createSecureContext(opts);
  enableTickets(on, sessionIdContext('c', 'ca', 'p'));
  const off = tls.createSecureContext(opts);
  disableTickets(off, sessionIdContext('c', 'ca', 'p'));
  assert.equal(native.tlsTickets!.numTickets(externalOf(on)), 1);
  assert.equal(native.tlsTickets!.numTickets(externalOf(off)), 0);
  const a = await serve(on);
  const b = await serve(off);
  try {
    const none = await connect(b.port, ca);
    assert.equal(none.tickets.length, 0, 'no ticket with tickets off');

    const e0 = await atEpochOffset(100);
    const first = await connect(a.port, ca);
    assert.equal(first.tickets.length, 1, 'one ticket per handshake');
    assert.equal(first.reused, false);
    const same = await connect(a.port, ca, first.tickets[0]);
    assert.equal(same.reused, true, 'resumes in the same epoch');

    const e1 = await atEpochOffset(300);
    assert.equal(e1, e0 + 1);
    const next = await connect(a.port, ca, first.tickets[0]);
    assert.equal(next.reused, true, 'a ticket of the previous epoch still resumes after a rotation');
    assert.equal(next.tickets.length, 1, 'and a new ticket comes with it');

    const e2 = await atEpochOffset(300);
    assert.equal(e2, e0 + 2);
    const late = await connect(a.port, ca, first.tickets[0]);
    assert.equal(late.reused, false, 'two rotations later the ticket is refused (full handshake)');
    const fresh = await connect(a.port, ca, next.tickets[0]);
    assert.equal(fresh.reused, true, 'the ticket issued after the first rotation resumes');
  } finally {
    a.close();
    b.close();
  }
});
