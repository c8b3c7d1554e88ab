/**
 * One active health check of one host: TCP connect, HTTP/1.1 request with an expected status,
 * a gRPC Health/Check call (./grpc.ts), or an RPC heartbeat (Bolt CMD_CODE_HEARTBEAT, Dubbo event) answered by the host. Sockets come
 * from the cluster (cluster.openSocket: src/upstream/connect.ts, with the cluster's TLS), one per
 * check, closed when the check ends. Never throws: every outcome is a CheckResult.
 */
import type * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { HealthCheckConfig } from '../../config/types';
import { getCodec, NEED_MORE } from '../../protocol/types';
import { HTTP1_ALPN, type Cluster } from '../cluster';
import { readyEvent } from '../connect';
import { Host } from '../lb';
import { grpcCheck } from './grpc';

/** 0 = healthy; else an index into HC_FAILURES (./shared.ts). */
export const enum CheckResult {
  Ok = 0,
  ConnectFailed = 1,
  Timeout = 2,
  BadStatus = 3,
  BadResponse = 4,
  Closed = 5,
}

/** Largest check answer read (an HTTP status line, an RPC heartbeat ack). */
const MAX_ANSWER = 64 * 1024;

let heartbeatId = 1;

/** Runs one check; `done` is called exactly once. */
export function runCheck(cluster: Cluster, host: Host, hc: HealthCheckConfig, done: (r: CheckResult) => void): void {
  let finished = false;
  let sock: net.Socket | null = null;
  let session: http2.ClientHttp2Session | null = null;
  const timeoutMs = hc.kind === 'http' && hc.http !== undefined ? Math.min(hc.timeoutMs, hc.http.timeoutMs) : hc.timeoutMs;
  const finish = (r: CheckResult): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    if (sock !== null) sock.destroy();
    if (session !== null) session.destroy();
    done(r);
  };
  const timer = setTimeout(() => finish(CheckResult.Timeout), timeoutMs);
  timer.unref();
  if (hc.kind === 'grpc') {
    try {
      session = grpcCheck(cluster, host, hc, finish);
      if (finished) session.destroy();
    } catch {
      finish(CheckResult.ConnectFailed);
    }
    return;
  }
  let target = host;
  if (hc.kind === 'http' && hc.http !== undefined && hc.http.port > 0 && hc.http.port !== host.port) {
    target = new Host({ address: { host: host.host, port: hc.http.port }, weight: 1 });
  }
  try {
    sock = cluster.openSocket(target, timeoutMs, hc.kind === 'http' ? HTTP1_ALPN : undefined);
  } catch {
    finish(CheckResult.ConnectFailed);
    return;
  }
  const s = sock;
  let up = false;
  s.once('error', (e: NodeJS.ErrnoException) => finish(!up && e.code === 'ETIMEDOUT' ? CheckResult.Timeout : up ? CheckResult.Closed : CheckResult.ConnectFailed));
  s.once('close', () => finish(up ? CheckResult.Closed : CheckResult.ConnectFailed));
  s.once(readyEvent(s), () => {
    up = true;
    if (hc.kind === 'tcp') {
      finish(CheckResult.Ok);
      return;
    }
    if (hc.kind === 'http') httpCheck(s, host, hc, finish);
    else rpcCheck(s, hc, finish);
  });
}

function httpCheck(s: net.Socket, host: Host, hc: HealthCheckConfig, finish: (r: CheckResult) => void): void {
  const h = hc.http;
  if (h === undefined) {
    finish(CheckResult.Ok);
    return;
  }
  const authority = h.domain ?? host.address;
  s.write(`${h.method} ${h.path} HTTP/1.1\r\nHost: ${authority}\r\nUser-Agent: outrigger-health-check\r\nConnection: close\r\n\r\n`);
  let head = '';
  s.setEncoding('latin1');
  s.on('data', (chunk: string) => {
    head += chunk;
    const eol = head.indexOf('\r\n');
    if (eol < 0) {
      if (head.length > MAX_ANSWER) finish(CheckResult.BadResponse);
      return;
    }
    const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(head.slice(0, eol));
    if (m === null) {
      finish(CheckResult.BadResponse);
      return;
    }
    const status = Number(m[1]);
    finish(h.codes.some((c) => status >= c.start && status <= c.end) ? CheckResult.Ok : CheckResult.BadStatus);
  });
}

function rpcCheck(s: net.Socket, hc: HealthCheckConfig, finish: (r: CheckResult) => void): void {
  const codec = getCodec(hc.codec ?? '');
  if (codec === undefined) {
    finish(CheckResult.BadResponse);
    return;
  }
  const id = heartbeatId;
  heartbeatId = heartbeatId >= 0x7fffffff ? 1 : heartbeatId + 1;
  s.write(codec.encodeHeartbeat(id));
  let buf: Buffer = Buffer.alloc(0);
  const frame = codec.newFrame();
  s.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    for (;;) {
      const len = codec.frameLength(buf, 0, buf.length, MAX_ANSWER);
      if (len === NEED_MORE || (len > 0 && buf.length < len)) return;
      if (len < 0 || codec.decode(buf, 0, len, MAX_ANSWER, frame) < 0) {
        finish(CheckResult.BadResponse);
        return;
      }
      if (!frame.isRequest && frame.isHeartbeat) {
        finish(frame.isSuccess ? CheckResult.Ok : CheckResult.BadStatus);
        return;
      }
      // Anything else (a heartbeat the provider sends us first): skip it.
      buf = buf.subarray(len);
      if (buf.length === 0) return;
    }
  });
}
