/**
 * payload_limit: answers requests whose payload is larger than max_entity_size, after routing
 * (MOSN runs it in the after-route phase). HTTP: the configured status (413 by default), judged
 * by content-length, or counted as the body streams when there is none; RPC: the frame's length,
 * answered with the codec's error (MOSN's hijack mapping of the status).
 */
import { DecodePhase, FilterStatus, registerStreamFilterKind, type FilterStream, type StreamFilter } from '../../../api/stream-filter';
import { validatePayloadLimit, type PayloadLimitConfig } from './config';

class PayloadLimitFilter implements StreamFilter {
  readonly phase = DecodePhase.AfterRoute;
  constructor(private readonly cfg: PayloadLimitConfig) {}

  decode(s: FilterStream): FilterStatus {
    const max = this.cfg.maxEntitySize;
    if (max === 0) return FilterStatus.Continue;
    const len = s.requestBodyLength();
    if (len < 0) {
      // Length not known before the body streams (chunked, HTTP/2 without content-length): counted as it comes.
      s.limitRequestBody(max, this.cfg.httpStatus);
      return FilterStatus.Continue;
    }
    if (len <= max) return FilterStatus.Continue;
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
