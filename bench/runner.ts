// Runs the chosen workloads against the chosen peers, interleaved: for every round,
// every case, every peer in turn (order rotated each round), so slow drift on a
// noisy machine is spread over all peers alike.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { summarisePeer, summariseLatency } from './aggregate';
import { runLoad, startBackend, type BackendHandle } from './load/run';
import { placement } from './lib/proc-spawn';
import { outriggerFeatures, outriggerSkipReason, peerByName, type RunningPeer } from './peers';
import { proxyLayer, rpcMode } from './peers/configs';
import { makeCerts, type CertFiles, type CertKind } from './lib/certs';
import { cpuUnitOf, isOpsUnit, type CaseResult, type PeerCaseResult, type PeerInfo, type RoundSample, type RunResult, type WorkloadResult } from './types';
import { workloadByName, type CaseDef } from './workloads';

export interface BenchOptions {
  workloads: string[];
  peers: string[];
  durationS: number;
  warmupS: number;
  rounds: number;
  threads: number;
  connections?: number;
  /** fixed rate of open-loop cases (bolt), req/s */
  rate?: number;
  /** requests in flight per connection (bolt max-rate case) */
  pipeline?: number;
  /** streams (requests, calls) in flight per connection (http2, grpc) */
  streams?: number;
  quick: boolean;
  command: string;
  /** progress lines / indicator (stderr by default) */
  progress?: (msg: string, done: number, total: number) => void;
}

function clientCpuCount(spec: string): number {
  if (spec === 'any') return os.availableParallelism();
  let n = 0;
  for (const part of spec.split(',')) {
    const [a, b] = part.split('-').map(Number);
    n += b === undefined ? 1 : b - a + 1;
  }
  return n;
}

