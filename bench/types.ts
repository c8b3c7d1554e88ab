// The results document written to bench/results/*.json and read by the report code.

export interface LatencySummary {
  count: number;
  meanUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  /** [percentile, µs] points for the percentile curve */
  curve: [number, number][];
}

export interface RoundSample {
  round: number;
  /** req/s or B/s for this round */
  throughput: number;
  ops: number;
  bytes: number;
  errors: number;
  firstError?: string;
  windowS: number;
  proxyCpuS: number;
  generatorCpuS: number;
  backendCpuS: number;
}

/** Throughput units: counted operations per second (requests, handshakes, gRPC calls) or bytes per second. */
export type Unit = 'req/s' | 'handshakes/s' | 'calls/s' | 'B/s';
/** Proxy CPU per unit of work: per 1,000 operations, or per GiB. */
export type CpuUnit = 'CPU s / 1k req' | 'CPU s / 1k handshakes' | 'CPU s / 1k calls' | 'CPU s / GiB';

/** True for units counting operations (ops), false for bytes/s. */
export function isOpsUnit(u: Unit): boolean {
  return u !== 'B/s';
}

/** The CPU-per-work unit that goes with a throughput unit. */
export function cpuUnitOf(u: Unit): CpuUnit {
  return u === 'B/s' ? 'CPU s / GiB' : u === 'handshakes/s' ? 'CPU s / 1k handshakes' : u === 'calls/s' ? 'CPU s / 1k calls' : 'CPU s / 1k req';
}

export type Bottleneck = 'proxy' | 'generator' | 'neither' | 'n/a';

export interface PeerCaseResult {
  peer: string;
  /** L4 (bytes forwarded) or L7 (protocol parsed, routed) for this workload; none for direct */
  layer?: 'L4' | 'L7';
  /** what the load generator negotiated with this peer (TLS version, cipher, key exchange, certificate key) */
  negotiated?: string;
  status: 'ok' | 'error' | 'failed' | 'skipped';
  message?: string;
  rounds: RoundSample[];
  /** median over rounds */
  throughput?: number;
  throughputMin?: number;
  throughputMax?: number;
  latency?: LatencySummary;
  /** fixed-rate cases: how late the generator sent requests after their scheduled time */
  sendLag?: LatencySummary;
  /** proxy CPU seconds per 1,000 requests (req/s cases) or per GiB (B/s cases) */
  proxyCpuPerUnit?: number;
  /** average cores used over the windows */
  proxyCpuCores?: number;
  generatorCpuCores?: number;
  backendCpuCores?: number;
  /** summed VmHWM of the proxy processes, KiB */
  peakRssKiB?: number;
  /** max sampled summed VmRSS during windows, KiB */
  sampledRssKiB?: number;
  bottleneck?: Bottleneck;
}

export interface CaseResult {
  id: string;
  unit: Unit;
  /** unit of proxyCpuPerUnit */
  cpuUnit: CpuUnit;
  /** TLS cases: the server certificate's key ("ECDSA P-256", "RSA-2048") */
  cert?: string;
  /** h2/grpc: streams (requests, calls) in flight per connection */
  streams?: number;
  connections: number;
  /** fixed-rate (open-loop) cases: the asked request rate, req/s */
  rate?: number;
  /** closed-loop bolt: requests in flight per connection */
  pipeline?: number;
  peers: PeerCaseResult[];
}

export interface WorkloadResult {
  name: string;
  description: string;
  status: 'ok' | 'error' | 'skipped';
  message?: string;
  /** per-peer notes (skips, start failures) */
  notes: string[];
  cases: CaseResult[];
}

export interface PeerInfo {
  name: string;
  version: string;
  description: string;
}

export interface RunMeta {
  date: string;
  host: string;
  cpus: number;
  cpuModel: string;
  node: string;
  command: string;
  placement: { proxy: string; client: string; pinned: boolean };
  durationS: number;
  warmupS: number;
  rounds: number;
  threads: number;
  quick: boolean;
}

export interface RunResult {
  meta: RunMeta;
  peers: PeerInfo[];
  workloads: WorkloadResult[];
}
