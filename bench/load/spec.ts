// What the orchestrator asks of the load generator, and what it gets back.
// bolt:      closed loop, `pipeline` requests in flight per connection (max rate)
// bolt-rate: open loop, `rate` requests/s in total spread over the connections;
//            latency counted from each request's scheduled send time
// dubbo, dubbo-rate: the same two loops with Dubbo 2.x frames
// tls-resume: like tls-handshake, but each slot offers the session (ticket) of its previous
//             connection: resumed handshakes where the server issues and accepts tickets
// tls-handshake: every connection slot loops: new TLS connection (full handshake, no
//            resumption), one `messageSize` message echoed back, close; ops = handshakes
// tls-bulk:  TLS connections reading what the source backend streams; bytes/s
// h2:        h2c (prior knowledge) sessions, `streams` concurrent GET streams each
// grpc:      grpc-js channels (one connection each), `streams` unary calls in flight each
export type LoadKind = 'tcp-rr' | 'tcp-bulk' | 'http1' | 'bolt' | 'bolt-rate' | 'dubbo' | 'dubbo-rate' | 'tls-handshake' | 'tls-resume' | 'tls-bulk' | 'h2' | 'grpc';

export interface LoadSpec {
  kind: LoadKind;
  host: string;
  port: number;
  connections: number;
  /** worker threads (piscina); connections are split among them */
  threads: number;
  /** request size for tcp-rr (bytes); content bytes of Bolt requests */
  messageSize: number;
  /** bolt: requests in flight per connection (default 1) */
  pipeline?: number;
  /** bolt-rate: requests/s over all connections (all threads together) */
  rate?: number;
  /** h2, grpc: streams (requests, calls) in flight per connection */
  streams?: number;
  /** wall-clock epoch ms at which the measured window starts (after connect + warm-up) */
  measureStart: number;
  /** window length, ms */
  durationMs: number;
  /** proxy root PIDs to account CPU/RSS for (plus descendants) */
  proxyPids: number[];
  /** backend PIDs (CPU accounted separately) */
  backendPids: number[];
  /**
   * bolt-rate, dubbo-rate: a file prefix; each worker thread writes `<trace>.<thread>` with one
   * record per answered request of the window, two float64 each: its scheduled send time
   * (CLOCK_MONOTONIC, ms: perf's clock with `-k CLOCK_MONOTONIC`) and its latency (ms). Latency over time, to line slow requests up with the proxy's
   * GC or JIT events (bench/rpc-tail.ts).
   */
  trace?: string;
}

/** What one worker-thread task returns. */
export interface WorkerResult {
  ops: number;
  bytes: number;
  errors: number;
  /** connections that never connected */
  connectFailures: number;
  /** hdr histogram of latencies in microseconds, compressed base64 ('' when none) */
  histogram: string;
  /** bolt-rate: how late requests left after their scheduled time (µs), compressed base64 */
  lagHistogram?: string;
  firstError?: string;
  /** what was negotiated (TLS version and cipher, ...), for the report */
  note?: string;
}

export interface LoadResult {
  ops: number;
  bytes: number;
  errors: number;
  connectFailures: number;
  firstError?: string;
  /** window actually measured, seconds */
  windowS: number;
  /** merged latency histogram (µs), compressed base64, '' when none */
  histogram: string;
  /** bolt-rate: merged send-lag histogram (µs), compressed base64 */
  lagHistogram?: string;
  /** what was negotiated (TLS version and cipher, ...), for the report */
  note?: string;
  proxyCpuS: number;
  backendCpuS: number;
  generatorCpuS: number;
  /** max of sampled summed VmRSS of the proxy processes, KiB */
  proxyRssMaxKiB: number;
  /** summed VmHWM of the proxy processes at the end, KiB */
  proxyHwmKiB: number;
}
