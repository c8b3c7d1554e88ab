/**
 * fault_tolerance (MOSN): counts every response per upstream host — calls, and exceptions
 * (codes in exceptionTypes) — in the host's shared health entry (src/upstream/health/shared.ts),
 * so that every worker's counts add up. The main thread (src/upstream/health/service.ts) judges
 * the counts every timeWindow and takes hosts out (the balancers skip them) for recoverTime.
 */
import { DecodePhase, registerStreamFilterKind, type FilterStream, type StreamFilter } from '../../../api/stream-filter';
import { STATUS_CONNECTION_CLOSED, STATUS_SERVER_THREADPOOL_BUSY, STATUS_SUCCESS, STATUS_TIMEOUT } from '../../../protocol/bolt/constants';
import { STATUS_CLIENT_TIMEOUT, STATUS_OK, STATUS_SERVER_TIMEOUT } from '../../../protocol/dubbo/constants';
import type { ActiveStream } from '../../../stream/pipeline';
import { H } from '../../../upstream/health/shared';
import { FAULT_TOLERANCE, validateFaultTolerance, type FaultToleranceConfig } from './config';

/** Dubbo's SERVER_THREADPOOL_EXHAUSTED_ERROR. */
const DUBBO_THREADPOOL_EXHAUSTED = 100;

/** The response code MOSN judges: HTTP as is; Bolt and Dubbo statuses mapped as MOSN's status mappings do. */
export function responseCode(protocol: string, status: number): number {
  if (protocol === 'bolt' || protocol === 'boltv2') {
    if (status === STATUS_SUCCESS) return 200;
    if (status === STATUS_SERVER_THREADPOOL_BUSY) return 503;
    if (status === STATUS_TIMEOUT) return 504;
    if (status === STATUS_CONNECTION_CLOSED) return 502;
    return 500;
  }
  if (protocol === 'dubbo') {
    if (status === STATUS_OK) return 200;
    if (status === STATUS_CLIENT_TIMEOUT || status === STATUS_SERVER_TIMEOUT) return 504;
    if (status === DUBBO_THREADPOOL_EXHAUSTED) return 503;
    return 500;
  }
  if (protocol.startsWith('http') || protocol === 'grpc') return status;
  return status === 0 ? 200 : 500; // another codec: 0 is success
}

class FaultToleranceFilter implements StreamFilter {
  readonly phase = DecodePhase.AfterChooseHost;
  private readonly exceptions: Set<number>;
  constructor(private readonly cfg: FaultToleranceConfig) {
    this.exceptions = new Set(cfg.exceptionTypes);
  }

  encode(s: FilterStream, status: number): void {
    if (!this.cfg.enabled) return;
    const host = (s as ActiveStream).host;
    if (host === null) return;
    Atomics.add(host.cells, host.off + H.FT_RQ, 1);
    if (this.exceptions.has(responseCode(s.protocol, status))) Atomics.add(host.cells, host.off + H.FT_ERR, 1);
  }
}

registerStreamFilterKind<FaultToleranceConfig>({
  type: FAULT_TOLERANCE,
  validate: validateFaultTolerance,
  create: (cfg) => new FaultToleranceFilter(cfg),
});
