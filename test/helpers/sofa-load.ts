/**
 * A sofa-rpc-node client in its own process (the test process runs the peers): calls
 * `echo` at RATE calls/s for MS ms over its long-lived connection(s), then prints one JSON line
 * {ok, failed, errors, failedArgs, opened, closed} and exits. `closed` counts client sockets that closed.
 *
 *   node sofa-load.js PORT INTERFACE RATE MS
 */
import { sofaClient, sleep } from './sofa';
import { watchClientSockets } from './upgrade';

async function main(): Promise<void> {
  const [port, svc, rate, ms] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4]), Number(process.argv[5])];
  const watch = watchClientSockets([port]);
  const client = sofaClient(port);
  const consumer = await client.consumer(svc);
  // failedArgs: the argument of each failed call (the first 1,000), to check against what the server ran.
  const st = { ok: 0, failed: 0, errors: [] as string[], failedArgs: [] as string[], opened: 0, closed: 0, ms: 0 };
  const pending: Promise<unknown>[] = [];
  const start = Date.now();
  process.stdout.write('ready\n');
  let i = 0;
  while (Date.now() - start < ms) {
    // The calls due since the start (a slow timer tick is made up for, up to 200 at once).
    const due = Math.min(200, Math.floor(((Date.now() - start) * rate) / 1000) - i);
    for (let k = 0; k < due; k++) {
      const v = `c${i++}`;
      pending.push(
        consumer.invoke('echo', [v], { responseTimeout: 5000 }).then(
          (r: unknown) => (r === v ? st.ok++ : (st.failed++, st.errors.push(`wrong answer ${String(r)}`), st.failedArgs.length < 1000 && st.failedArgs.push(v))),
          (e: Error) => (st.failed++, st.errors.push(e.message), st.failedArgs.length < 1000 && st.failedArgs.push(v)),
        ),
      );
    }
    await sleep(2);
  }
  await Promise.all(pending);
  st.ms = Date.now() - start;
  st.opened = watch.opened();
  st.closed = watch.closed();
  st.errors = st.errors.slice(0, 5);
  process.stdout.write(JSON.stringify(st) + '\n');
  process.exit(0); // RpcClient.close() leaves a timer running
}

void main();
