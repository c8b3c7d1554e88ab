/**
 * The light pipeline (src/stream/pipeline.ts StreamPipeline.light): a listener whose filters
 * decide from the request alone (headersOnly: rbac, ip_access, local_ratelimit without
 * descriptors) and tracing's decision runs them on a view, with no stream object per request;
 * a request tracing samples goes on with a stream whose spans see the response. Which listeners
 * qualify, the decision order, and through the real proxies in this process (Bolt, Dubbo,
 * HTTP/1.1, HTTP/2, gRPC): a probe filter sees a view on unsampled requests and a stream on
 * sampled ones, RBAC still denies and the rate limit still limits in each protocol's form, and
 * a sampled request's client span ends with the upstream's answer.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { DecodePhase, FilterStatus, registerStreamFilterKind, type FilterStream, type StreamFilter } from '../../src/api/stream-filter';
import type { FilterConfig } from '../../src/config/types';
import type { TracingConfig } from '../../src/config/tracing';
import type { ListenerContext } from '../../src/filters/network/types';
import type { AccessLogWriter } from '../../src/log';
import { STATUS_SERVER_EXCEPTION, STATUS_UNKNOWN } from '../../src/protocol/bolt';
import { STATUS_OK as DUBBO_OK, STATUS_SERVER_ERROR as DUBBO_SERVER_ERROR } from '../../src/protocol/dubbo';
import { ActiveStream, LightResult, runLight, startSampled, StreamPipeline, type LightView } from '../../src/stream/pipeline';
import { applyTracing, flushTracing } from '../../src/tracing/index';
import { FixedRequestStream } from '../helpers/stream';
import { FakeStream, validateFilter } from '../helpers/filter-stream';
import { inProcessProxy } from '../helpers/in-process-proxy';
import { boltProxyConfig, fakeUpstream, rawClient, rawRequest, rawResponse } from '../helpers/sofa';
import { dubboProxyConfig, dubboRawClient, dubboRequest, startDubboProvider } from '../helpers/dubbo';
import { backend, httpConfig, request, request2 } from '../helpers/http';
import { startCollector, type Collector } from '../helpers/otlp-collector';

/** What the probe filter saw: true for a stream object, false for a light view. */
const seen: boolean[] = [];
registerStreamFilterKind<{ headersOnly: boolean; log: boolean }>({
  type: 'test_light_probe',
  validate: (raw) => raw as { headersOnly: boolean; log: boolean },
  create: (c) => {
    const f: StreamFilter = {
      phase: DecodePhase.BeforeRoute,
      headersOnly: c.headersOnly,
      decode(s: FilterStream) {
        seen.push(s instanceof ActiveStream);
        return FilterStatus.Continue;
      },
    };
    if (c.log) (f as { log?: (s: FilterStream) => void }).log = () => {};
    return f;
  },
});

const probe = (headersOnly = true, log = false): FilterConfig => ({ type: 'test_light_probe', config: { value: { headersOnly, log } } });

function filter(type: string, raw: unknown, listener: string): FilterConfig {
  const { cfg, issues } = validateFilter(type, raw, listener);
  assert.deepEqual(issues.errors, []);
  return { type, config: { value: cfg as Record<string, unknown> } };
}

/** RBAC denying the RPC service com.example.Denied (Bolt: with its version) and the HTTP authority deny.example. */
const rbac = (listener: string): FilterConfig =>
  filter('rbac', {
    rules: {
      action: 'DENY',
      policies: {
        denied: {
          permissions: [
            { header: { name: ':service', exact_match: 'com.example.Denied:1.0' } },
            { header: { name: ':service', exact_match: 'com.example.Denied' } },
            { header: { name: ':authority', exact_match: 'deny.example' } },
          ],
          principals: [{ any: true }],
        },
      },
    },
  }, listener);

/** A bucket of `n` tokens that does not refill during the test. */
const limit = (listener: string, n: number): FilterConfig => {
  const all = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
  return filter('local_ratelimit', { stat_prefix: 't', token_bucket: { max_tokens: n, tokens_per_fill: n, fill_interval: '3600s' }, filter_enabled: all, filter_enforced: all, enable_x_ratelimit_headers: 'DRAFT_VERSION_03' }, listener);
};

function tracing(collector: string, ratio: number): TracingConfig {
  return { driver: 'sofatracer', collector, encoding: 'json', samplingRatio: ratio, batchSize: 512, batchIntervalMs: 100, maxQueueSize: 2048, serviceName: 'light-test', propagators: ['tracecontext'], startChildSpan: true };
}

