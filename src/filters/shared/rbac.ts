/**
 * Envoy v3 RBAC (envoy.config.rbac.v3.RBAC) for the HTTP/stream filter and the network filter:
 * validation (main thread; proto3 JSON camelCase and snake_case keys), the plain-data form that
 * travels to workers, and compiled matchers (one closure tree per policy, built per worker).
 *
 *   rules: { action: ALLOW | DENY | LOG, policies: { name: { permissions: [..], principals: [..] } } }
 *   a policy matches when one of its permissions and one of its principals match;
 *   ALLOW: allowed when some policy matches; DENY: denied when some policy matches; LOG: allowed.
 *
 * Permissions: any, and_rules, or_rules, not_rule, header, url_path, destination_port,
 * destination_port_range, destination_ip, requested_server_name (network only).
 * Principals: any, and_ids, or_ids, not_id, authenticated.principal_name (URI SANs, then DNS
 * SANs, then the subject, as Envoy), source_ip / direct_remote_ip / remote_ip (CIDR; no proxy
 * protocol: all three are the connection's peer), header, url_path.
 * Headers at L7: HTTP request headers (lower-case) and pseudo headers :method, :path,
 * :authority; for RPC (Bolt, Dubbo, ...) the codec's headers (Bolt: `service`,
 * `sofa_head_method_name`, SOFA's request headers; Dubbo: `service`, `method`, `version`,
 * attachments) and the pseudo headers `:method` (the RPC method), `:service` / `:authority`
 * (the service) and `:path` ("/<service>/<method>", the gRPC form, also what url_path sees).
 * What cannot be checked here (metadata, CEL conditions, matcher trees, filter_state,
 * uri_template) is refused: an access rule silently skipped could open access.
 */
import * as net from 'node:net';
import type { StreamPeer } from '../../api/stream-filter';
import { linearRegex, type LinearRegex } from '../../router/regex';
import { cidrMatcher, ipv4Of, v4Range } from './ip';
import { JsonObj, show, type Reporter } from './json';

// ---------------------------------------------------------------------------------------------
// Plain-data form (structured-clone safe)
// ---------------------------------------------------------------------------------------------

export type StrKind = 'exact' | 'prefix' | 'suffix' | 'contains' | 'regex';
export interface StringMatch {
  readonly kind: StrKind;
  readonly value: string;
  readonly ignoreCase: boolean;
}

export interface HeaderMatch {
  readonly name: string;
  /** null: present_match. */
  readonly str: StringMatch | null;
  readonly range: { readonly start: number; readonly end: number } | null;
  /** present_match value (true unless `present_match: false`). */
  readonly present: boolean;
  readonly invert: boolean;
  readonly missingAsEmpty: boolean;
}

export interface Cidr {
  readonly address: string;
  readonly prefixLen: number;
}

export type Permission =
  | { readonly t: 'any' }
  | { readonly t: 'and' | 'or'; readonly rules: readonly Permission[] }
  | { readonly t: 'not'; readonly rule: Permission }
  | { readonly t: 'header'; readonly h: HeaderMatch }
  | { readonly t: 'path'; readonly m: StringMatch }
  | { readonly t: 'port'; readonly start: number; readonly end: number }
  | { readonly t: 'dip'; readonly cidr: Cidr }
  | { readonly t: 'sni'; readonly m: StringMatch };

export type Principal =
  | { readonly t: 'any' }
  | { readonly t: 'and' | 'or'; readonly ids: readonly Principal[] }
  | { readonly t: 'not'; readonly id: Principal }
  | { readonly t: 'auth'; readonly m: StringMatch | null }
  | { readonly t: 'ip'; readonly cidr: Cidr }
  | { readonly t: 'header'; readonly h: HeaderMatch }
  | { readonly t: 'path'; readonly m: StringMatch };

export interface Policy {
  readonly name: string;
  readonly permissions: readonly Permission[];
  readonly principals: readonly Principal[];
}

export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

export interface RbacRules {
  readonly action: RbacAction;
  readonly policies: readonly Policy[];
}

/** Where the rules are checked: L7 streams see headers and paths; L4 sees SNI. */
export type RbacLayer = 'stream' | 'network';

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

