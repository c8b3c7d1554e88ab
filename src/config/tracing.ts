/**
 * MOSN's top-level `tracing` section, with the OTLP exporter settings of Outrigger under its
 * `config`:
 *
 *   "tracing": {
 *     "enable": true,
 *     "driver": "SOFATracer",            // or "tracer" (older MOSN key); any MOSN driver name
 *     "config": {
 *       "collector": "http://127.0.0.1:4318/v1/traces",   // OTLP/HTTP traces URL (absent: propagate only)
 *       "encoding": "protobuf",          // or "json"
 *       "sampling_ratio": 0.01,          // head sampling of new traces; incoming sampled flags are honoured
 *       "batch_size": 512, "batch_interval": "5s", "max_queue_size": 2048,
 *       "service_name": "outrigger",
 *       "propagators": ["tracecontext", "b3", "b3multi"]   // formats written upstream (HTTP)
 *     }
 *   }
 *
 * MOSN drivers' own keys (SOFATracer's log settings, SkyWalking's backend, Jaeger's agent) are
 * warned as ignored: Outrigger exports OTLP whatever the driver is called.
 */
import { showValue } from './errors';
import type { ConfigObject } from './reader';

export interface TracingConfig {
  /** MOSN's driver name (lower-case), "" when absent. */
  readonly driver: string;
  /** OTLP/HTTP traces URL; "" = spans are not exported (propagation only). */
  readonly collector: string;
  readonly encoding: 'protobuf' | 'json';
  /** 0..1: share of new traces (no incoming sampled flag) that are recorded. */
  readonly samplingRatio: number;
  readonly batchSize: number;
  readonly batchIntervalMs: number;
  readonly maxQueueSize: number;
  readonly serviceName: string;
  /** Formats written on upstream HTTP requests (W3C always; "b3" single header, "b3multi"). */
  readonly propagators: readonly ('tracecontext' | 'b3' | 'b3multi')[];
  /**
   * Envoy's router `start_child_span`: false (the default, as Envoy): one span per request and
   * sidecar, whose context goes upstream; true: the request's span and a CLIENT child span per
   * upstream attempt, whose context goes upstream.
   */
  readonly startChildSpan: boolean;
}

const PROPAGATORS = ['tracecontext', 'b3', 'b3multi'] as const;

function isHttpUrl(v: string): boolean {
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** The `tracing` section: undefined when absent or disabled. */
export function parseTracing(t: ConfigObject): TracingConfig | undefined {
  const enable = t.bool('enable', false);
  const driver = (t.str('driver') ?? t.str('tracer') ?? '').toLowerCase();
  const c = t.obj('config');
  let collector = '';
  let encoding: 'protobuf' | 'json' = 'protobuf';
  let samplingRatio = 1;
  let batchSize = 512;
  let batchIntervalMs = 5000;
  let maxQueueSize = 2048;
  let serviceName = 'outrigger';
  let propagators: ('tracecontext' | 'b3' | 'b3multi')[] = ['tracecontext'];
  let startChildSpan = false;
  if (c !== undefined) {
    collector = c.str('collector', { def: '' }) ?? '';
    if (collector !== '') {
      if (!isHttpUrl(collector)) t.issues.error(c.at('collector'), `${showValue(collector)} must be an http:// or https:// URL`);
    }
    const enc = c.str('encoding', { def: 'protobuf' });
    if (enc === 'json' || enc === 'protobuf') encoding = enc;
    else t.issues.error(c.at('encoding'), `${showValue(enc)} must be "protobuf" or "json"`);
    const r = c.get('sampling_ratio');
    if (r !== undefined) {
      if (typeof r === 'number' && r >= 0 && r <= 1) samplingRatio = r;
      else t.issues.error(c.at('sampling_ratio'), `${showValue(r)} must be a number in 0..1`);
    }
    batchSize = c.int('batch_size', { def: batchSize, min: 1, max: 65536 });
    maxQueueSize = c.int('max_queue_size', { def: maxQueueSize, min: 1, max: 1 << 20 });
    if (maxQueueSize < batchSize) t.issues.error(c.at('max_queue_size'), `${maxQueueSize} must be at least batch_size (${batchSize})`);
    batchIntervalMs = c.duration('batch_interval', { def: batchIntervalMs });
    serviceName = c.str('service_name', { def: serviceName, nonEmpty: true }) ?? serviceName;
    const props = c.list('propagators');
    if (props.length > 0) {
      propagators = [];
      for (const p of props) {
        if (typeof p.value === 'string' && (PROPAGATORS as readonly string[]).includes(p.value)) propagators.push(p.value as (typeof PROPAGATORS)[number]);
        else t.issues.error(p.path, `${showValue(p.value)} must be one of ${PROPAGATORS.join(', ')}`);
      }
    }
    startChildSpan = c.bool('start_child_span', false);
    c.done(); // driver-specific keys (SOFATracer, SkyWalking, Jaeger settings): warned as ignored
  }
  if (enable && collector === '') t.issues.warn(t.at('enable'), 'tracing without config.collector: trace context is propagated, spans are not exported');
  return enable ? { driver, collector, encoding, samplingRatio, batchSize, batchIntervalMs, maxQueueSize, serviceName, propagators, startChildSpan } : undefined;
}
