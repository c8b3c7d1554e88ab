/**
 * Owned fds (FdSocket: TLS accepted by the addon, native upstream connects) start in the addon's
 * epoll set of owned fds and move to a libuv poll handle of their own after
 * OUTRIGGER_OWNED_POLL_AFTER reads (default 16: native/read.cc OwnPoll), so most test connections
 * (a handshake and a request or two) never leave the set. Here the suites that run owned fds pass
 * again with OUTRIGGER_OWNED_POLL_AFTER=1: every owned fd on its own poll from its first read on
 * (the TLS handshake's pauses, resumes and write interest, upstream back-pressure, FIN, errors,
 * close), and with 0: none ever (session 10's set only).
 */
import { test } from 'node:test';
import * as path from 'node:path';
import { ownedFdReads } from '../../src/network/connection';
import { rerunWith } from '../helpers/rerun';

const SUITES = [
  path.join(__dirname, '..', 'unit', 'upstream-fd.test.js'),
  path.join(__dirname, '..', 'unit', 'tls-fd.test.js'),
  path.join(__dirname, 'tls.test.js'),
  path.join(__dirname, 'bolt.test.js'),
];

for (const after of ['1', '0']) {
  test(`the owned-fd suites pass with OUTRIGGER_OWNED_POLL_AFTER=${after}`, { skip: ownedFdReads ? false : 'no owned-fd reads here', timeout: 600_000 }, async () => {
    await rerunWith(SUITES, { OUTRIGGER_OWNED_POLL_AFTER: after });
  });
}
