/**
 * Per-host upstream transport (Envoy transport_socket_matches; MOSN's host `tls_disable`): a
 * cluster may hold several TLS settings, each host uses one of them or plaintext.
 *
 *  - a host with `tlsDisable` (MOSN) is plaintext;
 *  - else the first `tlsMatches` entry whose `match` is a subset of the host's `tlsMatch`
 *    metadata (Envoy: filter_metadata["envoy.transport_socket_match"]) gives its TLS (or
 *    plaintext when the entry has none); an empty `match` matches every host;
 *  - else the cluster's own tlsContext (null: plaintext).
 *
 * The choice is made per host address when the host set is built (config, EDS update), so a
 * connect costs one map lookup, and only for clusters that have matches or disabled hosts.
 *
 * Istio ALPN: a TLS setting whose ALPN offers Istio's names (`istio-peer-exchange`, `istio`)
 * is Istio mTLS to a sidecar; an HTTP connection over it offers `istio-http/1.1` or
 * `istio-h2` before `istio` and the protocol itself, as Istio's `istio.alpn` filter does, so
 * that the peer's inbound chains matching on them are chosen.
 */
import type { ClusterConfig, HostConfig, TlsContextConfig } from '../config/types';
import { ClientTls } from '../tls/client';
import { hostAddress, type Host } from './lb';

/** Whether every key of `match` is in `meta` with the same value (Envoy's subset match). */
export function metadataMatches(match: Readonly<Record<string, string>>, meta: Readonly<Record<string, string>> | undefined): boolean {
  for (const k of Object.keys(match)) {
    if (meta === undefined || meta[k] !== match[k]) return false;
  }
  return true;
}

/** Index into `config.tlsMatches` of the entry `host` uses, -1 for the cluster's default, -2 for plaintext (tls_disable). */
export function selectTransport(config: Pick<ClusterConfig, 'tlsMatches'>, host: HostConfig): number {
  if (host.tlsDisable === true) return -2;
  const ms = config.tlsMatches;
  if (ms === undefined) return -1;
  for (let i = 0; i < ms.length; i++) if (metadataMatches(ms[i].match, host.tlsMatch)) return i;
  return -1;
}

const ISTIO_ALPN = new Set(['istio-peer-exchange', 'istio']);
const ISTIO_HTTP: Readonly<Record<string, string>> = { 'http/1.1': 'istio-http/1.1', h2: 'istio-h2', 'http/1.0': 'istio-http/1.0' };

/**
 * What a connection offers by ALPN over `ctx` when its user asks for `want` (['h2'] for an
 * HTTP/2 session, ['http/1.1'] for an HTTP/1.1 pool): `want` itself, or Istio's HTTP names
 * before it when `ctx` is Istio mTLS.
 */
export function offeredAlpn(ctx: TlsContextConfig, want: readonly string[]): string[] {
  if (!ctx.alpn.some((a) => ISTIO_ALPN.has(a))) return [...want];
  const out: string[] = [];
  for (const w of want) {
    const i = ISTIO_HTTP[w];
    if (i !== undefined) out.push(i);
  }
  if (out.length > 0) out.push('istio');
  return [...out, ...want];
}

function sameTls(a: TlsContextConfig, b: TlsContextConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The TLS each host of one cluster uses, in one worker. TLS contexts of matches are kept
 * across cluster rebuilds when their config is unchanged (as the cluster's own one), so the
 * hosts' pools survive a reload.
 */
export class TransportSelector {
  /** The ClientTls of each tlsMatches entry (null: plaintext entry). */
  private readonly entries: (ClientTls | null)[];
  /** Per host address when any host may differ from the default; null: every host uses `def`. */
  private byAddress: Map<string, ClientTls | null> | null = null;

  constructor(
    private readonly config: ClusterConfig,
    /** The cluster's own TLS (tlsContext), owned by the Cluster. */
    readonly def: ClientTls | null,
    counters: Float64Array,
    base: number,
    previous?: TransportSelector,
  ) {
    this.entries = (config.tlsMatches ?? []).map((m) => {
      const t = m.tlsContext;
      if (t === undefined) return null;
      const old = previous?.entries.find((e) => e !== null && sameTls(e.config, t));
      return old ?? new ClientTls(config.name, t, counters, base);
    });
    this.setHosts(config.hosts);
  }

  /** Recomputes the per-host choice for a new host list (EDS update); returns the addresses whose choice changed. */
  setHosts(hosts: readonly HostConfig[]): Set<string> {
    const before = this.byAddress;
    const anyOther = this.entries.length > 0 || hosts.some((h) => h.tlsDisable === true);
    let next: Map<string, ClientTls | null> | null = null;
    if (anyOther) {
      next = new Map();
      for (const h of hosts) {
        const i = selectTransport(this.config, h);
        next.set(hostAddress(h), i === -2 ? null : i === -1 ? this.def : this.entries[i]);
      }
    }
    const changed = new Set<string>();
    for (const h of hosts) {
      const a = hostAddress(h);
      const was = before === null ? this.def : before.has(a) ? before.get(a) : undefined;
      const now = next === null ? this.def : next.get(a);
      if (was !== undefined && was !== now) changed.add(a);
    }
    this.byAddress = next;
    return changed;
  }

  /** The TLS `host` uses (null: plaintext). Hosts made on demand (ORIGINAL_DST) use the default. */
  forHost(host: Host): ClientTls | null {
    const m = this.byAddress;
    if (m === null) return this.def;
    const t = m.get(host.address);
    return t === undefined ? this.def : t;
  }

  /** Every TLS context of the matches (not the default). */
  matchContexts(): ClientTls[] {
    return this.entries.filter((e): e is ClientTls => e !== null);
  }

  /** Stops the certificate watchers of match contexts that `next` does not keep. */
  closeUnshared(next: TransportSelector | undefined): void {
    const kept = new Set(next?.entries ?? []);
    for (const e of this.entries) if (e !== null && !kept.has(e)) e.close();
  }
}
