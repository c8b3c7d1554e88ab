// What the orchestrator asks of the load generator, and what it gets back.
export type LoadKind = 'tcp-rr' | 'tcp-bulk' | 'http1';

export interface LoadSpec {
  kind: LoadKind;
  host: string;
  port: number;
  connections: number;
  /** worker threads (piscina); connections are split among them */
  threads: number;
  /** request size for tcp-rr (bytes) */
  messageSize: number;
  /** wall-clock epoch ms at which the measured window starts (after connect + warm-up) */
  measureStart: number;
  /** window length, ms */
  durationMs: number;
  /** proxy root PIDs to account CPU/RSS for (plus descendants) */
  proxyPids: number[];
  /** backend PIDs (CPU accounted separately) */
  backendPids: number[];
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
  firstError?: string;
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
  proxyCpuS: number;
  backendCpuS: number;
  generatorCpuS: number;
  /** max of sampled summed VmRSS of the proxy processes, KiB */
  proxyRssMaxKiB: number;
  /** summed VmHWM of the proxy processes at the end, KiB */
  proxyHwmKiB: number;
}
