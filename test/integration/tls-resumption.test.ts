/**
 * TLS session resumption (src/tls/tickets.ts, the cluster session cache in src/tls/client.ts):
 *   - openssl s_client -sess_out / -sess_in against an mTLS listener served by two workers:
 *     every reconnect is "Reused" (the ticket key is shared by the workers, the session id
 *     context is set so OpenSSL resumes with client certificates), and counted;
 *   - disable_stateless_session_resumption turns it off;
 *   - Outrigger A (plain tcp_proxy listener, cluster with a client certificate) ==mTLS==>
 *     Outrigger B (client certificate required, network rbac allowing one SPIFFE id, tcp_proxy
 *     to an echo server): A's reconnects resume, and B's RBAC still sees the SPIFFE id on the
 *     resumed connections (the echo comes back).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { native } from '../../src/native';
import { Pki } from '../helpers/certs';
import { echoServer } from '../helpers/net';
import { startSidecar, tcpProxyConfig, type RunningSidecar } from '../helpers/sidecar';

const OK_ID = 'spiffe://mesh.test/ns/default/sa/frontend';

/** Sends `msg` through a plain connection to `port` and resolves with what comes back before the close (or 2 s). */
function roundTrip(port: number, msg: string): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (): void => {
      clearTimeout(t);
      c.destroy();
      resolve(got);
    };
    const t = setTimeout(done, 2000);
    c.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= msg.length) done();
    });
    c.on('error', done).on('close', done);
    c.write(msg);
  });
}

/**
 * openssl s_client to 127.0.0.1:port: writes `input` once the handshake is done and closes
 * stdin as soon as the echo of it is back and, with `sessOut`, a ticket arrived (its session
 * is saved there); after 5 s at most. Resolves with everything s_client printed.
 */
function sClient(port: number, args: readonly string[], input: string, sessOut?: string, waitTicket = sessOut !== undefined): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args, ...(sessOut !== undefined ? ['-sess_out', sessOut] : [])]);
    let out = '';
    let sent = false;
    const t = setTimeout(() => p.stdin.end(), 5000);
    const onOutput = (d: Buffer): void => {
      out += d.toString();
      const up = /^(New|Reused), /m.test(out);
      if (up && !sent) {
        sent = true;
        p.stdin.write(input);
      }
      const ticket = !waitTicket || out.includes('Post-Handshake New Session Ticket');
      if (up && ticket && out.includes(input.trim()) && !p.stdin.writableEnded) p.stdin.end();
    };
    p.stdout.on('data', onOutput);
    p.stderr.on('data', onOutput);
    p.stdin.on('error', () => {});
    p.on('exit', () => {
      clearTimeout(t);
      resolve(out);
    });
  });
}

/** One tcp_proxy listener with `tls` on its chain and the rbac filters before tcp_proxy. */
function tlsListenerConfig(upstream: number, tls: Record<string, unknown>, filters: unknown[] = []): Record<string, unknown> {
  const cfg = tcpProxyConfig({ upstreams: [upstream] }) as any;
  const chain = cfg.servers[0].listeners[0].filter_chains[0];
  chain.tls_context = tls;
  chain.filters = [...filters, ...chain.filters];
  return cfg;
}

