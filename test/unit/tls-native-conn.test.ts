// The addon's memory-BIO TLS (native/tls_conn.cc), the primitive of the native termination
// prototype (bench peer native-tls-proto): against Node's own TLS client on real sockets,
//   - TLS 1.3 and 1.2 handshakes, 200 KB echoed both ways (records spanning reads, plaintext
//     larger than one chunk), SNI and version reported once;
//   - client certificates: the verify result and the peer certificate DER (its SPIFFE id);
//     a client without a certificate is refused when one is required;
//   - garbage and a corrupted record close only that connection: a parallel one still works;
//   - TLS 1.3 session tickets leave with the server's next record (its first reply, or
//     close_notify), not alone right after the handshake; they resume.
// Skipped without the addon (OUTRIGGER_NATIVE=0 or no build).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { native, type NativeTlsConnInfo } from '../../src/native';
import { socketFd } from '../../src/network/user-buffer';
import { Pki } from '../helpers/certs';

const skip = native.kind !== 'native' ? 'native addon not loaded' : false;
const HANDSHAKE = 1;
const MORE = 2;
const FATAL = 8;
const SPIFFE = 'spiffe://mesh.test/ns/default/sa/frontend';

interface Echo {
  port: number;
  infos: NativeTlsConnInfo[];
  fatal: number;
  close(): void;
}

/** An echo server on TlsConn: every decrypted byte is encrypted back. */
function echoServer(ctx: tls.SecureContext, verify = 0): Promise<Echo> {
  const engine = native.tlsEngine!;
  const st = engine.status;
  const chunk = Buffer.alloc(16 * 1024); // small: plaintext of one read can exceed it (MORE)
  const e: Echo = { port: 0, infos: [], fatal: 0, close: () => srv.close() };
  const srv = net.createServer((sock) => {
    const fd = socketFd(sock);
    const t = engine.create((ctx as unknown as { context: unknown }).context, true, verify);
    let dead = false;
    const after = (): boolean => {
      if (st[0] & FATAL) {
        e.fatal++;
        dead = true;
        t.free();
        sock.destroy();
        return false;
      }
      if (st[1] > 0) sock.write(t.take());
      return true;
    };
    sock.on('data', (d: Buffer) => {
      for (let off = 0; off < d.length && !dead; ) {
        const n = Math.min(chunk.length, d.length - off);
        d.copy(chunk, 0, off, off + n);
        off += n;
        let out = t.feed(chunk, n, sock.writableLength > 0 ? -1 : fd);
        let flags = st[0]; // the next call overwrites the status words
        if (!after()) return;
        if (flags & HANDSHAKE) e.infos.push(t.info());
        for (;;) {
          if (out > 0) {
            const copy = Buffer.from(chunk.subarray(0, out)); // write() before the next read reuses chunk
            t.write(copy, 0, copy.length, sock.writableLength > 0 ? -1 : fd);
            if (!after()) return;
          }
          if ((flags & MORE) === 0) break;
          out = t.read(chunk, sock.writableLength > 0 ? -1 : fd);
          flags = st[0];
          if (!after()) return;
        }
      }
    });
    sock.on('end', () => {
      if (!dead) {
        t.shutdown(sock.writableLength > 0 ? -1 : fd);
        after();
      }
      sock.end();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      if (!dead) t.free();
      dead = true;
    });
  });
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () => {
      e.port = (srv.address() as net.AddressInfo).port;
      resolve(e);
    }),
  );
}

/** Sends `size` bytes through a TLS client and resolves with what came back. */
function roundTrip(port: number, opts: tls.ConnectionOptions, size: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = tls.connect({ port, host: '127.0.0.1', ...opts }, () => {
      const msg = Buffer.alloc(size);
      for (let i = 0; i < size; i++) msg[i] = (i * 7) & 0xff;
      c.write(msg);
    });
    const got: Buffer[] = [];
    let n = 0;
    c.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= size) c.end();
    });
    c.on('error', reject);
    c.on('close', () => resolve(Buffer.concat(got)));
  });
}

function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7) & 0xff;
  return b;
}

/** An echo server with a certificate for a.test (no client certificates) and its CA. */
async function plainEcho(): Promise<{ ca: Buffer; srv: Echo }> {
  const pki = new Pki();
  const cert = pki.issue({ cn: 'a.test', dns: ['a.test'] });
  const ctx = tls.createSecureContext({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) });
  return { ca: fs.readFileSync(pki.ca.cert), srv: await echoServer(ctx) };
}

test('TLS 1.3 and 1.2 through the memory-BIO connection: 200 KB echoed, SNI and version reported', { skip }, async () => {
  const { ca, srv } = await plainEcho();
  try {
    for (const v of ['TLSv1.3', 'TLSv1.2'] as const) {
      const back = await roundTrip(srv.port, { ca, servername: 'a.test', minVersion: v, maxVersion: v }, 200_000);
      assert.ok(back.equals(pattern(200_000)), `${v}: the echo matches`);
    }
    assert.deepEqual(
      srv.infos.map((i) => [i.version, i.servername, i.verifyResult, i.peerDer === undefined]),
      [
        ['TLSv1.3', 'a.test', 0, true],
        ['TLSv1.2', 'a.test', 0, true],
      ],
    );
    assert.equal(srv.fatal, 0);
  } finally {
    srv.close();
  }
});

