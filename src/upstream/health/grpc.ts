/**
 * Envoy's gRPC health check: one grpc.health.v1.Health/Check call per check on a new HTTP/2
 * session from the cluster (cluster.connectH2: the cluster's TLS, ALPN h2, counters), with
 * HealthCheckRequest{service = service_name} and :authority = `authority` (default: the cluster's
 * name, as Envoy). The host passes when the answer is HTTP 200, grpc-status 0 and
 * HealthCheckResponse.status SERVING (1); anything else fails it.
 *
 * The two messages are tiny, so they are coded here: request = field 1 (string), response =
 * field 1 (enum varint); unknown response fields are skipped.
 */
import type * as http2 from 'node:http2';
import type { HealthCheckConfig } from '../../config/types';
import type { Cluster } from '../cluster';
import type { Host } from '../lb';
import { CheckResult } from './checkers';

const PATH = '/grpc.health.v1.Health/Check';
const SERVING = 1;
/** Largest answer read (a HealthCheckResponse is a few bytes). */
const MAX_ANSWER = 64 * 1024;

/** A length-prefixed gRPC message holding HealthCheckRequest{service}. */
export function healthCheckRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const len: number[] = [];
  let n = name.length;
  do {
    len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  const body = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, ...len]), name]);
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
}

/** The status of a HealthCheckResponse message (after the 5-byte prefix); -1 when malformed. */
export function servingStatus(msg: Buffer): number {
  let i = 0;
  let status = 0; // proto3: absent = UNKNOWN
  const varint = (): number => {
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (i >= msg.length) return -1;
      const b = msg[i++];
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return v;
    }
    return -1;
  };
  while (i < msg.length) {
    const key = varint();
    if (key < 0) return -1;
    const wire = key & 7;
    const v = wire === 0 ? varint() : wire === 2 ? varint() : wire === 5 ? 4 : wire === 1 ? 8 : -1;
    if (v < 0) return -1;
    if (wire === 0) {
      if (key >>> 3 === 1) status = v;
    } else {
      i += v; // skip a length-delimited or fixed field
      if (i > msg.length) return -1;
    }
  }
  return status;
}

/** Runs one gRPC check; `finish` may be called more than once (the caller keeps the first). Returns the session to destroy. */
export function grpcCheck(cluster: Cluster, host: Host, hc: HealthCheckConfig, finish: (r: CheckResult) => void): http2.ClientHttp2Session {
  const g = hc.grpc ?? { serviceName: '', authority: '' };
  const session = cluster.connectH2(host, {});
  let up = false;
  session.on('error', () => finish(up ? CheckResult.Closed : CheckResult.ConnectFailed));
  session.on('close', () => finish(up ? CheckResult.Closed : CheckResult.ConnectFailed));
  session.once('connect', () => {
    up = true;
  });
  const req = session.request({
    ':method': 'POST', ':path': PATH, ':authority': g.authority !== '' ? g.authority : cluster.name,
    'content-type': 'application/grpc', te: 'trailers', 'user-agent': 'outrigger-health-check',
  });
  req.on('error', () => finish(up ? CheckResult.Closed : CheckResult.ConnectFailed));
  let status = 0;
  let grpcStatus: string | undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('response', (headers) => {
    up = true;
    status = Number(headers[':status']);
    const gs = headers['grpc-status']; // trailers-only answer
    if (typeof gs === 'string') grpcStatus = gs;
  });
  req.on('trailers', (trailers) => {
    const gs = trailers['grpc-status'];
    if (typeof gs === 'string') grpcStatus = gs;
  });
  req.on('data', (d: Buffer) => {
    size += d.length;
    if (size > MAX_ANSWER) {
      finish(CheckResult.BadResponse);
      return;
    }
    chunks.push(d);
  });
  req.on('end', () => {
    if (status !== 200) return finish(CheckResult.BadStatus);
    if (grpcStatus !== '0') return finish(CheckResult.BadStatus);
    const body = Buffer.concat(chunks);
    if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) return finish(CheckResult.BadResponse);
    const st = servingStatus(body.subarray(5));
    finish(st === SERVING ? CheckResult.Ok : st < 0 ? CheckResult.BadResponse : CheckResult.BadStatus);
  });
  req.end(healthCheckRequest(g.serviceName));
  return session;
}