function pipeline(filters: FilterConfig[], accessLog: AccessLogWriter | null = null): StreamPipeline {
  return new StreamPipeline({ name: 'l', accessLog, streamFilters: filters } as unknown as ListenerContext);
}

test('which listeners run their filters on a view: headersOnly filters before routing, tracing, no access log, no encode or log step', () => {
  applyTracing(undefined);
  const p = pipeline([rbac('flags'), limit('flags', 10), probe()]);
  assert.equal(p.light, true);
  assert.equal(p.timed, false, 'nothing reads the stream times');
  assert.deepEqual(p.lightFilters.length, 3);
  assert.equal(pipeline([]).light, false, 'no filters: inactive, not light');
  assert.equal(pipeline([probe(false)]).light, false, 'a filter that does not declare headersOnly');
  assert.equal(pipeline([probe(true, true)]).light, false, 'a filter with a log step');
  assert.equal(pipeline([probe(true, true)]).timed, true, 'a log step may read the durations');
  const desc = filter('local_ratelimit', {
    stat_prefix: 'd', token_bucket: { max_tokens: 5, tokens_per_fill: 5, fill_interval: '1s' },
    descriptors: [{ entries: [{ key: 'k', value: 'v' }], token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: '1s' } }],
  }, 'flags');
  assert.equal(pipeline([desc]).light, false, 'a rate limit with descriptors runs after routing');
  assert.equal(pipeline([filter('payload_limit', { max_entity_size: 10 }, 'flags')]).light, false, 'an after_route filter');
  const log = { format: { requestHeaders: [] }, log() {} } as unknown as AccessLogWriter;
  const withLog = pipeline([probe()], log);
  assert.equal(withLog.light, false, 'an access log needs the stream');
  assert.equal(withLog.timed, true);
  tracingOn(0.5);
  try {
    const t = pipeline([]);
    assert.equal(t.light, true, 'tracing alone');
    assert.equal(t.timed, false, 'spans keep their own times');
    assert.ok(t.tracing !== null);
  } finally {
    applyTracing(undefined);
  }
});

function tracingOn(ratio: number, url = ''): TracingConfig {
  const cfg = tracing(url, ratio);
  applyTracing(cfg);
  return cfg;
}

/** A light view over fixed request reads (service svc, method m): FakeStream with the `replied` a view has. */
class View extends FakeStream implements LightView {
  get replied(): boolean {
    return this.reply !== null;
  }
  constructor() {
    super({ protocol: 'bolt', service: 'svc', method: 'm' });
  }
}

class TestStream extends FixedRequestStream {
  readonly protocol = 'bolt';
  sendLocalReply(): void {}
  protected park(): void {}
  protected continueFrom(): void {}
}

test('runLight: tracing decides first; a sampled request goes on with a stream that skips tracing\'s step and does not draw again', () => {
  const rnd = Math.random;
  let draws = 0;
  // Head sampling draws a geometric skip count (src/filters/stream/tracing/tracing.ts): at
  // ratio 0.5, 1 - 0.6 = 0.4 gives floor(log 0.4 / log 0.5) = 1: one request passes, the next is sampled.
  const next = 0.6;
  Math.random = () => {
    draws++;
    return next;
  };
  tracingOn(0.5);
  try {
    const p = pipeline([probe()]);
    seen.length = 0;
    // Unsampled: the filters run on the view.
    const v = new View();
    assert.equal(runLight(p, v), LightResult.Go);
    assert.deepEqual(seen, [false]);
    assert.equal(draws, 1);
    // Sampled: nothing else runs on the view; the stream gets the span and the rest.
    seen.length = 0;
    assert.equal(runLight(p, new View()), LightResult.Sampled);
    assert.deepEqual(seen, [], 'the other filters wait for the stream');
    const s = new TestStream();
    s.begin(p, 'bolt', 'l');
    startSampled(p, s);
    assert.ok(s.trace !== null, 'the server span started on the stream');
    const before = draws; // a second decision would draw again (the countdown is spent)
    assert.equal(s.decode(DecodePhase.BeforeRoute), true);
    assert.deepEqual(seen, [true], 'the probe ran once, on the stream');
    assert.equal(draws, before, 'the decision was not drawn again');
    assert.ok(s.trace !== null);
    s.end();
    assert.equal(s.trace, null, 'the stream end closed the spans');
    assert.equal(s.durationMs, undefined, 'no clock read for times nobody reads');
  } finally {
    Math.random = rnd;
    applyTracing(undefined);
  }
});

