/**
 * A small ADS server for the tests, written from the xDS protocol description (not from any
 * control plane's code): both `StreamAggregatedResources` (state of the world) and
 * `DeltaAggregatedResources` on one grpc-js server.
 *
 * SotW: a type's first request with no names is a wildcard subscription; every response for a
 * type carries all its (subscribed) resources, the type's version and a fresh nonce; a request
 * whose nonce is not the last one sent for its type is stale and ignored.
 * Delta: a first request with no names (or "*") is a wildcard; the server tracks, per stream and
 * type, the versions the client holds (seeded by `initial_resource_versions`) and sends only
 * what differs, plus `removed_resources`.
 *
 * Every request is recorded (`requests`) so that tests can assert ACKs, NACKs and nonces.
 */
import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { lookupType } from '../../src/xds/proto';
import { TYPE_URL, type ResourceKind } from '../../src/xds/types';
import {
  ADS_DELTA_PATH, ADS_SOTW_PATH, decodeDeltaRequest, decodeDeltaResponse, decodeSotwRequest, decodeSotwResponse, encodeDeltaRequest,
  encodeDeltaResponse, encodeResource, encodeSotwRequest, encodeSotwResponse, type DeltaRequest, type DeltaResponse, type PackedAny,
  type SotwRequest, type SotwResponse,
} from '../../src/xds/wire';

export interface RecordedRequest {
  readonly stream: number;
  readonly mode: 'sotw' | 'delta';
  readonly kind: ResourceKind | undefined;
  readonly sotw?: SotwRequest;
  readonly delta?: DeltaRequest;
  /** The nonce of the response this request answers ('' for a subscription). */
  readonly nonce: string;
  readonly error?: string;
}

interface Stored {
  readonly version: string;
  readonly any: PackedAny;
}

const KIND_OF = new Map<string, ResourceKind>(Object.entries(TYPE_URL).map(([k, v]) => [v, k as ResourceKind]));
const KINDS = Object.keys(TYPE_URL) as ResourceKind[];

interface SotwSub {
  wildcard: boolean;
  names: Set<string>;
  nonce: string;
  /** Version last sent. */
  sent: string;
}

interface DeltaSub {
  wildcard: boolean;
  names: Set<string>;
  /** What the client holds: name -> version. */
  held: Map<string, string>;
}

interface Stream {
  readonly id: number;
  push(kind: ResourceKind): void;
  end(): void;
}

export class AdsServer extends EventEmitter {
  private server: grpc.Server | null = null;
  port = 0;
  readonly requests: RecordedRequest[] = [];
  /** Nonces of responses sent, with the stream, type and version (or the delta names) they carried. */
  readonly responses: { stream: number; kind: ResourceKind; nonce: string; version: string; names: string[]; removed: string[] }[] = [];
  private readonly data = new Map<ResourceKind, Map<string, Stored>>(KINDS.map((k) => [k, new Map()]));
  private readonly versions = new Map<ResourceKind, number>(KINDS.map((k) => [k, 0]));
  private readonly streams = new Set<Stream>();
  private nextStream = 0;
  private nonceSeq = 0;
  /** Streams opened, per mode. */
  opened = { sotw: 0, delta: 0 };

  /** On 127.0.0.1:`port` (0: any free port). */
  static async start(port = 0): Promise<AdsServer> {
    const s = new AdsServer();
    await s.listen(`127.0.0.1:${port}`);
    return s;
  }

  /** On a unix socket (pilot-agent's local xDS proxy). */
  static async startUnix(socketPath: string): Promise<AdsServer> {
    const s = new AdsServer();
    await s.listen(`unix:${socketPath}`);
    return s;
  }

  private address = '';

