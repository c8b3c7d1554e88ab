/**
 * Transparent interception pieces without a namespace: the MOSN/Envoy keys as parsed, the
 * ORIGINAL_DST balancer (header, original destination, on-demand hosts and their cleanup),
 * the listener directory of the hand-off, and reading the original destination of real sockets.
 * The iptables end-to-end cases are in test/integration/transparent.test.ts.
 */
import { test, describe } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { ConfigError, parseConfig } from '../../src/config';
import type { ListenerConfig, OriginalDstLbConfig } from '../../src/config/types';
import { loadBinding, native } from '../../src/native';
import { ListenerDirectory, originalDstOf, readOriginalDst, inheritOriginalDst } from '../../src/network/original-dst';
import { OriginalDstLb, parseDestination } from '../../src/upstream/original-dst';
import type { Host, LbContext } from '../../src/upstream/lb';
import '../../src/extensions';

function doc(listener: Record<string, unknown>, clusters: Record<string, unknown>[] = []): unknown {
  return {
    servers: [{
      listeners: [{
        name: 'out', address: '0.0.0.0:15001', bind_port: true, ...listener,
        filter_chains: [{ filters: [{ type: 'tcp_proxy', config: { cluster: 'pass' } }] }],
      }],
    }],
    cluster_manager: { clusters: [{ name: 'pass', type: 'ORIGINAL_DST', lb_type: 'LB_ORIGINAL_DST' }, ...clusters] },
  };
}

function listenerOf(l: Record<string, unknown>): ListenerConfig {
  return parseConfig(doc(l)).servers[0].listeners[0];
}

