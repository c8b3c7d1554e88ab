// Session ticket keys (src/tls/tickets.ts): a worker thread started after shareTicketSecret()
// derives the same key per epoch as the main thread (a ticket issued by one worker resumes
// in another), keys differ between epochs, and the session id context depends on what the
// context verifies. No network; one short-lived worker thread.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { sessionIdContext, shareTicketSecret, ticketKey } from '../../src/tls/tickets';

test('a worker thread derives the same ticket key as the main thread; epochs differ', async () => {
  shareTicketSecret();
  const mod = path.join(__dirname, '..', '..', 'src', 'tls', 'tickets.js');
  const code = `const { parentPort } = require('node:worker_threads'); const t = require(${JSON.stringify(mod)}); parentPort.postMessage([t.ticketKey(7).toString('hex'), t.ticketKey(8).toString('hex')]);`;
  const w = new Worker(code, { eval: true });
  const [k7, k8] = await new Promise<string[]>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
  assert.equal(k7, ticketKey(7).toString('hex'));
  assert.equal(k8, ticketKey(8).toString('hex'));
  assert.notEqual(k7, k8);
  assert.equal(ticketKey(7).length, 48);
});

test('session id context: same inputs, same id; another CA or policy, another id; at most 32 characters', () => {
  const a = sessionIdContext('cert', 'ca', 'l|true|true');
  assert.equal(a, sessionIdContext('cert', 'ca', 'l|true|true'));
  assert.notEqual(a, sessionIdContext('cert', 'other ca', 'l|true|true'));
  assert.notEqual(a, sessionIdContext('cert', 'ca', 'l|true|false'));
  assert.ok(a.length <= 32);
});
