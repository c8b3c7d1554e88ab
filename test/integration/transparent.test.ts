/**
 * Transparent interception for real: a network namespace made by the test, iptables nat
 * OUTPUT REDIRECT of every TCP connection to 10.77.0.0/24 into the sidecar's capture listener
 * (0.0.0.0:15001, use_original_dst, Istio's virtualOutbound shape), except the sidecar's own
 * connections (it runs with gid 1337, excluded by an owner match as istio-iptables does).
 * curl connects to 10.77.0.x addresses as if no proxy existed; the named HTTP servers answer
 * with their name, so each case shows where the bytes went.
 *
 * Skipped (with the reason) when not root or when ip/iptables/setpriv/curl are missing.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI } from '../helpers/sidecar';
import { NetNs, netnsUnavailable, type Spawned } from '../helpers/netns';

const SIDECAR_GID = '1337';
const SOFA_PEER = path.join(__dirname, '..', 'helpers', 'sofa-peer.js');
const CAPTURE_PORT = 15001;

/** HTTP servers on [host, port, name]: each answers its name, and logs "conn NAME" per connection. */
const SERVERS_JS = `
const http = require('node:http');
const specs = JSON.parse(process.argv[1]);
let up = 0;
for (const [host, port, name] of specs) {
  const s = http.createServer((q, r) => r.end(name + ' saw ' + q.headers.host));
  s.on('connection', () => process.stdout.write('conn ' + name + '\\n'));
  s.listen(port, host, () => { if (++up === specs.length) process.stdout.write('ready\\n'); });
}`;

/** A tcp_proxy filter list to `cluster`. */
function tcp(cluster: string): unknown {
  return [{ type: 'tcp_proxy', config: { stat_prefix: cluster, cluster } }];
}

/** A MOSN document with one server (1 worker), these listeners, clusters and routers, admin on 127.0.0.1:0. */
function mosnDoc(listeners: unknown[], clusters: unknown[], routers: unknown[] = []): Record<string, unknown> {
  return {
    servers: [{ default_log_level: 'WARN', processor: 1, listeners, routers }],
    cluster_manager: { clusters },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
  };
}