export async function runBench(o: BenchOptions): Promise<RunResult> {
  const place = placement();
  const meta: RunResult['meta'] = {
    date: new Date().toISOString(),
    host: os.hostname(),
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    command: o.command,
    placement: place,
    durationS: o.durationS,
    warmupS: o.warmupS,
    rounds: o.rounds,
    threads: o.threads,
    quick: o.quick,
  };
  const peerInfos: PeerInfo[] = o.peers.map((n) => {
    const d = peerByName(n)!;
    let version = '?';
    if (!d.unavailable()) {
      try {
        version = d.version();
      } catch {
        /* keep ? */
      }
    }
    return { name: n, version, description: d.description };
  });
  const result: RunResult = { meta, peers: peerInfos, workloads: [] };

  const caseOpts = { connections: o.connections, rate: o.rate, pipeline: o.pipeline, streams: o.streams };
  // Work estimate for the progress indicator: measurements to run.
  let total = 0;
  for (const w of o.workloads) {
    const def = workloadByName(w)!;
    if (!def.pending) total += def.cases(caseOpts).length * o.peers.length * o.rounds;
  }
  let done = 0;
  const progress = o.progress ?? (() => undefined);

  const backend: BackendHandle = await startBackend();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-bench-'));
  // TLS workloads: server certificates made once per run in the scratch directory.
  let certs: Record<CertKind, CertFiles> | undefined;
  try {
    for (const wname of o.workloads) {
      const def = workloadByName(wname)!;
      const wr: WorkloadResult = { name: def.name, description: def.description, status: 'ok', notes: [...(def.notes ?? [])], cases: [] };
      result.workloads.push(wr);
      const missing = def.needs.filter((f) => !outriggerFeatures().has(f));
      if (def.pending) {
        wr.status = 'skipped';
        wr.message = `skipped: ${def.pending}${missing.length ? `; Outrigger has not built ${missing.join(', ')} yet` : ''}`;
        progress(`${def.name}: ${wr.message}`, done, total);
        continue;
      }
      const cases = def.cases(caseOpts);
      const caseResults: CaseResult[] = cases.map((c) => ({
        id: c.id,
        unit: c.unit,
        cpuUnit: cpuUnitOf(c.unit),
        ...(c.cert ? { cert: c.cert } : {}),
        ...(c.streams !== undefined ? { streams: c.streams } : {}),
        connections: c.connections,
        ...(c.rate !== undefined ? { rate: c.rate } : {}),
        ...(c.pipeline !== undefined ? { pipeline: c.pipeline } : {}),
        peers: [],
      }));
      wr.cases = caseResults;
      let peerCerts: Partial<Record<CertKind, CertFiles>> | undefined;
      if (def.mode === 'tls') {
        try {
          certs ??= makeCerts(path.join(scratch, 'certs'));
        } catch (e) {
          wr.status = 'error';
          wr.message = `could not make the TLS certificates: ${(e as Error).message}`;
          progress(`${def.name}: ${wr.message}`, done, total);
          done += cases.length * o.peers.length * o.rounds;
          continue;
        }
        const kinds = [...new Set(cases.map((c) => c.listener).filter((k): k is CertKind => k !== undefined))];
        peerCerts = Object.fromEntries(kinds.map((k) => [k, certs![k]]));
      }

      // Start every peer for this workload (idle ones cost nothing while others run).
      const running = new Map<string, RunningPeer>();
      const excluded = new Map<string, PeerCaseResult['status'] | undefined>();
      const exclusion = new Map<string, string>();
      for (const name of o.peers) {
        const p = peerByName(name)!;
        let why: string | undefined;
        let status: PeerCaseResult['status'] = 'skipped';
        if (name.startsWith('outrigger') && missing.length) why = outriggerSkipReason(missing);
        why ??= p.unsupported(def.mode);
        if (!why && p.unavailable()) {
          why = p.unavailable();
          // Outrigger not being buildable is a failure of the subject, not a missing optional peer.
          if (name.startsWith('outrigger')) status = 'failed';
        }
        if (!why) {
          const dir = fs.mkdtempSync(path.join(scratch, `${def.name}-${name}-`));
          const backendPort = backend.ports[cases[0].backend];
          try {
            progress(`${def.name}: starting ${name}`, done, total);
            running.set(name, await p.start({ mode: def.mode, backendPort, dir, certs: peerCerts, http1BackendPort: backend.ports.http }));
          } catch (e) {
            why = (e as Error).message;
            status = 'failed';
          }
        }
        if (why) {
          excluded.set(name, status);
          exclusion.set(name, why);
          wr.notes.push(`${name} ${status}: ${why}`);
          progress(`${def.name}: ${name} ${status}: ${why.split('\n')[0]}`, done, total);
          done += cases.length * o.rounds;
        }
      }

      const samples = new Map<string, { rounds: RoundSample[]; hists: string[]; lags: string[]; hwm: number; rss: number; note?: string }>();
      const key = (c: CaseDef, p: string): string => `${c.id}|${p}`;
      try {
        const order = [...running.keys()];
        for (let round = 0; round < o.rounds; round++) {
          const rot = order.slice(round % Math.max(1, order.length)).concat(order.slice(0, round % Math.max(1, order.length)));
          for (const c of cases) {
            for (const name of rot) {
              const rp = running.get(name)!;
              progress(`${c.id} round ${round + 1}/${o.rounds}: ${name}`, done, total);
              const port = name === 'direct' ? backend.ports[c.backend] : c.listener ? (rp.ports?.[c.listener] ?? rp.port) : rp.port;
              const s = samples.get(key(c, name)) ?? { rounds: [], hists: [], lags: [], hwm: 0, rss: 0 };
              samples.set(key(c, name), s);
              try {
                const r = await runLoad(
                  {
                    kind: c.kind,
                    host: '127.0.0.1',
                    port,
                    connections: c.connections,
                    threads: o.threads,
                    messageSize: c.messageSize,
                    ...(c.pipeline !== undefined ? { pipeline: c.pipeline } : {}),
                    ...(c.rate !== undefined ? { rate: c.rate } : {}),
                    ...(c.streams !== undefined ? { streams: c.streams } : {}),
                    durationMs: o.durationS * 1000,
                    proxyPids: rp.pids,
                    backendPids: [backend.pid],
                  },
                  o.warmupS * 1000,
                );
                const work = isOpsUnit(c.unit) ? r.ops : r.bytes;
                s.rounds.push({
                  round,
                  throughput: work / o.durationS,
                  ops: r.ops,
                  bytes: r.bytes,
                  errors: r.errors + r.connectFailures,
                  firstError: r.firstError,
                  windowS: r.windowS,
                  proxyCpuS: r.proxyCpuS,
                  generatorCpuS: r.generatorCpuS,
                  backendCpuS: r.backendCpuS,
                });
                s.hists.push(r.histogram);
                if (r.lagHistogram) s.lags.push(r.lagHistogram);
                s.note ??= r.note;
                s.hwm = Math.max(s.hwm, r.proxyHwmKiB);
                s.rss = Math.max(s.rss, r.proxyRssMaxKiB);
              } catch (e) {
                s.rounds.push({
                  round, throughput: 0, ops: 0, bytes: 0, errors: 1, firstError: (e as Error).message,
                  windowS: 0, proxyCpuS: 0, generatorCpuS: 0, backendCpuS: 0,
                });
              }
              done++;
            }
          }
        }
      } finally {
        for (const rp of running.values()) await rp.stop();
      }

      for (let i = 0; i < cases.length; i++) {
        const c = cases[i];
        for (const name of o.peers) {
          if (excluded.has(name)) {
            const layer = rpcMode(def.mode) ? proxyLayer(name, def.mode) : undefined;
            caseResults[i].peers.push({ peer: name, ...(layer ? { layer } : {}), status: excluded.get(name)!, message: exclusion.get(name), rounds: [] });
            continue;
          }
          const s = samples.get(key(c, name))!;
          const pr = summarisePeer(name, c.unit, s.rounds, s.hists, { hwmKiB: s.hwm, sampledKiB: s.rss }, {
            hasProxy: running.get(name)!.pids.length > 0,
            clientCpuCount: clientCpuCount(place.client),
          });
          const layer = proxyLayer(name, def.mode);
          if (layer && rpcMode(def.mode)) pr.layer = layer;
          if (s.lags.length) pr.sendLag = summariseLatency(s.lags);
          if (s.note) pr.negotiated = s.note;
          caseResults[i].peers.push(pr);
        }
      }
      const failed = caseResults.flatMap((c) => c.peers).filter((p) => p.status === 'error' || p.status === 'failed');
      if (failed.length) {
        wr.status = 'error';
        wr.message = [...new Set(failed.map((p) => `${p.peer}: ${(p.message ?? p.status).split('\n')[0]}`))].join('; ');
      }
    }
  } finally {
    await backend.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return result;
}
