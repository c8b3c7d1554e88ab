/**
 * Choosing a listener's filter chain for a connection (Envoy filter_chain_match semantics):
 * a chain is a candidate when every criterion it sets matches; among candidates the most
 * specific wins, criterion by criterion in Envoy's order: destination port, destination IP
 * (longest prefix), server name (exact, then the longest wildcard), transport protocol,
 * application protocols, source IP (longest prefix), source port. A chain without
 * filter_chain_match is the least specific candidate for everything.
 */
import * as net from 'node:net';
import type { FilterChainMatchConfig } from '../config/filter-chain-match';
import type { CidrRange } from '../config/types';
import type { ConnectionInfo } from '../filters/network/types';

interface CompiledRange {
  readonly list: net.BlockList;
  readonly length: number;
}

export interface CompiledMatch {
  readonly m: FilterChainMatchConfig;
  readonly dst: readonly CompiledRange[];
  readonly src: readonly CompiledRange[];
}

function compileRanges(rs: readonly CidrRange[]): CompiledRange[] {
  return rs.map((r) => {
    const list = new net.BlockList();
    list.addSubnet(r.address, r.length, net.isIPv6(r.address) ? 'ipv6' : 'ipv4');
    return { list, length: r.length };
  });
}

export function compileMatch(m: FilterChainMatchConfig | undefined): CompiledMatch | null {
  if (m === undefined) return null;
  return { m, dst: compileRanges(m.prefixRanges), src: compileRanges(m.sourcePrefixRanges) };
}

/** Whether the listener must read the ClientHello (TLS or not, SNI, ALPN) before choosing. */
export function needsHello(ms: readonly (CompiledMatch | null)[]): boolean {
  return ms.some((c) => c !== null && (c.m.serverNames.length > 0 || c.m.transportProtocol !== '' || c.m.applicationProtocols.length > 0));
}

function plainIp(addr: string): string {
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

/** Longest matching prefix + 1, 0 when no range matches (ranges non-empty). */
function rangeScore(rs: readonly CompiledRange[], addr: string): number {
  const ip = plainIp(addr);
  const fam = net.isIPv6(ip) ? 'ipv6' : 'ipv4';
  let best = 0;
  for (const r of rs) if (r.length + 1 > best && r.list.check(ip, fam)) best = r.length + 1;
  return best;
}

function nameScore(names: readonly string[], sni: string): number {
  if (sni === '') return 0;
  let name = sni.toLowerCase();
  while (name.endsWith('.')) name = name.slice(0, -1);
  if (names.includes(name)) return 1000;
  let best = 0;
  for (const n of names) if (n.startsWith('*.') && name.endsWith(n.slice(1)) && name.length > n.length - 1) best = Math.max(best, n.length);
  return best;
}

/**
 * Fills `out` with the specificity scores of a chain for a connection, in Envoy's criterion
 * order; false when the chain does not match. `out` is reused (one array per listener, no allocation per connection).
 */
function score(c: CompiledMatch | null, info: ConnectionInfo, out: number[]): boolean {
  out.fill(0);
  if (c === null) return true;
  const m = c.m;
  if (m.destinationPort !== undefined) {
    if (info.localPort !== m.destinationPort) return false;
    out[0] = 1;
  }
  if (c.dst.length > 0) {
    out[1] = rangeScore(c.dst, info.localAddress);
    if (out[1] === 0) return false;
  }
  if (m.serverNames.length > 0) {
    out[2] = nameScore(m.serverNames, info.serverName);
    if (out[2] === 0) return false;
  }
  if (m.transportProtocol !== '') {
    if (info.transportProtocol !== m.transportProtocol) return false;
    out[3] = 1;
  }
  if (m.applicationProtocols.length > 0) {
    if (!m.applicationProtocols.some((p) => info.applicationProtocols.includes(p))) return false;
    out[4] = 1;
  }
  if (c.src.length > 0) {
    out[5] = rangeScore(c.src, info.remoteAddress);
    if (out[5] === 0) return false;
  }
  if (m.sourcePorts.length > 0) {
    if (!m.sourcePorts.includes(info.remotePort)) return false;
    out[6] = 1;
  }
  return true;
}

const CRITERIA = 7;

/** Chooses among compiled chain matches; -1 = none matches. */
export class ChainSelector {
  private readonly cur = new Array<number>(CRITERIA).fill(0);
  private readonly best = new Array<number>(CRITERIA).fill(0);

  constructor(private readonly matches: readonly (CompiledMatch | null)[]) {}

  select(info: ConnectionInfo): number {
    const ms = this.matches;
    if (ms.length === 1 && ms[0] === null) return 0;
    let chosen = -1;
    for (let i = 0; i < ms.length; i++) {
      if (!score(ms[i], info, this.cur)) continue;
      if (chosen < 0 || this.better()) {
        chosen = i;
        for (let k = 0; k < CRITERIA; k++) this.best[k] = this.cur[k];
      }
    }
    return chosen;
  }

  /** cur more specific than best (lexicographic over the criteria). */
  private better(): boolean {
    for (let k = 0; k < CRITERIA; k++) {
      if (this.cur[k] !== this.best[k]) return this.cur[k] > this.best[k];
    }
    return false;
  }
}
