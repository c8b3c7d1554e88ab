// The Bolt listener of the benchmark backend: a fast SOFARPC responder, not a real
// Hessian service. Every request frame (cmdcode 1) is answered with one SofaResponse
// frame of 1 KiB opaque content echoing the request id (status 0); heartbeats
// (cmdcode 0) get an ack; oneway requests get nothing. Frames split over reads and
// many frames per read are both handled; all answers to one read go out in one write.
import * as net from 'node:net';
import {
  BOLT_BODY,
  BOLT_CMD_HEARTBEAT,
  BOLT_CMD_REQUEST,
  BOLT_ID_OFFSET,
  BOLT_RESPONSE_HEADER,
  BOLT_TYPE_REQUEST,
  BoltFrameReader,
  boltResponseTemplate,
} from './load/bolt';

export interface BoltServerStats {
  requests: number;
  heartbeats: number;
  protocolErrors: number;
}

/** A net.Server (not yet listening) answering Bolt v1 requests. */
export function boltServer(contentLength = BOLT_BODY, stats?: BoltServerStats): net.Server {
  const resp = boltResponseTemplate(contentLength);
  const ack = Buffer.alloc(BOLT_RESPONSE_HEADER);
  resp.copy(ack, 0, 0, BOLT_RESPONSE_HEADER);
  ack.writeUInt16BE(BOLT_CMD_HEARTBEAT, 2);
  ack.fill(0, 12); // no class, header or content
  return net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => s.destroy());
    // Answers of one read: ids collected first, then one buffer written.
    const ids: number[] = [];
    const kinds: number[] = [];
    const reader = new BoltFrameReader((buf, off) => {
      const cmd = buf.readUInt16BE(off + 2);
      if (buf[off + 1] !== BOLT_TYPE_REQUEST) return; // oneway: no answer; responses: ignored
      if (cmd !== BOLT_CMD_REQUEST && cmd !== BOLT_CMD_HEARTBEAT) return;
      ids.push(buf.readUInt32BE(off + BOLT_ID_OFFSET));
      kinds.push(cmd);
    });
    s.on('data', (d: Buffer) => {
      if (!reader.push(d)) {
        if (stats) stats.protocolErrors++;
        s.destroy();
        return;
      }
      if (ids.length === 0) return;
      let size = 0;
      for (const k of kinds) size += k === BOLT_CMD_REQUEST ? resp.length : ack.length;
      const out = Buffer.allocUnsafe(size);
      let p = 0;
      for (let i = 0; i < ids.length; i++) {
        const t = kinds[i] === BOLT_CMD_REQUEST ? resp : ack;
        t.copy(out, p);
        out.writeUInt32BE(ids[i], p + BOLT_ID_OFFSET);
        p += t.length;
        if (stats) {
          if (kinds[i] === BOLT_CMD_REQUEST) stats.requests++;
          else stats.heartbeats++;
        }
      }
      ids.length = 0;
      kinds.length = 0;
      s.write(out);
    });
  });
}
