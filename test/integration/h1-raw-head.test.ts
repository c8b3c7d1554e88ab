/**
 * Heads on the raw HTTP/1.1 engine (issue 15): when nothing changes a response head (no
 * response header operations, filters or access log), the upstream's field lines go to the
 * client as its bytes (names' case, spacing and order kept; hop-by-hop lines left out; our
 * status line and framing lines first); a bodiless request head likewise goes upstream as the
 * client's lines after our request line, host and x-request-id. Otherwise, and for heads the
 * byte path does not reproduce (Connection naming a field, te, trailer, repeated
 * Content-Length), the header map path (lower-case names). A raw TCP backend sends heads no
 * library would write and records the request heads it gets.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { startSidecar } from '../helpers/sidecar';
import { httpConfig, raw } from '../helpers/http';

const HEADS: Record<string, string> = {
  '/odd':
    'HTTP/1.1 200 Fine\r\nX-Odd:   spaced\t value \r\nSet-Cookie: a=1\r\nConnection: keep-alive\r\nSET-COOKIE: b=2\r\n' +
    'Keep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok',
  '/chunked': 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  '/private': 'HTTP/1.1 200 OK\r\nConnection: X-Private\r\nX-Private: secret\r\nX-Public: yes\r\nContent-Length: 0\r\n\r\n',
  '/last': 'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 1\r\nX-Last: z\r\n\r\n!',
};

/** A keep-alive backend that answers each GET head with the bytes above and keeps the heads it got. */
function rawBackend(heads: string[]): Promise<net.Server> {
  const srv = net.createServer((s) => {
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n\r\n'); i >= 0; i = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, i);
        heads.push(head + '\r\n\r\n');
        buf = buf.slice(i + 4);
        const path = head.split(' ')[1] ?? '';
        s.write(HEADS[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      }
    });
    s.on('error', () => undefined);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

const route = (ops: Record<string, unknown>): Record<string, unknown> => ({ cluster_name: 'b', timeout: '5s', ...ops });

test('raw engine: unchanged response heads go out as the upstream bytes, changed ones through the header map', { timeout: 30_000 }, async () => {
  const heads: string[] = [];
  const b = await rawBackend(heads);
  const port = (b.address() as net.AddressInfo).port;
  const sc = await startSidecar(
    httpConfig(
      [
        { name: 'bytes', downstream: 'Http1', upstream: 'Http1', router: 'r' },
        { name: 'ops', downstream: 'Http1', upstream: 'Http1', router: 'r2' },
      ],
      [
        { router_config_name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: route({}) }] }] },
        {
          router_config_name: 'r2',
          virtual_hosts: [
            {
              name: 'all',
              domains: ['*'],
              routers: [
                {
                  match: { prefix: '/' },
                  route: route({
                    response_headers_to_add: [{ header: { key: 'x-added', value: '1' }, append: false }],
                    request_headers_to_add: [{ header: { key: 'x-req-added', value: '2' }, append: false }],
                  }),
                },
              ],
            },
          ],
        },
      ],
      { b: [port] },
    ),
    { workers: 1 },
  );
  try {
    const p = sc.ports.get('bytes')!;
    // A first request opens the upstream connection (a head sent after a connect goes through the map: its bytes are gone by then).
    await raw(p, 'GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    await raw(sc.ports.get('ops')!, 'GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    heads.length = 0;
    // Byte path: the upstream's lines but Connection / Keep-Alive / Transfer-Encoding, as sent;
    // our status line and framing lines first (chunked re-framed, connection: close on the last request).
    const out = await raw(
      p,
      'GET /odd HTTP/1.1\r\nHost: a\r\nUser-AGENT: t\r\nConnection: keep-alive\r\nX-Sp:  two  \r\n\r\n' +
        'GET /chunked HTTP/1.1\r\nX-Request-Id: mine\r\nHost: a\r\nConnection: close\r\nKeep-Alive: 5\r\n\r\n',
    );
    assert.equal(
      out,
      'HTTP/1.1 200 OK\r\nX-Odd:   spaced\t value \r\nSet-Cookie: a=1\r\nSET-COOKIE: b=2\r\nContent-Length: 2\r\n\r\nok' +
        'HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\nconnection: close\r\nX-A: 1\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    );
    // Request heads likewise: our request line, host and x-request-id, then the client's lines but Host and hop-by-hop ones.
    const ids = heads.map((h) => /x-request-id: ([0-9a-f-]{36})\r\n/.exec(h)?.[1] ?? '');
    assert.deepEqual(heads, [`GET /odd HTTP/1.1\r\nhost: a\r\nx-request-id: ${ids[0]}\r\nUser-AGENT: t\r\nX-Sp:  two  \r\n\r\n`, 'GET /chunked HTTP/1.1\r\nhost: a\r\nX-Request-Id: mine\r\n\r\n']);
    assert.match(ids[0], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    heads.length = 0;
    // The last field line kept (one view up to the empty line), then an HTTP/1.0 keep-alive client (a framing line between).
    const last = await raw(p, 'GET /last HTTP/1.1\r\nHost: a\r\n\r\nGET /last HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /last HTTP/1.0\r\n\r\n');
    assert.equal(
      last,
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Last: z\r\n\r\n!' +
        'HTTP/1.1 200 OK\r\nconnection: keep-alive\r\nContent-Length: 1\r\nX-Last: z\r\n\r\n!' +
        'HTTP/1.1 200 OK\r\nconnection: close\r\nContent-Length: 1\r\nX-Last: z\r\n\r\n!',
    );
    heads.length = 0;
    // A Connection that names a field: the map path drops the named one (both ways).
    const priv = await raw(p, 'GET /private HTTP/1.1\r\nHost: a\r\nX-Hidden: 1\r\nConnection: close, X-Hidden\r\nX-Shown: 2\r\n\r\n');
    assert.equal(priv, 'HTTP/1.1 200 OK\r\nx-public: yes\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    assert.match(heads[0], /^GET \/private HTTP\/1\.1\r\nhost: a\r\nx-shown: 2\r\nx-request-id: [0-9a-f-]{36}\r\n\r\n$/);
    heads.length = 0;
    // Response header operations: the map path (lower-case names, trimmed values, the added header).
    const ops = await raw(sc.ports.get('ops')!, 'GET /odd HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.equal(ops, 'HTTP/1.1 200 OK\r\nx-odd: spaced\t value\r\nset-cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 2\r\nx-added: 1\r\nconnection: close\r\n\r\nok');
    assert.match(heads[0], /^GET \/odd HTTP\/1\.1\r\nhost: a\r\nx-req-added: 2\r\nx-request-id: [0-9a-f-]{36}\r\n\r\n$/);
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await new Promise((r) => b.close(r));
  }
});

test('raw engine: a head sent as the client bytes on a stale keep-alive connection is sent again, the same bytes, on a new one', { timeout: 30_000 }, async () => {
  // Each upstream connection answers its first request and drops its second without a byte (a
  // server that timed the connection out as the request arrived). The client's second request
  // went out as its bytes, whose read buffer is long reused when the retry is sent.
  const heads: string[] = [];
  let conns = 0;
  const b = net.createServer((s) => {
    conns++;
    let n = 0;
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n\r\n'); i >= 0; i = buf.indexOf('\r\n\r\n')) {
        heads.push(buf.slice(0, i + 4));
        buf = buf.slice(i + 4);
        if (n++ === 0) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        else s.destroy();
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => b.listen(0, '127.0.0.1', r));
  const port = (b.address() as net.AddressInfo).port;
  const sc = await startSidecar(
    httpConfig(
      [{ name: 'h', downstream: 'Http1', upstream: 'Http1', router: 'r' }],
      [{ router_config_name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routers: [{ match: { prefix: '/' }, route: route({}) }] }] }],
      { b: [port] },
    ),
    { workers: 1 },
  );
  try {
    const p = sc.ports.get('h')!;
    const ok = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    // The first request connects (its head goes from the map); the second reuses the connection.
    assert.equal(await raw(p, 'GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'), ok.replace('\r\nContent', '\r\nconnection: close\r\nContent'));
    const second = 'GET /b HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\nX-Two:  2 \r\nConnection: close\r\n\r\n';
    assert.equal(await raw(p, second), ok.replace('\r\nContent', '\r\nconnection: close\r\nContent'));
    assert.equal(conns, 2);
    assert.equal(heads.length, 3);
    assert.match(heads[1], /^GET \/b HTTP\/1\.1\r\nhost: a\r\nx-request-id: [0-9a-f-]{36}\r\nUser-Agent: t\r\nX-Two: {2}2 \r\n\r\n$/);
    assert.equal(heads[2], heads[1]);
  } finally {
    assert.equal(await sc.terminate(), 0, sc.output());
    await new Promise((r) => b.close(r));
  }
});
