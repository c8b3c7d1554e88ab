/** Serving translated xDS resources in a real, in-process Sidecar (test/integration/xds-*.test.ts). */
import * as assert from 'node:assert/strict';
import { Sidecar } from '../../src/server';
import type { ClusterConfig, OutriggerConfig } from '../../src/config/types';
import type { TranslatedListener } from '../../src/xds/types';

/** Serves translated listeners (and their inline routes) with these clusters; the listeners' ports, in order. */
export async function serveTranslated(t: { after(fn: () => unknown): void }, tls: readonly TranslatedListener[], clusters: ClusterConfig[]): Promise<number[]> {
  const config: OutriggerConfig = {
    servers: [{
      defaultLogPath: 'stderr', defaultLogLevel: 'error', processor: 1, gracefulTimeoutMs: 1000,
      listeners: tls.map((l) => l.listener), routers: tls.flatMap((l) => [...l.routers]),
    }],
    clusters,
    admin: { address: { host: '127.0.0.1', port: 0 } },
    raw: {},
  };
  const sc = new Sidecar({ config, workers: 1, adminPort: 0, logLevel: 'error' });
  await sc.start();
  t.after(() => sc.stop());
  const ls = sc.listeners();
  return tls.map((l) => {
    const f = ls.find((x) => x.name === l.listener.name);
    assert.ok(f, l.listener.name);
    return f.port;
  });
}
