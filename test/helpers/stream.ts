/** A stream for unit tests of the pipeline: fixed request reads (service `svc`, method `m`, no headers, no body, no peer). */
import type { StreamPeer } from '../../src/api/stream-filter';
import { ActiveStream } from '../../src/stream/pipeline';

export abstract class FixedRequestStream extends ActiveStream {
  service(): string | undefined {
    return 'svc';
  }
  method(): string | undefined {
    return 'm';
  }
  header(): string | undefined {
    return undefined;
  }
  requestBodyLength(): number {
    return 0;
  }
  peer(): StreamPeer | null {
    return null;
  }
}