test('client certificates: verify result and peer certificate DER (SPIFFE id); required and missing -> refused', { skip }, async () => {
  const pki = new Pki();
  const cert = pki.issue({ cn: 'b.test', dns: ['b.test'] });
  const client = pki.issue({ cn: 'frontend', uris: [SPIFFE], usage: 'client' });
  const ca = fs.readFileSync(pki.ca.cert);
  const ctx = tls.createSecureContext({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key), ca });
  const srv = await echoServer(ctx, 2);
  try {
    const back = await roundTrip(srv.port, { ca, servername: 'b.test', cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key) }, 1000);
    assert.ok(back.equals(pattern(1000)));
    assert.equal(srv.infos.length, 1);
    assert.equal(srv.infos[0].verifyResult, 0);
    assert.ok(srv.infos[0].peerDer !== undefined);
    assert.match(new X509Certificate(srv.infos[0].peerDer).subjectAltName ?? '', new RegExp(`URI:${SPIFFE}`));

    const refused = await roundTrip(srv.port, { ca, servername: 'b.test' }, 10).catch((e: Error) => e);
    assert.ok(refused instanceof Error || refused.length === 0, 'no echo without a client certificate');
    assert.equal(srv.infos.length, 1, 'no second handshake completed');
  } finally {
    srv.close();
  }
});

/** A TLS 1.3 client that collects the tickets it receives ('session' events); kept in `open` until the test ends. */
function ticketClient(port: number, ca: Buffer, open: tls.TLSSocket[], session?: Buffer): Promise<{ c: tls.TLSSocket; tickets: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const tickets: Buffer[] = [];
    const c = tls.connect({ port, host: '127.0.0.1', ca, servername: 'a.test', minVersion: 'TLSv1.3', session });
    open.push(c);
    c.on('session', (s: Buffer) => tickets.push(s));
    c.once('error', reject);
    c.once('secureConnect', () => resolve({ c, tickets }));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

test('TLS 1.3 tickets leave with the first reply or close_notify, not alone; they resume', { skip }, async () => {
  const { ca, srv } = await plainEcho();
  const open: tls.TLSSocket[] = [];
  try {
    // A reply: no ticket before it (OpenSSL writes them when the client's Finished arrives), then
    // the ticket with it.
    const a = await ticketClient(srv.port, ca, open);
    await sleep(200);
    assert.equal(a.tickets.length, 0, 'no ticket before the server sends anything');
    const echoed = await new Promise<string>((res) => {
      a.c.once('data', (d: Buffer) => res(d.toString()));
      a.c.write('ping');
    });
    assert.equal(echoed, 'ping');
    await sleep(20);
    assert.ok(a.tickets.length >= 1, 'the tickets came with the reply');
    a.c.end();
    await new Promise((res) => a.c.on('close', res));

    // No reply: the tickets come with close_notify when the server ends its side.
    const b = await ticketClient(srv.port, ca, open);
    await sleep(200);
    assert.equal(b.tickets.length, 0);
    b.c.end();
    await new Promise((res) => b.c.on('close', res));
    assert.ok(b.tickets.length >= 1, 'the tickets came with close_notify');

    // Both resume.
    for (const t of [a.tickets[0], b.tickets[0]]) {
      const r = await ticketClient(srv.port, ca, open, t);
      assert.equal(r.c.isSessionReused(), true);
      r.c.end();
      await new Promise((res) => r.c.on('close', res));
    }
    assert.equal(srv.fatal, 0);
  } finally {
    for (const c of open) c.destroy();
    srv.close();
  }
});

test('garbage and a corrupted record close only that connection', { skip }, async () => {
  const { ca, srv } = await plainEcho();
  try {
    // A good connection stays open across the bad ones.
    const good = tls.connect({ port: srv.port, host: '127.0.0.1', ca, servername: 'a.test' });
    await new Promise<void>((res, rej) => good.once('secureConnect', res).once('error', rej));

    const garbage = net.connect(srv.port, '127.0.0.1', () => garbage.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(50)));
    garbage.on('error', () => {});
    await new Promise((res) => garbage.on('close', res));

    // A valid handshake, then an application-data record with a flipped byte.
    const raw = net.connect(srv.port, '127.0.0.1');
    const bad = tls.connect({ socket: raw, ca, servername: 'a.test' });
    bad.on('error', () => {});
    await new Promise<void>((res) => bad.once('secureConnect', res));
    raw.write(Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20, ...Buffer.alloc(32, 0x5a)]));
    await new Promise((res) => raw.on('close', res));
    assert.equal(srv.fatal, 2, 'both bad connections failed');

    const echoed = await new Promise<string>((res) => {
      good.once('data', (d: Buffer) => res(d.toString()));
      good.write('still here');
    });
    assert.equal(echoed, 'still here');
    good.end();
  } finally {
    srv.close();
  }
});
