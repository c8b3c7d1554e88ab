/**
 * A sofa-rpc-node peer as its own process (for tests that run peers inside a network
 * namespace): `node sofa-peer.js server PORT NAME` serves com.example.Echo on every address
 * (sofa-rpc-node binds ::) answering "NAME:<arg>", prints "ready"; `node sofa-peer.js client
 * HOST:PORT ARG` calls it once, prints the answer and exits (0 = answered).
 */
import { quietLogger } from './sofa';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const sofa = require('sofa-rpc-node') as any;

const SERVICE = 'com.example.Echo';

async function main(): Promise<void> {
  const [mode, a, b] = process.argv.slice(2);
  if (mode === 'server') {
    const server = new sofa.server.RpcServer({ logger: quietLogger, port: Number(a) });
    server.addService({ interfaceName: SERVICE }, { async echo(x: string) { return `${b}:${x}`; } });
    await server.start();
    await server.ready();
    process.stdout.write('ready\n');
    return;
  }
  const client = new sofa.client.RpcClient({ logger: quietLogger });
  const consumer = client.createConsumer({ interfaceName: SERVICE, serverHost: a });
  await consumer.ready();
  const r = await consumer.invoke('echo', [{ $class: 'java.lang.String', $: b }], { responseTimeout: 3000 });
  process.stdout.write(`${String(r)}\n`);
  process.exit(0); // RpcClient.close() leaves a timer running
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
