// Test-only peer: a Node TCP relay that holds every chunk for a fixed delay
// (default 2 ms) before forwarding it, in both directions. Used by the harness's
// own tests to check that it can tell a slower path from a faster one.
// Usage: node slow-relay-main.js <listenPort> <targetPort> [delayMs]
import * as net from 'node:net';

const [listenPort, targetPort, delayArg] = process.argv.slice(2).map(Number);
const delayMs = Number.isFinite(delayArg) ? delayArg : 2;

function relay(from: net.Socket, to: net.Socket): void {
  from.on('data', (d: Buffer) => {
    setTimeout(() => {
      if (!to.destroyed) to.write(d);
    }, delayMs);
  });
  from.on('end', () => setTimeout(() => to.end(), delayMs));
}

const srv = net.createServer((down) => {
  const up = net.connect({ port: targetPort, host: '127.0.0.1' });
  down.setNoDelay(true);
  up.setNoDelay(true);
  const kill = (): void => {
    down.destroy();
    up.destroy();
  };
  down.on('error', kill);
  up.on('error', kill);
  down.on('close', kill);
  up.on('close', kill);
  relay(down, up);
  relay(up, down);
});
srv.listen(listenPort, '127.0.0.1', () => process.stdout.write(`slow-relay listening on ${listenPort}\n`));
process.on('SIGTERM', () => process.exit(0));
