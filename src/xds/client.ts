/**
 * The ADS client (main thread): one gRPC bidi stream to the control plane, state of the world
 * (`StreamAggregatedResources`) or delta (`DeltaAggregatedResources`), chosen by config.
 *
 *   stream start ─► CDS, LDS (wildcard), then EDS/RDS/SDS by name (what the store needs)
 *   response ─► store (translate, warm, one coalesced reload) ─► ACK (version, nonce) or NACK
 *               (previous version, nonce, error_detail naming each resource and reason)
 *   store needs other EDS/RDS/SDS names ─► a request with the new names (SotW: the whole list;
 *               delta: subscribe / unsubscribe)
 *   stream ends ─► reconnect after an exponential, jittered backoff; SotW requests carry the last
 *               accepted version, delta ones `initial_resource_versions`
 *
 * The node goes on the first request of every stream (or every request unless
 * `setNodeOnFirstMessageOnly`). Nothing here blocks the proxy: traffic keeps the running config
 * while the control plane is away.
 */
import * as grpc from '@grpc/grpc-js';
import type { XdsStore } from './store';
import type { IncomingResource } from './store';
import { TYPE_URL, type ResourceKind, type XdsMessage } from './types';
import { nodeMessage, type NodeInfo } from './node';
import {
  ADS_DELTA_PATH, ADS_SOTW_PATH, decodeDeltaResponse, decodeResource, decodeSotwResponse, encodeDeltaRequest, encodeSotwRequest,
  type DeltaRequest, type DeltaResponse, type PackedAny, type SotwRequest, type SotwResponse,
} from './wire';

export interface XdsClientLog {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  debug(obj: unknown, msg?: string): void;
}

export interface XdsClientOptions {
  /** host:port of the ADS server. */
  readonly target: string;
  readonly delta: boolean;
  readonly node: NodeInfo;
  readonly setNodeOnFirstMessageOnly: boolean;
  readonly store: XdsStore;
  readonly log: XdsClientLog;
  /** Reconnect backoff: initial and maximum delay (ms); each wait is jittered to 50-100 %. */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Outrigger's version (node.user_agent_version). */
  readonly version?: string;
  /** Unpacks one resource (default: src/xds/wire.ts). */
  readonly decode?: (a: PackedAny) => XdsMessage;
  /** Called whenever a counter or the connection state changes (Prometheus). */
  readonly onStats?: (s: XdsClientStats) => void;
}

export interface XdsClientStats {
  connected: boolean;
  /** Streams opened (the first one included). */
  streams: number;
  /** Types whose first response was answered (ACK or NACK) since start. */
  readonly answered: Set<ResourceKind>;
  /** Responses ACKed / NACKed, per type. */
  readonly acks: Record<ResourceKind, number>;
  readonly nacks: Record<ResourceKind, number>;
}

const KIND_OF = new Map<string, ResourceKind>(Object.entries(TYPE_URL).map(([k, v]) => [v, k as ResourceKind]));
/** Subscription order on a new stream: CDS, EDS, LDS, RDS (SDS first: clusters and listeners wait for it). */
const ORDER: readonly ResourceKind[] = ['cluster', 'listener', 'secret', 'endpoints', 'route'];
const WILDCARD: ReadonlySet<ResourceKind> = new Set<ResourceKind>(['listener', 'cluster']);
/** google.rpc.Code INVALID_ARGUMENT. */
const INVALID_ARGUMENT = 3;
/** error_detail stays readable in a control plane's log. */
const MAX_DETAIL = 4096;

interface TypeState {
  /** SotW: last ACKed version_info. */
  version: string;
  /** Last nonce received on this stream. */
  nonce: string;
  /** Names last sent (SotW) or subscribed (delta) on this stream; null = nothing sent yet. */
  names: Set<string> | null;
}

function zero(): Record<ResourceKind, number> {
  return { listener: 0, cluster: 0, route: 0, endpoints: 0, secret: 0 };
}

/** The name a decoded resource carries (ClusterLoadAssignment: cluster_name). */
function resourceName(kind: ResourceKind, m: XdsMessage): string {
  const v = kind === 'endpoints' ? m['clusterName'] : m['name'];
  return typeof v === 'string' ? v : '';
}

export class XdsClient {
  private readonly client: grpc.Client;
  private call: grpc.ClientDuplexStream<SotwRequest | DeltaRequest, SotwResponse | DeltaResponse> | null = null;
  /** Bumped per stream: answers to a response of an older stream are not sent. */
  private generation = 0;
  private nodeSent = false;
  private readonly types = new Map<ResourceKind, TypeState>();
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;
  readonly stats: XdsClientStats = { connected: false, streams: 0, answered: new Set(), acks: zero(), nacks: zero() };
  private readonly decode: (a: PackedAny) => XdsMessage;

