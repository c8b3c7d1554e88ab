// The native server handshake (src/tls/native.ts nativeHandshake) has an absolute deadline:
// a client that dribbles its ClientHello one byte at a time is closed when the handshake's
// time is up, however often it sends. (Before, a socket idle timer refreshed by every read
// let such a client hold the connection as long as it kept sending.) Handshakes that
// complete meanwhile are not touched by the deadline sweep. Skipped without the addon.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { nativeHandshake, tlsEngine, type NativeHandshake, type NativeTlsSession } from '../../src/tls/native';
import { Pki } from '../helpers/certs';

const skip = tlsEngine === null ? 'native TLS not available' : false;
const DEADLINE_MS = 1200;

interface Outcome {
  failed: Error[];
  done: number;
}

function server(ctx: tls.SecureContext): Promise<{ port: number; out: Outcome; close(): void }> {
  const out: Outcome = { failed: [], done: 0 };
  const policy: NativeHandshake<null> = {
    verify: 0,
    alpn: undefined,
    timeoutMs: DEADLINE_MS,
    check: () => null,
    onDone(sock: net.Socket, _s: NativeTlsSession): void {
      out.done++;
      sock.destroy();
    },
    onFail(err: Error): void {
      out.failed.push(err);
    },
  };
  const srv = net.createServer({ pauseOnConnect: true }, (sock) => {
    nativeHandshake(tlsEngine!, sock, (ctx as unknown as { context: unknown }).context, policy, null);
  });
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () => resolve({ port: (srv.address() as net.AddressInfo).port, out, close: () => srv.close() })),
  );
}

test('a ClientHello dribbled one byte at a time is cut at the handshake deadline; handshakes done in time are not', { skip }, async () => {
  const pki = new Pki();
  const cert = pki.issue({ cn: 'a.test', dns: ['a.test'] });
  const ctx = tls.createSecureContext({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) });
  const s = await server(ctx);
  try {
    const c = net.connect(s.port, '127.0.0.1');
    await new Promise<void>((resolve) => c.once('connect', resolve));
    const t0 = Date.now();
    // A handshake record header announcing 300 bytes, then one byte every 200 ms (never complete in time).
    c.write(Buffer.from([0x16, 0x03, 0x01, 0x01, 0x2c]));
    const drip = setInterval(() => {
      if (!c.destroyed) c.write(Buffer.from([0x01]));
    }, 200);
    const closed = new Promise<number>((resolve) => {
      c.on('error', () => {});
      c.on('close', () => resolve(Date.now() - t0));
      setTimeout(() => resolve(-1), 5000);
    });
    // Meanwhile five handshakes that complete in time: the sweep leaves them alone.
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => {
        const g = tls.connect({ port: s.port, host: '127.0.0.1', ca: fs.readFileSync(pki.ca.cert), servername: 'a.test' }, () => g.end()); // end(): the client's Finished goes out before the FIN
        g.on('error', () => {});
        g.on('close', () => resolve());
      });
    }
    const closedAt = await closed;
    clearInterval(drip);
    c.destroy();
    assert.ok(closedAt >= 0, 'the server closed the dribbling connection within 5 s');
    assert.ok(closedAt >= DEADLINE_MS - 50, `not before the deadline (closed after ${closedAt} ms)`);
    assert.ok(closedAt <= DEADLINE_MS + 1600, `at the deadline plus one sweep at most (closed after ${closedAt} ms)`);
    assert.deepEqual(
      s.out.failed.map((e) => e.message),
      ['TLS handshake timeout'],
      'only the dribbling handshake failed',
    );
    assert.equal(s.out.done, 5);
  } finally {
    s.close();
  }
});