  private listen(address: string): Promise<void> {
    const server = new grpc.Server();
    const service: grpc.ServiceDefinition = {
      StreamAggregatedResources: {
        path: ADS_SOTW_PATH, requestStream: true, responseStream: true, originalName: 'streamAggregatedResources',
        requestSerialize: encodeSotwRequest, requestDeserialize: decodeSotwRequest,
        responseSerialize: encodeSotwResponse, responseDeserialize: decodeSotwResponse,
      },
      DeltaAggregatedResources: {
        path: ADS_DELTA_PATH, requestStream: true, responseStream: true, originalName: 'deltaAggregatedResources',
        requestSerialize: encodeDeltaRequest, requestDeserialize: decodeDeltaRequest,
        responseSerialize: encodeDeltaResponse, responseDeserialize: decodeDeltaResponse,
      },
    };
    server.addService(service, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<SotwRequest, SotwResponse>) => this.sotw(call),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaRequest, DeltaResponse>) => this.delta(call),
    });
    return new Promise((resolve, reject) => {
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => {
        if (err) return reject(err);
        this.server = server;
        this.port = p;
        this.address = address.startsWith('unix:') ? address : `127.0.0.1:${p}`;
        resolve();
      });
    });
  }

  /** Replaces every resource of `kind` (canonical proto3 JSON, as a control plane holds them) and pushes. */
  set(kind: ResourceKind, resources: readonly Record<string, unknown>[]): void {
    const v = this.bump(kind);
    const m = new Map<string, Stored>();
    for (const r of resources) {
      const name = String(kind === 'endpoints' ? (r['cluster_name'] ?? r['clusterName']) : r['name']);
      const old = this.data.get(kind)!.get(name);
      const any = encodeResource(TYPE_URL[kind], r);
      // Delta: an unchanged resource keeps its version (only what changed is sent again).
      const same = old !== undefined && Buffer.compare(Buffer.from(old.any.value), Buffer.from(any.value)) === 0;
      m.set(name, { version: same ? old.version : v, any });
    }
    this.data.set(kind, m);
    this.pushAll(kind);
  }

  /** Replaces every resource of `kind` given in the decoded contract form (src/xds/types.ts XdsMessage) and pushes. */
  setDecoded(kind: ResourceKind, messages: readonly Readonly<Record<string, unknown>>[]): void {
    const t = lookupType(TYPE_URL[kind])!;
    const v = this.bump(kind);
    const m = new Map<string, Stored>();
    for (const r of messages) {
      const name = String(kind === 'endpoints' ? r['clusterName'] : r['name']);
      m.set(name, { version: v, any: { typeUrl: TYPE_URL[kind], value: t.encode(t.fromObject(r)).finish() } });
    }
    this.data.set(kind, m);
    this.pushAll(kind);
  }

  /** Adds or replaces one resource given packed as is (e.g. bytes that do not decode). */
  setRaw(kind: ResourceKind, name: string, any: PackedAny): void {
    this.data.get(kind)!.set(name, { version: this.bump(kind), any });
    this.pushAll(kind);
  }

  private bump(kind: ResourceKind): string {
    const v = this.versions.get(kind)! + 1;
    this.versions.set(kind, v);
    return String(v);
  }

  private pushAll(kind: ResourceKind): void {
    for (const s of this.streams) s.push(kind);
  }

  private record(r: RecordedRequest): void {
    this.requests.push(r);
    this.emit('request', r);
  }

  /** Resolves with the first recorded request (past or future) that satisfies `pred`. */
  waitFor(pred: (r: RecordedRequest) => boolean, timeoutMs = 10_000, from = 0): Promise<RecordedRequest> {
    const seen = this.requests.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.off('request', on);
        reject(new Error(`no matching xDS request within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (r: RecordedRequest): void => {
        if (!pred(r)) return;
        clearTimeout(t);
        this.off('request', on);
        resolve(r);
      };
      this.on('request', on);
    });
  }

  /** The nonce of the last response sent for `kind`. */
  lastNonce(kind: ResourceKind): string {
    for (let i = this.responses.length - 1; i >= 0; i--) if (this.responses[i]!.kind === kind) return this.responses[i]!.nonce;
    return '';
  }

  private nonce(): string {
    return `n${++this.nonceSeq}`;
  }

  private sotw(call: grpc.ServerDuplexStream<SotwRequest, SotwResponse>): void {
    const id = ++this.nextStream;
    this.opened.sotw++;
    const subs = new Map<ResourceKind, SotwSub>();
    const send = (kind: ResourceKind): void => {
      const sub = subs.get(kind);
      if (!sub) return;
      const version = String(this.versions.get(kind));
      const items = [...this.data.get(kind)!.entries()].filter(([n]) => sub.wildcard || sub.names.has(n));
      const nonce = this.nonce();
      sub.nonce = nonce;
      sub.sent = version;
      this.responses.push({ stream: id, kind, nonce, version, names: items.map(([n]) => n), removed: [] });
      call.write({ versionInfo: version, typeUrl: TYPE_URL[kind], nonce, resources: items.map(([, s]) => s.any) });
    };
    const stream: Stream = { id, push: send, end: () => call.end() };
    this.streams.add(stream);
    call.on('data', (r: SotwRequest) => {
      const kind = KIND_OF.get(r.typeUrl);
      const nonce = r.responseNonce ?? '';
      this.record({ stream: id, mode: 'sotw', kind, sotw: r, nonce, error: r.errorDetail?.message || undefined });
      if (kind === undefined) return;
      const names = r.resourceNames ?? [];
      let sub = subs.get(kind);
      if (sub === undefined) {
        sub = { wildcard: names.length === 0 || names.includes('*'), names: new Set(names), nonce: '', sent: '' };
        subs.set(kind, sub);
        send(kind);
        return;
      }
      if (nonce !== '' && nonce !== sub.nonce) return; // stale
      const changed = !sub.wildcard && (names.length !== sub.names.size || names.some((n) => !sub!.names.has(n)));
      if (changed) {
        sub.names = new Set(names);
        send(kind);
      }
    });
    this.untrackOnEnd(call, stream);
  }

  private delta(call: grpc.ServerDuplexStream<DeltaRequest, DeltaResponse>): void {
    const id = ++this.nextStream;
    this.opened.delta++;
    const subs = new Map<ResourceKind, DeltaSub>();
    /** `first`: the answer to a new subscription goes out even when empty (the client's initial fetch). */
    const send = (kind: ResourceKind, first = false): void => {
      const sub = subs.get(kind);
      if (!sub) return;
      const items = this.data.get(kind)!;
      const resources: DeltaResponse['resources'][number][] = [];
      const removed: string[] = [];
      for (const [name, s] of items) {
        if (!sub.wildcard && !sub.names.has(name)) continue;
        if (sub.held.get(name) === s.version) continue;
        resources.push({ name, version: s.version, resource: s.any });
        sub.held.set(name, s.version);
      }
      for (const name of [...sub.held.keys()]) {
        if (!items.has(name)) {
          removed.push(name);
          sub.held.delete(name);
        }
      }
      if (resources.length === 0 && removed.length === 0 && !first) return;
      const nonce = this.nonce();
      const version = String(this.versions.get(kind));
      this.responses.push({ stream: id, kind, nonce, version, names: resources.map((r) => r.name), removed });
      call.write({ systemVersionInfo: version, typeUrl: TYPE_URL[kind], nonce, resources, removedResources: removed });
    };
    const stream: Stream = { id, push: send, end: () => call.end() };
    this.streams.add(stream);
    call.on('data', (r: DeltaRequest) => {
      const kind = KIND_OF.get(r.typeUrl);
      const nonce = r.responseNonce ?? '';
      this.record({ stream: id, mode: 'delta', kind, delta: r, nonce, error: r.errorDetail?.message || undefined });
      if (kind === undefined || nonce !== '') return; // ACK / NACK: nothing to send
      const add = r.resourceNamesSubscribe ?? [];
      const drop = r.resourceNamesUnsubscribe ?? [];
      let sub = subs.get(kind);
      if (sub === undefined) {
        sub = { wildcard: add.length === 0 || add.includes('*'), names: new Set(add), held: new Map(Object.entries(r.initialResourceVersions ?? {})) };
        subs.set(kind, sub);
        send(kind, true);
        return;
      } else {
        for (const n of add) sub.names.add(n);
        for (const n of drop) {
          sub.names.delete(n);
          sub.held.delete(n);
        }
      }
      send(kind);
    });
    this.untrackOnEnd(call, stream);
  }

  private untrackOnEnd(call: grpc.ServerDuplexStream<unknown, unknown>, stream: Stream): void {
    const gone = (): void => {
      this.streams.delete(stream);
    };
    call.on('end', () => {
      gone();
      call.end();
    });
    call.on('error', gone);
    call.on('cancelled', gone);
  }

  /** Kills every stream and the listening socket (a control-plane crash). */
  async stop(): Promise<void> {
    this.streams.clear();
    const s = this.server;
    this.server = null;
    s?.forceShutdown();
  }

  /** A crash and a restart on the same port, with the same resources (fresh version numbers kept). */
  async restart(downMs = 300): Promise<void> {
    const address = this.address;
    await this.stop();
    await new Promise((r) => setTimeout(r, downMs));
    await this.listen(address);
  }
}
