// The TlsInfo a Connection keeps (src/tls/identity.ts tlsInfoOf): the peer certificate is taken
// while the session is up, its identity is parsed only when `peer` is first read, and it is
// still right after the socket closed. 127.0.0.1 only, well under a second after the certs.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Pki } from '../helpers/certs';
import { tlsInfoOf } from '../../src/tls/identity';

const ID = 'spiffe://mesh.test/ns/default/sa/frontend';

test('tlsInfoOf: the peer identity is parsed on first read of `peer`, and survives the close', async () => {
  const pki = new Pki();
  const server = pki.issue({ cn: 'b.mesh', dns: ['b.mesh'] });
  const client = pki.issue({ cn: 'frontend', uris: [ID], usage: 'client' });
  const read = (f: string): Buffer => fs.readFileSync(f);
  const got = new Promise<tls.TLSSocket>((resolve) => {
    const srv = tls.createServer({ cert: read(server.cert), key: read(server.key), ca: read(pki.ca.cert), requestCert: true, rejectUnauthorized: true }, (s) => {
      srv.close();
      resolve(s);
    });
    srv.listen(0, '127.0.0.1', () => {
      const c = tls.connect({ port: (srv.address() as net.AddressInfo).port, host: '127.0.0.1', servername: 'b.mesh', ca: read(pki.ca.cert), cert: read(client.cert), key: read(client.key) });
      c.on('error', () => {});
      c.on('secureConnect', () => c.end());
    });
  });
  const sock = await got;
  // Count reads of the certificate's subject (what the identity parsing reads first).
  const desc = Object.getOwnPropertyDescriptor(X509Certificate.prototype, 'subject')!;
  let subjectReads = 0;
  Object.defineProperty(X509Certificate.prototype, 'subject', {
    ...desc,
    get(this: X509Certificate) {
      subjectReads++;
      return desc.get!.call(this);
    },
  });
  try {
    const info = tlsInfoOf(sock);
    assert.equal(subjectReads, 0, 'nothing parsed before anyone asks');
    assert.equal(info.version, 'TLSv1.3');
    assert.equal(info.serverName, 'b.mesh');
    sock.destroy();
    await new Promise((r) => sock.once('close', r));
    const peer = info.peer;
    assert.ok(peer !== null);
    assert.deepEqual(peer.uriSans, [ID]);
    assert.equal(peer.subject, 'CN=frontend');
    assert.equal(subjectReads, 1);
    assert.equal(info.peer, peer, 'parsed once');
  } finally {
    Object.defineProperty(X509Certificate.prototype, 'subject', desc);
  }
});
