/**
 * HTTP stats: offsets of the HTTP names appended to LISTENER_STATS / CLUSTER_STATS
 * (src/stats/layout.ts), looked up by name so they stay right whatever else is appended
 * there. Everything is a counter in the worker's SharedArrayBuffer (summed by the admin across
 * workers), including a coarse latency histogram: fixed buckets of upstream request time, each
 * a counter. Per-route counters and the hdr latency histograms (percentiles per cluster and per
 * route) are in route-stats.ts and src/stats/histograms.ts.
 */
import { CLUSTER_STATS, LISTENER_STATS } from '../stats/layout';

function at(list: readonly string[], name: string): number {
  const i = list.indexOf(name);
  if (i < 0) throw new Error(`stats layout lacks ${name}`);
  return i;
}
const l = (n: string): number => at(LISTENER_STATS, n);
const c = (n: string): number => at(CLUSTER_STATS, n);

/** Listener offsets. */
export const HL = {
  RQ_1XX: l('downstream_rq_1xx'),
  RQ_HTTP1: l('downstream_rq_http1'),
  RQ_HTTP2: l('downstream_rq_http2'),
  BAD_REQUEST: l('downstream_rq_bad_request'),
  HEADER_OVERFLOW: l('downstream_rq_header_overflow'),
  REQUEST_TIMEOUT: l('downstream_rq_request_timeout'),
  DIRECT_RESPONSE: l('downstream_rq_direct_response'),
  REDIRECT: l('downstream_rq_redirect'),
  UPGRADE: l('downstream_rq_upgrade'),
  CONNECT: l('downstream_rq_connect'),
  H2_GOAWAY_SENT: l('downstream_h2_goaway_sent'),
  H2_RST_SENT: l('downstream_h2_rst_sent'),
  H2_REFUSED_STREAM: l('downstream_h2_refused_stream'),
  RESET: l('downstream_rq_reset'),
} as const;

/** Cluster offsets. */
export const HC = {
  RQ_1XX: c('upstream_rq_1xx'),
  RETRY: c('upstream_rq_retry'),
  RETRY_SUCCESS: c('upstream_rq_retry_success'),
  PER_TRY_TIMEOUT: c('upstream_rq_per_try_timeout'),
  RESET: c('upstream_rq_reset'),
  TIME_BUCKET_0: c('upstream_rq_time_le_1ms'),
} as const;

/** Upper bounds (ms) of the latency buckets after TIME_BUCKET_0; the last bucket is unbounded. */
export const TIME_BUCKETS_MS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000] as const;

/** Offset of the bucket for a latency, relative to TIME_BUCKET_0. */
export function timeBucket(ms: number): number {
  const b = TIME_BUCKETS_MS;
  for (let i = 0; i < b.length; i++) if (ms <= b[i]) return i;
  return b.length;
}

/** Status class offset (0..4 for 1xx..5xx), relative to RQ_1XX. */
export function statusClass(status: number): number {
  const k = ((status / 100) | 0) - 1;
  return k < 0 ? 4 : k > 4 ? 4 : k;
}