function errorsOf(d: unknown): string[] {
  try {
    parseConfig(d);
  } catch (e) {
    if (e instanceof ConfigError) return e.errors.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
}

describe('original destination: config', () => {
  test('MOSN use_original_dst "redirect" / "tproxy", and Envoy\'s boolean', () => {
    assert.deepEqual(pick(listenerOf({ use_original_dst: 'redirect' })), { useOriginalDst: true, originalDst: 'redirect', originalDstFallbackToLocal: undefined });
    assert.deepEqual(pick(listenerOf({ use_original_dst: 'TProxy' })), { useOriginalDst: true, originalDst: 'tproxy', originalDstFallbackToLocal: undefined });
    assert.deepEqual(pick(listenerOf({ use_original_dst: true })), { useOriginalDst: true, originalDst: 'redirect', originalDstFallbackToLocal: undefined });
    assert.deepEqual(pick(listenerOf({ use_original_dst: false })), { useOriginalDst: undefined, originalDst: undefined, originalDstFallbackToLocal: undefined });
    assert.deepEqual(pick(listenerOf({})), { useOriginalDst: undefined, originalDst: undefined, originalDstFallbackToLocal: undefined });
  });

  test('the original_dst listener filter reads the destination without a hand-off (Istio virtualInbound)', () => {
    const l = listenerOf({ listener_filters: [{ type: 'original_dst', config: { type: 'tproxy', fallback_to_local: true } }] });
    assert.deepEqual(pick(l), { useOriginalDst: undefined, originalDst: 'tproxy', originalDstFallbackToLocal: true });
    const e = listenerOf({ listener_filters: [{ name: 'envoy.filters.listener.original_dst' }] });
    assert.deepEqual(pick(e), { useOriginalDst: undefined, originalDst: 'redirect', originalDstFallbackToLocal: undefined });
    // With use_original_dst the filter's type must agree.
    assert.deepEqual(errorsOf(doc({ use_original_dst: 'redirect', listener_filters: [{ type: 'original_dst', config: { type: 'tproxy' } }] })), [
      'servers[0].listeners[0].listener_filters: original_dst type "tproxy" contradicts use_original_dst "redirect"',
    ]);
    assert.deepEqual(errorsOf(doc({ use_original_dst: 7 })), ['servers[0].listeners[0].use_original_dst: 7 must be "redirect", "tproxy" or a boolean']);
  });

  test('ORIGINAL_DST clusters: either key implies the other, hosts are ignored, original_dst_lb_config', () => {
    const c = (extra: Record<string, unknown>) => parseConfig(doc({}, [{ name: 'x', ...extra }])).clusters[1];
    const a = c({ type: 'ORIGINAL_DST' });
    assert.equal(a.type, 'ORIGINAL_DST');
    assert.equal(a.lbType, 'LB_ORIGINAL_DST');
    assert.deepEqual(a.originalDstLb, { headerName: '', replaceLocal: false, cleanupIntervalMs: 5000 });
    const b = c({ lb_type: 'LB_ORIGINAL_DST', hosts: [{ address: '10.0.0.1:80' }], cleanup_interval: '30s' });
    assert.equal(b.type, 'ORIGINAL_DST');
    assert.deepEqual(b.hosts, []);
    assert.equal(b.originalDstLb?.cleanupIntervalMs, 30_000);
    // MOSN: use_header with the default header "host"; Envoy: use_http_header, x-envoy-original-dst-host.
    assert.equal(c({ type: 'ORIGINAL_DST', original_dst_lb_config: { use_header: true } }).originalDstLb?.headerName, 'host');
    assert.equal(c({ type: 'ORIGINAL_DST', original_dst_lb_config: { use_header: true, header_name: 'X-Dst' } }).originalDstLb?.headerName, 'x-dst');
    assert.equal(c({ type: 'ORIGINAL_DST', original_dst_lb_config: { use_http_header: true } }).originalDstLb?.headerName, 'x-envoy-original-dst-host');
    assert.equal(c({ type: 'ORIGINAL_DST', original_dst_lb_config: { replace_local: true } }).originalDstLb?.replaceLocal, true);
    const warnings = parseConfig(doc({}, [{ name: 'x', type: 'ORIGINAL_DST', hosts: [{ address: '10.0.0.1:80' }] }])).warnings ?? [];
    assert.ok(warnings.some((w) => w.includes('cluster_manager.clusters[1].hosts') && w.includes('hosts ignored')), warnings.join('\n'));
  });
});

function pick(l: ListenerConfig): Record<string, unknown> {
  return { useOriginalDst: l.useOriginalDst, originalDst: l.originalDst, originalDstFallbackToLocal: l.originalDstFallbackToLocal };
}

const LB: OriginalDstLbConfig = { headerName: '', replaceLocal: false, cleanupIntervalMs: 60_000 };

/** A connected pair on 127.0.0.1: the accepted side is what a listener sees. */
async function acceptedPair(): Promise<{ accepted: net.Socket; client: net.Socket; port: number; close(): Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const got = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect(port, '127.0.0.1');
  const accepted = await got;
  return {
    accepted, client, port,
    close: async () => {
      client.destroy();
      accepted.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('original destination: ORIGINAL_DST balancer', () => {
  test('destination from the header (IP literal, port 80 by default), else none without an original destination', () => {
    const lb = new OriginalDstLb({ ...LB, headerName: 'x-envoy-original-dst-host' }, () => {});
    const ctx = (v: string | undefined): LbContext => ({ downstream: null, header: (n) => (n === 'x-envoy-original-dst-host' ? v : undefined) });
    assert.equal(lb.choose(ctx('10.1.2.3:8080'))?.address, '10.1.2.3:8080');
    assert.equal(lb.choose(ctx('10.1.2.3'))?.address, '10.1.2.3:80');
    assert.equal(lb.choose(ctx('[fd00::1]:443'))?.address, '[fd00::1]:443');
    assert.equal(lb.choose(ctx('evil.example:80')), null); // no DNS names: a header must not send us anywhere by name
    assert.equal(lb.choose(ctx(undefined)), null); // no header and no original destination
    assert.equal(lb.choose(null), null);
    assert.equal(lb.choose(), null);
    lb.close();
  });

  test('parseDestination', () => {
    assert.deepEqual(parseDestination(' 1.2.3.4:5 '), { host: '1.2.3.4', port: 5 });
    assert.deepEqual(parseDestination('::1'), { host: '::1', port: 80 });
    assert.equal(parseDestination('1.2.3.4:0'), null);
    assert.equal(parseDestination('1.2.3.4:99999'), null);
    assert.equal(parseDestination('[::1'), null);
    assert.equal(parseDestination('[::1]x'), null);
    assert.equal(parseDestination(''), null);
  });

  test('the original destination a listener read; hosts made on demand, reused, dropped when idle', async () => {
    const p = await acceptedPair();
    try {
      const dropped: Host[] = [];
      const lb = new OriginalDstLb(LB, (h) => dropped.push(h));
      assert.equal(lb.choose({ downstream: p.accepted }), null); // nothing read: no host (no loop to the listener itself)
      const d = readOriginalDst(p.accepted, 'tproxy', 15001); // TPROXY: the local address is the original destination
      assert.deepEqual(d, { host: '127.0.0.1', port: p.port });
      assert.deepEqual(originalDstOf(p.accepted), d);
      const h = lb.choose({ downstream: p.accepted });
      assert.equal(h?.address, `127.0.0.1:${p.port}`);
      assert.equal(lb.choose({ downstream: p.accepted }), h); // same Host object (its pools and counts)
      assert.equal(lb.size, 1);
      lb.sweep(); // chosen since the last sweep: kept
      assert.equal(lb.size, 1);
      h!.active = 1;
      lb.sweep(); // not chosen since, but busy: kept
      assert.equal(lb.size, 1);
      h!.active = 0;
      lb.sweep();
      assert.equal(lb.size, 0);
      assert.deepEqual(dropped, [h]);
      // replace_local: the original port on 127.0.0.1.
      const local = new OriginalDstLb({ ...LB, replaceLocal: true }, () => {});
      const wrapped = new net.Socket();
      inheritOriginalDst(wrapped, p.accepted); // a TLS socket over the accepted one
      assert.equal(local.choose({ downstream: wrapped })?.address, `127.0.0.1:${p.port}`);
      local.close();
      lb.close();
    } finally {
      await p.close();
    }
  });

  test('a TPROXY connection to the capture port itself has no original destination', async () => {
    const p = await acceptedPair();
    try {
      assert.equal(readOriginalDst(p.accepted, 'tproxy', p.port), null);
    } finally {
      await p.close();
    }
  });
});

describe('original destination: reading it from the kernel', () => {
  test('REDIRECT without NAT: the addon answers the socket\'s own address, which is no original destination', { skip: native.kind !== 'native' && 'native addon not loaded' }, async () => {
    const p = await acceptedPair();
    try {
      const fd = (p.accepted as unknown as { _handle: { fd: number } })._handle.fd;
      const r = native.getOriginalDst(fd);
      // Conntrack (when loaded) knows the connection un-NATed; without it there is no answer.
      if (r !== null) assert.deepEqual({ address: r.address, port: r.port }, { address: '127.0.0.1', port: p.port });
      assert.equal(readOriginalDst(p.accepted, 'redirect', 15001), null);
      assert.equal(originalDstOf(p.accepted), null);
      assert.throws(() => native.getOriginalDst(-1), RangeError);
    } finally {
      await p.close();
    }
  });

  test('the TypeScript fallback cannot read SO_ORIGINAL_DST nor set IP_TRANSPARENT', () => {
    const fb = loadBinding('fallback');
    assert.throws(() => fb.getOriginalDst(0), { code: 'ENOSYS' });
    assert.throws(() => fb.setTransparent(0), { code: 'ENOSYS' });
  });
});

describe('original destination: the hand-off directory', () => {
  interface Fake {
    readonly config: ListenerConfig;
    accepting: boolean;
  }
  const fake = (address: string, port: number): Fake => ({ config: { address: { host: address, port } } as ListenerConfig, accepting: true });

  test('exact ip:port first, then the wildcard of the port; never itself or a listener that stopped', () => {
    const dir = new ListenerDirectory<Fake>();
    const capture = fake('0.0.0.0', 15001);
    const wild = fake('0.0.0.0', 8080);
    const exact = fake('10.0.0.1', 8080);
    const v6 = fake('::', 9090);
    const local = fake('127.0.0.1', 7070);
    for (const l of [capture, wild, exact, v6, local]) dir.add(l);
    assert.equal(dir.find({ host: '10.0.0.1', port: 8080 }, capture, false), exact);
    assert.equal(dir.find({ host: '10.0.0.2', port: 8080 }, capture, false), wild);
    assert.equal(dir.find({ host: '10.0.0.2', port: 9090 }, capture, false), v6); // dual-stack [::]
    assert.equal(dir.find({ host: 'fd00::5', port: 9090 }, capture, false), v6);
    assert.equal(dir.find({ host: 'fd00::5', port: 8080 }, capture, false), null); // 0.0.0.0 takes no IPv6
    assert.equal(dir.find({ host: '10.0.0.2', port: 5555 }, capture, false), null); // passthrough
    assert.equal(dir.find({ host: '10.0.0.2', port: 15001 }, capture, false), null); // itself
    // MOSN fallback_to_local: 127.0.0.1:port instead of the wildcard.
    assert.equal(dir.find({ host: '10.0.0.9', port: 7070 }, capture, true), local);
    assert.equal(dir.find({ host: '10.0.0.9', port: 8080 }, capture, true), null);
    exact.accepting = false; // draining
    assert.equal(dir.find({ host: '10.0.0.1', port: 8080 }, capture, false), wild);
    dir.remove(wild);
    assert.equal(dir.find({ host: '10.0.0.1', port: 8080 }, capture, false), null);
  });
});