  constructor(private readonly opts: XdsClientOptions) {
    this.client = new grpc.Client(opts.target, grpc.credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
      'grpc.initial_reconnect_backoff_ms': opts.initialBackoffMs ?? 500,
      'grpc.max_reconnect_backoff_ms': opts.maxBackoffMs ?? 30_000,
    });
    this.decode = opts.decode ?? decodeResource;
    for (const k of ORDER) this.types.set(k, { version: '', nonce: '', names: null });
    opts.store.onWantedChange = (kind): void => this.resubscribe(kind);
  }

  start(): void {
    this.open();
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.call?.cancel();
    this.call = null;
    this.client.close();
    this.setConnected(false);
  }

  private setConnected(c: boolean): void {
    if (this.stats.connected === c) return;
    this.stats.connected = c;
    this.opts.onStats?.(this.stats);
  }

  private open(): void {
    if (this.closed) return;
    const gen = ++this.generation;
    this.nodeSent = false;
    for (const t of this.types.values()) {
      t.nonce = '';
      t.names = null;
    }
    const delta = this.opts.delta;
    const call = this.client.makeBidiStreamRequest<SotwRequest | DeltaRequest, SotwResponse | DeltaResponse>(
      delta ? ADS_DELTA_PATH : ADS_SOTW_PATH,
      (r) => (delta ? encodeDeltaRequest(r as DeltaRequest) : encodeSotwRequest(r as SotwRequest)),
      (b) => (delta ? decodeDeltaResponse(b) : decodeSotwResponse(b)),
    );
    this.call = call;
    this.stats.streams++;
    this.opts.onStats?.(this.stats);
    call.on('data', (m: SotwResponse | DeltaResponse) => {
      if (gen !== this.generation) return;
      this.attempt = 0;
      this.setConnected(true);
      if (delta) this.onDelta(gen, m as DeltaResponse);
      else this.onSotw(gen, m as SotwResponse);
    });
    call.on('error', (e: grpc.ServiceError) => {
      if (gen !== this.generation || this.closed) return;
      this.opts.log.warn({ target: this.opts.target, code: e.code, err: e.details }, 'xds: ADS stream failed');
      this.retry(gen);
    });
    call.on('end', () => this.retry(gen));
    for (const kind of ORDER) this.subscribe(kind, true);
  }

  private retry(gen: number): void {
    if (gen !== this.generation || this.closed) return;
    this.generation++; // late answers of the dead stream are dropped
    this.call?.cancel();
    this.call = null;
    this.setConnected(false);
    const base = this.opts.initialBackoffMs ?? 500;
    const max = this.opts.maxBackoffMs ?? 30_000;
    const full = Math.min(max, base * 2 ** Math.min(this.attempt, 20));
    const wait = Math.round(full / 2 + (Math.random() * full) / 2);
    this.attempt++;
    this.opts.log.info({ target: this.opts.target, waitMs: wait }, 'xds: reconnecting');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, wait);
  }

  private withNode<T extends { node?: Record<string, unknown> }>(r: T): T {
    if (!this.nodeSent || !this.opts.setNodeOnFirstMessageOnly) {
      r.node = nodeMessage(this.opts.node, this.opts.version ?? '0.0.0');
      this.nodeSent = true;
    }
    return r;
  }

  private send(r: SotwRequest | DeltaRequest): void {
    if (this.call === null) return;
    this.opts.log.debug({ typeUrl: r.typeUrl, nonce: r.responseNonce, error: r.errorDetail?.message }, 'xds: request');
    this.call.write(this.withNode(r));
  }

  /** The first request for `kind` on this stream (`initial`), or a change of the names needed. */
  private subscribe(kind: ResourceKind, initial: boolean): void {
    const t = this.types.get(kind)!;
    const typeUrl = TYPE_URL[kind];
    const store = this.opts.store;
    const want = WILDCARD.has(kind) ? [] : store.wanted(kind);
    if (this.opts.delta) {
      if (initial) {
        // Nothing needed yet: the first request comes when the store needs a name.
        if (!WILDCARD.has(kind) && want.length === 0) return;
        t.names = new Set(want);
        this.send({ typeUrl, resourceNamesSubscribe: want, initialResourceVersions: store.acceptedVersions(kind) });
        return;
      }
      const had = t.names ?? new Set<string>();
      const add = want.filter((n) => !had.has(n));
      const now = new Set(want);
      const drop = [...had].filter((n) => !now.has(n));
      if (add.length === 0 && drop.length === 0) return;
      t.names = now;
      this.send({ typeUrl, resourceNamesSubscribe: add, resourceNamesUnsubscribe: drop });
      return;
    }
    if (!WILDCARD.has(kind)) {
      // An empty list would mean "everything" on a first request: send none until a name is needed.
      if (t.names === null && want.length === 0) return;
      if (t.names !== null && t.names.size === want.length && want.every((n) => t.names!.has(n))) return;
    } else if (!initial) return;
    t.names = new Set(want);
    this.send({ typeUrl, versionInfo: t.version, resourceNames: want, responseNonce: t.nonce });
  }

  private resubscribe(kind: ResourceKind): void {
    if (this.call !== null) this.subscribe(kind, false);
  }

  private unpack(kind: ResourceKind, a: PackedAny, i: number, version: string, name?: string): IncomingResource {
    const label = name ?? `resources[${i}]`;
    if (a.typeUrl !== TYPE_URL[kind]) return { name: label, version, error: `type ${a.typeUrl} in a ${TYPE_URL[kind]} response` };
    try {
      const message = this.decode(a);
      const own = resourceName(kind, message);
      if (name !== undefined && own !== name) return { name, version, error: `the resource is named ${JSON.stringify(own)}` };
      if (own === '') return { name: label, version, error: 'the resource has no name' };
      return { name: own, version, message };
    } catch (e) {
      return { name: label, version, error: `cannot decode: ${e instanceof Error ? e.message : String(e)}` };
    }
  }

  private detail(errors: readonly string[]): string {
    const s = errors.join('; ');
    return s.length > MAX_DETAIL ? `${s.slice(0, MAX_DETAIL)}...` : s;
  }

  /**
   * One response: the store applies it (`run`), then the ACK or NACK goes out (`reply` builds it
   * from the error_detail, undefined for an ACK), unless the stream died meanwhile.
   */
  private receive(
    gen: number, typeUrl: string, nonce: string, version: string,
    run: (kind: ResourceKind) => Promise<string[]>,
    reply: (t: TypeState, error?: { code: number; message: string }) => SotwRequest | DeltaRequest,
  ): void {
    const kind = KIND_OF.get(typeUrl);
    if (kind === undefined) {
      this.send({ typeUrl, responseNonce: nonce, errorDetail: { code: INVALID_ARGUMENT, message: `unknown type ${typeUrl}` } });
      return;
    }
    const t = this.types.get(kind)!;
    t.nonce = nonce;
    void run(kind).then((errors) => {
      if (gen !== this.generation) return;
      this.stats.answered.add(kind);
      if (errors.length === 0) {
        this.opts.store.noteVersion(kind, version);
        this.stats.acks[kind]++;
        this.send(reply(t));
        t.version = version;
      } else {
        const message = this.detail(errors);
        this.nack(kind, version, message);
        this.send(reply(t, { code: INVALID_ARGUMENT, message }));
      }
      this.opts.onStats?.(this.stats);
    });
  }

  private onSotw(gen: number, m: SotwResponse): void {
    this.receive(
      gen, m.typeUrl, m.nonce, m.versionInfo,
      (kind) => this.opts.store.sotw(kind, m.resources.map((a, i) => this.unpack(kind, a, i, m.versionInfo))),
      // An ACK carries the new version, a NACK the one accepted before.
      (t, errorDetail) => ({
        typeUrl: m.typeUrl, versionInfo: errorDetail ? t.version : m.versionInfo, resourceNames: t.names === null ? [] : [...t.names],
        responseNonce: m.nonce, errorDetail,
      }),
    );
  }

  private onDelta(gen: number, m: DeltaResponse): void {
    this.receive(
      gen, m.typeUrl, m.nonce, m.systemVersionInfo,
      (kind) => {
        const resources: IncomingResource[] = [];
        m.resources.forEach((r, i) => {
          if (r.resource !== undefined) resources.push(this.unpack(kind, r.resource, i, r.version, r.name)); // absent: a TTL refresh
        });
        return this.opts.store.delta(kind, resources, m.removedResources);
      },
      (_t, errorDetail) => ({ typeUrl: m.typeUrl, responseNonce: m.nonce, errorDetail }),
    );
  }

  private nack(kind: ResourceKind, version: string, message: string): void {
    this.stats.nacks[kind]++;
    this.opts.store.noteNack(kind, version, message);
    this.opts.log.warn({ type: TYPE_URL[kind], version, err: message }, 'xds: update rejected (NACK)');
  }
}
