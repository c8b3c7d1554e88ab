// Session tickets in the native addon (native/tls_tickets.cc via src/tls/tickets.ts):
//   - the C callback derives the same epoch keys as the TypeScript derivation;
//   - a listener context sends one TLS 1.3 ticket per handshake (none with tickets off), and
//     none to a client that offers TLS 1.2 without the session_ticket extension (its tickets
//     are off: SSL_OP_NO_TICKET); a TLS 1.3-only client with tickets on still gets one;
//   - a ticket issued in one epoch still resumes after one rotation (the previous key is kept),
//     and no longer after two.
// Skipped when the addon is not loaded (OUTRIGGER_NATIVE=0 or no build): Node's own ticket
// path has one key and the two tickets OpenSSL sends by default.
process.env.OUTRIGGER_TLS_TICKET_ROTATE_S = '1';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
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
function connect(port: number, ca: string, session?: Buffer, client: tls.ConnectionOptions = {}): Promise<{ tickets: Buffer[]; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const tickets: Buffer[] = [];
    const c = tls.connect({ port, host: '127.0.0.1', ca, servername: 'a.test', session, ...client });
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

test('no TLS 1.3 ticket for a client whose tickets are off; TLS 1.3-only clients keep theirs', { skip, timeout: 20_000 }, async () => {
  const pki = new Pki();
  const cert = pki.issue({ cn: 'a.test', dns: ['a.test'] });
  const ca = fs.readFileSync(pki.ca.cert, 'utf8');
  const on = tls.createSecureContext({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) });
  enableTickets(on, sessionIdContext('c', 'ca', 'p'));
  const a = await serve(on);
  try {
    const noTicket = { secureOptions: crypto.constants.SSL_OP_NO_TICKET };
    // A client offering TLS 1.2 and 1.3 with SSL_OP_NO_TICKET leaves the session_ticket
    // extension out: it gets no ticket (on the previous code it got one, and 'session' fired).
    const off = await connect(a.port, ca, undefined, noTicket);
    assert.equal(off.tickets.length, 0, 'no ticket for a client with tickets off');
    assert.equal(off.reused, false);
    // Tickets on, both versions offered: one ticket, and it resumes.
    const dflt = await connect(a.port, ca);
    assert.equal(dflt.tickets.length, 1, 'one ticket for a client with tickets on');
    assert.equal((await connect(a.port, ca, dflt.tickets[0])).reused, true);
    // A TLS 1.3-only client with tickets on: one ticket, and it resumes.
    const only13 = await connect(a.port, ca, undefined, { minVersion: 'TLSv1.3' });
    assert.equal(only13.tickets.length, 1, 'one ticket for a TLS 1.3-only client');
    assert.equal((await connect(a.port, ca, only13.tickets[0], { minVersion: 'TLSv1.3' })).reused, true);
    // A TLS 1.3-only client without the extension: the extension belongs to TLS 1.2, so a
    // client offering TLS 1.3 only need not send it with its tickets on; it gets its ticket.
    const only13Off = await connect(a.port, ca, undefined, { minVersion: 'TLSv1.3', ...noTicket });
    assert.equal(only13Off.tickets.length, 1, 'a TLS 1.3-only hello without the extension still gets a ticket');
  } finally {
    a.close();
  }
});
