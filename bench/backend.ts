// The benchmark backend: one separate Node process, identical for every peer.
// Listeners (all on 127.0.0.1, ports chosen by the kernel):
//   echo   - writes back every byte it receives (tcp-rr)
//   source - streams bytes to the client as fast as it reads them (tcp-bulk)
//   sink   - reads and discards
//   http   - HTTP/1.1 keep-alive server answering every request with a 1 KiB body
//   bolt   - SOFA Bolt v1 responder: 1 KiB SofaResponse per request (bolt-backend.ts)
//   dubbo  - Dubbo 2.x responder: status 20 and a 1 KiB hessian2 string per request (dubbo-backend.ts)
//   h2     - HTTP/2 cleartext (h2c, prior knowledge) server answering every stream with 1 KiB
//   grpc   - gRPC (grpc-js) Echo service: 1 KiB reply per unary call (grpc-echo.ts)
// Prints one JSON line {"echo":p,"source":p,"sink":p,"http":p,"bolt":p,"dubbo":p,"h2":p,"grpc":p} when all listen.
import * as net from 'node:net';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { boltServer } from './bolt-backend';
import { dubboServer } from './dubbo-backend';
import { startGrpcServer } from './grpc-echo';

const CHUNK = Buffer.alloc(64 * 1024, 0x61);
const HTTP_BODY = Buffer.alloc(1024, 0x62);

function listen(srv: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => resolve((srv.address() as net.AddressInfo).port));
  });
}

function quiet(s: net.Socket): void {
  s.setNoDelay(true);
  s.on('error', () => s.destroy());
}

/** h2c (prior knowledge) server: the stream API (no compat layer), 200 + 1 KiB body per stream. */
export function h2cServer(): http2.Http2Server {
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  h2.on('stream', (stream) => {
    stream.on('error', () => stream.destroy());
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': HTTP_BODY.length });
    stream.end(HTTP_BODY);
  });
  h2.on('connection', (s: net.Socket) => s.setNoDelay(true));
  h2.on('sessionError', () => undefined);
  return h2;
}

export async function startBackend(): Promise<Record<string, number>> {
  const echo = net.createServer((s) => {
    quiet(s);
    s.pipe(s);
  });
  const source = net.createServer((s) => {
    quiet(s);
    s.resume();
    const pump = (): void => {
      while (!s.destroyed && s.write(CHUNK));
    };
    s.on('drain', pump);
    pump();
  });
  const sink = net.createServer((s) => {
    quiet(s);
    s.resume();
  });
  const web = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': HTTP_BODY.length });
      res.end(HTTP_BODY);
    });
  });
  web.on('connection', (s: net.Socket) => s.setNoDelay(true));
  web.on('clientError', (_e, s) => s.destroy());
  const h2 = h2cServer();
  return {
    echo: await listen(echo),
    source: await listen(source),
    sink: await listen(sink),
    http: await listen(web),
    bolt: await listen(boltServer()),
    dubbo: await listen(dubboServer()),
    h2: await listen(h2 as unknown as net.Server),
    grpc: (await startGrpcServer()).port,
  };
}

if (require.main === module) {
  startBackend().then(
    (ports) => process.stdout.write(JSON.stringify(ports) + '\n'),
    (e) => {
      process.stderr.write(`backend: ${e}\n`);
      process.exit(1);
    },
  );
  process.on('SIGTERM', () => process.exit(0));
}
