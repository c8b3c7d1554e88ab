// Per-connection cost cuts of issue 15 on the accept path, checked by what they change:
// - a native TLS socket goes from the handshake to the Connection that adopts it without a
//   pause/resume cycle (no read stop/start, no resume tick); a socket nobody adopts in onDone
//   still waits paused, and loses nothing sent meanwhile;
// - a Connection whose peer has half-closed and that ends its own side closes the socket at once
//   (the kernel sends the FIN after the queued bytes) instead of Node's end(): shutdown request,
//   'finish' ticks, then the same close. The peer still gets every byte, then the FIN (and, with
//   native TLS, the close_notify first).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Connection, type ConnectionHandler } from '../../src/network/connection';
import { nativeHandshake, tlsEngine, type NativeHandshake, type NativeTlsSession } from '../../src/tls/native';
import { Pki } from '../helpers/certs';

const skipTls = tlsEngine === null ? 'native TLS not available' : false;

/** Echoes every read; on the peer's FIN, ends its side (the tcp_proxy shape of a close). */
const echo: ConnectionHandler = {
  onData(conn, buf, start, end) {
    conn.write(buf, start, end);
  },
  onEnd(conn) {
    conn.endWrite();
  },
  onClose() {},
  onHighWatermark() {},
  onLowWatermark() {},
};

/** Counts the socket's end() calls and 'pause' events. */
function watch(sock: net.Socket): { ends: number; pauses: number; closed: Promise<void> } {
  const w = { ends: 0, pauses: 0, closed: new Promise<void>((resolve) => sock.once('close', () => resolve())) };
  const end = sock.end.bind(sock) as (...a: unknown[]) => net.Socket;
  (sock as unknown as { end: (...a: unknown[]) => net.Socket }).end = (...a: unknown[]) => {
    w.ends++;
    return end(...a);
  };
  sock.on('pause', () => w.pauses++);
  return w;
}

function listen(srv: net.Server): Promise<number> {
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as net.AddressInfo).port)));
}

/** Client side of one exchange (it sends and half-closes itself): collects everything until the close. */
function exchange(sock: net.Socket): Promise<{ got: Buffer; ended: boolean }> {
  const parts: Buffer[] = [];
  let ended = false;
  sock.on('data', (d: Buffer) => parts.push(d));
  sock.on('end', () => {
    ended = true;
  });
  sock.on('error', () => {});
  return new Promise((resolve) => sock.on('close', () => resolve({ got: Buffer.concat(parts), ended })));
}

test('plain Connection: peer FIN read, own end -> closed without end(); the peer gets all bytes then EOF', async () => {
  let w: ReturnType<typeof watch> | undefined;
  const srv = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => {
    w = watch(s);
    Connection.accept(s, echo, 65536);
  });
  const port = await listen(srv);
  try {
    const msg = Buffer.alloc(5000, 0x61);
    const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => c.end(msg));
    const r = await exchange(c);
    assert.ok(r.got.equals(msg), `echoed ${r.got.length} of ${msg.length} bytes`);
    assert.ok(r.ended, 'the client read EOF');
    assert.ok(w !== undefined);
    await w.closed;
    assert.equal(w.ends, 0, 'the server socket was closed directly, not through end()');
  } finally {
    srv.close();
  }
});

test('plain Connection: its own end before the peer FIN still half-closes with end()', async () => {
  let w: ReturnType<typeof watch> | undefined;
  const handler: ConnectionHandler = { ...echo, onData: (conn, buf, start, end) => (conn.write(buf, start, end), conn.endWrite()) };
  const srv = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => {
    w = watch(s);
    Connection.accept(s, handler, 65536);
  });
  const port = await listen(srv);
  try {
    const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => c.write('ping'));
    const parts: Buffer[] = [];
    c.on('data', (d: Buffer) => parts.push(d));
    // The server half-closed: the client can still send (a half-open connection), then ends.
    c.on('end', () => c.end());
    await new Promise<void>((resolve) => c.on('close', () => resolve()));
    assert.equal(Buffer.concat(parts).toString(), 'ping');
    assert.ok(w !== undefined);
    await w.closed;
    assert.equal(w.ends, 1, 'a half-close needs end() (shutdown): the read side is still open');
  } finally {
    srv.close();
  }
});

interface Tls {
  ctx: tls.SecureContext;
  ca: Buffer;
}

function tlsSetup(): Tls {
  const pki = new Pki();
  const cert = pki.issue({ cn: 'a.test', dns: ['a.test'] });
  return { ctx: tls.createSecureContext({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) }), ca: fs.readFileSync(pki.ca.cert) };
}

/** A server running the native handshake; `adopt` decides what onDone does with the socket. */
async function tlsServer(t: Tls, adopt: (sock: net.Socket) => void): Promise<{ port: number; watches: ReturnType<typeof watch>[]; close(): void }> {
  const watches: ReturnType<typeof watch>[] = [];
  const policy: NativeHandshake<null> = {
    verify: 0,
    alpn: undefined,
    timeoutMs: 10_000,
    check: () => null,
    onDone(sock: net.Socket, _s: NativeTlsSession): void {
      adopt(sock);
    },
    onFail(): void {},
  };
  const srv = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (sock) => {
    watches.push(watch(sock));
    nativeHandshake(tlsEngine!, sock, (t.ctx as unknown as { context: unknown }).context, policy, null);
  });
  const port = await listen(srv);
  return { port, watches, close: () => srv.close() };
}

test('native TLS: the Connection adopting the socket in onDone reads on without a pause; close without end()', { skip: skipTls }, async () => {
  const t = tlsSetup();
  const s = await tlsServer(t, (sock) => Connection.accept(sock, echo, 65536));
  try {
    const msg = Buffer.alloc(20_000, 0x62);
    // The message goes right after the client's Finished (often in the same read as it).
    const c = tls.connect({ port: s.port, host: '127.0.0.1', ca: t.ca, servername: 'a.test', allowHalfOpen: true } as tls.ConnectionOptions, () => c.end(msg));
    const r = await exchange(c);
    assert.ok(r.got.equals(msg), `echoed ${r.got.length} of ${msg.length} bytes`);
    assert.ok(r.ended, 'the client read close_notify and EOF');
    assert.equal(s.watches.length, 1);
    await s.watches[0].closed;
    assert.equal(s.watches[0].pauses, 0, 'no pause between the handshake and the Connection');
    assert.equal(s.watches[0].ends, 0, 'closed directly after close_notify, not through end()');
  } finally {
    s.close();
  }
});

test('native TLS: a socket not adopted in onDone waits paused; adopted later it loses nothing', { skip: skipTls }, async () => {
  const t = tlsSetup();
  const paused: boolean[] = [];
  const s = await tlsServer(t, (sock) => {
    setImmediate(() => paused.push(sock.isPaused()));
    setTimeout(() => Connection.accept(sock, echo, 65536), 100);
  });
  try {
    const msg = Buffer.from('sent before the Connection exists');
    const c = tls.connect({ port: s.port, host: '127.0.0.1', ca: t.ca, servername: 'a.test', allowHalfOpen: true } as tls.ConnectionOptions, () => c.end(msg));
    const r = await exchange(c);
    assert.equal(r.got.toString(), msg.toString());
    assert.ok(r.ended);
    assert.deepEqual(paused, [true], 'paused until a Connection took it');
  } finally {
    s.close();
  }
});
