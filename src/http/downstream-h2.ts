/**
 * HTTP/2 downstream (h2c, prior knowledge): a node:http2 server that never listens; the
 * listener hands it sockets. Limits: SETTINGS_MAX_CONCURRENT_STREAMS (extra streams are
 * refused with RST_STREAM REFUSED_STREAM), the initial flow-control window, the header list
 * size and pair count (over it: the stream is reset), invalid frames and rejected streams per
 * session (over it: GOAWAY). An idle session is closed with GOAWAY after idle_timeout.
 */
import * as http2 from 'node:http2';
import { Exchange, type HttpEnv } from './exchange';
import { HL } from './stats';

export function createH2Server(env: HttpEnv): http2.Http2Server {
  const cfg = env.cfg;
  const c = env.ctx.counters;
  const base = env.ctx.base;
  const server = http2.createServer({
    settings: {
      maxConcurrentStreams: cfg.h2MaxConcurrentStreams,
      initialWindowSize: cfg.h2InitialWindowSize,
      maxHeaderListSize: cfg.h2MaxHeaderListSize,
      enablePush: false,
    },
    maxHeaderListPairs: cfg.maxHeaders + 4, // + the pseudo-headers
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    maxSessionMemory: 32,
  });
  server.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => new Exchange(env, req, res, true).start());
  server.on('session', (session: http2.ServerHttp2Session) => {
    session.on('error', () => {});
    if (cfg.idleTimeoutMs > 0) {
      session.setTimeout(cfg.idleTimeoutMs, () => {
        c[base + HL.H2_GOAWAY_SENT]++;
        session.close();
      });
    }
    session.on('frameError', () => c[base + HL.H2_RST_SENT]++);
    const s = session as http2.ServerHttp2Session & { on(e: 'stream', l: (st: http2.ServerHttp2Stream) => void): unknown };
    s.on('stream', (st: http2.ServerHttp2Stream) => {
      st.on('error', () => {});
      st.once('close', () => {
        const code = st.rstCode;
        if (code === http2.constants.NGHTTP2_REFUSED_STREAM) c[base + HL.H2_REFUSED_STREAM]++;
      });
    });
  });
  server.on('sessionError', () => c[base + HL.H2_GOAWAY_SENT]++);
  return server;
}
