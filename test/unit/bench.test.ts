// Tests of the benchmark harness (bench/): ratio math, report/plot generation,
// config generators, argument parsing, and one tiny end-to-end check that the
// harness tells a direct path from a deliberately slowed relay.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ratio, caseRatios, okPeers } from '../../bench/report/ratios';
import { bottleneck, median, summarisePeer } from '../../bench/aggregate';
import { markdownReport } from '../../bench/report/markdown';
import { workloadSvg } from '../../bench/report/svg';
import { writeResults } from '../../bench/report/write';
import { ratioTableText } from '../../bench/report/table';
import { haproxyConfig, nginxConfig, outriggerConfig, envoyConfig } from '../../bench/peers/configs';
import { parseArgs } from '../../bench/cli';
import { peerByName } from '../../bench/peers';
import { startBackend, runLoad } from '../../bench/load/run';
import type { CaseResult, LatencySummary, PeerCaseResult, RunResult } from '../../bench/types';

function lat(p50: number, p99: number): LatencySummary {
  return {
    count: 1000, meanUs: p50 * 1.1, p50Us: p50, p90Us: p50 * 1.5, p99Us: p99, p999Us: p99 * 2, maxUs: p99 * 4,
    curve: [[0, p50 / 2], [50, p50], [90, p50 * 1.5], [99, p99], [99.9, p99 * 2], [99.99, p99 * 3], [100, p99 * 4]],
  };
}

function peer(name: string, throughput: number, p50: number, p99: number, cpu?: number): PeerCaseResult {
  return {
    peer: name, status: 'ok', rounds: [], throughput, throughputMin: throughput * 0.9, throughputMax: throughput * 1.1,
    latency: lat(p50, p99), proxyCpuPerUnit: cpu, proxyCpuCores: cpu === undefined ? undefined : 0.5,
    generatorCpuCores: 0.4, backendCpuCores: 0.2, peakRssKiB: cpu === undefined ? undefined : 20480, bottleneck: 'neither',
  };
}

function fixedCase(): CaseResult {
  return {
    id: 'tcp-rr c=1', unit: 'req/s', cpuUnit: 'CPU s / 1k req', connections: 1,
    peers: [
      peer('outrigger', 20_000, 50, 200, 0.03),
      peer('haproxy', 16_000, 40, 100, 0.02),
      peer('direct', 40_000, 20, 50),
      { peer: 'envoy', status: 'skipped', message: 'Envoy not found, skipped', rounds: [] },
      { peer: 'nginx', status: 'failed', message: 'nginx failed to start: <boom> & "x"', rounds: [] },
    ],
  };
}

function fixedRun(): RunResult {
  return {
    meta: {
      date: '2026-11-21T23:00:00.000Z', host: 'test', cpus: 2, cpuModel: 'cpu', node: 'v20', command: 'npm run bench -- tcp-rr',
      placement: { proxy: '0', client: '1', pinned: true }, durationS: 3, warmupS: 1, rounds: 2, threads: 1, quick: true,
    },
    peers: [{ name: 'outrigger', version: '0.1.0', description: 'd' }],
    workloads: [
      { name: 'tcp-rr', description: 'rr | pipes', status: 'ok', notes: ['envoy skipped: Envoy not found'], cases: [fixedCase()] },
      {
        name: 'tcp-bulk', description: 'bulk', status: 'ok', notes: [],
        cases: [{ id: 'tcp-bulk c=1', unit: 'B/s', cpuUnit: 'CPU s / GiB', connections: 1,
          peers: [{ ...peer('haproxy', 1.5 * 1024 ** 3, 0, 0, 0.5), latency: undefined }, { ...peer('direct', 2 * 1024 ** 3, 0, 0), latency: undefined }] }],
      },
      { name: 'bolt', description: 'bolt', status: 'skipped', message: 'skipped: pending', notes: [], cases: [] },
    ],
  };
}

