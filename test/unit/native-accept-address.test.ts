// Native accept (native/listen.cc acceptStart): the addresses reported per accepted connection.
// A listener bound to a specific address reports its own address as every connection's local
// address (no getsockname per accept); a wildcard listener asks the kernel per connection. Both
// must give what the client sees from its side (its remote address and port), and the client's
// own address as the remote one. Skipped without the addon's native accept.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { native } from '../../src/native';

const accept = native.accept;
const skip = accept === undefined ? 'native accept not available' : false;

interface Accepted {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
}

/** Listens natively on host, connects `n` clients to `target`; resolves with what each side saw. */
async function acceptFrom(host: string, target: string, n: number): Promise<{ accepted: Accepted[]; clients: Accepted[] }> {
  const acc = accept!;
  const l = native.listenTcp(host, 0, 16, false);
  const accepted: Accepted[] = [];
  const clients: Accepted[] = [];
  let id = -1;
  try {
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (accepted.length === n && clients.length === n) resolve();
      };
      id = acc.start(l.fd, (fd, remoteAddress, remotePort, localAddress, localPort) => {
        accepted.push({ remoteAddress, remotePort, localAddress, localPort });
        native.closeFd(fd);
        check();
      });
      for (let i = 0; i < n; i++) {
        const c = net.connect(l.port, target, () => {
          clients.push({ remoteAddress: c.remoteAddress ?? '', remotePort: c.remotePort ?? 0, localAddress: c.localAddress ?? '', localPort: c.localPort ?? 0 });
          c.destroy();
          check();
        });
        c.on('error', reject);
      }
    });
  } finally {
    if (id >= 0) acc.stop(id);
    else native.closeFd(l.fd);
  }
  return { accepted, clients };
}

function sameEnds(accepted: Accepted[], clients: Accepted[]): void {
  assert.equal(accepted.length, clients.length);
  const byClientPort = new Map(clients.map((c) => [c.localPort, c]));
  for (const a of accepted) {
    const c = byClientPort.get(a.remotePort);
    assert.ok(c !== undefined, `a client with local port ${a.remotePort}`);
    assert.equal(a.remoteAddress, c.localAddress);
    assert.equal(a.localAddress, c.remoteAddress);
    assert.equal(a.localPort, c.remotePort);
  }
}

test('native accept: a listener on a specific address reports it as each connection local address', { skip }, async () => {
  const { accepted, clients } = await acceptFrom('127.0.0.1', '127.0.0.1', 3);
  sameEnds(accepted, clients);
  assert.ok(accepted.every((a) => a.localAddress === '127.0.0.1' && a.localPort > 0));
});

test('native accept: a wildcard listener reports the address each connection came to', { skip }, async () => {
  const { accepted, clients } = await acceptFrom('0.0.0.0', '127.0.0.1', 2);
  sameEnds(accepted, clients);
  assert.ok(accepted.every((a) => a.localAddress === '127.0.0.1'));
});

test('native accept: IPv6 loopback listener', { skip }, async (t) => {
  let r: { accepted: Accepted[]; clients: Accepted[] };
  try {
    r = await acceptFrom('::1', '::1', 2);
  } catch (e) {
    t.skip(`no IPv6 loopback (${(e as Error).message})`);
    return;
  }
  sameEnds(r.accepted, r.clients);
  assert.ok(r.accepted.every((a) => a.localAddress === '::1'));
});
