/**
 * Natively terminated TLS listeners serve each connection on its bare fd (FdSocket, accepted by
 * the addon: no net.Socket per connection) by default; OUTRIGGER_TLS_FD=0 keeps net.Server and a
 * net.Socket per connection under the same native TLS driver. Here:
 *   - the sidecar says which accept path a TLS listener runs (and not with the switch off);
 *   - the existing TLS suites, which run the fd path by default, pass again with it off.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { native } from '../../src/native';
import { Pki } from '../helpers/certs';
import { echoServer } from '../helpers/net';
import { rerunWith } from '../helpers/rerun';
import { startSidecar, tcpProxyConfig, type RunningSidecar } from '../helpers/sidecar';

const skip = native.kind !== 'native' || native.accept === undefined ? 'native accept not available' : false;

/** Echoes one message through a new TLS connection. */
async function echoOnce(port: number, ca: string): Promise<string> {
  const s = tls.connect({ host: '127.0.0.1', port, servername: 'a.test', ca });
  s.on('error', () => {});
  await new Promise<void>((res, rej) => s.once('secureConnect', res).once('error', rej));
  const got = new Promise<string>((res) => s.once('data', (d: Buffer) => res(d.toString())));
  s.write('hello');
  const r = await got;
  s.end();
  return r;
}

for (const on of [true, false]) {
  test(`TLS listener with OUTRIGGER_TLS_FD ${on ? 'unset (default)' : '=0'}: ${on ? 'fd' : 'net.Socket'} accept path announced, echo`, { skip, timeout: 60_000 }, async () => {
    const pki = new Pki();
    const server = pki.issue({ cn: 'a.test', dns: ['a.test'] });
    const echo = await echoServer();
    const cfg = tcpProxyConfig({ upstreams: [echo.port] }) as { servers: { listeners: { filter_chains: Record<string, unknown>[] }[] }[] };
    cfg.servers[0].listeners[0].filter_chains[0].tls_context = { status: true, cert_chain: server.cert, private_key: server.key };
    let sc: RunningSidecar | undefined;
    try {
      const env: NodeJS.ProcessEnv = on ? {} : { OUTRIGGER_TLS_FD: '0' };
      if (on) delete process.env.OUTRIGGER_TLS_FD; // the default, whatever the runner's environment
      sc = await startSidecar(cfg, { args: ['--log-level', 'info'], env });
      const port = sc.ports.get('tcp')!;
      const ca = fs.readFileSync(pki.ca.cert, 'latin1');
      for (let i = 0; i < 3; i++) assert.equal(await echoOnce(port, ca), 'hello');
      await new Promise((r) => setTimeout(r, 1500)); // main-thread logs flush asynchronously
      assert.equal(/"path":"fd","msg":"TLS accept: native/.test(sc.output()), on, sc.output().slice(-2000));
      assert.match(sc.output(), /"path":"native","msg":"TLS termination: native/);
    } finally {
      await sc?.terminate();
      echo.server.close();
    }
  });
}

const SUITES = ['tls.test.js', 'rbac-mtls.test.js', 'tls-resumption.test.js'];

test('the TLS suites pass with a net.Socket per connection (OUTRIGGER_TLS_FD=0)', { skip, timeout: 300_000 }, async () => {
  await rerunWith(SUITES.map((f) => path.join(__dirname, f)), { OUTRIGGER_TLS_FD: '0' });
});
