/**
 * Push-scale bench (issue 12, "Scale"): memory (RSS of the whole process, workers included) and
 * the time to apply a config of N clusters with one endpoint each (default 5,000 + 5,000), then a
 * one-endpoint change, then a 100-cluster change, through the same reload path that SIGHUP and
 * the xDS client use (Sidecar.reload: main-thread build check, versions, two-phase commit on
 * every worker). Also the main-thread parts measured alone (check build, versions, the clone of
 * the message to a worker).
 *
 *   npx tsc -p tsconfig.json && node --expose-gc dist/bench/xds-scale.js [--clusters 5000] [--workers 1] [--rounds 3]
 */
const clone = globalThis.structuredClone;
import { parseConfig, type OutriggerConfig } from '../src/config';
import { versionResources } from '../src/config/versions';
import { Sidecar } from '../src/server';
import { checkBuild } from '../src/worker/snapshot';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

const N = arg('clusters', 5000);
const WORKERS = arg('workers', 1);
const ROUNDS = arg('rounds', 3);

/** N clusters `c0..c(N-1)`, one endpoint each (port 20000 + i, or `ports[i]`), one tcp_proxy listener. */
function doc(n: number, ports: (i: number) => number): Record<string, unknown> {
  return {
    servers: [
      {
        default_log_level: 'ERROR',
        graceful_timeout: '1s',
        listeners: [{ name: 'out', address: '127.0.0.1:0', bind_port: true, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'c0' } }] }] }],
      },
    ],
    cluster_manager: {
      clusters: Array.from({ length: n }, (_, i) => ({
        name: `c${i}`,
        type: 'SIMPLE',
        lb_type: 'LB_ROUNDROBIN',
        hosts: [{ address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:${ports(i)}` }],
      })),
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
  };
}

function rssMiB(): number {
  return Math.round((process.memoryUsage().rss / 1048576) * 10) / 10;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function timed(f: () => Promise<void> | void): Promise<number> {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

async function main(): Promise<void> {
  const small = parseConfig(doc(1, () => 20000));
  const sc = new Sidecar({ config: small, workers: WORKERS, adminPort: 0, logLevel: 'error' });
  await sc.start();
  gc();
  const rss0 = rssMiB();
  const out: string[] = [];
  try {
    let cfg: OutriggerConfig = parseConfig(doc(N, (i) => 20000 + (i % 40000)));
    const tFull = await timed(() => sc.reload(cfg));
    out.push(`  full push by phase (ms): ${JSON.stringify(sc.lastTiming)}`);
    gc();
    const rss1 = rssMiB();
    out.push(`clusters+endpoints: ${N}+${N}, workers: ${WORKERS}`);
    out.push(`RSS before: ${rss0} MiB; after the full push: ${rss1} MiB (+${Math.round((rss1 - rss0) * 10) / 10} MiB)`);
    out.push(`apply full push (${N} clusters, ${N} endpoints): ${tFull.toFixed(0)} ms`);
    const one: number[] = [];
    const hundred: number[] = [];
    const oneParsed: number[] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      // As an xDS push: a new config object whose unchanged clusters are the same objects.
      const changed = parseConfig(doc(N, (i) => (i === 17 ? 30000 + r : i < 100 ? 40000 + r : 20000 + (i % 40000)))).clusters;
      const next: OutriggerConfig = { ...cfg, clusters: cfg.clusters.map((c, i) => (i === 17 ? changed[17] : c)) };
      one.push(await timed(() => sc.reload(next)));
      if (r === ROUNDS) out.push(`  one-endpoint change, last round by phase (ms): ${JSON.stringify(sc.lastTiming)}`);
      cfg = { ...next, clusters: next.clusters.map((c, i) => (i < 100 ? changed[i] : c)) };
      hundred.push(await timed(() => sc.reload(cfg)));
      if (r === ROUNDS) out.push(`  100-cluster change, last round by phase (ms): ${JSON.stringify(sc.lastTiming)}`);
      // As a SIGHUP: the whole file parsed again (every object new), one endpoint changed.
      const parsed = parseConfig(doc(N, (i) => (i === 17 ? 50000 + r : i < 100 ? 40000 + r : 20000 + (i % 40000))));
      oneParsed.push(await timed(() => sc.reload(parsed)));
      cfg = parsed;
    }
    gc();
    out.push(`apply one-endpoint change: ${median(one).toFixed(0)} ms (median of ${ROUNDS}; ${one.map((x) => x.toFixed(0)).join(', ')})`);
    out.push(`apply 100-cluster change: ${median(hundred).toFixed(0)} ms (median of ${ROUNDS}; ${hundred.map((x) => x.toFixed(0)).join(', ')})`);
    out.push(`apply one-endpoint change as a SIGHUP (whole file parsed anew): ${median(oneParsed).toFixed(0)} ms (median of ${ROUNDS}; ${oneParsed.map((x) => x.toFixed(0)).join(', ')})`);
    out.push(`RSS after the changes: ${rssMiB()} MiB`);
    // The main thread's parts alone, on the full config.
    const tCheck = await timed(() => void checkBuild(cfg));
    const tVersions = await timed(() => void versionResources(2, cfg, { config: cfg, versions: versionResources(1, cfg) }));
    const tClone = await timed(() => void clone({ config: cfg }));
    out.push(`main thread alone: full check build ${tCheck.toFixed(0)} ms, versions ${tVersions.toFixed(0)} ms (forms cached per object), clone of the config ${tClone.toFixed(0)} ms`);
  } finally {
    await sc.stop();
  }
  console.log(out.join('\n'));
  process.exit(0);
}

void main();
