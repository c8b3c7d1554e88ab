// The harness's tls-resume driver: each slot offers its previous session, so a ticket-issuing
// server resumes almost every handshake (and the note says so); a server without tickets gets
// full handshakes and the note says 0%. 127.0.0.1 only, about two seconds.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { constants } from 'node:crypto';
import { makeCert } from '../../bench/lib/certs';
import runTask from '../../bench/load/worker';
import type { LoadSpec } from '../../bench/load/spec';
import { workloadByName } from '../../bench/workloads';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-tls-resume-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

function spec(port: number): LoadSpec {
  return {
    kind: 'tls-resume', host: '127.0.0.1', port, connections: 4, threads: 1, messageSize: 64,
    measureStart: Date.now() + 200, durationMs: 600, proxyPids: [], backendPids: [],
  };
}

async function run(tickets: boolean): Promise<{ note: string; ops: number; errors: number; reused: number; handshakes: number }> {
  const c = makeCert(dir, 'ecdsa');
  let reused = 0;
  let handshakes = 0;
  const opts: tls.TlsOptions = { cert: fs.readFileSync(c.cert), key: fs.readFileSync(c.key), ...(tickets ? {} : { secureOptions: constants.SSL_OP_NO_TICKET }) };
  const srv = tls.createServer(opts, (s) => {
    handshakes++;
    if (s.isSessionReused()) reused++;
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  const port = await new Promise<number>((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as net.AddressInfo).port)));
  try {
    const r = await runTask({ spec: spec(port), connections: 4 });
    return { note: r.note ?? '', ops: r.ops, errors: r.errors, reused, handshakes };
  } finally {
    srv.close();
  }
}

test('tls-resume driver: resumed handshakes against a ticket-issuing server, counted in the note', async () => {
  const r = await run(true);
  assert.equal(r.errors, 0);
  assert.ok(r.ops >= 10, `only ${r.ops} handshakes`);
  assert.ok(r.reused >= r.handshakes - 8, `${r.reused} of ${r.handshakes} resumed`); // each slot's first is full
  const m = /, (\d+)% resumed$/.exec(r.note);
  assert.ok(m !== null && Number(m[1]) >= 80, r.note);
  assert.deepEqual(workloadByName('tls-resume')!.cases({}).map((c) => c.kind), ['tls-resume', 'tls-resume']);
});

test('tls-resume driver: a server without tickets answers with full handshakes (0% resumed, no errors)', async () => {
  const r = await run(false);
  assert.equal(r.errors, 0);
  assert.equal(r.reused, 0);
  assert.match(r.note, /, 0% resumed$/);
});