test('runLight: a headersOnly filter that answers ends the request; one that stops without answering gets a 500', () => {
  applyTracing(undefined);
  const stopper: FilterConfig = { type: 'test_light_stop', config: { value: {} } };
  const undo = registerStreamFilterKind<Record<string, never>>({
    type: 'test_light_stop',
    validate: () => ({}),
    create: () => ({ phase: DecodePhase.BeforeRoute, headersOnly: true, decode: () => FilterStatus.Stop }),
  });
  try {
    const v = new View();
    assert.equal(runLight(pipeline([stopper, probe()]), v), LightResult.Answered);
    assert.equal(v.reply?.status, 500);
    // RBAC on an RPC view: a policy on the service denies with 403 (the codec's permission error).
    const deny = filter('rbac', { rules: { action: 'DENY', policies: { p: { permissions: [{ header: { name: ':service', exact_match: 'svc' } }], principals: [{ any: true }] } } } }, 'stop');
    seen.length = 0;
    const w = new View();
    assert.equal(runLight(pipeline([deny, probe()]), w), LightResult.Answered);
    assert.equal(w.reply?.status, 403);
    assert.deepEqual(seen, [], 'filters after the answer do not run');
  } finally {
    undo();
  }
});

/** Spans of one trace, waiting for `n`. */
async function spansOf(c: Collector, n: number): Promise<Collector['spans']> {
  await flushTracing();
  await c.waitFor(n, 5000);
  return c.spans;
}

test('Bolt through the light path: views for unsampled requests, RBAC and the rate limit answer in Bolt; a sampled request gets its client span', async () => {
  const up = await fakeUpstream((r) => r.sock.write(rawResponse(r.frame, r.buf)));
  const col = await startCollector();
  try {
    for (const ratio of [0, 1]) {
      tracingOn(ratio, col.url);
      const name = `bolt-light-${ratio}`;
      const { port, server } = await inProcessProxy(boltProxyConfig({ clusters: { svc: [up.port] }, listenerName: name }), 'svc', [probe(), rbac(name), limit(name, 2)]);
      const c = await rawClient(port);
      try {
        seen.length = 0;
        c.sock.write(rawRequest(1, 'com.example.Denied:1.0'));
        await c.wait(1);
        assert.equal(c.frames[0].frame.status, STATUS_SERVER_EXCEPTION, 'RBAC: Bolt has no permission status (MOSN: SERVER_EXCEPTION)');
        for (const id of [2, 3, 4]) {
          c.sock.write(rawRequest(id, 'com.example.Ok:1.0'));
          await c.wait(id);
        }
        const st = new Map(c.frames.map((f) => [f.frame.requestId, f.frame.status]));
        assert.equal(st.get(2), 0);
        assert.equal(st.get(3), 0);
        assert.equal(st.get(4), STATUS_UNKNOWN, 'the third request finds the bucket empty (MOSN: LimitExceeded -> UNKNOWN)');
        assert.equal(up.requests.length, ratio === 0 ? 2 : 4, 'denied and limited requests never reach the upstream');
        assert.deepEqual(seen, [ratio === 1, ratio === 1, ratio === 1, ratio === 1], ratio === 0 ? 'unsampled: a view, no stream' : 'sampled: a stream');
        if (ratio === 1) {
          const spans = await spansOf(col, 2 * 2 + 2);
          const clients = spans.filter((s) => s.kind === 3);
          assert.equal(clients.length, 2, 'one client span per forwarded request');
          for (const cl of clients) {
            const server = spans.find((s) => s.spanId === cl.parentSpanId);
            assert.ok(server !== undefined && server.kind === 2 && server.traceId === cl.traceId);
            assert.equal(cl.attributes['upstream.cluster'], 'svc');
          }
          const last = up.requests.at(-1)!;
          assert.ok(last.buf.includes('traceparent'), 'the sampled request carries its traceparent upstream');
        }
      } finally {
        c.sock.destroy();
        server.close();
      }
    }
  } finally {
    applyTracing(undefined);
    await col.close();
    await up.close();
  }
});

