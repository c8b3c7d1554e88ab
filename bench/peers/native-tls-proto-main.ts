// Prototype TLS terminator on the addon's memory-BIO TLS (native/tls_conn.cc), peer
// `native-tls-proto`: the measurement behind src/tls/README.md's "native path" decision.
// Same job and settings as node-tls-main.ts (TLS 1.2+, tickets off, pipe the plaintext to
// 127.0.0.1:<backendPort>), but no TLSSocket: the accepted socket reads ciphertext into a
// shared chunk (Node's onread buffer, as Outrigger's Connection does), the addon decrypts it in
// place and sends handshake records and encrypted writes to the fd itself.
//   node native-tls-proto-main.js <config.json>   {"backendPort":p,"listeners":[{"port":p,"cert":f,"key":f}]}
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { constants } from 'node:crypto';
import { native } from '../../src/native';
import { installUserBuffer, socketFd } from '../../src/network/user-buffer';

interface Cfg {
  backendPort: number;
  listeners: { port: number; cert: string; key: string }[];
}

if (native.tlsEngine === undefined) throw new Error('native-tls-proto needs the addon (build/Release/outrigger_native.node with TlsConn)');
const engine = native.tlsEngine;
const st = engine.status;
const HANDSHAKE = 1;
const MORE = 2;
const FATAL = 8;

const cfg = JSON.parse(fs.readFileSync(process.argv[2] ?? '', 'utf8')) as Cfg;
const downChunk = Buffer.allocUnsafe(64 * 1024);
const upChunk = Buffer.allocUnsafe(64 * 1024);

function serve(ctxExt: unknown, down: net.Socket): void {
  const fd = socketFd(down);
  const t = engine.create(ctxExt, true, 0);
  let up: net.Socket | null = null;
  let upReady = false;
  const pending: Buffer[] = [];
  let closed = false;
  const kill = (): void => {
    if (closed) return;
    closed = true;
    t.free();
    down.destroy();
    if (up) up.destroy();
  };
  /** Ciphertext the kernel did not take goes through the socket's queue. */
  const afterCall = (): boolean => {
    if (st[0] & FATAL) {
      kill();
      return false;
    }
    if (st[1] > 0) down.write(t.take());
    return true;
  };
  const toUp = (buf: Buffer, n: number): void => {
    const copy = Buffer.from(buf.subarray(0, n)); // the chunk is reused by the next read
    if (upReady) up!.write(copy);
    else pending.push(copy);
  };
  installUserBuffer(down, downChunk, (n, buf) => {
    if (closed) return;
    let out = t.feed(buf, n, down.writableLength > 0 ? -1 : fd);
    if (!afterCall()) return;
    if (st[0] & HANDSHAKE) {
      up = net.connect({
        port: cfg.backendPort,
        host: '127.0.0.1',
        onread: {
          buffer: upChunk,
          callback: (m: number, b: Buffer): boolean => {
            if (!closed) {
              t.write(b, 0, m, down.writableLength > 0 ? -1 : fd);
              afterCall();
            }
            return true;
          },
        },
      });
      up.setNoDelay(true);
      up.on('connect', () => {
        upReady = true;
        for (const p of pending) up!.write(p);
        pending.length = 0;
      });
      up.on('end', () => {
        if (closed) return;
        t.shutdown(fd);
        afterCall();
        down.end();
      });
      up.on('error', kill).on('close', kill);
    }
    for (;;) {
      if (out > 0) toUp(buf, out);
      if ((st[0] & MORE) === 0) break;
      out = t.read(buf, fd);
      if (!afterCall()) return;
    }
  });
  down.setNoDelay(true);
  down.on('end', () => {
    if (up && upReady) up.end();
    else kill();
  });
  down.on('error', kill).on('close', kill);
  down.resume();
}

for (const l of cfg.listeners) {
  const ctx = tls.createSecureContext({
    cert: fs.readFileSync(l.cert),
    key: fs.readFileSync(l.key),
    minVersion: 'TLSv1.2',
    secureOptions: constants.SSL_OP_NO_TICKET,
  });
  // The SSL_CTX lives as long as its SecureContext: the closure holds it.
  const srv = net.createServer({ pauseOnConnect: true }, (down) => serve((ctx as unknown as { context: unknown }).context, down));
  srv.listen({ port: l.port, host: '127.0.0.1', backlog: 4096 });
}
process.on('SIGTERM', () => process.exit(0));
