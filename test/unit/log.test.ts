import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  DEFAULT_ACCESS_LOG_FORMAT,
  closeLogger,
  closeLogs,
  compileAccessLogFormat,
  createAccessLog,
  createLogger,
  describeLogDestinations,
  flushLogger,
  flushLoggerAsync,
  formatDuration,
  formatStartTime,
  normalizeLevel,
  resolveLogLevel,
} from '../../src/log';

function tmpFile(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-log-'));
  return path.join(dir, 'sub', name); // "sub" exercises mkdir
}

test('level names: MOSN spelling, CLI override, bad names', () => {
  assert.equal(normalizeLevel('ERROR'), 'error');
  assert.equal(normalizeLevel('WARN'), 'warn');
  assert.equal(normalizeLevel('warning'), 'warn');
  assert.equal(normalizeLevel(undefined), 'info');
  assert.equal(resolveLogLevel('ERROR', 'debug'), 'debug');
  assert.equal(resolveLogLevel('ERROR', undefined), 'error');
  assert.equal(resolveLogLevel(undefined, ''), 'info');
  assert.throws(() => normalizeLevel('loud'), /unknown log level/);
});

test('logger writes JSON lines to a file at the configured level', async () => {
  const file = tmpFile('default.log');
  const log = createLogger({ level: 'WARN', path: file, name: 'outrigger' });
  flushLogger(); // before the destination is open: must not throw
  log.info('hidden-info');
  log.debug('hidden-debug');
  log.warn({ listener: 'ingress' }, 'shown-warn');
  log.error('shown-error');
  await flushLoggerAsync();
  let lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  assert.equal(lines.length, 2, lines.join('\n'));
  const first = JSON.parse(lines[0]);
  assert.equal(first.msg, 'shown-warn');
  assert.equal(first.level, 40);
  assert.equal(first.listener, 'ingress');
  assert.equal(first.name, 'outrigger');
  assert.equal(first.pid, process.pid);
  assert.equal(JSON.parse(lines[1]).level, 50);

  log.level = 'debug';
  log.debug('now-debug');
  flushLogger(); // synchronous path once ready
  lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  assert.equal(JSON.parse(lines[lines.length - 1]).msg, 'now-debug');
  await closeLogger(log);
});

test('logger output is buffered (asynchronous destination), not written per line', async () => {
  const file = tmpFile('buffered.log');
  const log = createLogger({ level: 'info', path: file, flushIntervalMs: 0 });
  await new Promise((r) => setTimeout(r, 50)); // let the file open
  log.info('one');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(fs.readFileSync(file, 'utf8'), '', 'a short line stays in memory below minLength');
  await flushLoggerAsync();
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).msg, 'one');
  const info = describeLogDestinations().find((d) => d.dest === file);
  assert.deepEqual(info, { dest: file, sync: false, minLength: 4096, refs: 1 });
  await closeLogger(log);
});

test('access log format: MOSN variables, literals, missing values, unknown variables', () => {
  const f = compileAccessLogFormat('[%START_TIME%] %downstream_remote_address% -> %upstream_host% sent=%BYTES_SENT% rcvd=%bytes_received% %duration% %response_flag% 100%');
  assert.equal(f.vars.length, 7);
  assert.equal(f.literals.length, 8);
  assert.equal(f.literals[0], '[');
  assert.equal(f.literals[7], ' 100%');
  assert.throws(() => compileAccessLogFormat('%nope%'), /unknown variable %nope%/);
  assert.doesNotThrow(() => compileAccessLogFormat(DEFAULT_ACCESS_LOG_FORMAT));
});

test('start time and duration rendering', () => {
  const t = new Date(2024, 0, 2, 3, 4, 5, 7).getTime();
  assert.equal(formatStartTime(t), '2024/01/02 03:04:05.007');
  assert.equal(formatStartTime(t + 993), '2024/01/02 03:04:06.000');
  assert.equal(formatStartTime(t + 123), '2024/01/02 03:04:05.130');
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(0.0005), '500ns');
  assert.equal(formatDuration(0.25), '250µs');
  assert.equal(formatDuration(1.5), '1.5ms');
  assert.equal(formatDuration(2003), '2.003s');
  assert.equal(formatDuration(90_000), '1m30s');
  assert.equal(formatDuration(3_600_000), '1h0m0s');
});

test('access log writes formatted lines asynchronously to a file', async () => {
  const file = tmpFile('access.log');
  const start = new Date(2024, 4, 6, 7, 8, 9, 10).getTime();
  const al = createAccessLog({
    path: file,
    format: '%start_time% %listener_name% %request_received_duration% %downstream_remote_address% %downstream_local_address% %upstream_host% %bytes_sent% %bytes_received% %response_flag% %upstream_cluster%',
    listenerName: 'ingress',
  });
  al.log({
    startTime: start,
    requestReceivedDurationMs: 1.25,
    downstreamRemoteAddress: '10.0.0.1:5555',
    downstreamLocalAddress: '127.0.0.1:2045',
    upstreamHost: '10.0.0.2:8080',
    bytesSent: 120,
    bytesReceived: 64,
    upstreamCluster: 'backend',
  });
  al.log({ startTime: start, listenerName: 'other', responseFlag: 'UF', bytesSent: 0 });
  assert.equal(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '', '', 'nothing written synchronously');
  await al.flush();
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  assert.equal(lines[0], '2024/05/06 07:08:09.010 ingress 1.25ms 10.0.0.1:5555 127.0.0.1:2045 10.0.0.2:8080 120 64 - backend');
  assert.equal(lines[1], '2024/05/06 07:08:09.010 other - - - - 0 - UF -');
  assert.equal(lines[2], '');
  await al.close();
  al.log({ startTime: start }); // ignored after close
});

test('default access log format and a shared destination', async () => {
  const file = tmpFile('shared.log');
  const a = createAccessLog({ path: file, listenerName: 'a' });
  const b = createAccessLog({ path: file, listenerName: 'b' });
  const line = a.render({ startTime: Date.now(), durationMs: 3, bytesSent: 1, bytesReceived: 2, downstreamRemoteAddress: '1.2.3.4:5' });
  assert.match(line, /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d\.\d{3} a 3ms 1 2 - - - 1\.2\.3\.4:5 -$/);
  for (let i = 0; i < 500; i++) (i % 2 ? a : b).log({ startTime: Date.now(), bytesSent: i });
  await a.close(); // b still holds the destination
  b.log({ startTime: Date.now(), bytesSent: 999 });
  await b.close();
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  assert.equal(lines.length, 501);
  assert.match(lines[500], / b .* 999 /);
});

test('closeLogs flushes and closes everything', async () => {
  const file = tmpFile('close.log');
  const log = createLogger({ level: 'info', path: file });
  log.info('bye');
  await closeLogs();
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).msg, 'bye');
  flushLogger(); // no destinations left: still safe
});
