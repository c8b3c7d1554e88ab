/**
 * ORIGINAL_DST clusters (Envoy's original destination cluster, MOSN's LB_ORIGINAL_DST): no
 * configured hosts; each connection or request goes to
 *   - the host:port of the configured request header (HTTP, original_dst_lb_config use_header),
 *     when the request has it (an IP literal; no port = 80, as MOSN);
 *   - else the original destination its listener read (src/network/original-dst.ts);
 *   - with replace_local, 127.0.0.1 on that port.
 * A connection whose listener read no original destination has no host (UH): a direct
 * connection to a capture port must not be proxied back into it.
 *
 * Hosts are made on first use and kept by address, so that pools and active counts work as
 * for static hosts; a sweep every cleanup_interval drops the hosts not chosen since the
 * previous sweep that hold nothing (no active request or connection; their pools drained).
 * Sockets are opened by the Cluster as for any host (connect.ts: TLS, breakers, counters).
 */
import * as net from 'node:net';
import type { OriginalDstLbConfig } from '../config/types';
import { originalDstOf } from '../network/original-dst';
import { Host, type LbContext, type LoadBalancer } from './lb';

const LOCALHOST = '127.0.0.1';

/** host:port of a header value: "1.2.3.4:80", "[::1]:80", "1.2.3.4" (port 80); null when not an IP literal. */
export function parseDestination(v: string): { host: string; port: number } | null {
  let host = v.trim();
  let port = 80;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return null;
    const rest = host.slice(end + 1);
    host = host.slice(1, end);
    if (rest !== '') {
      if (!rest.startsWith(':')) return null;
      port = Number(rest.slice(1));
    }
  } else {
    const i = host.lastIndexOf(':');
    if (i >= 0 && host.indexOf(':') === i) {
      port = Number(host.slice(i + 1));
      host = host.slice(0, i);
    }
  }
  if (net.isIP(host) === 0 || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host, port };
}

function addressKey(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export class OriginalDstLb implements LoadBalancer {
  private readonly hosts = new Map<string, Host>();
  /** Hosts chosen since the last sweep. */
  private readonly used = new Set<Host>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly config: OriginalDstLbConfig,
    /** Drains a dropped host's pools (the Cluster's registry). */
    private readonly dropHost: (h: Host) => void,
  ) {}

  /** Live on-demand hosts (tests, admin). */
  get size(): number {
    return this.hosts.size;
  }

  choose(ctx?: LbContext | null): Host | null {
    if (ctx === undefined || ctx === null) return null;
    let host: string | undefined;
    let port = 0;
    const name = this.config.headerName;
    if (name !== '' && ctx.header !== undefined) {
      const v = ctx.header(name);
      if (v !== undefined && v !== '') {
        const d = parseDestination(v);
        if (d === null) return null; // a header that names no IP:port: no host (Envoy does not fall back either)
        host = d.host;
        port = d.port;
      }
    }
    if (host === undefined) {
      const s = ctx.downstream;
      const d = s === null ? null : originalDstOf(s);
      if (d === null) return null;
      host = d.host;
      port = d.port;
    }
    if (this.config.replaceLocal) host = LOCALHOST;
    const k = addressKey(host, port); // the address string is the map key (one small string per pick)
    let h = this.hosts.get(k);
    if (h === undefined) {
      h = new Host({ address: { host, port }, weight: 1 });
      this.hosts.set(k, h);
      this.schedule();
    }
    this.used.add(h);
    return h;
  }

  private schedule(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.sweep(), this.config.cleanupIntervalMs);
    this.timer.unref();
  }

  /** Drops hosts not chosen since the last sweep and holding no active work. */
  sweep(): void {
    for (const [k, h] of this.hosts) {
      if (this.used.has(h) || h.active > 0) continue;
      this.hosts.delete(k);
      this.dropHost(h);
    }
    this.used.clear();
    if (this.hosts.size === 0) this.stop();
  }

  /** Every host leaves (cluster removed or rebuilt): pools drained, the sweep stops. */
  close(): void {
    for (const h of this.hosts.values()) this.dropHost(h);
    this.hosts.clear();
    this.used.clear();
    this.stop();
  }

  private stop(): void {
    if (this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}
