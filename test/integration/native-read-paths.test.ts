/**
 * The native read path (native/read.cc, the default with the addon) is what the suites exercise in
 * their own files; here they run again on Node's read path (OUTRIGGER_NATIVE_READ=0): the
 * Connection read unit tests (EOF, reset, pause/resume, close while readable, 1-byte peer, reads
 * spanning chunks, outgoing, idle timer) and the proxies over plain connections (tcp_proxy with and
 * without splice, Bolt, Dubbo, raw HTTP/1.1, the RPC Auto sniffer with HTTP/2 taking the socket,
 * hot upgrade); and the native read tests with each batch entered through napi_make_callback
 * (OUTRIGGER_NATIVE_READ_ENTRY=callback) instead of a plain call.
 */
import { test } from 'node:test';
import * as path from 'node:path';
import { native } from '../../src/native';
import { rerunWith } from '../helpers/rerun';

const SUITES = [
  '../unit/native-read.test.js',
  'tcp-proxy.test.js',
  'tcp-splice.test.js',
  'bolt.test.js',
  'dubbo.test.js',
  'http1-raw.test.js',
  'h1-pool.test.js',
  'auto.test.js',
  'upgrade.test.js',
];

test("the plain-connection suites pass on Node's read path (OUTRIGGER_NATIVE_READ=0)", { skip: native.read === null ? 'no native read path (addon not loaded)' : false, timeout: 600_000 }, async () => {
  await rerunWith(SUITES.map((f) => path.join(__dirname, f)), { OUTRIGGER_NATIVE_READ: '0' });
});

test('the native read tests pass with each batch entered through napi_make_callback (OUTRIGGER_NATIVE_READ_ENTRY=callback)', { skip: native.read === null ? 'no native read path (addon not loaded)' : false, timeout: 120_000 }, async () => {
  await rerunWith([path.join(__dirname, '../unit/native-read.test.js'), path.join(__dirname, '../unit/native-read-entry.test.js')], { OUTRIGGER_NATIVE_READ_ENTRY: 'callback' });
});