/** Starts the sidecar inside `ns` on `cfg` (written to dir/config.json); `gid`: run with that gid (excluded from capture). */
async function startIn(ns: NetNs, dir: string, cfg: unknown, gid?: string): Promise<{ sidecar: Spawned; admin: number; file: string }> {
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(cfg));
  // Its own upgrade directory: the default <tmp>/outrigger is shared with every Outrigger on the machine.
  const cmd = [process.execPath, CLI, 'start', '-c', file, '--workers', '1', '--upgrade-dir', path.join(dir, 'upgrade')];
  const sidecar = gid !== undefined ? ns.spawn('setpriv', ['--regid', gid, '--clear-groups', ...cmd], { OUTRIGGER_NATIVE: '1' }) : ns.spawn(cmd[0], cmd.slice(1), { OUTRIGGER_NATIVE: '1' });
  try {
    const admin = Number((await sidecar.waitFor(/admin on http:\/\/[^:]+:(\d+)\//))[1]);
    return { sidecar, admin, file };
  } catch (e) {
    await sidecar.kill();
    throw e;
  }
}

function sidecarConfig(): unknown {
  const http = (downstream: string): unknown => [{ type: 'proxy', config: { downstream_protocol: downstream, upstream_protocol: 'Http1', router_config_name: 'r80' } }];
  return {
    servers: [{
      default_log_level: 'WARN',
      processor: 1,
      listeners: [
        {
          name: 'virtualOutbound',
          address: `0.0.0.0:${CAPTURE_PORT}`,
          bind_port: true,
          use_original_dst: 'redirect',
          filter_chains: [
            // Istio's blackhole: a destination the mesh refuses.
            { filter_chain_match: { prefix_ranges: [{ address_prefix: '10.77.0.3', prefix_len: 32 }] }, filters: tcp('BlackHoleCluster') },
            // Matched on the original destination port, not the capture port.
            { filter_chain_match: { destination_port: 6666 }, filters: tcp('svc') },
            // Passthrough: anything else goes where the client meant it to go.
            { filters: tcp('PassthroughCluster') },
          ],
        },
        // A dual-stack capture socket: IPv4 connections arrive as ::ffff:a.b.c.d (SO_ORIGINAL_DST after IP6T_ fails).
        { name: 'virtualOutboundDual', address: '[::]:15003', bind_port: true, use_original_dst: 'redirect', filter_chains: [{ filters: tcp('PassthroughCluster') }] },
        // IPv6 capture (ip6tables REDIRECT goes to [::1]): IP6T_SO_ORIGINAL_DST.
        { name: 'virtualOutbound6', address: '[::1]:15002', bind_port: true, use_original_dst: true, filter_chains: [{ filters: tcp('PassthroughCluster') }] },
        // Istio's virtualInbound (REDIRECT mode): no hand-off, chains chosen on the original destination port.
        {
          name: 'virtualInbound',
          address: '0.0.0.0:15006',
          bind_port: true,
          listener_filters: [{ type: 'original_dst' }],
          filter_chains: [
            { filter_chain_match: { destination_port: 9000 }, filters: tcp('inbound|9000') },
            { filters: tcp('InboundPassthroughCluster') },
          ],
        },
        // Istio's outbound listeners: not bound, reached by the hand-off only.
        { name: 'outbound_0.0.0.0_8080', address: '0.0.0.0:8080', bind_port: false, filter_chains: [{ filters: tcp('svc') }] },
        { name: 'outbound_10.77.0.1_7070', address: '10.77.0.1:7070', bind_port: false, filter_chains: [{ filters: tcp('c7') }] },
        // HTTP outbound listeners: routes to the passthrough cluster (the original destination) or
        // to an ORIGINAL_DST cluster that reads the destination from a request header.
        { name: 'outbound_http_8000', address: '0.0.0.0:8000', bind_port: false, filter_chains: [{ filters: http('Http1') }] },
        { name: 'outbound_h2_8001', address: '0.0.0.0:8001', bind_port: false, filter_chains: [{ filters: http('Http2') }] },
        // SOFARPC (Bolt) outbound listener: routed to the passthrough cluster.
        {
          name: 'outbound_bolt_12200',
          address: '0.0.0.0:12200',
          bind_port: false,
          filter_chains: [{ filters: [{ type: 'proxy', config: { downstream_protocol: 'bolt', router_config_name: 'bolt_router' } }] }],
        },
      ],
      routers: [{
        router_config_name: 'bolt_router',
        virtual_hosts: [{ name: 'sofa', domains: ['*'], routers: [{ match: { headers: [{ name: 'service', value: '.*' }] }, route: { cluster_name: 'PassthroughCluster' } }] }],
      }, {
        router_config_name: 'r80',
        virtual_hosts: [{
          name: 'all',
          domains: ['*'],
          routers: [
            { match: { prefix: '/by-header' }, route: { cluster_name: 'ByHeader' } },
            { match: { prefix: '/' }, route: { cluster_name: 'PassthroughCluster' } },
          ],
        }],
      }],
    }],
    cluster_manager: {
      clusters: [
        { name: 'PassthroughCluster', type: 'ORIGINAL_DST', lb_type: 'LB_ORIGINAL_DST', connect_timeout: '2s' },
        { name: 'BlackHoleCluster', type: 'SIMPLE', hosts: [] },
        { name: 'ByHeader', type: 'ORIGINAL_DST', connect_timeout: '2s', original_dst_lb_config: { use_http_header: true } },
        { name: 'svc', hosts: [{ address: '10.77.0.2:9090' }] },
        { name: 'c7', hosts: [{ address: '10.77.0.2:9191' }] },
        { name: 'inbound|9000', hosts: [{ address: '127.0.0.1:9100' }] },
        { name: 'InboundPassthroughCluster', type: 'ORIGINAL_DST', connect_timeout: '2s' },
      ],
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
  };
}

function curl(ns: NetNs, url: string): { code: number; out: string } {
  const r = ns.try('curl', ['-s', '--max-time', '5', url]);
  return { code: r.code, out: r.out };
}

const skip = netnsUnavailable();
if (skip !== '') console.log(`# transparent interception tests skipped: ${skip}`);

test('iptables REDIRECT: hand-off to the original destination listener, passthrough (TCP, HTTP/1.1, HTTP/2, SOFARPC, IPv6, dual-stack), header destination, blackhole, chain match on the original port (outbound and inbound), no loop', { skip: skip || false }, async () => {
  const ns = new NetNs('tp');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-tp-'));
  let servers: Spawned | undefined;
  let sofaServer: Spawned | undefined;
  let sidecar: Spawned | undefined;
  try {
    for (const a of ['10.77.0.1', '10.77.0.2', '10.77.0.3', '10.78.0.1', '10.79.0.1']) ns.exec('ip', ['addr', 'add', `${a}/32`, 'dev', 'lo']);
    // istio-iptables in short: the sidecar's own traffic (by gid) is not captured, the rest to the mesh range is.
    ns.exec('iptables', ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '10.77.0.0/24', '-m', 'owner', '--gid-owner', SIDECAR_GID, '-j', 'RETURN']);
    ns.exec('iptables', ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '10.77.0.0/24', '-j', 'REDIRECT', '--to-ports', String(CAPTURE_PORT)]);
    ns.exec('iptables', ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '10.79.0.0/24', '-m', 'owner', '!', '--gid-owner', SIDECAR_GID, '-j', 'REDIRECT', '--to-ports', '15003']);
    ns.exec('iptables', ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '10.78.0.0/24', '-m', 'owner', '!', '--gid-owner', SIDECAR_GID, '-j', 'REDIRECT', '--to-ports', '15006']);
    // IPv6: ip6tables REDIRECT, read back with IP6T_SO_ORIGINAL_DST.
    const v6 = ns.try('ip6tables', ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', 'fd77::/64', '-m', 'owner', '!', '--gid-owner', SIDECAR_GID, '-j', 'REDIRECT', '--to-ports', '15002']).code === 0;
    if (v6) ns.exec('ip', ['addr', 'add', 'fd77::1/128', 'dev', 'lo']);
    else console.log('# IPv6 REDIRECT case skipped: ip6tables nat is not available');

    const specs = [
      ['10.77.0.1', 5555, 'A'], // passthrough target
      ['10.77.0.1', 6666, 'WRONG'], // must not be reached: the destination_port chain sends 6666 to svc
      ['10.77.0.1', 8080, 'WRONG8080'], // must not be reached: the 0.0.0.0:8080 listener takes it
      ['10.77.0.2', 9090, 'B'], // cluster svc
      ['10.77.0.2', 9191, 'C'], // cluster c7
      ['10.77.0.3', 5555, 'BLACKHOLED'], // must not be reached
      ['10.77.0.1', 8000, 'H'], // HTTP passthrough target
      ['10.77.0.1', 8001, 'H2'], // HTTP/2 downstream, passthrough target
      ['127.0.0.1', 9100, 'APP9000'], // the inbound application
      ['10.78.0.1', 9000, 'WRONG9000'], // must not be reached: the inbound chain for port 9000 takes it
      ['10.78.0.1', 5000, 'P5000'], // inbound passthrough target
      ['10.79.0.1', 5555, 'DUAL'], // reached through the dual-stack capture listener
    ];
    if (v6) specs.push(['fd77::1', 5555, 'A6']);
    servers = ns.spawn(process.execPath, ['-e', SERVERS_JS, JSON.stringify(specs)]);
    await servers.waitFor(/ready/);
    sofaServer = ns.spawn(process.execPath, [SOFA_PEER, 'server', '12200', 'SOFA']);
    await sofaServer.waitFor(/ready/);

    const started = await startIn(ns, dir, sidecarConfig(), SIDECAR_GID);
    sidecar = started.sidecar;
    const { admin, file: cfg } = started;

    // Passthrough: no listener for 10.77.0.1:5555, the ORIGINAL_DST cluster connects there
    // (as gid 1337: not captured again, else this would loop into the sidecar).
    assert.deepEqual(curl(ns, 'http://10.77.0.1:5555/'), { code: 0, out: 'A saw 10.77.0.1:5555' });
    // Hand-off to the wildcard listener of the port (bind_port false): 0.0.0.0:8080 -> svc.
    assert.deepEqual(curl(ns, 'http://10.77.0.2:8080/'), { code: 0, out: 'B saw 10.77.0.2:8080' });
    assert.deepEqual(curl(ns, 'http://10.77.0.1:8080/'), { code: 0, out: 'B saw 10.77.0.1:8080' });
    // Hand-off to the exact ip:port listener: 10.77.0.1:7070 -> c7.
    assert.deepEqual(curl(ns, 'http://10.77.0.1:7070/'), { code: 0, out: 'C saw 10.77.0.1:7070' });
    // filter_chain_match destination_port sees 6666, not 15001.
    assert.deepEqual(curl(ns, 'http://10.77.0.1:6666/'), { code: 0, out: 'B saw 10.77.0.1:6666' });
    // Blackhole: closed without reaching anything.
    const bh = curl(ns, 'http://10.77.0.3:5555/');
    assert.notEqual(bh.code, 0);
    assert.equal(bh.out, '');
    // A direct connection to the capture port was not redirected: no original destination, no loop.
    const direct = curl(ns, `http://127.0.0.1:${CAPTURE_PORT}/`);
    assert.notEqual(direct.code, 0);
    // Still serving afterwards.
    assert.deepEqual(curl(ns, 'http://10.77.0.1:5555/again'), { code: 0, out: 'A saw 10.77.0.1:5555' });

    // HTTP: the hand-off target routes; PassthroughCluster connects to the original destination.
    const h = curl(ns, 'http://10.77.0.1:8000/x');
    assert.equal(h.code, 0);
    assert.match(h.out, /^H saw /);
    const h2 = ns.try('curl', ['-s', '--max-time', '5', '--http2-prior-knowledge', 'http://10.77.0.1:8001/x']);
    assert.equal(h2.code, 0, h2.err);
    assert.match(h2.out, /^H2 saw /);
    // x-envoy-original-dst-host (use_http_header) picks the destination instead.
    const byHeader = ns.try('curl', ['-s', '--max-time', '5', '-H', 'x-envoy-original-dst-host: 10.77.0.2:9191', 'http://10.77.0.1:8000/by-header']);
    assert.equal(byHeader.code, 0);
    assert.match(byHeader.out, /^C saw /);
    // A real SOFARPC client: Bolt through the hand-off listener and the passthrough cluster.
    const rpc = ns.try(process.execPath, [SOFA_PEER, 'client', '10.77.0.1:12200', 'hi']);
    assert.equal(rpc.code, 0, rpc.err);
    assert.equal(rpc.out, 'SOFA:hi\n');
    // virtualInbound: destination_port 9000 picks the inbound chain; other ports pass through.
    assert.deepEqual(curl(ns, 'http://10.78.0.1:9000/'), { code: 0, out: 'APP9000 saw 10.78.0.1:9000' });
    assert.deepEqual(curl(ns, 'http://10.78.0.1:5000/'), { code: 0, out: 'P5000 saw 10.78.0.1:5000' });
    if (v6) assert.deepEqual(curl(ns, 'http://[fd77::1]:5555/'), { code: 0, out: 'A6 saw [fd77::1]:5555' });
    assert.deepEqual(curl(ns, 'http://10.79.0.1:5555/'), { code: 0, out: 'DUAL saw 10.79.0.1:5555' });
    // curl ran synchronously: let the servers' output in before reading it.
    await servers.waitFor(/conn A\n[\s\S]*conn A\n/);
    const seen = servers.output();
    assert.doesNotMatch(seen, /conn (WRONG|WRONG8080|WRONG9000|BLACKHOLED)\n/);
    assert.equal(seen.match(/conn A\n/g)?.length, 2);

    // Stats: the hand-off target counted the connections it served; the passthrough cluster made two.
    const stats = spawnSync('ip', ['netns', 'exec', ns.name, 'curl', '-s', `http://127.0.0.1:${admin}/api/v1/stats`], { encoding: 'utf8' });
    const s = JSON.parse(stats.stdout) as { listeners: Record<string, Record<string, number>>; clusters: Record<string, Record<string, number>> };
    assert.equal(s.listeners['outbound_0.0.0.0_8080'].downstream_cx_total, 2);
    assert.equal(s.listeners['outbound_10.77.0.1_7070'].downstream_cx_total, 1);
    assert.equal(s.clusters.PassthroughCluster.upstream_cx_total, v6 ? 7 : 6); // two TCP, one HTTP/1.1, one from HTTP/2, Bolt, dual-stack, IPv6
    assert.equal(s.listeners.outbound_bolt_12200.downstream_cx_total, 1);
    assert.equal(s.clusters.InboundPassthroughCluster.upstream_cx_total, 1);
    assert.equal(s.clusters['inbound|9000'].upstream_cx_total, 1);
    assert.equal(s.clusters.ByHeader.upstream_cx_total, 1);
    assert.equal(s.clusters.PassthroughCluster.upstream_cx_no_host, 1); // the direct connection: refused, not looped
    assert.equal(s.clusters.BlackHoleCluster.upstream_cx_no_host, 1);

    // SIGHUP adds a listener for 10.77.0.1:5555: new connections are handed to it, no restart.
    const next = sidecarConfig() as { servers: { listeners: Record<string, unknown>[] }[] };
    next.servers[0].listeners.push({ name: 'outbound_10.77.0.1_5555', address: '10.77.0.1:5555', bind_port: false, filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'c7' } }] }] });
    fs.writeFileSync(cfg, JSON.stringify(next));
    sidecar.proc.kill('SIGHUP');
    let after = curl(ns, 'http://10.77.0.1:5555/');
    for (let i = 0; i < 50 && after.out !== 'C saw 10.77.0.1:5555'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = curl(ns, 'http://10.77.0.1:5555/');
    }
    assert.deepEqual(after, { code: 0, out: 'C saw 10.77.0.1:5555' });
  } finally {
    await sidecar?.kill();
    await servers?.kill();
    await sofaServer?.kill();
    ns.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('use_original_dst "redirect" or a transparent listener without the native addon: the start fails with a clear error', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-tp-'));
  try {
    const cfg = path.join(dir, 'config.json');
    const doc = sidecarConfig() as { servers: { listeners: Record<string, unknown>[] }[] };
    doc.servers[0].listeners[0].address = '127.0.0.1:0';
    fs.writeFileSync(cfg, JSON.stringify(doc));
    const r = spawnSync(process.execPath, [CLI, 'start', '-c', cfg, '--workers', '1'], { encoding: 'utf8', env: { ...process.env, OUTRIGGER_NATIVE: '0' }, timeout: 20_000 });
    assert.equal(r.status, 2, r.stdout + r.stderr); // the CLI's "invalid config" exit
    assert.match(r.stdout + r.stderr, /virtualOutbound.*needs the native addon.*SO_ORIGINAL_DST/);
    // TPROXY reads the local address (pure TypeScript) but its listening socket must be transparent.
    doc.servers[0].listeners = [{ name: 'tproxied', address: '127.0.0.1:0', bind_port: true, transparent: true, listener_filters: [{ type: 'original_dst', config: { type: 'tproxy' } }], filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'PassthroughCluster' } }] }] }];
    fs.writeFileSync(cfg, JSON.stringify(doc));
    const t = spawnSync(process.execPath, [CLI, 'start', '-c', cfg, '--workers', '1'], { encoding: 'utf8', env: { ...process.env, OUTRIGGER_NATIVE: '0' }, timeout: 20_000 });
    assert.equal(t.status, 2, t.stdout + t.stderr);
    assert.match(t.stdout + t.stderr, /tproxied: a transparent listening socket .*needs the native addon.*IP_TRANSPARENT/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('iptables TPROXY from another namespace: a transparent virtualInbound listener matches chains on the original port, passthrough to the original destination', { skip: skip || false }, async () => {
  const client = new NetNs('tpc');
  const pod = new NetNs('tpp');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-tp-'));
  let servers: Spawned | undefined;
  let sidecar: Spawned | undefined;
  const veth = `ortp${process.pid % 100000}`;
  try {
    // client ns (192.168.77.1) --veth-- pod ns (192.168.77.2, the workload's 10.88.0.1 on lo)
    spawnSync('ip', ['link', 'add', `${veth}a`, 'netns', client.name, 'type', 'veth', 'peer', 'name', `${veth}b`, 'netns', pod.name]);
    client.exec('ip', ['addr', 'add', '192.168.77.1/24', 'dev', `${veth}a`]);
    client.exec('ip', ['link', 'set', `${veth}a`, 'up']);
    client.exec('ip', ['route', 'add', '10.88.0.0/24', 'via', '192.168.77.2']);
    pod.exec('ip', ['addr', 'add', '192.168.77.2/24', 'dev', `${veth}b`]);
    pod.exec('ip', ['link', 'set', `${veth}b`, 'up']);
    pod.exec('ip', ['addr', 'add', '10.88.0.1/32', 'dev', 'lo']);
    // Istio's TPROXY mode in short: mark inbound TCP, deliver marked packets locally, TPROXY them to 15006.
    pod.exec('iptables', ['-t', 'mangle', '-A', 'PREROUTING', '-i', `${veth}b`, '-p', 'tcp', '-d', '10.88.0.0/24', '-j', 'TPROXY', '--on-port', '15006', '--on-ip', '0.0.0.0', '--tproxy-mark', '0x1/0x1']);
    pod.exec('ip', ['rule', 'add', 'fwmark', '0x1/0x1', 'lookup', '133']);
    pod.exec('ip', ['route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '133']);

    servers = pod.spawn(process.execPath, ['-e', SERVERS_JS, JSON.stringify([['127.0.0.1', 9100, 'APP9000'], ['10.88.0.1', 5000, 'P5000'], ['10.88.0.1', 9000, 'WRONG9000']])]);
    await servers.waitFor(/ready/);
    const inbound = {
      name: 'virtualInbound',
      address: '0.0.0.0:15006',
      bind_port: true,
      transparent: true,
      listener_filters: [{ type: 'original_dst', config: { type: 'tproxy' } }],
      filter_chains: [
        { filter_chain_match: { destination_port: 9000 }, filters: tcp('inbound|9000') },
        { filters: tcp('InboundPassthroughClusterIpv4') },
      ],
    };
    sidecar = (await startIn(pod, dir, mosnDoc([inbound], [
      { name: 'inbound|9000', hosts: [{ address: '127.0.0.1:9100' }] },
      { name: 'InboundPassthroughClusterIpv4', type: 'ORIGINAL_DST', connect_timeout: '2s' },
    ]))).sidecar;

    assert.deepEqual(curl(client, 'http://10.88.0.1:9000/'), { code: 0, out: 'APP9000 saw 10.88.0.1:9000' });
    assert.deepEqual(curl(client, 'http://10.88.0.1:5000/'), { code: 0, out: 'P5000 saw 10.88.0.1:5000' });
    await servers.waitFor(/conn P5000\n/);
    assert.doesNotMatch(servers.output(), /conn WRONG9000\n/);
  } finally {
    await sidecar?.kill();
    await servers?.kill();
    client.destroy();
    pod.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('iptables TPROXY for outbound traffic (MOSN use_original_dst "tproxy"): hand-off to the listener of the original port, passthrough otherwise', { skip: skip || false }, async () => {
  const ns = new NetNs('tpo');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-tp-'));
  let servers: Spawned | undefined;
  let sidecar: Spawned | undefined;
  try {
    ns.exec('ip', ['addr', 'add', '10.99.0.1/32', 'dev', 'lo']);
    // Mark the application's TCP to 10.99.0.0/24 (not the sidecar's, by gid), route marked
    // packets back in locally, and TPROXY them to 16000 on their way in.
    ns.exec('ip', ['rule', 'add', 'fwmark', '0x1/0x1', 'lookup', '100']);
    ns.exec('ip', ['route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100']);
    ns.exec('iptables', ['-t', 'mangle', '-A', 'PREROUTING', '-p', 'tcp', '-m', 'mark', '--mark', '0x1/0x1', '-j', 'TPROXY', '--on-port', '16000', '--tproxy-mark', '0x1/0x1']);
    ns.exec('iptables', ['-t', 'mangle', '-A', 'OUTPUT', '-p', 'tcp', '-m', 'owner', '--gid-owner', SIDECAR_GID, '-j', 'RETURN']);
    // By destination port, as MOSN's tproxy example: the servers' answers (from those ports) must
    // not be marked, or TPROXY would steal them from the sidecar's own (non-transparent) sockets.
    ns.exec('iptables', ['-t', 'mangle', '-A', 'OUTPUT', '-p', 'tcp', '-d', '10.99.0.0/24', '-m', 'multiport', '--dports', '80,12345', '-j', 'MARK', '--set-mark', '0x1/0x1']);

    servers = ns.spawn(process.execPath, ['-e', SERVERS_JS, JSON.stringify([['10.99.0.1', 12345, 'ORIG12345'], ['10.99.0.1', 80, 'WRONG80'], ['127.0.0.1', 9100, 'GEN']])]);
    await servers.waitFor(/ready/);
    const listeners = [
      {
        name: 'tproxy_listener',
        address: '0.0.0.0:16000',
        bind_port: true,
        use_original_dst: 'tproxy', // MOSN: also makes the listening socket transparent
        listener_filters: [{ type: 'original_dst', config: { type: 'tproxy' } }],
        filter_chains: [{ filters: tcp('passthrough') }],
      },
      { name: 'general_listener', address: '0.0.0.0:80', bind_port: false, filter_chains: [{ filters: tcp('general') }] },
    ];
    sidecar = (await startIn(ns, dir, mosnDoc(listeners, [
      { name: 'passthrough', type: 'ORIGINAL_DST', connect_timeout: '2s' },
      { name: 'general', hosts: [{ address: '127.0.0.1:9100' }] },
    ]), SIDECAR_GID)).sidecar;

    assert.deepEqual(curl(ns, 'http://10.99.0.1:80/'), { code: 0, out: 'GEN saw 10.99.0.1' });
    assert.deepEqual(curl(ns, 'http://10.99.0.1:12345/'), { code: 0, out: 'ORIG12345 saw 10.99.0.1:12345' });
    await servers.waitFor(/conn ORIG12345\n/);
    assert.doesNotMatch(servers.output(), /conn WRONG80\n/);
  } finally {
    await sidecar?.kill();
    await servers?.kill();
    ns.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
