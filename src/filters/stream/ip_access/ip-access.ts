/**
 * `ip_access` stream filter: MOSN's IP allow/deny lists (pkg/filter/stream/ipaccess), before
 * routing, for every L7 protocol.
 *
 *   { "type": "ip_access", "config": { "header": "x-forwarded-for", "default_action": "allow",
 *       "ips": [ { "action": "deny", "addrs": ["127.0.0.1", "10.0.0.0/8"] } ] } }
 *
 * The address is the `header`'s value when set and present (MOSN's choice: a client can set it,
 * so use it only behind a proxy that overwrites it), else the connection's peer. Entries in
 * order: an "allow" entry containing the address lets it through; a "deny" entry (action
 * "deny"; any other action is an allow list, as in MOSN) containing it answers 403 (RPC: the
 * codec's permission error). No entry decides: default_action "deny" answers 403, anything
 * else lets it through. An unreadable address skips an entry, as MOSN does.
 * Counters: ip_access.<listener>.allowed | denied.
 */
import * as net from 'node:net';
import { DecodePhase, FilterStatus, registerStreamFilterKind, type FilterStream, type StreamFilter, type StreamFilterValidationContext } from '../../../api/stream-filter';
import { count, counterCell } from '../../shared/cells';
import { JsonObj, show } from '../../shared/json';
import { cidrMatcher } from '../../shared/ip';
import { ipOf } from '../../shared/rbac';

export interface IpAccessConfig {
  readonly header: string;
  readonly denyByDefault: boolean;
  readonly entries: readonly { readonly deny: boolean; readonly addrs: readonly string[] }[];
  readonly cells: { readonly allowed: number; readonly denied: number };
}

export function validateIpAccess(raw: unknown, path: string, ctx: StreamFilterValidationContext): IpAccessConfig | undefined {
  const o = JsonObj.from(raw, path, ctx);
  if (o === undefined) return undefined;
  o.known(['header', 'default_action', 'ips'], 'ip_access');
  const header = (o.str('header', '') ?? '').toLowerCase();
  const denyByDefault = o.str('default_action', '') === 'deny';
  const entries: { deny: boolean; addrs: string[] }[] = [];
  for (const it of o.list('ips') ?? []) {
    const e = JsonObj.from(it.value, it.path, ctx);
    if (e === undefined) {
      o.ok = false;
      continue;
    }
    e.known(['action', 'addrs'], 'ip_access entry');
    const deny = e.str('action', '') === 'deny';
    const addrs: string[] = [];
    const list = e.list('addrs') ?? [];
    // MOSN: "not found trusted IPs" for an empty list.
    if (list.length === 0) e.fail(e.at('addrs'), 'at least one address or CIDR is required');
    for (const a of list) {
      const v = a.value;
      const slash = typeof v === 'string' ? v.indexOf('/') : -1;
      const ok = typeof v === 'string' && (slash < 0 ? net.isIP(v) !== 0 : net.isIP(v.slice(0, slash)) !== 0 && /^\d{1,3}$/.test(v.slice(slash + 1)) && Number(v.slice(slash + 1)) <= (net.isIP(v.slice(0, slash)) === 6 ? 128 : 32));
      if (!ok) e.fail(a.path, `${show(v)} is not an IP address or CIDR`);
      else addrs.push(v);
    }
    if (!e.ok) o.ok = false;
    entries.push({ deny, addrs });
  }
  if (!o.ok) return undefined;
  const b = `ip_access.${ctx.listenerName}`;
  return { header, denyByDefault, entries, cells: { allowed: counterCell(`${b}.allowed`), denied: counterCell(`${b}.denied`) } };
}

function listOf(addrs: readonly string[]): (ip: string) => boolean {
  const ms = addrs.map((a) => {
    const slash = a.indexOf('/');
    const host = slash < 0 ? a : a.slice(0, slash);
    return cidrMatcher(host, slash < 0 ? (net.isIP(host) === 6 ? 128 : 32) : Number(a.slice(slash + 1)));
  });
  return (ip) => {
    for (let i = 0; i < ms.length; i++) if (ms[i](ip)) return true;
    return false;
  };
}

class IpAccessFilter implements StreamFilter {
  readonly phase = DecodePhase.BeforeRoute;
  /** Decides from the address alone; Stop only after the 403 (StreamFilter.headersOnly). */
  readonly headersOnly = true;
  private readonly lists: { readonly deny: boolean; readonly has: (ip: string) => boolean }[];

  constructor(private readonly cfg: IpAccessConfig) {
    this.lists = cfg.entries.map((e) => ({ deny: e.deny, has: listOf(e.addrs) }));
  }

  decode(s: FilterStream): FilterStatus {
    const c = this.cfg;
    let addr = c.header !== '' ? (s.header(c.header) ?? '') : '';
    if (addr === '') addr = s.remoteAddress();
    let ip = net.isIP(addr) !== 0 ? addr : ipOf(addr);
    if (ip.startsWith('::ffff:') && ip.indexOf('.') > 0) ip = ip.slice(7);
    const valid = net.isIP(ip) !== 0;
    for (const l of this.lists) {
      if (!valid) break; // MOSN: an unparsable address skips every entry
      const inList = l.has(ip);
      if (inList && !l.deny) return this.allow();
      if (inList && l.deny) return this.deny(s);
    }
    return c.denyByDefault ? this.deny(s) : this.allow();
  }

  private allow(): FilterStatus {
    count(this.cfg.cells.allowed);
    return FilterStatus.Continue;
  }

  private deny(s: FilterStream): FilterStatus {
    count(this.cfg.cells.denied);
    s.sendLocalReply(403, 'ip access denied');
    return FilterStatus.Stop;
  }
}

registerStreamFilterKind<IpAccessConfig>({ type: 'ip_access', validate: validateIpAccess, create: (cfg) => new IpAccessFilter(cfg) });