const MAX_DEPTH = 32;

export function parseStringMatcher(o: JsonObj | undefined, path: string, r: Reporter): StringMatch | undefined {
  if (o === undefined) return undefined;
  o.known(['exact', 'prefix', 'suffix', 'contains', 'safe_regex', 'ignore_case'], 'StringMatcher');
  const ignoreCase = o.bool('ignore_case', false);
  const set = ['exact', 'prefix', 'suffix', 'contains', 'safe_regex'].filter((k) => o.has(k));
  if (set.length !== 1) {
    r.error(path, `a string matcher needs exactly one of exact, prefix, suffix, contains, safe_regex (has ${set.length === 0 ? 'none' : set.join(', ')})`);
    return undefined;
  }
  const k = set[0];
  if (k === 'safe_regex') {
    const re = o.obj('safe_regex');
    if (re === undefined) return undefined;
    re.known(['regex', 'google_re2'], 'RegexMatcher');
    const src = re.str('regex');
    if (src === undefined) {
      r.error(re.at('regex'), 'required');
      return undefined;
    }
    if (!checkRegex(src, re.at('regex'), r, ignoreCase)) return undefined;
    return o.ok && re.ok ? { kind: 'regex', value: src, ignoreCase } : undefined;
  }
  const v = o.str(k);
  if (v === undefined) return undefined;
  if (v === '' && k !== 'exact') {
    r.error(o.at(k), `${k} must not be empty`);
    return undefined;
  }
  return o.ok ? { kind: k as StrKind, value: ignoreCase ? v.toLowerCase() : v, ignoreCase } : undefined;
}

function checkRegex(src: string, path: string, r: Reporter, ignoreCase: boolean): boolean {
  try {
    linearRegex(src, path, ignoreCase);
    return true;
  } catch (e) {
    r.error(path, (e as Error).message.replace(`${path}: `, ''));
    return false;
  }
}

const HEADER_KEYS = [
  'name', 'exact_match', 'safe_regex_match', 'range_match', 'present_match', 'prefix_match', 'suffix_match', 'contains_match',
  'string_match', 'invert_match', 'treat_missing_header_as_empty',
];

