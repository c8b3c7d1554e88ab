/**
 * Plaintext upstream connections are bare fds by default (FdSocket.connect, src/upstream/connect.ts;
 * test/unit/upstream-fd.test.ts checks that path); here the suites of the plain upstream users run
 * again with OUTRIGGER_UPSTREAM_FD=0, i.e. net.connect under the native read path (what the
 * default was before): tcp_proxy with and without splice, Bolt, the raw HTTP/1.1 pool, circuit
 * breakers. (OUTRIGGER_NATIVE_READ=0, native-read-paths.test.ts, turns both off.)
 */
import { test } from 'node:test';
import * as path from 'node:path';
import { upstreamOnFd } from '../../src/upstream/connect';
import { rerunWith } from '../helpers/rerun';

const SUITES = ['tcp-proxy.test.js', 'tcp-splice.test.js', 'bolt.test.js', 'h1-pool.test.js', 'circuit-breakers.test.js'];

test('the plain upstream suites pass with net.connect (OUTRIGGER_UPSTREAM_FD=0)', { skip: upstreamOnFd('127.0.0.1') ? false : 'upstream connections are not on the fd path here', timeout: 600_000 }, async () => {
  await rerunWith(SUITES.map((f) => path.join(__dirname, f)), { OUTRIGGER_UPSTREAM_FD: '0' });
});
