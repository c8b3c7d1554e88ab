/**
 * Envoy's `filter_chain_match` on a listener's filter chain (MOSN keeps only the first chain
 * and ignores its `match` string): which chain serves a connection, from what the listener
 * filters saw. Keys (Envoy v3 FilterChainMatch, JSON names):
 *
 *   destination_port          number 1..65535 (the port the connection was accepted on)
 *   prefix_ranges             [{address_prefix, prefix_len}] of the local (destination) address
 *   server_names              ["example.com", "*.example.com"] (TLS SNI)
 *   transport_protocol        "raw_buffer" | "tls"
 *   application_protocols     ["h2", "http/1.1"] (ALPN offered in the ClientHello)
 *   source_prefix_ranges      [{address_prefix, prefix_len}] of the client address
 *   direct_source_prefix_ranges  same as source_prefix_ranges here (no PROXY protocol)
 *   source_ports              [number]
 *
 * Keys that change routing and are not implemented (source_type, address_suffix, suffix_len)
 * are refused. Two chains with the same match are refused (Envoy does the same).
 */
import { showValue } from './errors';
import { ConfigObject } from './reader';
import { parseCidr } from './values';
import type { CidrRange } from './types';

export interface FilterChainMatchConfig {
  readonly destinationPort?: number;
  readonly prefixRanges: readonly CidrRange[];
  /** Lower case; "*.suffix" entries are wildcards. */
  readonly serverNames: readonly string[];
  /** '' = any. */
  readonly transportProtocol: '' | 'raw_buffer' | 'tls';
  readonly applicationProtocols: readonly string[];
  readonly sourcePrefixRanges: readonly CidrRange[];
  readonly sourcePorts: readonly number[];
}

function ranges(o: ConfigObject, key: string): CidrRange[] {
  const out: CidrRange[] = [];
  for (const item of o.list(key)) {
    if (typeof item.value === 'string') {
      const r = parseCidr(item.value);
      if (typeof r === 'string') o.issues.error(item.path, `${showValue(item.value)} is not a CIDR range (${r})`);
      else out.push(r);
      continue;
    }
    const c = ConfigObject.from(o.issues, item.path, item.value);
    if (c === undefined) continue;
    const addr = c.str('address_prefix', { required: true });
    const hasLen = c.has('prefix_len');
    const len = c.int('prefix_len', { min: 0, max: 128 });
    c.done();
    if (addr === undefined) continue;
    const r = parseCidr(hasLen ? `${addr}/${len}` : addr);
    if (typeof r === 'string') o.issues.error(item.path, `${showValue(`${addr}/${len}`)} is not a CIDR range (${r})`);
    else out.push(r);
  }
  return out;
}

function strings(o: ConfigObject, key: string): string[] {
  const out: string[] = [];
  for (const item of o.list(key)) {
    if (typeof item.value !== 'string' || item.value === '') o.issues.error(item.path, `${showValue(item.value)} must be a non-empty string`);
    else out.push(item.value);
  }
  return out;
}

/** The chain's filter_chain_match, or undefined when absent (the chain matches every connection). */
export function parseFilterChainMatch(fc: ConfigObject): FilterChainMatchConfig | undefined {
  const m = fc.obj('filter_chain_match');
  if (m === undefined) return undefined;
  for (const k of ['source_type', 'address_suffix', 'suffix_len']) m.errorIfSet(k, 'is not supported (it would change which chain serves a connection)');
  const destinationPort = m.has('destination_port') ? m.int('destination_port', { min: 1, max: 65535 }) : undefined;
  const serverNames = strings(m, 'server_names').map((n) => n.toLowerCase());
  serverNames.forEach((n, i) => {
    if (n.includes('*') && !(n.startsWith('*.') && !n.slice(2).includes('*'))) {
      m.issues.error(`${m.at('server_names')}[${i}]`, `${showValue(n)}: a wildcard is allowed only as the first label ("*.example.com")`);
    }
  });
  const tp = m.str('transport_protocol', { def: '' }) ?? '';
  let transportProtocol: FilterChainMatchConfig['transportProtocol'] = '';
  if (tp === 'raw_buffer' || tp === 'tls') transportProtocol = tp;
  else if (tp !== '') m.issues.error(m.at('transport_protocol'), `${showValue(tp)} must be "raw_buffer" or "tls"`);
  const applicationProtocols = strings(m, 'application_protocols');
  const sourcePrefixRanges = [...ranges(m, 'source_prefix_ranges'), ...ranges(m, 'direct_source_prefix_ranges')];
  const prefixRanges = ranges(m, 'prefix_ranges');
  const sourcePorts: number[] = [];
  for (const item of m.list('source_ports')) {
    const p = m.checkInt(item.value, item.path, { min: 1, max: 65535 });
    if (p !== undefined) sourcePorts.push(p);
  }
  m.done();
  return {
    ...(destinationPort !== undefined ? { destinationPort } : {}),
    prefixRanges, serverNames, transportProtocol, applicationProtocols, sourcePrefixRanges, sourcePorts,
  };
}

function key(m: FilterChainMatchConfig | undefined): string {
  if (m === undefined) return '{}';
  const r = (x: readonly CidrRange[]): string[] => x.map((c) => `${c.address}/${c.length}`).sort();
  return JSON.stringify([m.destinationPort ?? 0, r(m.prefixRanges), [...m.serverNames].sort(), m.transportProtocol, [...m.applicationProtocols].sort(), r(m.sourcePrefixRanges), [...m.sourcePorts].sort()]);
}

/** Refuses a chain whose match equals an earlier chain's (it could never be chosen). */
export function checkChainMatches(fc: { issues: ConfigObject['issues'] }, path: string, chains: readonly { readonly match?: FilterChainMatchConfig }[]): void {
  const seen = new Map<string, number>();
  chains.forEach((c, i) => {
    const k = key(c.match);
    const prev = seen.get(k);
    if (prev !== undefined) {
      fc.issues.error(`${path}[${i}]`, `filter_chain_match ${c.match === undefined ? '(none)' : k} is the same as filter_chains[${prev}]'s: give each chain a distinct filter_chain_match`);
    } else seen.set(k, i);
  });
}
