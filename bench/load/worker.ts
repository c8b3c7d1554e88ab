// Piscina worker: drives `connections` sockets of one kind until the window ends.
// Latencies are recorded (µs) only for operations completing inside the window;
// bytes are counted only inside the window.
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as http2 from 'node:http2';
import { constants as cryptoConstants } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Worker, threadId } from 'node:worker_threads';
import * as fs from 'node:fs';
import * as hdr from 'hdr-histogram-js';
import type { LoadSpec, WorkerResult } from './spec';
import {
  BOLT_BODY,
  BOLT_CMD_RESPONSE,
  BOLT_ID_OFFSET,
  BOLT_TYPE_RESPONSE,
  BoltFrameReader,
  FrameReader,
  boltRequestTemplate,
} from './bolt';
import {
  DUBBO_BODY,
  DUBBO_ID_LO_OFFSET,
  DubboFrameReader,
  FLAG_EVENT,
  FLAG_REQUEST,
  OFF_FLAG,
  OFF_ID,
  OFF_STATUS,
  STATUS_OK,
  dubboRequestTemplate,
} from './dubbo';

export interface WorkerTask {
  spec: LoadSpec;
  connections: number;
}

const HTTP_REQ = (host: string): Buffer => Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: outrigger-bench\r\n\r\n`);

/**
 * An RPC protocol for the closed- and open-loop drivers (bolt, dubbo): a request frame
 * built once, the offset of its u32 id, and a reader calling `onResponse` for every
 * response frame that answers a request (ok false when it reports an error).
 */
interface RpcProto {
  name: string;
  template(): Buffer;
  idOffset: number;
  reader(s: net.Socket, onResponse: (id: number, len: number, ok: boolean) => void): void;
}

interface RateConn {
  socket: net.Socket;
  /** sends one request due at `sched` (performance.now() ms) */
  send(sched: number): void;
}

// The metronome thread: waits for 'start', then posts one message at every step
// (t0 + i * stepMs on the process-wide monotonic clock) until the flag is set.
const METRONOME_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const flag = new Int32Array(workerData.sab);
parentPort.once('message', (t0s) => {
  const t0 = BigInt(t0s);
  const stepNs = workerData.stepNs;
  for (let i = 1; i < 1e9 && Atomics.load(flag, 0) === 0; i++) {
    const waitMs = Number(t0 + BigInt(Math.round(i * stepNs)) - process.hrtime.bigint()) / 1e6;
    if (waitMs > 0) Atomics.wait(flag, 0, 0, waitMs);
    if (Atomics.load(flag, 0) !== 0) break;
    parentPort.postMessage(0);
  }
});
`;

interface Metronome {
  /** resolves when the thread is up */
  ready: Promise<void>;
  /** starts the beats from now */
  start(): void;
  stop(): void;
}

/** A thread waking `onBeat` every `stepMs` (at least every 0.05 ms), with sub-ms precision. */
function metronome(stepMs: number, onBeat: () => void, onError: (e: Error) => void): Metronome {
  const sab = new SharedArrayBuffer(4);
  const flag = new Int32Array(sab);
  const w = new Worker(METRONOME_SRC, { eval: true, workerData: { sab, stepNs: Math.max(0.05, stepMs) * 1e6 } });
  w.unref();
  let stopped = false;
  w.on('message', () => {
    if (!stopped) onBeat();
  });
  w.on('error', (e) => {
    if (!stopped) onError(e);
  });
  const ready = new Promise<void>((resolve, reject) => {
    w.once('online', resolve);
    w.once('error', reject);
  });
  return {
    ready,
    start: () => w.postMessage(process.hrtime.bigint().toString()),
    stop: () => {
      if (stopped) return;
      stopped = true;
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      void w.terminate();
    },
  };
}

