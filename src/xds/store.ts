/**
 * The xDS resource store: the latest accepted resources per type, warming, and the assembled
 * OutriggerConfig (static config + warm dynamic resources) handed to Server.reload().
 *
 *   ADS response ──► stage (raw messages, one op per response) ──► flush (coalesced: every op
 *   that arrived meanwhile) ──► translate in CDS, EDS, LDS, RDS order on a copy of the accepted
 *   state ──► assemble warm resources ──► reload ──► commit the copy, or drop it
 *
 * Each op resolves with its own answer (ACK, or the NACK detail). A NACKed resource never
 * half-applies: a state-of-the-world response with one bad resource is rejected whole (Envoy's
 * semantics); in delta only the bad resources are. When Server.reload() refuses the assembled
 * config, every op of that flush is NACKed with its message and the accepted state stays.
 *
 * Warming (make before break): a cluster is used only once its ClusterLoadAssignment and its
 * secrets arrived, a listener only once its route configurations and secrets arrived; an
 * update that waits keeps the previous warm version in service. A cluster removed by CDS stays
 * in service while a listener or route still names it (stale clusters go last).
 */
import type { ClusterConfig, ListenerConfig, OutriggerConfig, RouterConfig, ServerConfig } from '../config/types';
import type {
  Dependencies, ResourceKind, TranslatedCluster, TranslatedEndpoints, TranslatedListener, TranslatedRoute, TranslatedSecret,
  TranslationContext, XdsMessage, XdsTranslator,
} from './types';
import { XdsResourceError } from './types';

/** A resource as received: decoded, or the reason it could not be. */
export interface IncomingResource {
  readonly name: string;
  readonly version: string;
  readonly message?: XdsMessage;
  /** Decoding failed: the op is NACKed with this reason. */
  readonly error?: string;
}

interface Entry<T> {
  readonly name: string;
  readonly version: string;
  readonly message: XdsMessage;
  readonly json: string;
  readonly value: T;
  /** Every secret the translation asked for (present or not). */
  readonly secrets: readonly string[];
  readonly at: string;
}

type Values = {
  listener: TranslatedListener;
  cluster: TranslatedCluster;
  route: TranslatedRoute;
  endpoints: TranslatedEndpoints;
  secret: TranslatedSecret;
};

type Maps = { [K in ResourceKind]: Map<string, Entry<Values[K]>> };

interface State extends Maps {
  /** What is in service per name (warm now, or the last warm version while an update warms). */
  readonly activeClusters: Map<string, ClusterConfig>;
  readonly activeListeners: Map<string, TranslatedListener>;
}

interface Op {
  readonly kind: ResourceKind;
  /** sotw: the response replaces the set (wildcard kinds) or updates the named resources. */
  readonly mode: 'sotw' | 'delta';
  readonly resources: readonly IncomingResource[];
  readonly removed: readonly string[];
  readonly resolve: (errors: string[]) => void;
}

/** CDS before EDS before LDS before RDS; secrets first as clusters and listeners read them. */
const ORDER: readonly ResourceKind[] = ['secret', 'cluster', 'endpoints', 'listener', 'route'];
const WILDCARD: ReadonlySet<ResourceKind> = new Set<ResourceKind>(['listener', 'cluster']);
const DUMP_KEY: Record<ResourceKind, string> = { listener: 'lds', cluster: 'cds', route: 'rds', endpoints: 'eds', secret: 'sds' };

export interface StoreLog {
  warn(obj: unknown, msg?: string): void;
  info(obj: unknown, msg?: string): void;
}

export interface StoreOptions {
  /** The static config (servers, static clusters, admin...): dynamic resources are added to it. */
  readonly base: OutriggerConfig;
  readonly translator: XdsTranslator;
  /** Server.reload(); a rejection NACKs the updates of that flush with its message. */
  apply(config: OutriggerConfig): Promise<void>;
  /** Updates arriving within this window are applied by one reload (default 0: the next turn). */
  readonly coalesceMs?: number;
  readonly log?: StoreLog;
}

export interface NackRecord {
  readonly version: string;
  readonly detail: string;
  readonly at: string;
}

function emptyState(): State {
  return {
    listener: new Map(), cluster: new Map(), route: new Map(), endpoints: new Map(), secret: new Map(),
    activeClusters: new Map(), activeListeners: new Map(),
  };
}

function copyState(s: State): State {
  return {
    listener: new Map(s.listener), cluster: new Map(s.cluster), route: new Map(s.route), endpoints: new Map(s.endpoints),
    secret: new Map(s.secret), activeClusters: new Map(s.activeClusters), activeListeners: new Map(s.activeListeners),
  };
}

const allPresent = (names: readonly string[], m: ReadonlyMap<string, unknown>): boolean => names.every((n) => m.has(n));