test('Dubbo through the light path: RBAC answers in Dubbo, allowed requests reach the provider, filters see a view', async () => {
  applyTracing(undefined);
  const provider = await startDubboProvider({ 'com.example.DemoService': { async echo(a: unknown) { return a; } } });
  const name = 'dubbo-light';
  const { port, server } = await inProcessProxy(dubboProxyConfig({ clusters: { dsvc: [provider.port] }, listenerName: name }), 'dsvc', [probe(), rbac(name)]);
  const c = await dubboRawClient(port);
  try {
    seen.length = 0;
    c.sock.write(dubboRequest(1, 'com.example.Denied', 'echo', { version: '1.0' }));
    c.sock.write(dubboRequest(2, 'com.example.DemoService', 'echo', { version: '1.0.0' }));
    await c.wait(2);
    const byId = new Map(c.frames.map((f) => [f.frame.requestId, f.frame.status]));
    assert.equal(byId.get(1), DUBBO_SERVER_ERROR, "403: MOSN's PermissionDeniedCode -> Dubbo SERVER_ERROR");
    assert.equal(byId.get(2), DUBBO_OK, 'the allowed request was answered by the provider');
    assert.deepEqual(seen, [false, false]);
  } finally {
    c.sock.destroy();
    server.close();
    await provider.close();
  }
});

test('HTTP/1.1, HTTP/2 and gRPC through the light path: 403 / 429 with x-ratelimit headers / grpc-status, views unless sampled, sampled spans carry the status', async () => {
  const be = await backend('b1');
  const col = await startCollector();
  const router = { router_config_name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'web' } }] }] };
  try {
    for (const ratio of [0, 1]) {
      tracingOn(ratio, col.url);
      for (const down of ['Http1', 'Http2']) {
        const name = `http-light-${down}-${ratio}`;
        const doc = httpConfig([{ name, downstream: down, upstream: 'Http1', router: 'r' }], [router], { web: [be.port] });
        const { port, server } = await inProcessProxy(doc, 'web', [probe(), rbac(name), limit(name, 2)]);
        const get = down === 'Http1' ? request : request2;
        try {
          seen.length = 0;
          const d = await get(port, '/a', { headers: down === 'Http1' ? { host: 'deny.example' } : { ':authority': 'deny.example' } });
          assert.equal(d.status, 403);
          const ok = await get(port, '/b');
          assert.equal(ok.status, 200, ok.body);
          assert.equal(ok.headers['x-ratelimit-limit'], '2');
          assert.equal(ok.headers['x-ratelimit-remaining'], '1');
          if (down === 'Http2') {
            // gRPC: the rate limit's answer is grpc-status RESOURCE_EXHAUSTED (8) after the last token.
            assert.equal((await request2(port, '/c')).status, 200);
            const g = await grpcCall(port);
            assert.equal(g['grpc-status'], '8');
          } else {
            assert.equal((await get(port, '/c')).status, 200);
            const l = await get(port, '/d');
            assert.equal(l.status, 429);
            assert.equal(l.headers['x-ratelimit-remaining'], '0');
          }
          assert.deepEqual(seen, [ratio === 1, ratio === 1, ratio === 1, ratio === 1]);
        } finally {
          server.close();
        }
      }
    }
    const spans = await spansOf(col, 2 * 2 + 2 * 2);
    const servers = spans.filter((s) => s.kind === 2 && s.attributes['response.status_code'] === 200);
    assert.ok(servers.length >= 4, `sampled server spans end with the response status (${servers.length})`);
    const clients = spans.filter((s) => s.kind === 3 && s.attributes['response.status_code'] === 200);
    assert.ok(clients.length >= 4, `client spans end with the upstream's status (${clients.length})`);
  } finally {
    applyTracing(undefined);
    await col.close();
    await be.close();
  }
});

/** A gRPC request (h2c, application/grpc) on a fresh session: its response headers merged with its trailers. */
function grpcCall(port: number): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`http://127.0.0.1:${port}`);
    s.on('error', reject);
    const st = s.request({ ':method': 'POST', ':path': '/pkg.Svc/Call', 'content-type': 'application/grpc', te: 'trailers' });
    const out: Record<string, string> = {};
    const take = (h: http2.IncomingHttpHeaders): void => {
      for (const [k, v] of Object.entries(h)) if (typeof v === 'string') out[k] = v;
    };
    st.on('response', take);
    st.on('trailers', take);
    st.resume();
    st.on('end', () => {
      s.close();
      resolve(out);
    });
    st.on('error', reject);
    st.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}
