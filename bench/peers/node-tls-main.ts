// Reference TLS terminator for the TLS workloads (peer `node-tls`). Usage:
//   node node-tls-main.js <config.json>   {"backendPort":p,"listeners":[{"port":p,"cert":f,"key":f}]}
// Each listener terminates TLS (1.2+, no session tickets, no session cache) and pipes the
// plaintext to 127.0.0.1:<backendPort>. Nothing else: no parsing, no stats.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { constants } from 'node:crypto';

interface Cfg {
  backendPort: number;
  listeners: { port: number; cert: string; key: string }[];
}

const cfg = JSON.parse(fs.readFileSync(process.argv[2] ?? '', 'utf8')) as Cfg;
for (const l of cfg.listeners) {
  const srv = tls.createServer(
    {
      cert: fs.readFileSync(l.cert),
      key: fs.readFileSync(l.key),
      minVersion: 'TLSv1.2',
      secureOptions: constants.SSL_OP_NO_TICKET,
    },
    (down) => {
      down.setNoDelay(true);
      const up = net.connect(cfg.backendPort, '127.0.0.1');
      up.setNoDelay(true);
      const kill = (): void => {
        down.destroy();
        up.destroy();
      };
      down.on('error', kill).on('close', kill);
      up.on('error', kill).on('close', kill);
      down.pipe(up);
      up.pipe(down);
    },
  );
  srv.on('tlsClientError', (_e, s) => s.destroy());
  srv.listen({ port: l.port, host: '127.0.0.1', backlog: 4096 });
}
process.on('SIGTERM', () => process.exit(0));