/** Does any string inside `v` equal one of `names`? (Which clusters a listener or route config names.) */
function collectStrings(v: unknown, out: Set<string>, depth = 0): void {
  if (depth > 64) return;
  if (typeof v === 'string') out.add(v);
  else if (Array.isArray(v)) for (const x of v) collectStrings(x, out, depth + 1);
  else if (v !== null && typeof v === 'object') for (const x of Object.values(v)) collectStrings(x, out, depth + 1);
}

export class XdsStore {
  private state = emptyState();
  private pending: Op[] = [];
  private flushing = false;
  private timer: NodeJS.Timeout | null = null;
  /** Canonical form of the dynamic part last applied (skip reloads that change nothing). */
  private appliedKey = '';
  private readonly nacks = new Map<ResourceKind, NackRecord>();
  private readonly versions = new Map<ResourceKind, string>();
  /** Called after a commit when the names of EDS/RDS/SDS resources needed changed. */
  onWantedChange: (kind: ResourceKind) => void = () => undefined;
  /** Counters for the admin (src/xds/client.ts publishes them). */
  readonly counts = { reloads: 0, reloadFailures: 0, rejected: 0 };
  private closed = false;

  private base: OutriggerConfig;

  constructor(private readonly opts: StoreOptions) {
    this.base = opts.base;
    this.appliedKey = this.assemble(emptyState()).key; // the running config has no dynamic resource yet
  }

  /**
   * A new static part (SIGHUP on the bootstrap file): the dynamic resources are assembled onto it
   * and applied by one reload. Resolves with [] or the reasons it was refused (the old base stays).
   */
  async rebase(base: OutriggerConfig): Promise<string[]> {
    const old = this.base;
    this.base = base;
    this.appliedKey = ''; // the static part changed: reload even if the dynamic part did not
    const errors = await this.stage('cluster', 'delta', [], []);
    if (errors.length > 0) this.base = old;
    return errors;
  }

  /** State of the world: a whole response. Resolves with [] (ACK) or the reasons to NACK it. */
  sotw(kind: ResourceKind, resources: readonly IncomingResource[]): Promise<string[]> {
    return this.stage(kind, 'sotw', resources, []);
  }

  /** Delta: added/updated and removed resources; resolves with the reasons of the rejected ones. */
  delta(kind: ResourceKind, resources: readonly IncomingResource[], removed: readonly string[]): Promise<string[]> {
    return this.stage(kind, 'delta', resources, removed);
  }

  /** Resource names of `kind` the accepted resources need (EDS, RDS, SDS); wildcard kinds: []. */
  wanted(kind: ResourceKind): string[] {
    return [...this.wantedOf(this.state, kind)].sort();
  }

