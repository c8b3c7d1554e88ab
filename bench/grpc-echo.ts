// The bench's gRPC Echo service (bench/proto/echo.proto): the service definition loaded
// with @grpc/proto-loader, the backend's server and a client constructor. The server
// answers every Call with a fixed 1 KiB payload, whatever it received.
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { REPO_ROOT } from './lib/paths';

export const GRPC_PROTO = path.join(REPO_ROOT, 'bench', 'proto', 'echo.proto');
export const GRPC_PAYLOAD_BYTES = 1024;
/** Full method path, as it appears in :path. */
export const GRPC_METHOD = '/outrigger.bench.Echo/Call';

export interface EchoMessage {
  payload: Buffer;
}

let loaded: grpc.GrpcObject | undefined;
function pkg(): grpc.GrpcObject {
  loaded ??= grpc.loadPackageDefinition(protoLoader.loadSync(GRPC_PROTO, { keepCase: true, defaults: false }));
  return loaded;
}

/** The Echo service constructor (client class with `.service`). */
export function echoClientCtor(): grpc.ServiceClientConstructor {
  const ns = (pkg().outrigger as grpc.GrpcObject).bench as grpc.GrpcObject;
  return ns.Echo as grpc.ServiceClientConstructor;
}

/** Starts the Echo server on 127.0.0.1 (port 0 = any); resolves with the port. */
export function startGrpcServer(port = 0): Promise<{ port: number; server: grpc.Server }> {
  const reply: EchoMessage = { payload: Buffer.alloc(GRPC_PAYLOAD_BYTES, 0x67) };
  const server = new grpc.Server({ 'grpc.max_concurrent_streams': 1000 });
  server.addService(echoClientCtor().service, {
    Call: (_call: grpc.ServerUnaryCall<EchoMessage, EchoMessage>, cb: grpc.sendUnaryData<EchoMessage>) => cb(null, reply),
  });
  return new Promise((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve({ port: p, server })));
  });
}
