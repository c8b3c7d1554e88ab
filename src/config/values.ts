/** Scalar value parsers shared by every section: Go durations, host:port, CIDR, port lists. */
import * as net from 'node:net';
import type { CidrRange, HostPort } from './types';

// ---------------------------------------------------------------------------------------------
// Value helpers (exported for filter validators and tests)
// ---------------------------------------------------------------------------------------------

const GO_UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const GO_DURATION_RE = /^[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const GO_PART_RE = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

/**
 * Parse a Go duration string ("1h2m3.5s", "500ms", "0") into nanoseconds; undefined when it
 * is not valid Go syntax. The sign is kept (callers reject negatives).
 */
export function parseGoDurationNs(s: string): number | undefined {
  const t = s.trim();
  if (t === '0' || t === '+0' || t === '-0') return 0;
  if (!GO_DURATION_RE.test(t)) return undefined;
  let ns = 0;
  for (const m of t.matchAll(GO_PART_RE)) ns += Number(m[1]) * GO_UNIT_NS[m[2]!]!;
  return t.startsWith('-') ? -ns : ns;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const HOSTNAME_RE = /^(?=.{1,253}\.?$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;

/** An IP literal (v4 or v6, no brackets) or a syntactically valid DNS name. */
export function isHostnameOrIp(h: string): boolean {
  if (net.isIP(h)) return true;
  if (/^[\d.]+$/.test(h)) return false; // "1.2.3" / "300.1.1.1": broken IPv4, not a name
  return HOSTNAME_RE.test(h);
}

export function canonicalIpv6(h: string): string {
  try {
    return new URL(`http://[${h}]/`).hostname.slice(1, -1);
  } catch {
    return h.toLowerCase();
  }
}

export interface HostPortOptions {
  /** ":2045" (all interfaces, as Go's net.Listen does) -> host "0.0.0.0". Listeners only. */
  allowEmptyHost?: boolean;
  /** Port 0 (ephemeral). Listeners/admin only; an upstream host needs a real port. */
  allowPortZero?: boolean;
}

/**
 * Parse "host:port" as Go's net.SplitHostPort does: IPv4 "1.2.3.4:80", IPv6 "[::1]:80",
 * or a DNS name "svc.local:80" (MOSN resolves names with net.ResolveTCPAddr; we keep the
 * name and let the socket layer resolve it). Returns a reason string when invalid.
 */
export function parseHostPort(s: string, opts: HostPortOptions = {}): HostPort | string {
  let host: string;
  let portStr: string;
  if (s.startsWith('[')) {
    const m = /^\[([^\]]*)\]:([^:]*)$/.exec(s);
    if (!m) return 'missing port';
    host = m[1]!;
    portStr = m[2]!;
    if (!net.isIPv6(host)) return 'bracketed host is not an IPv6 address';
    host = canonicalIpv6(host);
  } else {
    const i = s.lastIndexOf(':');
    if (i < 0) return 'missing port';
    host = s.slice(0, i);
    portStr = s.slice(i + 1);
    if (host.includes(':')) return 'IPv6 addresses must be written in brackets, e.g. [::1]:80';
    if (host === '') {
      if (!opts.allowEmptyHost) return 'missing host';
      host = '0.0.0.0';
    } else if (!isHostnameOrIp(host)) {
      return 'invalid host';
    } else {
      host = host.toLowerCase();
    }
  }
  if (!/^\d{1,5}$/.test(portStr)) return 'invalid port';
  const port = Number(portStr);
  if (port > 65535) return 'port out of range';
  if (port === 0 && !opts.allowPortZero) return 'port 0 is not allowed here';
  return { host, port };
}

/** Parse a CIDR "10.0.0.0/8" or a single IP (full-length prefix). Returns a reason when invalid. */
export function parseCidr(s: string): CidrRange | string {
  const slash = s.indexOf('/');
  const address = (slash < 0 ? s : s.slice(0, slash)).trim();
  const fam = net.isIP(address);
  if (!fam) return 'invalid IP address';
  const max = fam === 4 ? 32 : 128;
  if (slash < 0) return { address: fam === 6 ? canonicalIpv6(address) : address, length: max };
  const lenStr = s.slice(slash + 1).trim();
  if (!/^\d{1,3}$/.test(lenStr) || Number(lenStr) > max) return `prefix length must be 0..${max}`;
  return { address: fam === 6 ? canonicalIpv6(address) : address, length: Number(lenStr) };
}

/** Validate a MOSN port list: "8080", "80-90", "80,443,8000-8100". Returns the normalized string or a reason. */
export function parsePortList(v: string | number): string | { reason: string } {
  const items = String(v).split(',').map((x) => x.trim());
  for (const it of items) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(it);
    if (!m) return { reason: `"${it}" is not a port or port range` };
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo > 65535 || hi > 65535) return { reason: `"${it}" is out of range` };
    if (lo > hi) return { reason: `"${it}" is an empty range` };
  }
  return items.join(',');
}

export function isSet(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isPlainObject(v)) return Object.values(v).some(isSet);
  return true;
}

/** Shallow: anything but absent/false/0/""/[]/{} (errors must not be dodged by nesting empties). */
export function isPresent(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isPlainObject(v)) return Object.keys(v).length > 0;
  return true;
}

export function joinPath(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}