  /** Versions of accepted resources (delta `initial_resource_versions`). */
  acceptedVersions(kind: ResourceKind): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.state[kind].values()) out[e.name] = e.version;
    return out;
  }

  noteVersion(kind: ResourceKind, version: string): void {
    this.versions.set(kind, version);
  }

  noteNack(kind: ResourceKind, version: string, detail: string): void {
    this.nacks.set(kind, { version, detail, at: new Date().toISOString() });
    this.counts.rejected++;
  }

  lastNack(kind: ResourceKind): NackRecord | undefined {
    return this.nacks.get(kind);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const op of this.pending.splice(0)) op.resolve(['the xDS client is closing']);
  }

  private stage(kind: ResourceKind, mode: 'sotw' | 'delta', resources: readonly IncomingResource[], removed: readonly string[]): Promise<string[]> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(['the xDS client is closing']);
      this.pending.push({ kind, mode, resources, removed, resolve });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.flushing || this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, this.opts.coalesceMs ?? 0);
  }

  private wantedOf(s: State, kind: ResourceKind): Set<string> {
    const out = new Set<string>();
    if (kind === 'endpoints') {
      for (const c of s.cluster.values()) {
        if (c.value.edsName !== undefined) out.add(c.value.edsName);
        for (const n of c.value.deps.endpoints) out.add(n);
      }
    } else if (kind === 'route') {
      for (const l of s.listener.values()) for (const n of l.value.deps.routes) out.add(n);
    } else if (kind === 'secret') {
      for (const e of [...s.listener.values(), ...s.cluster.values()]) {
        for (const n of e.secrets) out.add(n);
        for (const n of e.value.deps.secrets) out.add(n);
      }
    }
    return out;
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0 || this.closed) return;
    this.flushing = true;
    const ops = this.pending.splice(0);
    const next = copyState(this.state);
    const answers = new Map<Op, string[]>();
    const changedSecrets = new Set<string>();
    for (const kind of ORDER) {
      for (const op of ops) if (op.kind === kind) answers.set(op, this.applyOp(next, op, changedSecrets));
    }
    if (changedSecrets.size > 0) this.retranslate(next, changedSecrets);
    this.prune(next);
    const assembled = this.assemble(next);
    let reloadError: string | undefined;
    if (assembled.key !== this.appliedKey) {
      try {
        await this.opts.apply(assembled.config);
        this.appliedKey = assembled.key;
        this.counts.reloads++;
      } catch (e) {
        reloadError = e instanceof Error ? e.message : String(e);
        this.counts.reloadFailures++;
        this.opts.log?.warn({ err: reloadError }, 'xds: the assembled config was refused; the update is NACKed and the running config stays');
      }
    }
    if (reloadError === undefined) {
      const before = { endpoints: this.wanted('endpoints').join('\n'), route: this.wanted('route').join('\n'), secret: this.wanted('secret').join('\n') };
      this.state = next;
      for (const op of ops) op.resolve(answers.get(op) ?? []);
      for (const kind of ['endpoints', 'route', 'secret'] as const) {
        if (this.wanted(kind).join('\n') !== before[kind]) this.onWantedChange(kind);
      }
    } else {
      for (const op of ops) {
        const own = answers.get(op) ?? [];
        op.resolve([...own, `the assembled config was refused: ${reloadError}`]);
      }
    }
    this.flushing = false;
    if (this.pending.length > 0) this.schedule();
  }

  /** Applies one op to `s`; returns the reasons it (or some of its resources) were refused. */
  private applyOp(s: State, op: Op, changedSecrets: Set<string>): string[] {
    const errors: string[] = [];
    const translated: Entry<Values[ResourceKind]>[] = [];
    const seen = new Set<string>();
    for (const r of op.resources) {
      if (seen.has(r.name)) {
        errors.push(`${r.name}: the resource appears twice in the response`);
        continue;
      }
      seen.add(r.name);
      // The same resource again (SotW resends them all): keep its translation, do not redo it.
      const old = (s[op.kind] as Map<string, Entry<Values[ResourceKind]>>).get(r.name);
      const json = r.message !== undefined ? JSON.stringify(r.message) : '';
      if (old !== undefined && r.error === undefined && old.json === json) {
        translated.push(old.version === r.version ? old : { ...old, version: r.version });
        continue;
      }
      const e = this.translate(s, op.kind, r, json);
      if (typeof e === 'string') errors.push(e);
      else translated.push(e);
    }
    // State of the world: one bad resource rejects the whole response.
    if (op.mode === 'sotw' && errors.length > 0) return errors;
    const map = s[op.kind] as Map<string, Entry<Values[ResourceKind]>>;
    if (op.mode === 'sotw' && WILDCARD.has(op.kind)) {
      for (const name of [...map.keys()]) if (!seen.has(name)) map.delete(name);
    }
    for (const name of op.removed) {
      if (op.kind === 'secret' && map.has(name)) changedSecrets.add(name);
      map.delete(name);
    }
    for (const e of translated) {
      if (map.get(e.name) === e) continue;
      map.set(e.name, e);
      if (op.kind === 'secret') changedSecrets.add(e.name);
    }
    return errors;
  }

  private context(s: State, used: string[]): TranslationContext {
    return {
      secret: (name: string): TranslatedSecret | undefined => {
        used.push(name);
        return s.secret.get(name)?.value;
      },
      warn: (resource: string, path: string, message: string): void => {
        this.opts.log?.warn({ resource, path }, `xds: ${message}`);
      },
    };
  }

  private translate(s: State, kind: ResourceKind, r: IncomingResource, json?: string): Entry<Values[ResourceKind]> | string {
    if (r.error !== undefined) return `${r.name}: ${r.error}`;
    if (r.message === undefined) return `${r.name}: the resource is empty`;
    const used: string[] = [];
    const ctx = this.context(s, used);
    const t = this.opts.translator;
    let value: Values[ResourceKind];
    try {
      switch (kind) {
        case 'listener': value = t.listener(r.message, ctx); break;
        case 'cluster': value = t.cluster(r.message, ctx); break;
        case 'route': value = t.route(r.message, ctx); break;
        case 'endpoints': value = t.endpoints(r.message, ctx); break;
        case 'secret': value = t.secret(r.message, ctx); break;
      }
    } catch (e) {
      if (e instanceof XdsResourceError) return e.message;
      return `${r.name}: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (value.name !== r.name && r.name !== '') return `${r.name}: the resource is named ${JSON.stringify(value.name)}`;
    if (kind === 'listener' && this.staticListener(value.name)) return `${value.name}: a static listener has that name`;
    if (kind === 'cluster' && this.base.clusters.some((c) => c.name === value.name)) return `${value.name}: a static cluster has that name`;
    return { name: value.name, version: r.version, message: r.message, json: json ?? JSON.stringify(r.message), value, secrets: used, at: new Date().toISOString() };
  }

  private staticListener(name: string): boolean {
    return this.base.servers.some((sv) => sv.listeners.some((l) => l.name === name));
  }

  /** Listeners and clusters that read a changed secret are translated again. */
  private retranslate(s: State, changed: ReadonlySet<string>): void {
    for (const kind of ['cluster', 'listener'] as const) {
      const map = s[kind] as Map<string, Entry<Values[ResourceKind]>>;
      for (const e of [...map.values()]) {
        if (!e.secrets.some((n) => changed.has(n))) continue;
        const again = this.translate(s, kind, { name: e.name, version: e.version, message: e.message });
        if (typeof again === 'string') this.opts.log?.warn({ resource: e.name, err: again }, 'xds: a secret change made the resource invalid; it keeps its previous form');
        else map.set(e.name, again);
      }
    }
  }

  /** Resources nobody needs any more (EDS, RDS, SDS) are dropped. */
  private prune(s: State): void {
    for (const kind of ['endpoints', 'route', 'secret'] as const) {
      const want = this.wantedOf(s, kind);
      for (const name of [...s[kind].keys()]) if (!want.has(name)) s[kind].delete(name);
    }
  }

  private warmDeps(s: State, d: Dependencies): boolean {
    return allPresent(d.routes, s.route) && allPresent(d.secrets, s.secret) && allPresent(d.endpoints, s.endpoints);
  }

  /** The static config with the warm dynamic resources added; `key` identifies the dynamic part. */
  private assemble(s: State): { config: OutriggerConfig; key: string } {
    // Listeners: warm ones, else the previous warm version.
    for (const [name, e] of s.listener) {
      if (this.warmDeps(s, e.value.deps)) s.activeListeners.set(name, e.value);
    }
    for (const name of [...s.activeListeners.keys()]) if (!s.listener.has(name)) s.activeListeners.delete(name);
    const listeners: ListenerConfig[] = [];
    const routers = new Map<string, RouterConfig>();
    for (const l of s.activeListeners.values()) {
      listeners.push(l.listener);
      for (const r of l.routers) routers.set(r.name, r);
    }
    for (const r of s.route.values()) routers.set(r.name, r.value.router);
    // Clusters: warm once their endpoints and secrets are here.
    for (const [name, e] of s.cluster) {
      const c = e.value;
      if (c.edsName !== undefined && !s.endpoints.has(c.edsName)) continue;
      if (!this.warmDeps(s, c.deps)) continue;
      const hosts = c.edsName !== undefined ? s.endpoints.get(c.edsName)!.value.hosts : c.cluster.hosts;
      s.activeClusters.set(name, hosts === c.cluster.hosts ? c.cluster : { ...c.cluster, hosts });
    }
    // Stale clusters go last: a removed cluster stays while a listener or route still names it.
    let named: Set<string> | null = null;
    for (const name of [...s.activeClusters.keys()]) {
      if (s.cluster.has(name)) continue;
      if (named === null) {
        named = new Set<string>();
        collectStrings(listeners, named);
        collectStrings([...routers.values()], named);
      }
      if (!named.has(name)) s.activeClusters.delete(name);
    }
    const base = this.base;
    const server0: ServerConfig | undefined = base.servers[0];
    const dynListeners = listeners.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const dynRouters = [...routers.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const dynClusters = [...s.activeClusters.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const servers: ServerConfig[] = server0 === undefined ? [] : [
      { ...server0, listeners: [...server0.listeners, ...dynListeners], routers: [...server0.routers, ...dynRouters] },
      ...base.servers.slice(1),
    ];
    const key = JSON.stringify([dynListeners, dynRouters, dynClusters]);
    // `raw` stays the static document: config_dump shows the dynamic part live (XdsRuntime.dump), and
    // a copy of every resource per push would double the memory of a large mesh.
    const config: OutriggerConfig = { ...base, servers, clusters: [...base.clusters, ...dynClusters], raw: base.raw };
    return { config, key };
  }

  /**
   * config_dump's dynamic part: per type (lds, cds, rds, eds, sds) the accepted resources with
   * versions, warming ones, and the last NACK. (Short keys: the admin redacts any value under a
   * key that contains `secret`.)
   */
  dump(): unknown {
    return this.dumpOf(this.state);
  }

  private dumpOf(s: State): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const kind of ORDER) {
      const active = (name: string): boolean =>
        kind === 'cluster' ? s.activeClusters.has(name) : kind === 'listener' ? s.activeListeners.get(name) === s.listener.get(name)?.value : true;
      out[DUMP_KEY[kind]] = {
        version_info: this.versions.get(kind) ?? '',
        resources: [...s[kind].values()].map((e) => ({
          name: e.name, version: e.version, last_updated: e.at, warming: !active(e.name), resource: e.message,
        })),
        last_nack: this.nacks.get(kind) ?? null,
      };
    }
    return out;
  }
}
