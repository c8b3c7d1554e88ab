/**
 * Dubbo tracing: dubbo2.js -> Outrigger A -> Outrigger B -> dubbo-remoting provider, tracing on
 * in both. A writes its client span as a `traceparent` attachment of the upstream Dubbo request;
 * B continues it (its server span is A's client span's child); the provider still answers (the
 * rewritten body is valid hessian2). A traceparent the caller sends as an attachment is continued.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { closeDubbo2js, dubbo2js, dubboProxyConfig, dubboRawClient, dubboRequest, java, startDubboProvider } from '../helpers/dubbo';
import { startCollector, type CollectedSpan, type Collector } from '../helpers/otlp-collector';
import { startSidecar } from '../helpers/sidecar';

const SVC = 'com.example.TracedEcho';

function tracing(c: Collector, service: string): Record<string, unknown> {
  return { enable: true, driver: 'SOFATracer', config: { collector: c.url, encoding: 'json', sampling_ratio: 1, batch_interval: '50ms', service_name: service, start_child_span: true } };
}

function byKind(spans: CollectedSpan[], service: string, kind: number): CollectedSpan[] {
  return spans.filter((x) => x.service === service && x.kind === kind);
}

test('Dubbo: traceparent injected into the attachments and continued through two Outriggers (dubbo2.js)', { timeout: 30_000 }, async () => {
  const c = await startCollector();
  const provider = await startDubboProvider({ [SVC]: { async echo(s: string) { return `echo ${s}`; } } });
  const b = await startSidecar({ ...dubboProxyConfig({ clusters: { p: [provider.port] } }), tracing: tracing(c, 'server-side') });
  const a = await startSidecar({ ...dubboProxyConfig({ clusters: { p: [b.ports.get('clientListener') as number] } }), tracing: tracing(c, 'client-side') });
  const d2 = dubbo2js(a.ports.get('clientListener') as number, SVC, { echo: (s: string) => [java.String(s)] });
  try {
    const r = await d2.svc.echo('hi');
    assert.equal(r.err, null, String(r.err));
    assert.equal(r.res, 'echo hi');
    await c.waitFor(4);
    const [as] = byKind(c.spans, 'client-side', 2);
    const [ac] = byKind(c.spans, 'client-side', 3);
    const [bs] = byKind(c.spans, 'server-side', 2);
    const [bc] = byKind(c.spans, 'server-side', 3);
    assert.ok(as && ac && bs && bc, JSON.stringify(c.spans));
    for (const s of [ac, bs, bc]) assert.equal(s.traceId, as.traceId);
    assert.equal(as.attributes['rpc.service'], SVC);
    assert.equal(as.attributes['rpc.method'], 'echo');
    assert.equal(ac.parentSpanId, as.spanId);
    assert.equal(bs.parentSpanId, ac.spanId, 'B continues the context A wrote into the Dubbo attachments');
    assert.equal(bc.parentSpanId, bs.spanId);
    for (const s of [as, ac, bs, bc]) assert.notEqual(s.statusCode, 2, `${s.service} span marked ERROR (Dubbo 20 is OK)`);

    // A caller's own traceparent attachment (raw frame) is continued by A.
    const tid = '4bf92f3577b34da6a3ce929d0e0e4736';
    const raw = await dubboRawClient(a.ports.get('clientListener') as number);
    raw.sock.write(dubboRequest(7, SVC, 'echo', { attachments: { traceparent: `00-${tid}-00f067aa0ba902b7-01` } }));
    await raw.wait(1);
    assert.equal(raw.frames[0].frame.status, 20);
    raw.sock.destroy();
    await c.waitFor(8);
    const mine = c.spans.filter((s) => s.traceId === tid);
    assert.equal(mine.length, 4, JSON.stringify(c.spans));
    assert.equal(byKind(mine, 'client-side', 2)[0].parentSpanId, '00f067aa0ba902b7');
    assert.equal(byKind(mine, 'server-side', 2)[0].parentSpanId, byKind(mine, 'client-side', 3)[0].spanId);
  } finally {
    closeDubbo2js(d2.dubbo);
    await a.terminate();
    await b.terminate();
    await provider.close();
    await c.close();
  }
});
