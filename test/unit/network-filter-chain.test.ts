/**
 * The network filter chain contract (src/filters/network/types.ts, chain.ts) on a real
 * listener: read filters run in order with Continue / StopIteration, a filter that stopped
 * resumes the chain with continueReading, the terminal filter gets the held bytes as its first
 * read, a filter can refuse a connection at onNewConnection, and a connection no filter takes
 * is closed and counted.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import type { ListenerConfig } from '../../src/config/types';
import { CX_NO_CHAIN_MATCH } from '../../src/filters/network/chain';
import { FilterStatus, registerNetworkFilter, type ListenerContext, type NetworkFilterFactory } from '../../src/filters/network/types';
import type { Connection, ConnectionHandler } from '../../src/network/connection';
import { buildListenerRuntime, WorkerListener } from '../../src/network/listener';
import type { ClusterManager } from '../../src/upstream/cluster';
import { STATS_SLOTS } from '../../src/stats/layout';

const events: string[] = [];

/** Read filter: holds every byte until a line "GO\n", then continues with what follows it. */
registerNetworkFilter('test_gate', () => ({
  onAccept(conn: Connection) {
    conn.destroy();
  },
  createFilter(cb) {
    let held = '';
    return {
      onNewConnection() {
        events.push('gate:new');
        return FilterStatus.Continue;
      },
      onData(buf, start, end) {
        held += buf.toString('latin1', start, end);
        const i = held.indexOf('GO\n');
        if (i < 0) return FilterStatus.StopIteration;
        const rest = Buffer.from(held.slice(i + 3), 'latin1');
        events.push('gate:open');
        cb.continueReading(rest, 0, rest.length);
        return FilterStatus.StopIteration;
      },
    };
  },
}));

/** Read filter: counts and continues. */
registerNetworkFilter('test_count', () => ({
  onAccept(conn: Connection) {
    conn.destroy();
  },
  createFilter() {
    return {
      onNewConnection() {
        events.push('count:new');
        return FilterStatus.Continue;
      },
      onData(_b, start, end) {
        events.push(`count:${end - start}`);
        return FilterStatus.Continue;
      },
    };
  },
}));

/** Read filter refusing every connection at its start. */
registerNetworkFilter('test_deny', () => ({
  onAccept(conn: Connection) {
    conn.destroy();
  },
  createFilter(cb) {
    return {
      onNewConnection() {
        cb.connection.destroy();
        return FilterStatus.StopIteration;
      },
      onData() {
        return FilterStatus.StopIteration;
      },
    };
  },
}));

/** Terminal filter echoing with a prefix (no onAcceptWithData: the chain replays the held bytes). */
registerNetworkFilter('test_echo', () => ({
  onAccept(conn: Connection) {
    const h: ConnectionHandler = {
      onData(c, buf, start, end) {
        const out = Buffer.from(`echo:${buf.toString('latin1', start, end)}`, 'latin1');
        c.write(out, 0, out.length);
      },
      onEnd(c) {
        c.destroy();
      },
      onClose() {},
      onHighWatermark() {},
      onLowWatermark() {},
    };
    conn.setHandler(h);
  },
}));

/** Terminal filter that takes nothing. */
registerNetworkFilter('test_never', (): NetworkFilterFactory => ({
  onAccept(conn: Connection) {
    conn.destroy();
  },
  accepts: () => false,
}));

async function withListener(types: string[], run: (port: number, counters: Float64Array) => Promise<void>): Promise<void> {
  const config = {
    name: 'chain',
    address: { host: '127.0.0.1', port: 0 },
    bindPort: true,
    filterChains: [{ filters: types.map((type) => ({ type, config: {} })) }],
    streamFilters: [],
    accessLogs: [],
    connectionIdleTimeoutMs: 0,
    perConnBufferLimitBytes: 1 << 20,
    inspector: false,
  } as unknown as ListenerConfig;
  const counters = new Float64Array(STATS_SLOTS);
  const ctx: ListenerContext = { name: 'chain', counters, base: 0, clusters: {} as ClusterManager, idleTimeoutMs: 0, bufferLimit: 1 << 20, accessLog: null };
  const wl = new WorkerListener(buildListenerRuntime(config, ctx));
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  wl.adoptServer(server);
  try {
    await run((server.address() as net.AddressInfo).port, counters);
  } finally {
    wl.closeAll();
    await new Promise((r) => setTimeout(r, 20));
  }
}

function client(port: number): Promise<{ s: net.Socket; read(): string; closed: Promise<void> }> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('error', () => {});
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    s.on('connect', () => resolve({ s, read: () => got, closed }));
  });
}

const tick = (ms = 60): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('read filters run in order; StopIteration holds bytes; continueReading hands them to the terminal filter', async () => {
  events.length = 0;
  await withListener(['test_count', 'test_gate', 'test_echo'], async (port) => {
    const c = await client(port);
    c.s.write('hello ');
    await tick();
    assert.equal(c.read(), '', 'the gate holds the bytes');
    c.s.write('GO\nabc');
    await tick();
    assert.equal(c.read(), 'echo:abc', 'the terminal got what the gate passed on');
    c.s.write('def');
    await tick();
    assert.equal(c.read(), 'echo:abcecho:def', 'later reads go to the terminal');
    assert.deepEqual(events, ['count:new', 'gate:new', 'count:6', 'count:6', 'gate:open']);
    c.s.destroy();
  });
});

test('a read filter refuses a connection at onNewConnection; a chain nobody takes closes and counts', async () => {
  await withListener(['test_deny', 'test_echo'], async (port) => {
    const c = await client(port);
    c.s.write('x');
    await c.closed;
    assert.equal(c.read(), '');
  });
  await withListener(['test_count', 'test_never'], async (port, counters) => {
    const c = await client(port);
    c.s.write('x');
    await c.closed;
    assert.equal(counters[CX_NO_CHAIN_MATCH], 1);
  });
});