export default function runTask(task: WorkerTask): Promise<WorkerResult> {
  const { spec } = task;
  // Window bounds on this thread's performance.now() clock.
  const winStart = spec.measureStart - performance.timeOrigin;
  const winEnd = winStart + spec.durationMs;
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const lag = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const res: WorkerResult = { ops: 0, bytes: 0, errors: 0, connectFailures: 0, histogram: '' };
  const sockets: net.Socket[] = [];
  let finished = false;
  // bolt-rate, dubbo-rate: connections ready to take scheduled requests, and their senders
  const rateConns: RateConn[] = [];
  const openLoop = spec.kind === 'bolt-rate' || spec.kind === 'dubbo-rate';
  let connectsLeft = task.connections;

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
      if (!connected) connectDone();
    });
    s.on('close', () => {
      if (connected && !finished && performance.now() < winEnd) noteError(new Error('connection closed by peer during the run'));
    });
    s.on('connect', () => {
      connected = true;
      if (spec.kind === 'tcp-rr') driveRr(s);
      else if (spec.kind === 'tcp-bulk') driveBulk(s);
      else if (spec.kind === 'bolt') driveRpc(s, BOLT);
      else if (spec.kind === 'bolt-rate') rateConns.push(rateConn(s, BOLT));
      else if (spec.kind === 'dubbo') driveRpc(s, DUBBO);
      else if (spec.kind === 'dubbo-rate') rateConns.push(rateConn(s, DUBBO));
      else driveHttp1(s);
      connectDone();
    });
  };

  const connectDone = (): void => {
    if (--connectsLeft === 0 && openLoop) startSchedule();
  };

  // spec.trace: (send time, latency) of each request of the window, written at the end.
  let traced = spec.trace !== undefined ? new Float64Array(1 << 16) : undefined;
  let tracedN = 0;
  const monoOrigin = Number(process.hrtime.bigint()) / 1e6 - performance.now(); // performance.now() 0 on CLOCK_MONOTONIC
  const record = (start: number, now: number): void => {
    if (now >= winStart && now < winEnd) {
      res.ops++;
      hist.recordValue(Math.max(1, Math.round((now - start) * 1000)));
      if (traced !== undefined) {
        if (tracedN + 2 > traced.length) {
          const more = new Float64Array(traced.length * 2);
          more.set(traced);
          traced = more;
        }
        traced[tracedN++] = monoOrigin + start;
        traced[tracedN++] = now - start;
      }
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

  /** Checks a response frame; returns its id, or undefined (error noted) when unusable. */
  function boltResponseId(buf: Buffer, off: number): number | undefined {
    if (buf[off + 1] !== BOLT_TYPE_RESPONSE) {
      noteError(new Error(`bolt: unexpected frame type ${buf[off + 1]} from the server`));
      return undefined;
    }
    const cmd = buf.readUInt16BE(off + 2);
    if (cmd !== BOLT_CMD_RESPONSE) return undefined; // heartbeat acks and the like
    const status = buf.readUInt16BE(off + 10);
    if (status !== 0) {
      noteError(new Error(`bolt: response status 0x${status.toString(16).padStart(2, '0')}`));
      // still returned: the request is answered and its slot can be reused
    }
    return buf.readUInt32BE(off + BOLT_ID_OFFSET);
  }

  const nextIdAfter = (id: number): number => (id >= 0xffffffff ? 1 : id + 1);
  /** requests outstanding for over 1 s when the window ends: counted as errors */
  const stale: (() => number)[] = [];
  const stoppers: (() => void)[] = [];

  /**
   * Feeds a connection's bytes to a protocol's frame reader: each complete frame's id (from
   * `responseId`, which notes protocol errors) goes to onResponse; a malformed stream is an error.
   */
  function attachReader(
    s: net.Socket,
    name: string,
    make: (onFrame: (buf: Buffer, off: number, len: number) => void) => FrameReader,
    responseId: (buf: Buffer, off: number) => number | undefined,
    onResponse: (id: number, len: number, ok: boolean) => void,
  ): void {
    const reader = make((buf, off, len) => {
      const before = res.errors;
      const id = responseId(buf, off);
      if (id !== undefined) onResponse(id, len, res.errors === before);
    });
    s.on('data', (d: Buffer) => {
      s.cork();
      const ok = reader.push(d);
      s.uncork();
      if (!ok) {
        noteError(new Error(`${name}: malformed frame from the server`));
        s.destroy();
      }
    });
  }

  const BOLT: RpcProto = {
    name: 'bolt',
    template: () => boltRequestTemplate({ contentLength: spec.messageSize || BOLT_BODY }),
    idOffset: BOLT_ID_OFFSET,
    reader: (s, onResponse) => attachReader(s, 'bolt', (f) => new BoltFrameReader(f), boltResponseId, onResponse),
  };

  /** Checks a Dubbo frame from the server; returns the id it answers, or undefined (heartbeat acks; errors noted). */
  function dubboResponseId(buf: Buffer, off: number): number | undefined {
    const flag = buf[off + OFF_FLAG];
    if (flag & FLAG_REQUEST) {
      noteError(new Error(`dubbo: request frame (flag 0x${flag.toString(16)}) from the server`));
      return undefined;
    }
    if (flag & FLAG_EVENT) return undefined; // heartbeat answers
    if (buf.readUInt32BE(off + OFF_ID) !== 0) {
      noteError(new Error('dubbo: response id above 2^32 (never sent)'));
      return undefined;
    }
    const status = buf[off + OFF_STATUS];
    if (status !== STATUS_OK) noteError(new Error(`dubbo: response status ${status}`));
    return buf.readUInt32BE(off + DUBBO_ID_LO_OFFSET);
  }

  const DUBBO: RpcProto = {
    name: 'dubbo',
    template: () => dubboRequestTemplate({ argBytes: spec.messageSize || DUBBO_BODY }),
    idOffset: DUBBO_ID_LO_OFFSET,
    reader: (s, onResponse) => attachReader(s, 'dubbo', (f) => new DubboFrameReader(f), dubboResponseId, onResponse),
  };

  /** Closed loop: `pipeline` requests in flight; each answer sends the next request on its slot. */
  function driveRpc(s: net.Socket, p: RpcProto): void {
    const k = Math.max(1, Math.floor(spec.pipeline ?? 1));
    const tpl = p.template();
    // One buffer per slot: a slot is rewritten only after its answer arrived, so its
    // previous write has left this process.
    const slots = Array.from({ length: k }, () => Buffer.from(tpl));
    const sentAt = new Float64Array(k);
    const slotOf = new Map<number, number>();
    let nextId = 1;
    const send = (slot: number): void => {
      const id = nextId;
      nextId = nextIdAfter(nextId);
      slots[slot].writeUInt32BE(id, p.idOffset);
      slotOf.set(id, slot);
      sentAt[slot] = performance.now();
      s.write(slots[slot]);
    };
    p.reader(s, (id, len, ok) => {
      const slot = slotOf.get(id);
      if (slot === undefined) {
        noteError(new Error(`${p.name}: response with unknown id ${id}`));
        return;
      }
      slotOf.delete(id);
      const now = performance.now();
      if (ok) {
        record(sentAt[slot], now);
        if (now >= winStart && now < winEnd) res.bytes += len;
      }
      if (now < winEnd && !finished) send(slot);
    });
    stale.push(() => {
      let n = 0;
      for (const slot of slotOf.values()) if (sentAt[slot] < winEnd - 1000) n++;
      return n;
    });
    s.cork();
    for (let i = 0; i < k; i++) send(i);
    s.uncork();
  }

  /** Open loop: requests leave at scheduled times whatever is outstanding. */
  function rateConn(s: net.Socket, p: RpcProto): RateConn {
    const tpl = p.template();
    const free: Buffer[] = [];
    const inflight = new Map<number, { buf: Buffer; sched: number }>();
    let nextId = 1;
    p.reader(s, (id, len, ok) => {
      const r = inflight.get(id);
      if (!r) {
        noteError(new Error(`${p.name}: response with unknown id ${id}`));
        return;
      }
      inflight.delete(id);
      free.push(r.buf);
      const now = performance.now();
      if (ok) {
        record(r.sched, now);
        if (now >= winStart && now < winEnd) res.bytes += len;
      }
    });
    stale.push(() => {
      let n = 0;
      for (const r of inflight.values()) if (r.sched < winEnd - 1000) n++;
      return n;
    });
    return {
      socket: s,
      send(sched: number): void {
        const buf = free.pop() ?? Buffer.from(tpl);
        const id = nextId;
        nextId = nextIdAfter(nextId);
        buf.writeUInt32BE(id, p.idOffset);
        inflight.set(id, { buf, sched });
        s.write(buf);
      },
    };
  }

  /**
   * Paces this thread's share of `rate` over its connections, round robin. Request i
   * is due at t0 + i/rate. Node's timers have 1 ms granularity, which alone would add
   * ~1 ms to every latency at 2,000/s; so a small metronome thread sleeps until each
   * due time (Atomics.wait, sub-ms) and wakes this thread, which sends everything due.
   * The latency of each request counts from its due time (no coordinated omission), so
   * lateness of the generator itself is in the numbers; it is also recorded apart
   * (lagHistogram) for the report.
   */
  function startSchedule(): void {
    const rate = ((spec.rate ?? 2000) * task.connections) / Math.max(1, spec.connections);
    if (rate <= 0 || rateConns.length === 0) return;
    const perMs = rate / 1000;
    let t0 = 0;
    let sent = 0;
    let rr = 0;
    const tick = (): void => {
      if (finished) return;
      const now = performance.now();
      // requests 0..due-1 are due: request i at t0 + i/perMs <= now
      const due = Math.floor((Math.min(now, winEnd) - t0) * perMs) + 1;
      for (; sent < due; sent++) {
        const sched = t0 + sent / perMs;
        let c: RateConn | undefined;
        for (let tries = 0; tries < rateConns.length && !c; tries++) {
          const cand = rateConns[rr];
          rr = (rr + 1) % rateConns.length;
          if (!cand.socket.destroyed) c = cand;
        }
        if (!c) return; // every connection is gone; errors were noted
        c.send(sched);
        if (sched >= winStart && sched < winEnd) lag.recordValue(Math.max(1, Math.round((now - sched) * 1000)));
      }
    };
    const timerLoop = (): void => {
      tick();
      if (!finished && performance.now() < winEnd) setTimeout(timerLoop, 1);
    };
    let m: Metronome | undefined;
    try {
      m = metronome(1 / perMs, tick, (e) => {
        noteError(new Error(`${spec.kind}: metronome thread failed (${e.message}); pacing with 1 ms timers`));
        timerLoop();
      });
    } catch {
      m = undefined;
    }
    if (!m) {
      t0 = performance.now();
      timerLoop();
      return;
    }
    stoppers.push(m.stop);
    m.ready.then(() => {
      t0 = performance.now();
      m.start();
      tick();
    }, () => undefined);
  }

  /**
   * TLS client options: no resumption (no session given, no tickets asked for), any
   * certificate (the handshake still checks the server's signature). One SecureContext
   * for all connections: building one per connection (CA store and all) would cost the
   * client more than the handshake itself.
   */
  let clientContext: tls.SecureContext | undefined;
  const tlsOptions = (): tls.ConnectionOptions => {
    clientContext ??= tls.createSecureContext({ minVersion: 'TLSv1.2', secureOptions: cryptoConstants.SSL_OP_NO_TICKET });
    return { host: spec.host, port: spec.port, rejectUnauthorized: false, secureContext: clientContext };
  };
  /** tls-resume: tickets accepted; the slot's last session is offered (a server without tickets answers with full handshakes). */
  let resumeContext: tls.SecureContext | undefined;
  const resumeOptions = (session: Buffer | undefined): tls.ConnectionOptions => {
    resumeContext ??= tls.createSecureContext({ minVersion: 'TLSv1.2' });
    return { host: spec.host, port: spec.port, rejectUnauthorized: false, secureContext: resumeContext, ...(session !== undefined ? { session } : {}) };
  };
  /** tls-resume: handshakes in the window that resumed / that did not. */
  const resumed = { yes: 0, no: 0 };

  /** "TLSv1.3 TLS_AES_256_GCM_SHA384, X25519, cert EC P-256" of a connected TLS socket. */
  const describeTls = (s: tls.TLSSocket): string => {
    const eph = s.getEphemeralKeyInfo();
    const cert = s.getPeerCertificate() as tls.PeerCertificate & { nistCurve?: string; asn1Curve?: string; bits?: number };
    const key = cert.nistCurve || cert.asn1Curve ? `EC ${cert.nistCurve ?? cert.asn1Curve}` : cert.bits ? `RSA-${cert.bits}` : '?';
    const kx = eph && 'name' in eph && eph.name ? `, ${eph.name}` : '';
    return `${s.getProtocol() ?? '?'} ${s.getCipher()?.standardName ?? s.getCipher()?.name ?? '?'}${kx}, cert ${key}`;
  };

  /** Sockets of short-lived connections still open (tls-handshake), destroyed at the end. */
  const live = new Set<net.Socket>();

  /**
   * One slot of the tls-handshake loop: connect, full handshake, echo one message, close,
   * again. The latency of a handshake counts from the connect call to the whole echo.
   * A resumed session would not be a full handshake: it counts as an error.
   */
  function handshakeLoop(resume: boolean): void {
    const msg = Buffer.alloc(spec.messageSize || 64, 0x74);
    let session: Buffer | undefined;
    const once = (): void => {
      if (finished || performance.now() >= winEnd) return;
      const t0 = performance.now();
      const s = tls.connect(resume ? resumeOptions(session) : tlsOptions());
      if (resume) s.on('session', (b: Buffer) => (session = b));
      live.add(s);
      let got = 0;
      let done = false;
      const finish = (err?: Error): void => {
        if (done) return;
        done = true;
        live.delete(s);
        s.destroy();
        if (err) {
          noteError(err);
          setTimeout(once, 5); // no tight loop against a peer that refuses
        } else once();
      };
      s.setNoDelay(true);
      s.on('secureConnect', () => {
        if (resume) {
          const now = performance.now();
          if (now >= winStart && now < winEnd) resumed[s.isSessionReused() ? 'yes' : 'no']++;
        } else if (s.isSessionReused()) return finish(new Error('tls: session reused (not a full handshake)'));
        res.note ??= describeTls(s);
        s.write(msg);
      });
      s.on('data', (d: Buffer) => {
        got += d.length;
        if (got < msg.length) return;
        const now = performance.now();
        record(t0, now);
        if (now >= winStart && now < winEnd) res.bytes += msg.length;
        finish();
      });
      s.on('error', (e) => finish(e));
      s.on('close', () => finish(finished ? undefined : new Error('tls: connection closed before the echo')));
    };
    once();
  }

  /** tls-bulk: one TLS connection reading what the source backend streams through the terminator. */
  function tlsBulk(): void {
    const s = tls.connect(tlsOptions());
    sockets.push(s);
    let connected = false;
    s.on('secureConnect', () => {
      connected = true;
      res.note ??= describeTls(s);
      if (s.isSessionReused()) noteError(new Error('tls: session reused'));
    });
    s.on('data', (d: Buffer) => {
      const now = performance.now();
      if (now >= winStart && now < winEnd) res.bytes += d.length;
    });
    s.on('error', (e) => {
      if (!connected && !finished) res.connectFailures++;
      noteError(e);
    });
    s.on('close', () => {
      if (connected && !finished && performance.now() < winEnd) noteError(new Error('tls: connection closed by peer during the run'));
    });
  }

  const closers: (() => void)[] = [];
  const streamsPer = Math.max(1, Math.floor(spec.streams ?? 100));

  /** h2: one h2c session (prior knowledge) keeping `streams` GETs in flight; each answer starts the next. */
  function h2Session(): void {
    const sess = http2.connect(`http://${spec.host}:${spec.port}`);
    closers.push(() => sess.destroy());
    let up = false;
    sess.on('error', (e) => {
      if (!up && !finished) res.connectFailures++;
      noteError(e);
    });
    sess.on('close', () => {
      if (up && !finished && performance.now() < winEnd) noteError(new Error('h2: session closed by peer during the run'));
    });
    sess.on('goaway', (code) => {
      if (!finished && performance.now() < winEnd) noteError(new Error(`h2: GOAWAY (code ${code}) during the run`));
    });
    const issue = (): void => {
      if (finished || sess.destroyed || sess.closed || performance.now() >= winEnd) return;
      const t0 = performance.now();
      const st = sess.request({ ':method': 'GET', ':path': '/', 'user-agent': 'outrigger-bench' }, { endStream: true });
      let status = 0;
      let bytes = 0;
      st.on('response', (h) => (status = Number(h[':status'])));
      st.on('data', (d: Buffer) => (bytes += d.length));
      st.on('error', () => undefined); // reported through 'close' below
      st.on('close', () => {
        if (finished) return;
        const now = performance.now();
        if (status !== 200 || st.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
          noteError(new Error(`h2: stream ended with status ${status}, RST code ${st.rstCode}`));
          setTimeout(issue, 5);
          return;
        }
        record(t0, now);
        if (now >= winStart && now < winEnd) res.bytes += bytes;
        issue();
      });
    };
    sess.on('connect', () => {
      up = true;
      for (let i = 0; i < streamsPer; i++) issue();
    });
  }

  /** grpc: one grpc-js channel (its own connection) keeping `streams` unary calls in flight. */
  async function grpcChannel(): Promise<void> {
    const grpc = await import('@grpc/grpc-js');
    const { echoClientCtor, GRPC_PAYLOAD_BYTES } = await import('../grpc-echo');
    const Ctor = echoClientCtor();
    // A local subchannel pool: each client opens its own connection (grpc-js shares them otherwise).
    const client = new Ctor(`${spec.host}:${spec.port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    closers.push(() => client.close());
    const req = { payload: Buffer.alloc(spec.messageSize || GRPC_PAYLOAD_BYTES, 0x71) };
    type Call = (r: typeof req, cb: (e: Error | null, reply?: { payload?: Buffer }) => void) => void;
    const call = (client as unknown as { Call: Call }).Call.bind(client);
    const issue = (): void => {
      if (finished || performance.now() >= winEnd) return;
      const t0 = performance.now();
      call(req, (err, reply) => {
        if (finished) return;
        const now = performance.now();
        if (err || !reply?.payload || reply.payload.length !== GRPC_PAYLOAD_BYTES) {
          noteError(err ?? new Error(`grpc: reply of ${reply?.payload?.length ?? 0} bytes, expected ${GRPC_PAYLOAD_BYTES}`));
          setTimeout(issue, 5);
          return;
        }
        record(t0, now);
        if (now >= winStart && now < winEnd) res.bytes += reply.payload.length;
        issue();
      });
    };
    await new Promise<void>((resolve) => {
      client.waitForReady(Date.now() + 5000, (err) => {
        if (err) {
          res.connectFailures++;
          noteError(new Error(`grpc: channel not ready: ${err.message}`));
        } else for (let i = 0; i < streamsPer; i++) issue();
        resolve();
      });
    });
  }

  for (let i = 0; i < task.connections; i++) {
    if (spec.kind === 'tls-handshake' || spec.kind === 'tls-resume') handshakeLoop(spec.kind === 'tls-resume');
    else if (spec.kind === 'tls-bulk') tlsBulk();
    else if (spec.kind === 'h2') h2Session();
    else if (spec.kind === 'grpc') grpcChannel().catch((e: Error) => noteError(e));
    else openOne();
  }

  return new Promise((resolve) => {
    const wait = Math.max(0, winEnd - performance.now());
    setTimeout(() => {
      finished = true;
      for (const stop of stoppers) stop();
      for (const close of closers) close();
      for (const s of live) s.destroy();
      const unanswered = stale.reduce((a, f) => a + f(), 0);
      if (unanswered > 0) {
        res.errors += unanswered;
        res.firstError ??= `${spec.kind}: ${unanswered} request(s) unanswered for over 1 s at the end of the window`;
      }
      for (const s of sockets) s.destroy();
      if (spec.kind === 'tls-resume' && res.note !== undefined) {
        const n = resumed.yes + resumed.no;
        res.note += `, ${n > 0 ? Math.round((100 * resumed.yes) / n) : 0}% resumed`;
      }
      res.histogram = hist.totalCount > 0 ? hdr.encodeIntoCompressedBase64(hist) : '';
      if (lag.totalCount > 0) res.lagHistogram = hdr.encodeIntoCompressedBase64(lag);
      hist.destroy();
      lag.destroy();
      if (traced !== undefined) fs.writeFileSync(`${spec.trace}.${threadId}`, traced.subarray(0, tracedN));
      resolve(res);
    }, wait);
  });
}
