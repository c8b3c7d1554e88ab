/**
 * payload_limit: answers requests whose payload is larger than max_entity_size, after routing
 * (MOSN runs it in the after-route phase). HTTP: the configured status (413 by default), judged
 * by content-length (a chunked body without one is not limited here); RPC: the frame's length,
 * answered with the codec's error (MOSN's hijack mapping of the status).
 */
import { DecodePhase, FilterStatus, registerStreamFilterKind, type FilterStream, type StreamFilter } from '../../../api/stream-filter';
import { validatePayloadLimit, type PayloadLimitConfig } from './config';

class PayloadLimitFilter implements StreamFilter {
  readonly phase = DecodePhase.AfterRoute;
  constructor(private readonly cfg: PayloadLimitConfig) {}

  decode(s: FilterStream): FilterStatus {
    const max = this.cfg.maxEntitySize;
    if (max === 0 || s.requestBodyLength() <= max) return FilterStatus.Continue;
    s.setResponseFlag('RE'); // MOSN's ReqEntityTooLarge
    s.sendLocalReply(this.cfg.httpStatus, 'payload too large');
    return FilterStatus.Stop;
  }
}

registerStreamFilterKind<PayloadLimitConfig>({
  type: 'payload_limit',
  validate: validatePayloadLimit,
  create: (cfg) => new PayloadLimitFilter(cfg),
});
