/**
 * gRPC through the HTTP proxy (h2c both sides) with @grpc/grpc-js client and server: unary,
 * server streaming, bidi streaming, status and trailing metadata preserved, deadlines honored.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startSidecar } from '../helpers/sidecar';
import { httpConfig } from '../helpers/http';

const PROTO = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'echo.proto');

interface EchoRequest {
  message: string;
  count?: number;
  delay_ms?: number;
  fail_code?: number;
}

function load(): grpc.GrpcObject {
  const def = protoLoader.loadSync(PROTO, { keepCase: true, defaults: true });
  return grpc.loadPackageDefinition(def);
}

async function startServer(): Promise<{ server: grpc.Server; port: number }> {
  const pkg = load() as any;
  const server = new grpc.Server();
  server.addService(pkg.outrigger.test.Echo.service, {
    Unary(call: grpc.ServerUnaryCall<EchoRequest, unknown>, cb: grpc.sendUnaryData<unknown>) {
      const r = call.request;
      setTimeout(() => {
        if (r.fail_code) {
          const md = new grpc.Metadata();
          md.set('x-why', 'asked to fail');
          cb({ code: r.fail_code, details: `failing with ${r.fail_code}`, metadata: md });
          return;
        }
        const trailer = new grpc.Metadata();
        trailer.set('x-trailer', 'kept');
        cb(null, { message: `echo ${r.message}`, index: 0 }, trailer);
      }, r.delay_ms ?? 0);
    },
    ServerStream(call: grpc.ServerWritableStream<EchoRequest, unknown>) {
      const n = call.request.count ?? 1;
      for (let i = 0; i < n; i++) call.write({ message: call.request.message, index: i });
      call.end();
    },
    Bidi(call: grpc.ServerDuplexStream<EchoRequest, unknown>) {
      let i = 0;
      call.on('data', (r: EchoRequest) => call.write({ message: `re: ${r.message}`, index: i++ }));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { server, port };
}

test('gRPC unary, server streaming and bidi through Outrigger; status, trailers and deadlines', { timeout: 60_000 }, async () => {
  const { server, port: gport } = await startServer();
  const router = {
    router_config_name: 'r',
    virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/outrigger.test.Echo/' }, route: { cluster_name: 'grpc' } }] }],
  };
  for (const downstream of ['Http2', 'Auto']) {
    const sc = await startSidecar(httpConfig([{ name: 'g', downstream, upstream: 'Http2', router: 'r' }], [router], { grpc: [gport] }));
    const pkg = load() as any;
    const client = new pkg.outrigger.test.Echo(`127.0.0.1:${sc.ports.get('g')}`, grpc.credentials.createInsecure());
    try {
      // unary, with trailing metadata
      const unary = await new Promise<{ reply: any; trailers: grpc.Metadata }>((resolve, reject) => {
        let trailers = new grpc.Metadata();
        const call = client.Unary({ message: 'hi' }, (e: Error | null, reply: any) => (e ? reject(e) : setImmediate(() => resolve({ reply, trailers }))));
        call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
      });
      assert.equal(unary.reply.message, 'echo hi');
      assert.deepEqual(unary.trailers.get('x-trailer'), ['kept'], 'trailing metadata preserved');
      // an error status with its message and metadata
      const err = await new Promise<grpc.ServiceError>((resolve) => client.Unary({ message: 'x', fail_code: grpc.status.NOT_FOUND }, (e: grpc.ServiceError) => resolve(e)));
      assert.equal(err.code, grpc.status.NOT_FOUND);
      assert.equal(err.details, 'failing with 5');
      assert.deepEqual(err.metadata.get('x-why'), ['asked to fail']);
      // server streaming
      const got: number[] = [];
      await new Promise<void>((resolve, reject) => {
        const s = client.ServerStream({ message: 'm', count: 50 });
        s.on('data', (r: any) => got.push(r.index));
        s.on('end', () => resolve());
        s.on('error', reject);
      });
      assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i));
      // bidi
      const replies: string[] = await new Promise((resolve, reject) => {
        const out: string[] = [];
        const call = client.Bidi();
        call.on('data', (r: any) => {
          out.push(r.message);
          if (out.length < 5) call.write({ message: `m${out.length}` });
          else call.end();
        });
        call.on('end', () => resolve(out));
        call.on('error', reject);
        call.write({ message: 'm0' });
      });
      assert.deepEqual(replies, ['re: m0', 're: m1', 're: m2', 're: m3', 're: m4']);
      // deadline: the server takes 2 s, the client allows 300 ms
      const t0 = Date.now();
      const late = await new Promise<grpc.ServiceError>((resolve) =>
        client.Unary({ message: 'slow', delay_ms: 2000 }, { deadline: Date.now() + 300 }, (e: grpc.ServiceError) => resolve(e)),
      );
      assert.equal(late.code, grpc.status.DEADLINE_EXCEEDED);
      assert.ok(Date.now() - t0 < 1500, 'the deadline ended the call');
      // many unary calls multiplexed
      const many = await Promise.all(
        Array.from({ length: 200 }, (_, i) => new Promise<string>((resolve, reject) => client.Unary({ message: String(i) }, (e: Error | null, r: any) => (e ? reject(e) : resolve(r.message))))),
      );
      assert.equal(many[199], 'echo 199');
      const st = await sc.stats();
      assert.ok(st.listeners.g.downstream_rq_http2 >= 205);
    } finally {
      client.close();
      assert.equal(await sc.terminate(), 0);
    }
  }
  server.forceShutdown();
});

test('gRPC to a cluster with no live host: UNAVAILABLE from the proxy', { timeout: 30_000 }, async () => {
  const router = { router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'gone' } }] }] };
  const sc = await startSidecar(httpConfig([{ name: 'g', downstream: 'Http2', upstream: 'Http2', router: 'r' }], [router], { gone: [1] }));
  const pkg = load() as any;
  const client = new pkg.outrigger.test.Echo(`127.0.0.1:${sc.ports.get('g')}`, grpc.credentials.createInsecure());
  try {
    const e = await new Promise<grpc.ServiceError>((resolve) => client.Unary({ message: 'x' }, (err: grpc.ServiceError) => resolve(err)));
    assert.equal(e.code, grpc.status.UNAVAILABLE);
  } finally {
    client.close();
    assert.equal(await sc.terminate(), 0);
  }
});
