/** A FilterStream for unit tests of single filters: fixed request fields, records what the filter did. */
import { FilterStatus, streamFilterKind, type FilterStream, type LocalReplyOptions, type StreamFilter, type StreamPeer } from '../../src/api/stream-filter';
import '../../src/filters/stream';

export interface FakeRequest {
  protocol?: string;
  service?: string;
  method?: string;
  headers?: Record<string, string>;
  peer?: StreamPeer | null;
  remote?: string;
  local?: string;
  cluster?: string;
}

export class FakeStream implements FilterStream {
  readonly protocol: string;
  reply: { status: number; message?: string; opts?: LocalReplyOptions } | null = null;
  flags: string[] = [];
  added: Record<string, string> = {};
  resumed = 0;

  constructor(private readonly r: FakeRequest = {}) {
    this.protocol = r.protocol ?? 'http1';
  }
  service(): string | undefined {
    return this.r.service;
  }
  method(): string | undefined {
    return this.r.method;
  }
  header(name: string): string | undefined {
    return this.r.headers?.[name];
  }
  requestBodyLength(): number {
    return 0;
  }
  peer(): StreamPeer | null {
    return this.r.peer ?? null;
  }
  remoteAddress(): string {
    return this.r.remote ?? '127.0.0.1:40000';
  }
  routeCluster(): string | undefined {
    return this.r.cluster;
  }
  localAddress(): string {
    return this.r.local ?? '127.0.0.1:8080';
  }
  sendLocalReply(status: number, message?: string, opts?: LocalReplyOptions): void {
    this.reply = { status, message, opts };
  }
  addResponseHeader(name: string, value: string): void {
    this.added[name] = value;
  }
  limitRequestBody(): void {}
  setResponseFlag(flag: string): void {
    this.flags.push(flag);
  }
  resume(): void {
    this.resumed++;
  }
}

export interface Issues {
  errors: string[];
  warnings: string[];
}

/** Validates a filter config as the config layer does; returns the typed config (or undefined) and the issues. */
export function validateFilter<C>(type: string, raw: unknown, listener = 'l1', path = 'servers[0].listeners[0].stream_filters[0].config'): { cfg: C | undefined; issues: Issues } {
  const kind = streamFilterKind(type);
  if (kind === undefined) throw new Error(`no filter kind ${type}`);
  const issues: Issues = { errors: [], warnings: [] };
  const cfg = kind.validate(raw, path, {
    error: (p, m) => issues.errors.push(`${p}: ${m}`),
    warn: (p, m) => issues.warnings.push(`${p}: ${m}`),
    listenerName: listener,
  }) as C | undefined;
  return { cfg, issues };
}

/** Builds the filter of a valid config (throws with the issues otherwise). */
export function makeFilter(type: string, raw: unknown, listener = 'l1', path?: string): StreamFilter {
  const { cfg, issues } = validateFilter<unknown>(type, raw, listener, path);
  if (cfg === undefined) throw new Error(issues.errors.join('\n'));
  return (streamFilterKind(type) as NonNullable<ReturnType<typeof streamFilterKind>>).create(cfg, { listener });
}

export function decode(f: StreamFilter, s: FakeStream): FilterStatus {
  return (f.decode as (s: FilterStream) => FilterStatus)(s);
}
