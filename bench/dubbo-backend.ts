// The Dubbo listener of the benchmark backend: a fast Dubbo 2.x responder, not a real
// service. Every two-way request is answered with one response (status 20 OK, hessian2
// RESPONSE_VALUE and a 1 KiB string) carrying the request's 8-byte id; heartbeat events
// get an event response; one-way requests and responses get nothing. Frames split over
// reads and many frames per read are both handled; all answers to one read go out in
// one write.
import * as net from 'node:net';
import { DUBBO_BODY, DubboFrameReader, FLAG_EVENT, FLAG_REQUEST, FLAG_TWOWAY, OFF_FLAG, OFF_ID, dubboHeartbeatAck, dubboResponseTemplate } from './load/dubbo';

export interface DubboServerStats {
  requests: number;
  heartbeats: number;
  protocolErrors: number;
}

/** A net.Server (not yet listening) answering Dubbo requests. */
export function dubboServer(chars = DUBBO_BODY, stats?: DubboServerStats): net.Server {
  const resp = dubboResponseTemplate(chars);
  return net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => s.destroy());
    // Answers of one read: collected first (request ids are copied straight into the
    // output), then one buffer written.
    const out: Buffer[] = [];
    let size = 0;
    const reader = new DubboFrameReader((buf, off) => {
      const flag = buf[off + OFF_FLAG];
      if ((flag & (FLAG_REQUEST | FLAG_TWOWAY)) !== (FLAG_REQUEST | FLAG_TWOWAY)) return;
      if (flag & FLAG_EVENT) {
        const ack = dubboHeartbeatAck(buf, off);
        out.push(ack);
        size += ack.length;
        if (stats) stats.heartbeats++;
        return;
      }
      const r = Buffer.allocUnsafe(resp.length);
      resp.copy(r);
      buf.copy(r, OFF_ID, off + OFF_ID, off + OFF_ID + 8);
      out.push(r);
      size += r.length;
      if (stats) stats.requests++;
    });
    s.on('data', (d: Buffer) => {
      if (!reader.push(d)) {
        if (stats) stats.protocolErrors++;
        s.destroy();
        return;
      }
      if (out.length === 0) return;
      s.write(out.length === 1 ? out[0] : Buffer.concat(out, size));
      out.length = 0;
      size = 0;
    });
  });
}