test('openssl s_client resumes with a ticket on an mTLS listener served by two workers; disable_stateless_session_resumption turns it off', { timeout: 60_000 }, async () => {
  const pki = new Pki();
  const server = pki.issue({ cn: 'b.mesh', dns: ['b.mesh'] });
  const client = pki.issue({ cn: 'frontend', uris: [OK_ID], usage: 'client' });
  const echo = await echoServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-resume-'));
  const sess = path.join(dir, 'session.pem');
  const tls = { status: true, cert_chain: server.cert, private_key: server.key, ca_cert: pki.ca.cert, verify_client: true, require_client_cert: true };
  const certArgs = ['-cert', client.cert, '-key', client.key, '-CAfile', pki.ca.cert];
  let sc: RunningSidecar | undefined;
  let off: RunningSidecar | undefined;
  try {
    sc = await startSidecar(tlsListenerConfig(echo.port, tls), { workers: 2 });
    const port = sc.ports.get('tcp')!;
    const first = await sClient(port, certArgs, 'ping\n', sess);
    assert.match(first, /^New, TLSv1\.3/m, first);
    assert.ok(fs.existsSync(sess), 'openssl saved the session');
    // Four reconnects with the saved ticket: with two workers, some land on the other one.
    for (let i = 0; i < 4; i++) {
      const r = await sClient(port, [...certArgs, '-sess_in', sess], 'ping\n');
      assert.match(r, /^Reused, TLSv1\.3/m, `reconnect ${i + 1}: ${r}`);
      assert.match(r, /^ping$/m, 'the echo came back through the resumed connection');
    }
    const st = await sc.stats();
    assert.ok(st.listeners.tcp.downstream_tls_session_reused >= 4, JSON.stringify(st.listeners.tcp));

    off = await startSidecar(tlsListenerConfig(echo.port, { ...tls, disable_stateless_session_resumption: true }));
    const offPort = off.ports.get('tcp')!;
    fs.rmSync(sess);
    const full = await sClient(offPort, certArgs, 'ping\n', sess, false);
    assert.match(full, /^New, TLSv1\.3/m, full);
    if (native.tlsTickets !== undefined) {
      // Native tickets: none at all is sent with tickets off (SSL_CTX_set_num_tickets 0), so
      // the client has nothing to offer.
      assert.doesNotMatch(full, /New Session Ticket/, full);
      assert.ok(!fs.existsSync(sess), 'no session to save');
    } else {
      // Node's path: OpenSSL still sends a stateful TLS 1.3 ticket that nothing resumes.
      assert.ok(fs.existsSync(sess), 'openssl saved the session');
      const again = await sClient(offPort, [...certArgs, '-sess_in', sess], 'ping\n');
      assert.match(again, /^New, TLSv1\.3/m, again);
    }
  } finally {
    await sc?.terminate();
    await off?.terminate();
    echo.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('Outrigger to Outrigger over mTLS: reconnects resume and the SPIFFE id still passes RBAC on resumed connections', { timeout: 60_000 }, async () => {
  const pki = new Pki();
  const server = pki.issue({ cn: 'b.mesh', dns: ['b.mesh'] });
  const client = pki.issue({ cn: 'frontend', uris: [OK_ID], usage: 'client' });
  const echo = await echoServer();
  const rbac = {
    type: 'rbac',
    config: {
      stat_prefix: 'r.',
      rules: { action: 'ALLOW', policies: { frontend: { permissions: [{ any: true }], principals: [{ authenticated: { principal_name: { exact: OK_ID } } }] } } },
    },
  };
  const tlsB = { status: true, cert_chain: server.cert, private_key: server.key, ca_cert: pki.ca.cert, verify_client: true, require_client_cert: true };
  let a: RunningSidecar | undefined;
  let b: RunningSidecar | undefined;
  try {
    b = await startSidecar(tlsListenerConfig(echo.port, tlsB, [rbac]), { workers: 2 });
    const cfgA = tcpProxyConfig({ upstreams: [b.ports.get('tcp')!] }) as any;
    cfgA.cluster_manager.clusters[0].tls_context = { status: true, server_name: 'b.mesh', cert_chain: client.cert, private_key: client.key, ca_cert: pki.ca.cert };
    a = await startSidecar(cfgA);
    const portA = a.ports.get('tcp')!;
    for (let i = 0; i < 6; i++) assert.equal(await roundTrip(portA, `hello ${i}`), `hello ${i}`, `connection ${i + 1} through A and B`);
    const st = (await b.stats()).listeners.tcp;
    assert.equal(st.downstream_tls_handshake, 6, JSON.stringify(st));
    // The first connection is a full handshake; the ones after it resume A's cached session
    // (a ticket that arrives after the next connect started can make one more full handshake).
    assert.ok(st.downstream_tls_session_reused >= 4, JSON.stringify(st));
  } finally {
    await a?.terminate();
    await b?.terminate();
    echo.server.close();
  }
});
