// Piscina worker: drives `connections` sockets of one kind until the window ends.
// Latencies are recorded (µs) only for operations completing inside the window;
// bytes are counted only inside the window.
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import type { LoadSpec, WorkerResult } from './spec';

export interface WorkerTask {
  spec: LoadSpec;
  connections: number;
}

const HTTP_REQ = (host: string): Buffer => Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: outrigger-bench\r\n\r\n`);

export default function runTask(task: WorkerTask): Promise<WorkerResult> {
  const { spec } = task;
  // Window bounds on this thread's performance.now() clock.
  const winStart = spec.measureStart - performance.timeOrigin;
  const winEnd = winStart + spec.durationMs;
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const res: WorkerResult = { ops: 0, bytes: 0, errors: 0, connectFailures: 0, histogram: '' };
  const sockets: net.Socket[] = [];
  let finished = false;

  const noteError = (e: Error): void => {
    if (finished) return;
    res.errors++;
    res.firstError ??= e.message;
  };

  const openOne = (): void => {
    const s = net.connect({ host: spec.host, port: spec.port });
    sockets.push(s);
    let connected = false;
    s.setNoDelay(true);
    s.on('error', (e) => {
      if (!connected && !finished) res.connectFailures++;
      noteError(e);
    });
    s.on('close', () => {
      if (connected && !finished && performance.now() < winEnd) noteError(new Error('connection closed by peer during the run'));
    });
    s.on('connect', () => {
      connected = true;
      if (spec.kind === 'tcp-rr') driveRr(s);
      else if (spec.kind === 'tcp-bulk') driveBulk(s);
      else driveHttp1(s);
    });
  };

  const record = (start: number, now: number): void => {
    if (now >= winStart && now < winEnd) {
      res.ops++;
      hist.recordValue(Math.max(1, Math.round((now - start) * 1000)));
    }
  };

  function driveRr(s: net.Socket): void {
    const msg = Buffer.alloc(spec.messageSize, 0x72);
    let got = 0;
    let sentAt = 0;
    const send = (): void => {
      got = 0;
      sentAt = performance.now();
      s.write(msg);
    };
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got < msg.length) return;
      const now = performance.now();
      record(sentAt, now);
      if (now >= winStart && now < winEnd) res.bytes += msg.length;
      if (now < winEnd && !finished) send();
    });
    send();
  }

  function driveBulk(s: net.Socket): void {
    // The backend streams to us; count what arrives inside the window.
    s.on('data', (d: Buffer) => {
      const now = performance.now();
      if (now >= winStart && now < winEnd) res.bytes += d.length;
    });
  }

  function driveHttp1(s: net.Socket): void {
    const req = HTTP_REQ(`${spec.host}:${spec.port}`);
    let buf: Buffer = Buffer.alloc(0);
    let need = -1; // total bytes of the current response once headers are parsed
    let sentAt = 0;
    const send = (): void => {
      sentAt = performance.now();
      s.write(req);
    };
    s.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        if (need < 0) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.subarray(0, end).toString('latin1');
          const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          if (!/^HTTP\/1\.[01] 2\d\d/.test(head) || !m) {
            noteError(new Error(`bad response: ${head.split('\r\n')[0]}`));
            s.destroy();
            return;
          }
          need = end + 4 + Number(m[1]);
        }
        if (buf.length < need) return;
        const now = performance.now();
        record(sentAt, now);
        if (now >= winStart && now < winEnd) res.bytes += need;
        buf = buf.subarray(need);
        need = -1;
        if (now < winEnd && !finished) send();
        else return;
      }
    });
    send();
  }

  for (let i = 0; i < task.connections; i++) openOne();

  return new Promise((resolve) => {
    const wait = Math.max(0, winEnd - performance.now());
    setTimeout(() => {
      finished = true;
      for (const s of sockets) s.destroy();
      res.histogram = hist.totalCount > 0 ? hdr.encodeIntoCompressedBase64(hist) : '';
      hist.destroy();
      resolve(res);
    }, wait);
  });
}