/** Minimal XML well-formedness check: balanced tags, quoted attributes, one root <svg>. */
function assertWellFormedXml(xml: string): void {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([<>])/g;
  let m: RegExpExecArray | null;
  let roots = 0;
  while ((m = re.exec(body))) {
    if (m[5]) assert.fail(`stray '${m[5]}' at ${m.index}: ${body.slice(Math.max(0, m.index - 40), m.index + 40)}`);
    const [, close, name, , selfClose] = m;
    if (close) assert.equal(stack.pop(), name, `mismatched </${name}>`);
    else if (!selfClose) {
      if (stack.length === 0) roots++;
      stack.push(name);
    } else if (stack.length === 0) roots++;
  }
  assert.equal(stack.length, 0, `unclosed: ${stack.join(',')}`);
  assert.equal(roots, 1);
  assert.match(body, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.doesNotMatch(body, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no external references');
}

test('ratio math', () => {
  assert.equal(ratio(10, 4), 2.5);
  assert.equal(ratio(undefined, 4), undefined);
  assert.equal(ratio(1, 0), undefined);
  assert.equal(ratio(NaN, 1), undefined);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  const c = fixedCase();
  assert.deepEqual(okPeers(c), ['outrigger', 'haproxy', 'direct']);
  const rows = new Map(caseRatios(c).map((r) => [r.peer, r.vs]));
  assert.equal(rows.get('outrigger')!.haproxy.throughput, 1.25);
  assert.equal(rows.get('outrigger')!.direct.throughput, 0.5);
  assert.equal(rows.get('outrigger')!.haproxy.p99, 2);
  assert.equal(rows.get('outrigger')!.haproxy.cpu, 1.5);
  assert.equal(rows.get('outrigger')!.direct.cpu, undefined, 'direct has no proxy CPU');
  assert.equal(rows.get('direct')!.haproxy.throughput, 2.5);
  assert.equal(rows.get('haproxy')!.haproxy, undefined, 'no self ratio');
  assert.equal(rows.get('nginx'), undefined, 'failed peers have no ratios');
  // Only the named references.
  assert.deepEqual(Object.keys(caseRatios(c, ['direct'])[0].vs), ['direct']);
});

test('bottleneck classification and per-peer summary', () => {
  assert.equal(bottleneck(0.95, 0.5, 1), 'proxy');
  assert.equal(bottleneck(0.5, 0.95, 1), 'generator');
  assert.equal(bottleneck(0.5, 0.5, 1), 'neither');
  assert.equal(bottleneck(undefined, 0.99, 1), 'generator');
  const round = (r: number, ops: number, errors = 0) => ({
    round: r, throughput: ops / 2, ops, bytes: ops * 64, errors, windowS: 2, proxyCpuS: 1, generatorCpuS: 1.9, backendCpuS: 0,
  });
  const s = summarisePeer('x', 'req/s', [round(0, 1000), round(1, 3000), round(2, 2000)], [], { hwmKiB: 10, sampledKiB: 8 }, { hasProxy: true, clientCpuCount: 1 });
  assert.equal(s.status, 'ok');
  assert.equal(s.throughput, 1000);
  assert.equal(s.proxyCpuCores, 0.5);
  assert.equal(s.proxyCpuPerUnit, 3 / 6); // 3 CPU s over 6k requests
  assert.equal(s.bottleneck, 'generator');
  const bad = summarisePeer('y', 'req/s', [round(0, 0)], [], undefined, { hasProxy: true, clientCpuCount: 1 });
  assert.equal(bad.status, 'error');
  assert.match(bad.message!, /no completed requests/);
});

test('markdown report and SVG from a fixed results object', () => {
  const r = fixedRun();
  const md = markdownReport(r, (w) => (w === 'tcp-rr' ? 'x-tcp-rr.svg' : undefined));
  assert.match(md, /^# Outrigger benchmark/);
  assert.match(md, /!\[tcp-rr\]\(x-tcp-rr\.svg\)/);
  assert.match(md, /\*\*Skipped\*\* — skipped: pending/);
  // Every table has the same number of cells in each of its rows.
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith('|') || (i > 0 && lines[i - 1].startsWith('|'))) continue;
    const cells = (l: string): number => l.replace(/\\\|/g, '').split('|').length;
    const n = cells(lines[i]);
    assert.match(lines[i + 1], /^\| ---/, 'header separator');
    for (let j = i + 1; j < lines.length && lines[j].startsWith('|'); j++) assert.equal(cells(lines[j]), n, `row ${j}: ${lines[j]}`);
  }
  assert.match(md, /\| outrigger \| 20\.0k req\/s \| 50 µs \| 200 µs \|/);
  assert.match(md, /1\.25×/);
  for (const w of r.workloads) assertWellFormedXml(workloadSvg(w, 'sub <title> & more'));
  const svg = workloadSvg(r.workloads[0]);
  assert.match(svg, /<polyline /);
  assert.equal((svg.match(/<rect [^>]*fill="#/g) ?? []).length >= 3, true);
  const text = ratioTableText(r);
  assert.match(text, /== tcp-rr c=1 ==/);
  assert.match(text, /bolt: skipped: pending/);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-test-'));
  try {
    const w = writeResults(r, dir);
    assert.ok(fs.existsSync(w.json) && fs.existsSync(w.markdown) && fs.existsSync(w.latest));
    assert.equal(w.svgs.length, 2);
    assert.deepEqual(JSON.parse(fs.readFileSync(w.json, 'utf8')), JSON.parse(JSON.stringify(r)));
    for (const s of w.svgs) assertWellFormedXml(fs.readFileSync(s, 'utf8'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('peer configs are equivalent TCP forwarders', () => {
  const c = { mode: 'tcp' as const, port: 1111, backendPort: 2222, dir: '/tmp/x', adminPort: 3333 };
  const h = haproxyConfig(c);
  assert.match(h, /mode tcp/);
  assert.match(h, /bind 127\.0\.0\.1:1111/);
  assert.match(h, /server backend 127\.0\.0\.1:2222/);
  const n = nginxConfig(c, '/usr/lib/nginx/modules/ngx_stream_module.so');
  assert.match(n, /^load_module \/usr\/lib\/nginx\/modules\/ngx_stream_module\.so;/);
  assert.match(n, /daemon off;/);
  assert.match(n, /worker_processes 1;/);
  assert.match(n, /pid \/tmp\/x\/nginx\.pid;/);
  assert.match(n, /stream \{\s+server \{ listen 127\.0\.0\.1:1111; proxy_pass 127\.0\.0\.1:2222; \}/);
  const o = outriggerConfig(c) as any;
  assert.equal(o.servers[0].listeners[0].address, '127.0.0.1:1111');
  assert.equal(o.servers[0].listeners[0].filter_chains[0].filters[0].type, 'tcp_proxy');
  assert.equal(o.cluster_manager.clusters[0].hosts[0].address, '127.0.0.1:2222');
  assert.equal(o.admin.address.socket_address.port_value, 3333);
  const e = envoyConfig(c) as any;
  assert.equal(e.static_resources.listeners[0].filter_chains[0].filters[0].name, 'envoy.filters.network.tcp_proxy');
  assert.equal(e.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value, 2222);
  const hh = haproxyConfig({ ...c, mode: 'http1' });
  assert.match(hh, /mode http/);
  assert.match(nginxConfig({ ...c, mode: 'http1' }, undefined), /proxy_pass http:\/\/backend;/);
});

test('argument parsing', () => {
  const q = parseArgs(['tcp-rr', '--quick', '--peers', 'direct,haproxy']);
  assert.deepEqual(q.workloads, ['tcp-rr']);
  assert.deepEqual(q.peers, ['direct', 'haproxy']);
  assert.equal(q.durationS, 3);
  assert.equal(q.rounds, 2);
  const d = parseArgs(['--duration=5', '--connections', '8']);
  assert.equal(d.durationS, 5);
  assert.equal(d.connections, 8);
  assert.ok(d.workloads.includes('tcp-bulk') && d.workloads.includes('grpc'));
  assert.throws(() => parseArgs(['nope']), /unknown workload/);
  assert.throws(() => parseArgs(['--peers', 'apache']), /unknown peer/);
  assert.throws(() => parseArgs(['--duration', 'x']), /--duration/);
  assert.equal(parseArgs(['--help']).help, true);
});

test('the harness tells direct from a 2 ms slow relay (tiny tcp-rr)', async () => {
  const backend = await startBackend();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-test-'));
  const relay = await peerByName('slow-relay')!.start({ mode: 'tcp', backendPort: backend.ports.echo, dir });
  try {
    const base = { kind: 'tcp-rr' as const, host: '127.0.0.1', connections: 2, threads: 1, messageSize: 64, durationMs: 600, backendPids: [backend.pid] };
    // A 1 s warm-up: a generator process that starts late on a loaded machine still measures its whole window.
    const direct = await runLoad({ ...base, port: backend.ports.echo, proxyPids: [] }, 1000);
    const slow = await runLoad({ ...base, port: relay.port, proxyPids: relay.pids }, 1000);
    assert.equal(direct.errors + slow.errors, 0);
    assert.ok(direct.ops > 0 && slow.ops > 0);
    const sd = summarisePeer('direct', 'req/s', [{ round: 0, throughput: direct.ops / 0.6, ops: direct.ops, bytes: direct.bytes, errors: 0, windowS: direct.windowS, proxyCpuS: 0, generatorCpuS: direct.generatorCpuS, backendCpuS: direct.backendCpuS }], [direct.histogram], undefined, { hasProxy: false, clientCpuCount: 1 });
    const ss = summarisePeer('slow-relay', 'req/s', [{ round: 0, throughput: slow.ops / 0.6, ops: slow.ops, bytes: slow.bytes, errors: 0, windowS: slow.windowS, proxyCpuS: slow.proxyCpuS, generatorCpuS: slow.generatorCpuS, backendCpuS: slow.backendCpuS }], [slow.histogram], { hwmKiB: slow.proxyHwmKiB, sampledKiB: slow.proxyRssMaxKiB }, { hasProxy: true, clientCpuCount: 1 });
    assert.ok(sd.latency!.p50Us < ss.latency!.p50Us, `p50 direct ${sd.latency!.p50Us} < slow ${ss.latency!.p50Us}`);
    assert.ok(ss.latency!.p50Us >= 4000, `slow relay p50 ${ss.latency!.p50Us} µs should include 2 x 2 ms`);
    assert.ok(sd.throughput! > ss.throughput!, `rate direct ${sd.throughput} > slow ${ss.throughput}`);
    assert.ok(slow.proxyHwmKiB > 0, 'relay RSS measured');
  } finally {
    await relay.stop();
    await backend.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