export function parseHeaderMatcher(raw: unknown, path: string, r: Reporter): HeaderMatch | undefined {
  const o = JsonObj.from(raw, path, r);
  if (o === undefined) return undefined;
  o.known(HEADER_KEYS, 'HeaderMatcher');
  const name = o.str('name');
  if (name === undefined || name === '') {
    r.error(o.at('name'), 'a header name is required');
    return undefined;
  }
  const invert = o.bool('invert_match', false);
  const missingAsEmpty = o.bool('treat_missing_header_as_empty', false);
  const kinds = ['exact_match', 'safe_regex_match', 'range_match', 'present_match', 'prefix_match', 'suffix_match', 'contains_match', 'string_match'].filter((k) => o.has(k));
  if (kinds.length > 1) {
    r.error(path, `a header matcher takes one match kind (has ${kinds.join(', ')})`);
    return undefined;
  }
  const base = { name: name.toLowerCase(), invert, missingAsEmpty };
  const kind = kinds[0];
  if (kind === undefined || kind === 'present_match') {
    // No kind: Envoy matches on presence.
    const present = kind === undefined ? true : o.bool('present_match', true);
    return o.ok ? { ...base, str: null, range: null, present } : undefined;
  }
  if (kind === 'range_match') {
    const rm = o.obj('range_match');
    if (rm === undefined) return undefined;
    rm.known(['start', 'end'], 'Int64Range');
    const start = rm.int('start', 0, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    const end = rm.int('end', 0, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    if (end <= start) rm.fail(path, `range_match end (${end}) must be above start (${start})`);
    return o.ok && rm.ok ? { ...base, str: null, range: { start, end }, present: true } : undefined;
  }
  let str: StringMatch | undefined;
  if (kind === 'string_match') str = parseStringMatcher(o.obj('string_match'), o.at('string_match'), r);
  else if (kind === 'safe_regex_match') {
    const re = o.obj('safe_regex_match');
    if (re === undefined) return undefined;
    re.known(['regex', 'google_re2'], 'RegexMatcher');
    const src = re.str('regex');
    if (src === undefined) return void r.error(re.at('regex'), 'required');
    if (checkRegex(src, re.at('regex'), r, false)) str = { kind: 'regex', value: src, ignoreCase: false };
  } else {
    const v = o.str(kind);
    if (v !== undefined) str = { kind: kind.slice(0, -6) as StrKind, value: v, ignoreCase: false };
  }
  if (str === undefined || !o.ok) return undefined;
  return { ...base, str, range: null, present: true };
}

function parseCidr(raw: unknown, path: string, r: Reporter): Cidr | undefined {
  const o = JsonObj.from(raw, path, r);
  if (o === undefined) return undefined;
  o.known(['address_prefix', 'prefix_len'], 'CidrRange');
  const address = o.str('address_prefix');
  if (address === undefined || net.isIP(address) === 0) {
    r.error(o.at('address_prefix'), `${show(o.get('address_prefix'))} is not an IP address`);
    return undefined;
  }
  const v6 = net.isIP(address) === 6;
  const prefixLen = o.int('prefix_len', v6 ? 128 : 32, 0, v6 ? 128 : 32);
  return o.ok ? { address, prefixLen } : undefined;
}

const REFUSED_PERMISSIONS = ['metadata', 'matcher', 'uri_template', 'source_ip'];
const PERMISSION_KEYS = [
  'any', 'and_rules', 'or_rules', 'not_rule', 'header', 'url_path', 'destination_port', 'destination_port_range', 'destination_ip',
  'requested_server_name',
];

function oneOf(o: JsonObj, keys: readonly string[], refused: readonly string[], what: string): string | undefined {
  for (const k of refused) {
    if (o.has(k)) return o.fail(o.at(k), `${what} "${k}" is not supported by Outrigger (refused: an access rule cannot be skipped)`);
  }
  o.known([...keys, ...refused], what);
  const set = keys.filter((k) => o.has(k));
  if (set.length !== 1) return o.fail(o.path, `a ${what} needs exactly one of ${keys.join(', ')} (has ${set.length === 0 ? 'none' : set.join(', ')})`);
  return o.ok ? set[0] : undefined;
}

function parseUrlPath(o: JsonObj, key: string, r: Reporter): StringMatch | undefined {
  const p = o.obj(key);
  if (p === undefined) return undefined;
  p.known(['path'], 'PathMatcher');
  const m = parseStringMatcher(p.obj('path'), p.at('path'), r);
  if (m === undefined && p.ok) r.error(p.at('path'), 'required');
  return m;
}

/** A Permission / Principal object: its one kind (an `any` must be true). */
function openNode(raw: unknown, path: string, r: Reporter, depth: number, keys: readonly string[], refused: readonly string[], what: string): { o: JsonObj; k: string } | undefined {
  const o = JsonObj.from(raw, path, r);
  if (o === undefined) return undefined;
  if (depth > MAX_DEPTH) return o.fail(path, `${what}s nest deeper than ${MAX_DEPTH} levels`);
  const k = oneOf(o, keys, refused, what);
  if (k === undefined) return undefined;
  if (k === 'any' && o.get('any') !== true) return o.fail(o.at('any'), `${show(o.get('any'))} must be true`);
  return { o, k };
}

/** and_rules / or_rules / and_ids / or_ids: a non-empty list of `item` under `listKey`. */
function parseSet<T>(o: JsonObj, key: string, listKey: string, what: string, item: (v: unknown, path: string) => T | undefined): T[] | undefined {
  const set = o.obj(key);
  if (set === undefined) return undefined;
  set.known([listKey], what);
  const items = set.list(listKey) ?? [];
  if (items.length === 0) return set.fail(set.at(listKey), `at least one entry is required`);
  const out: T[] = [];
  for (const it of items) {
    const x = item(it.value, it.path);
    if (x === undefined) return undefined;
    out.push(x);
  }
  return set.ok ? out : undefined;
}

/** header / url_path (permission or principal): L7 only. */
function parseL7(o: JsonObj, k: 'header' | 'url_path', r: Reporter, layer: RbacLayer): { t: 'header'; h: HeaderMatch } | { t: 'path'; m: StringMatch } | undefined {
  if (layer === 'network') return o.fail(o.at(k), `the network RBAC filter cannot see ${k === 'header' ? 'headers' : 'paths'} (use the HTTP rbac stream filter)`);
  if (k === 'header') {
    const h = parseHeaderMatcher(o.get('header'), o.at('header'), r);
    return h === undefined ? undefined : { t: 'header', h };
  }
  const m = parseUrlPath(o, 'url_path', r);
  return m === undefined ? undefined : { t: 'path', m };
}

export function parsePermission(raw: unknown, path: string, r: Reporter, layer: RbacLayer, depth = 0): Permission | undefined {
  const n = openNode(raw, path, r, depth, PERMISSION_KEYS, REFUSED_PERMISSIONS, 'Permission');
  if (n === undefined) return undefined;
  const { o, k } = n;
  switch (k) {
    case 'any':
      return { t: 'any' };
    case 'and_rules':
    case 'or_rules': {
      const rules = parseSet(o, k, 'rules', 'Permission.Set', (v, p) => parsePermission(v, p, r, layer, depth + 1));
      return rules === undefined ? undefined : { t: k === 'and_rules' ? 'and' : 'or', rules };
    }
    case 'not_rule': {
      const p = parsePermission(o.get('not_rule'), o.at('not_rule'), r, layer, depth + 1);
      return p === undefined ? undefined : { t: 'not', rule: p };
    }
    case 'header':
    case 'url_path':
      return parseL7(o, k, r, layer);
    case 'destination_port': {
      const port = o.int('destination_port', 0, 0, 65535);
      return o.ok ? { t: 'port', start: port, end: port + 1 } : undefined;
    }
    case 'destination_port_range': {
      const pr = o.obj('destination_port_range');
      if (pr === undefined) return undefined;
      pr.known(['start', 'end'], 'Int32Range');
      const start = pr.int('start', 0, 0, 65536);
      const end = pr.int('end', 0, 0, 65536);
      if (end <= start) pr.fail(pr.path, `end (${end}) must be above start (${start})`);
      return pr.ok ? { t: 'port', start, end } : undefined;
    }
    case 'destination_ip': {
      const cidr = parseCidr(o.get('destination_ip'), o.at('destination_ip'), r);
      return cidr === undefined ? undefined : { t: 'dip', cidr };
    }
    case 'requested_server_name': {
      if (layer === 'stream') return o.fail(o.at('requested_server_name'), 'requested_server_name is supported by the network RBAC filter only');
      const m = parseStringMatcher(o.obj('requested_server_name'), o.at('requested_server_name'), r);
      return m === undefined ? undefined : { t: 'sni', m };
    }
  }
  return undefined;
}

const REFUSED_PRINCIPALS = ['metadata', 'filter_state', 'custom'];
const PRINCIPAL_KEYS = ['any', 'and_ids', 'or_ids', 'not_id', 'authenticated', 'source_ip', 'direct_remote_ip', 'remote_ip', 'header', 'url_path'];

export function parsePrincipal(raw: unknown, path: string, r: Reporter, layer: RbacLayer, depth = 0): Principal | undefined {
  const n = openNode(raw, path, r, depth, PRINCIPAL_KEYS, REFUSED_PRINCIPALS, 'Principal');
  if (n === undefined) return undefined;
  const { o, k } = n;
  switch (k) {
    case 'any':
      return { t: 'any' };
    case 'and_ids':
    case 'or_ids': {
      const ids = parseSet(o, k, 'ids', 'Principal.Set', (v, p) => parsePrincipal(v, p, r, layer, depth + 1));
      return ids === undefined ? undefined : { t: k === 'and_ids' ? 'and' : 'or', ids };
    }
    case 'not_id': {
      const p = parsePrincipal(o.get('not_id'), o.at('not_id'), r, layer, depth + 1);
      return p === undefined ? undefined : { t: 'not', id: p };
    }
    case 'authenticated': {
      const a = o.obj('authenticated');
      if (a === undefined) return undefined;
      a.known(['principal_name'], 'Principal.Authenticated');
      if (!a.has('principal_name')) return a.ok ? { t: 'auth', m: null } : undefined;
      const m = parseStringMatcher(a.obj('principal_name'), a.at('principal_name'), r);
      return m === undefined ? undefined : { t: 'auth', m };
    }
    case 'source_ip':
    case 'direct_remote_ip':
    case 'remote_ip': {
      const cidr = parseCidr(o.get(k), o.at(k), r);
      return cidr === undefined ? undefined : { t: 'ip', cidr };
    }
    case 'header':
    case 'url_path':
      return parseL7(o, k, r, layer);
  }
  return undefined;
}

/** envoy.config.rbac.v3.RBAC at `path`. */
export function parseRbacRules(raw: unknown, path: string, r: Reporter, layer: RbacLayer): RbacRules | undefined {
  const o = JsonObj.from(raw, path, r);
  if (o === undefined) return undefined;
  for (const k of ['audit_logging_options']) {
    if (o.has(k)) r.warn(o.at(k), `${k} is not supported; ignored`);
  }
  o.known(['action', 'policies', 'audit_logging_options'], 'RBAC');
  const action = o.enumOf('action', ['ALLOW', 'DENY', 'LOG'] as const, 'ALLOW');
  const policies: Policy[] = [];
  const po = o.obj('policies');
  if (po !== undefined) {
    for (const name of Object.keys(po.raw)) {
      const p = JsonObj.from(po.raw[name], `${po.path}.${name}`, r);
      if (p === undefined) {
        o.ok = false;
        continue;
      }
      for (const k of ['condition', 'checked_condition']) {
        if (p.has(k)) p.fail(p.at(k), `${k} (CEL) is not supported by Outrigger (refused: an access rule cannot be skipped)`);
      }
      p.known(['permissions', 'principals', 'condition', 'checked_condition'], 'Policy');
      const perms = p.list('permissions') ?? [];
      const princs = p.list('principals') ?? [];
      if (perms.length === 0) p.fail(p.at('permissions'), 'at least one permission is required');
      if (princs.length === 0) p.fail(p.at('principals'), 'at least one principal is required');
      const permissions: Permission[] = [];
      const principals: Principal[] = [];
      for (const it of perms) {
        const x = parsePermission(it.value, it.path, r, layer);
        if (x === undefined) p.ok = false;
        else permissions.push(x);
      }
      for (const it of princs) {
        const x = parsePrincipal(it.value, it.path, r, layer);
        if (x === undefined) p.ok = false;
        else principals.push(x);
      }
      if (!p.ok) o.ok = false;
      policies.push({ name, permissions, principals });
    }
    // Envoy evaluates policies in name order (a protobuf map, sorted when serialized).
    policies.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  return o.ok ? { action, policies } : undefined;
}

// ---------------------------------------------------------------------------------------------
// Compiled matchers (per worker)
// ---------------------------------------------------------------------------------------------

/** What RBAC reads of a request or a connection. */
export interface RbacInput {
  /** Header value (lower-case name, pseudo headers included); undefined when absent. */
  header(name: string): string | undefined;
  /** The path without the query (RPC: "/service/method"); undefined when there is none. */
  path(): string | undefined;
  localPort(): number;
  localIp(): string;
  /** The connection's peer IP. */
  remoteIp(): string;
  peer(): StreamPeer | null;
  /** SNI ('' = none). */
  sni(): string;
}

type Pred = (x: RbacInput) => boolean;

function compileString(m: StringMatch): (s: string) => boolean {
  const v = m.value;
  if (m.kind === 'regex') {
    const re: LinearRegex = linearRegex(m.value, 'rbac', m.ignoreCase);
    return (s) => re.test(s);
  }
  if (m.ignoreCase) {
    switch (m.kind) {
      case 'exact':
        return (s) => s.length === v.length && s.toLowerCase() === v;
      case 'prefix':
        return (s) => s.length >= v.length && s.slice(0, v.length).toLowerCase() === v;
      case 'suffix':
        return (s) => s.length >= v.length && s.slice(s.length - v.length).toLowerCase() === v;
      default:
        return (s) => s.toLowerCase().includes(v);
    }
  }
  switch (m.kind) {
    case 'exact':
      return (s) => s === v;
    case 'prefix':
      return (s) => s.startsWith(v);
    case 'suffix':
      return (s) => s.endsWith(v);
    default:
      return (s) => s.includes(v);
  }
}

export function compileHeader(h: HeaderMatch): Pred {
  const name = h.name;
  let test: (s: string) => boolean;
  if (h.str !== null) test = compileString(h.str);
  else if (h.range !== null) {
    const { start, end } = h.range;
    test = (s) => {
      if (!/^-?\d+$/.test(s)) return false;
      const n = Number(s);
      return n >= start && n < end;
    };
  } else {
    // present_match: presence (or absence with present_match false), inverted by invert_match.
    const want = h.present !== h.invert;
    return (x) => (x.header(name) !== undefined) === want;
  }
  const inv = h.invert;
  const empty = h.missingAsEmpty;
  return (x) => {
    let v = x.header(name);
    if (v === undefined) {
      if (!empty) return false; // an absent header matches no value matcher, inverted or not (Envoy)
      v = '';
    }
    return test(v) !== inv;
  };
}

/** Whether an IP text (v4, v6 or v4-mapped v6) is inside the range. */
function cidrTest(c: Cidr): (ip: string) => boolean {
  return cidrMatcher(c.address, c.prefixLen);
}

// Evaluation order. Matchers are pure (reading a header or the peer changes nothing), so an
// and / or list, and a policy's permission and principal sides, can be tested in any order with
// the same result: the cheaper first. A CIDR test on the peer (parsed once per connection) costs
// next to nothing; a header read of an RPC request scans the frame's header map and makes a
// string. With the usual policies (a source IP principal, header or path permissions), a request
// from another address is refused by a policy without reading any header.

/** Relative cost of a permission or principal (a rough count of header-read equivalents x 10). */
function cost(p: Permission | Principal): number {
  switch (p.t) {
    case 'any':
      return 0;
    case 'ip':
    case 'dip':
    case 'port':
      return 1;
    case 'sni':
    case 'auth':
      return 3;
    case 'header':
      return p.h.str !== null && p.h.str.kind === 'regex' ? 20 : 10;
    case 'path':
      return p.m.kind === 'regex' ? 20 : 10;
    case 'not':
      return cost('rule' in p ? p.rule : p.id);
    case 'and':
    case 'or': {
      let c = 0;
      for (const q of 'rules' in p ? p.rules : p.ids) c += cost(q);
      return c;
    }
  }
}

/** The list, cheapest first (stable: equal costs keep the config's order). */
function byCost<T extends Permission | Principal>(list: readonly T[]): T[] {
  return list
    .map((p, i) => ({ p, i, c: cost(p) }))
    .sort((a, b) => a.c - b.c || a.i - b.i)
    .map((e) => e.p);
}

function listCost(list: readonly (Permission | Principal)[]): number {
  let c = 0;
  for (const p of list) c += cost(p);
  return c;
}

function any(list: readonly Pred[]): Pred {
  if (list.length === 1) return list[0];
  return (x) => {
    for (let i = 0; i < list.length; i++) if (list[i](x)) return true;
    return false;
  };
}

function all(list: readonly Pred[]): Pred {
  if (list.length === 1) return list[0];
  return (x) => {
    for (let i = 0; i < list.length; i++) if (!list[i](x)) return false;
    return true;
  };
}

const TRUE: Pred = () => true;

function compilePath(m: StringMatch): Pred {
  const t = compileString(m);
  return (x) => {
    const v = x.path();
    return v !== undefined && t(v);
  };
}

export function compilePermission(p: Permission): Pred {
  switch (p.t) {
    case 'any':
      return TRUE;
    case 'and':
      return all(byCost(p.rules).map(compilePermission));
    case 'or':
      return any(byCost(p.rules).map(compilePermission));
    case 'not': {
      const inner = compilePermission(p.rule);
      return (x) => !inner(x);
    }
    case 'header':
      return compileHeader(p.h);
    case 'path':
      return compilePath(p.m);
    case 'port': {
      const { start, end } = p;
      return (x) => {
        const port = x.localPort();
        return port >= start && port < end;
      };
    }
    case 'dip': {
      const t = cidrTest(p.cidr);
      return (x) => t(x.localIp());
    }
    case 'sni': {
      const t = compileString(p.m);
      return (x) => t(x.sni());
    }
  }
}

/** authenticated.principal_name: the URI SANs, then the DNS SANs, then the subject (Envoy's order). */
function principalNameTest(m: StringMatch | null): Pred {
  if (m === null) return (x) => x.peer() !== null;
  const t = compileString(m);
  return (x) => {
    const p = x.peer();
    if (p === null) return false;
    const u = p.uriSans;
    for (let i = 0; i < u.length; i++) if (t(u[i])) return true;
    const d = p.dnsSans;
    for (let i = 0; i < d.length; i++) if (t(d[i])) return true;
    return u.length === 0 && d.length === 0 && t(p.subject);
  };
}

export function compilePrincipal(p: Principal): Pred {
  switch (p.t) {
    case 'any':
      return TRUE;
    case 'and':
      return all(byCost(p.ids).map(compilePrincipal));
    case 'or':
      return any(byCost(p.ids).map(compilePrincipal));
    case 'not': {
      const inner = compilePrincipal(p.id);
      return (x) => !inner(x);
    }
    case 'auth':
      return principalNameTest(p.m);
    case 'ip': {
      const t = cidrTest(p.cidr);
      return (x) => t(x.remoteIp());
    }
    case 'header':
      return compileHeader(p.h);
    case 'path':
      return compilePath(p.m);
  }
}

/**
 * A policy whose principals are all IPv4 CIDR ranges (source_ip / remote_ip / direct_remote_ip,
 * the common form) matches only a peer inside one of them: its ranges as [net, mask, net, mask,
 * ...], tested on the peer's address as a number before anything else; null for other policies.
 */
function ipGate(p: Policy): Uint32Array | null {
  if (p.principals.length === 0) return null;
  const out: number[] = [];
  for (const q of p.principals) {
    if (q.t !== 'ip') return null;
    const r = v4Range(q.cidr.address, q.cidr.prefixLen);
    if (r === null) return null;
    out.push(r[0], r[1]);
  }
  return Uint32Array.from(out);
}

const ACTION_ALLOW = 0;
const ACTION_DENY = 1;
const ACTION_LOG = 2;

/** A compiled rule set: which policy (index) matches first, and the verdict. */
export class CompiledRbac {
  readonly names: readonly string[];
  private readonly policies: readonly Pred[];
  /** Per policy: its permissions alone (what is left to test once its IP gate passed). */
  private readonly permissions: readonly Pred[];
  /** Per policy: its IPv4 principal ranges (ipGate), or null. */
  private readonly gates: readonly (Uint32Array | null)[];
  private readonly gated: boolean;
  /** The last peer text seen and its IPv4 number (-1: not IPv4): one parse per connection. */
  private lastIp = '';
  private lastV4 = -1;
  /**
   * The policies a peer of lastIp can match, in order (ungated ones, and gated ones whose
   * ranges hold it), as index * 2 + 1 when the gate already proved the principal side (only
   * the permissions are left to test), index * 2 otherwise: found once per peer address, not
   * per request (a peer's address is the same for every request of its connection).
   */
  private readonly candidates: Int32Array;
  private candidateCount = -1;
  /**
   * The policy every request of peer lastIp matches whatever it asks (its first candidate: an IP
   * gate that proved the principals and permissions that always hold, e.g. "any"), else -1.
   */
  private peerMatch = -1;

  /**
   * rules.action as a number: the config reaches a worker as a copy (structured clone), whose
   * strings compare by characters with a literal, once per request otherwise.
   */
  private readonly action: number;

  constructor(readonly rules: RbacRules) {
    this.action = rules.action === 'ALLOW' ? ACTION_ALLOW : rules.action === 'DENY' ? ACTION_DENY : ACTION_LOG;
    this.names = rules.policies.map((p) => p.name);
    this.gates = rules.policies.map(ipGate);
    this.gated = this.gates.some((g) => g !== null);
    this.candidates = new Int32Array(rules.policies.length);
    const perms = rules.policies.map((p) => any(byCost(p.permissions).map(compilePermission)));
    this.permissions = perms;
    this.policies = rules.policies.map((p, i) => {
      const perm = perms[i];
      const princ = any(byCost(p.principals).map(compilePrincipal));
      if (listCost(p.principals) < listCost(p.permissions)) return (x: RbacInput) => princ(x) && perm(x);
      return (x: RbacInput) => perm(x) && princ(x);
    });
  }

  /** Index of the first matching policy (name order), -1 when none. */
  match(x: RbacInput): number {
    const ps = this.policies;
    if (!this.gated) {
      for (let i = 0; i < ps.length; i++) if (ps[i](x)) return i;
      return -1;
    }
    const ip = x.remoteIp();
    if (ip !== this.lastIp || this.candidateCount < 0) {
      this.lastIp = ip;
      this.lastV4 = ipv4Of(ip);
      this.findCandidates();
    }
    if (this.peerMatch >= 0) return this.peerMatch;
    const c = this.candidates;
    const perms = this.permissions;
    for (let k = 0; k < this.candidateCount; k++) {
      const e = c[k];
      const i = e >> 1;
      // A gate holds every principal of its policy (all IPv4 ranges): passed, the principals matched.
      if ((e & 1) === 1 ? perms[i](x) : ps[i](x)) return i;
    }
    return -1;
  }

  /** The candidates of the peer lastV4 (the policies no gate rules out). */
  private findCandidates(): void {
    const gates = this.gates;
    const v4 = this.lastV4;
    let n = 0;
    for (let i = 0; i < gates.length; i++) {
      const g = gates[i];
      if (g === null) this.candidates[n++] = i * 2;
      else if (inRanges(g, v4)) this.candidates[n++] = i * 2 + 1; // no principal can match otherwise: the policy does not
    }
    this.candidateCount = n;
    const first = this.candidates[0];
    this.peerMatch = n > 0 && (first & 1) === 1 && this.permissions[first >> 1] === TRUE ? first >> 1 : -1;
  }

  /** Whether the request is allowed, given the matching policy index. */
  allowed(matched: number): boolean {
    const a = this.action;
    if (a === ACTION_ALLOW) return matched >= 0;
    if (a === ACTION_DENY) return matched < 0;
    return true;
  }
}

function inRanges(g: Uint32Array, v4: number): boolean {
  if (v4 < 0) return false;
  for (let i = 0; i < g.length; i += 2) if (((v4 & g[i + 1]) >>> 0) === g[i]) return true;
  return false;
}

/** "ip:port" / "[v6]:port" -> ip. */
export function ipOf(hostPort: string): string {
  if (hostPort === '') return '';
  if (hostPort.charCodeAt(0) === 91) {
    const e = hostPort.indexOf(']');
    return e < 0 ? hostPort.slice(1) : hostPort.slice(1, e);
  }
  const c = hostPort.lastIndexOf(':');
  return c < 0 ? hostPort : hostPort.slice(0, c);
}

/** "ip:port" / "[v6]:port" -> port (0 when none). */
export function portOf(hostPort: string): number {
  const c = hostPort.lastIndexOf(':');
  if (c < 0 || hostPort.endsWith(']')) return 0;
  const n = Number(hostPort.slice(c + 1));
  return Number.isInteger(n) ? n : 0;
}

/** The rule sets of an RBAC filter config (HTTP or network): rules and shadow_rules, matcher trees refused. */
export function parseRbacFilterRules(o: JsonObj, r: Reporter, layer: RbacLayer): { rules: RbacRules | null; shadow: RbacRules | null } | undefined {
  for (const k of ['matcher', 'shadow_matcher']) {
    if (o.has(k)) o.fail(o.at(k), `${k} (the xDS matcher tree) is not supported by Outrigger; use rules / shadow_rules (refused: an access rule cannot be skipped)`);
  }
  const rules = o.has('rules') ? parseRbacRules(o.get('rules'), o.at('rules'), r, layer) : null;
  const shadow = o.has('shadow_rules') ? parseRbacRules(o.get('shadow_rules'), o.at('shadow_rules'), r, layer) : null;
  if (rules === undefined || shadow === undefined || !o.ok) return undefined;
  return { rules, shadow };
}
