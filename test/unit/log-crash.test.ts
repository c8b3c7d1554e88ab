// The crash line of a thread that ends right after it (src/log.ts logFatalSync, one-isolate mode's
// uncaught exception): on its destination when the call returns, even when the line is the one
// that fills the buffer to minLength (an asynchronous write would take it) and libuv's threadpool,
// which asynchronous writes wait for, is busy.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { closeLogger, createLogger, describeLogDestinations, flushLoggerAsync, logFatalSync, logSynchronously } from '../../src/log';

test('logFatalSync: the line is written before the call returns, whatever the buffer and the threadpool', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-log-crash-'));
  const file = path.join(dir, 'main.log');
  const MIN = 4096;
  const log = createLogger({ path: file, level: 'info', minLength: MIN, flushIntervalMs: 60_000, base: {} });
  try {
    log.info('open');
    await flushLoggerAsync(); // the file is open and written
    // Every threadpool thread busy for a while: an asynchronous write waits behind them.
    const size = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const busy = Array.from({ length: size }, () => new Promise((r) => crypto.pbkdf2('p', 's', 400_000, 64, 'sha512', r)));
    // A line that leaves the buffer 10 bytes under minLength (pino writes level, time (13 digits),
    // the fields, msg): buffered; the crash line then fills it, and SonicBoom hands the whole
    // buffer to an asynchronous write.
    const frame = '{"level":30,"time":1700000000000,"pad":"","msg":"before the crash"}\n'.length;
    log.info({ pad: 'x'.repeat(MIN - 10 - frame) }, 'before the crash');
    logFatalSync(log, { err: 'Error: boom\n    at somewhere' }, 'the crash line');
    const text = fs.readFileSync(file, 'utf8');
    assert.match(text, /before the crash/);
    assert.match(text, /"msg":"the crash line"/);
    await Promise.all(busy);
    // A thread that lives on (the main thread logging a worker's crash): asynchronous again after the line.
    logSynchronously(() => log.error('a worker crashed'));
    assert.match(fs.readFileSync(file, 'utf8'), /"msg":"a worker crashed"/);
    assert.equal(describeLogDestinations().find((d) => d.dest === file)?.sync, false);
  } finally {
    await closeLogger(log);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
