/**
 * The phase machine of src/stream/active-stream.ts with fake protocol hooks: the phases run in
 * order for a stream with filters, a connect failure is retried on a host not tried yet within
 * num_retries and the cluster's retry budget, then answered locally with UF; a stream filter
 * that stops the request holds every later phase until resume().
 */
import { test } from 'node:test';
import { FixedRequestStream } from '../helpers/stream';
import * as assert from 'node:assert/strict';
import { DecodePhase, FilterStatus } from '../../src/api/stream-filter';
import type { ListenerContext } from '../../src/filters/network/types';
import { RETRY_CONNECT_FAILURE, type RetryPolicy } from '../../src/router/http-routes';
import { attemptDeadline, AttemptFailure, attemptFailed, LocalReplyKind, perTryExpired, retryAttempt, runPhases, startRequestTime, type RetryState, type StreamHooks } from '../../src/stream/active-stream';
import { StreamPipeline } from '../../src/stream/pipeline';
import type { Cluster } from '../../src/upstream/cluster';
import { createLoadBalancer, Host } from '../../src/upstream/lb';

class S extends FixedRequestStream {
  sendLocalReply(): void {}
  protected park(): void {}
  protected continueFrom(phase: DecodePhase): void {
    runPhases(adapter, this, phase);
  }
}

function fakeCluster(n: number, maxRetries: number): Cluster {
  const hosts = Array.from({ length: n }, (_, i) => new Host({ address: { host: '127.0.0.1', port: 1000 + i }, weight: 1 }));
  let retries = 0;
  return {
    name: 'c',
    hosts,
    lb: createLoadBalancer('LB_ROUNDROBIN', hosts),
    counters: new Float64Array(4096),
    base: 0,
    tryAcquireRetry: () => (maxRetries === 0 || retries < maxRetries ? (retries++, true) : false),
    releaseRetry: () => void retries--,
  } as unknown as Cluster;
}

const policy: RetryPolicy = { on: RETRY_CONNECT_FAILURE, numRetries: 2, perTryTimeoutMs: 0 };

/** A protocol adapter that records what the phase machine asks of it; every attempt fails to connect. */
class Adapter implements StreamHooks<S> {
  calls: string[] = [];
  cluster: Cluster = fakeCluster(3, 0);
  u: RetryState = { cluster: null, retries: 0, retryPending: false, retryHeld: false, tried: null, deadlineAt: 0 };
  routePhase(s: S | null): S | null | undefined {
    this.calls.push('route');
    this.u.cluster = this.cluster;
    return s;
  }
  prepareUpstream(): boolean {
    this.calls.push('prepare');
    return true;
  }
  routedCluster(): Cluster {
    return this.cluster;
  }
  retryState(): RetryState {
    return this.u;
  }
  sendAttempt(s: S | null, host: Host): void {
    this.calls.push(`send ${host.port}`);
    (this.u.tried ??= []).push(host);
    attemptFailed(this, s, policy, AttemptFailure.ConnectFailure, true, 0);
  }
  localReply(_s: S | null, kind: LocalReplyKind): void {
    this.calls.push(`reply ${kind}`);
  }
  retry(s: S | null): void {
    this.calls.push('retry');
    retryAttempt(this, s);
  }
}

let adapter = new Adapter();

function pipelineWith(decode: (s: S) => FilterStatus): StreamPipeline {
  const ctx = { name: 'l', streamFilters: [], accessLog: null } as unknown as ListenerContext;
  const p = new StreamPipeline(ctx);
  for (const phase of [DecodePhase.BeforeRoute, DecodePhase.AfterRoute, DecodePhase.AfterChooseHost]) {
    p.decoders[phase].push({ phase, decode: (s) => decode(s as S) });
  }
  return p;
}

test('phase machine: filters, route, host; connect failures retried on hosts not tried yet, then a local reply with UF', () => {
  adapter = new Adapter();
  const seen: string[] = [];
  const s = new S();
  s.begin(pipelineWith(() => (seen.push(adapter.calls.join(',')), FilterStatus.Continue)), 'x', 'l');
  runPhases(adapter, s, DecodePhase.BeforeRoute);
  // before_route saw nothing yet; after_route after routing and preparing; after_choose_host once.
  assert.deepEqual(seen, ['', 'route', 'route,prepare']);
  const c = adapter.calls;
  assert.deepEqual(c.map((x) => x.replace(/^send \d+$/, 'send N')), ['route', 'prepare', 'send N', 'retry', 'send N', 'retry', 'send N', `reply ${LocalReplyKind.UpstreamFailure}`]);
  assert.equal(new Set([c[2], c[4], c[6]]).size, 3, `each attempt on a host not tried yet: ${c.join(',')}`);
  assert.equal(s.responseFlag, 'UF');
  assert.equal(adapter.u.retries, 2);
});

test('phase machine: the retry budget (max_retries) stops retries with URX; a stopped filter holds the phases until resume()', () => {
  adapter = new Adapter();
  adapter.cluster = fakeCluster(3, 1);
  let stop = true;
  const s = new S();
  s.begin(pipelineWith(() => (stop ? ((stop = false), FilterStatus.Stop) : FilterStatus.Continue)), 'x', 'l');
  runPhases(adapter, s, DecodePhase.BeforeRoute);
  assert.equal(adapter.calls.length, 0, 'held before routing');
  s.resume();
  // One retry holds the only budget place; the next failure is answered (URX, then UF).
  assert.deepEqual(adapter.calls.map((x) => x.replace(/^send \d+$/, 'send N')), ['route', 'prepare', 'send N', 'retry', 'send N', `reply ${LocalReplyKind.UpstreamFailure}`]);
  assert.equal(s.responseFlag, 'URX,UF');
});

test('phase machine: one attempt time for every protocol (the per-try timeout within the request time, kept across attempts)', () => {
  const u: RetryState = { cluster: null, retries: 0, retryPending: false, retryHeld: false, tried: null, deadlineAt: 0 };
  const per: RetryPolicy = { ...policy, perTryTimeoutMs: 300 };
  startRequestTime(u, 1000, 10_000);
  assert.equal(u.deadlineAt, 11_000);
  assert.equal(attemptDeadline(u, per, 10_000), 10_300, 'the per-try timeout comes first');
  assert.equal(attemptDeadline(u, per, 10_800), 11_000, 'never beyond the request time');
  assert.equal(attemptDeadline(u, policy, 10_000), 11_000, 'no per-try timeout: the request time');
  assert.equal(attemptDeadline(u, null, 10_000), 11_000);
  assert.equal(perTryExpired(u, 10_300), true, 'time left: a per-try timeout (retry decision)');
  assert.equal(perTryExpired(u, 11_000), false, 'the request time ran out');
  startRequestTime(u, 0, 10_000);
  assert.equal(attemptDeadline(u, per, 10_000), 10_300, 'no route timeout: the per-try timeout alone');
  assert.equal(attemptDeadline(u, policy, 10_000), 0, 'neither: no deadline');
  assert.equal(perTryExpired(u, 10_300), true);
  assert.equal(perTryExpired(null, 10_300), false);
});
