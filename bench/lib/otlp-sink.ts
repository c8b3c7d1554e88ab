// A stand-in OTLP/HTTP collector for the bench scripts: accepts every export (200, body
// discarded), so the sidecar's export work is measured without a real collector's.
import * as http from 'node:http';
import type * as net from 'node:net';

/** Listens on 127.0.0.1 (port 0); resolves with the server and its /v1/traces URL. */
export async function startOtlpSink(): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/v1/traces` };
}
