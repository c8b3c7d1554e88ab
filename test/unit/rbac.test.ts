/** RBAC (src/filters/shared/rbac.ts, the `rbac` stream filter, the network filter's validator): Envoy v3 semantics. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { FilterStatus } from '../../src/api/stream-filter';
import { filterCounters } from '../../src/filters/shared/cells';
import { validateNetworkRbac } from '../../src/filters/network/rbac/rbac';
import { decode, FakeStream, makeFilter, validateFilter } from '../helpers/filter-stream';
import type { FilterValidationContext } from '../../src/config/filter-registry';

const SPIFFE_OK = 'spiffe://cluster.local/ns/default/sa/frontend';
const peer = (uri: string) => ({ subject: 'CN=x', issuer: 'CN=ca', uriSans: [uri], dnsSans: [] });

function counter(name: string): number {
  return filterCounters().get(name) ?? 0;
}

test('rbac ALLOW: principal_name (SPIFFE URI SAN) exact / prefix / regex; others get 403', () => {
  for (const m of [{ exact: SPIFFE_OK }, { prefix: 'spiffe://cluster.local/ns/default/' }, { safe_regex: { regex: 'spiffe://cluster\\.local/ns/[a-z]+/sa/frontend' } }]) {
    const f = makeFilter('rbac', {
      rules: { action: 'ALLOW', policies: { frontend: { permissions: [{ any: true }], principals: [{ authenticated: { principal_name: m } }] } } },
    }, 'allow');
    const ok = new FakeStream({ peer: peer(SPIFFE_OK) });
    assert.equal(decode(f, ok), FilterStatus.Continue, JSON.stringify(m));
    assert.equal(ok.reply, null);
    const bad = new FakeStream({ peer: peer('spiffe://cluster.local/ns/other/sa/backend') });
    assert.equal(decode(f, bad), FilterStatus.Stop);
    assert.equal(bad.reply?.status, 403);
    const none = new FakeStream({ peer: null });
    assert.equal(decode(f, none), FilterStatus.Stop, 'no client certificate: no principal');
  }
});

test('rbac DENY and camelCase (proto3 JSON) keys: header, method, path, destination_port, source ip', () => {
  const f = makeFilter('rbac', {
    rules: {
      action: 'DENY',
      policies: {
        'deny-admin': { permissions: [{ urlPath: { path: { prefix: '/admin' } } }], principals: [{ any: true }] },
        'deny-delete': { permissions: [{ header: { name: ':method', exactMatch: 'DELETE' } }], principals: [{ any: true }] },
        'deny-port': { permissions: [{ destinationPort: 9999 }], principals: [{ sourceIp: { addressPrefix: '10.0.0.0', prefixLen: 8 } }] },
        'deny-hdr': { permissions: [{ any: true }], principals: [{ header: { name: 'x-evil', presentMatch: true } }] },
      },
    },
  }, 'deny');
  const req = (o: ConstructorParameters<typeof FakeStream>[0]) => new FakeStream(o);
  assert.equal(decode(f, req({ headers: { ':path': '/admin/x?y=1', ':method': 'GET' } })), FilterStatus.Stop);
  assert.equal(decode(f, req({ headers: { ':path': '/adm', ':method': 'GET' } })), FilterStatus.Continue);
  assert.equal(decode(f, req({ headers: { ':path': '/a', ':method': 'DELETE' } })), FilterStatus.Stop);
  assert.equal(decode(f, req({ headers: { ':path': '/a', ':method': 'GET' }, local: '127.0.0.1:9999', remote: '10.1.2.3:5555' })), FilterStatus.Stop);
  assert.equal(decode(f, req({ headers: { ':path': '/a', ':method': 'GET' }, local: '127.0.0.1:9999', remote: '11.1.2.3:5555' })), FilterStatus.Continue);
  assert.equal(decode(f, req({ headers: { ':path': '/a', 'x-evil': '' } })), FilterStatus.Stop);
  assert.ok(counter('rbac.deny.policy.deny-admin.denied') >= 1);
  assert.ok(counter('rbac.deny.denied') >= 4);
  assert.ok(counter('rbac.deny.allowed') >= 2);
});

test('rbac and/or/not rules and ids; invert_match; header on RPC: service, method, path pseudo headers', () => {
  const f = makeFilter('rbac', {
    rules: {
      action: 'ALLOW',
      policies: {
        rpc: {
          permissions: [{ and_rules: { rules: [
            { header: { name: ':service', exact_match: 'com.example.EchoService:1.0' } },
            { or_rules: { rules: [{ header: { name: ':method', exact_match: 'echo' } }, { url_path: { path: { suffix: '/ping' } } }] } },
            { not_rule: { header: { name: 'x-block', present_match: true } } },
          ] } }],
          principals: [{ or_ids: { ids: [{ not_id: { any: true } }, { header: { name: 'x-env', exact_match: 'prod', invert_match: true } }] } }],
        },
      },
    },
  }, 'rpc');
  const bolt = (method: string, headers: Record<string, string> = {}) => new FakeStream({ protocol: 'bolt', service: 'com.example.EchoService:1.0', method, headers });
  assert.equal(decode(f, bolt('echo')), FilterStatus.Stop, 'x-env absent: an inverted value matcher does not match an absent header');
  assert.equal(decode(f, bolt('echo', { 'x-env': 'dev' })), FilterStatus.Continue);
  assert.equal(decode(f, bolt('ping', { 'x-env': 'dev' })), FilterStatus.Continue, 'url_path sees /service/method on RPC');
  assert.equal(decode(f, bolt('other', { 'x-env': 'dev' })), FilterStatus.Stop);
  assert.equal(decode(f, bolt('echo', { 'x-env': 'prod' })), FilterStatus.Stop);
  assert.equal(decode(f, bolt('echo', { 'x-env': 'dev', 'x-block': '1' })), FilterStatus.Stop);
  const other = new FakeStream({ protocol: 'dubbo', service: 'other', method: 'echo', headers: { 'x-env': 'dev' } });
  assert.equal(decode(f, other), FilterStatus.Stop);
});

test('rbac shadow rules are counted and never enforced; LOG allows', () => {
  const f = makeFilter('rbac', {
    shadow_rules: { action: 'ALLOW', policies: { only: { permissions: [{ any: true }], principals: [{ authenticated: { principal_name: { exact: SPIFFE_OK } } }] } } },
    shadow_rules_stat_prefix: 'sh_',
  }, 'shadow');
  const before = counter('rbac.shadow.sh_shadow_denied');
  const s = new FakeStream({ peer: peer('spiffe://x/y') });
  assert.equal(decode(f, s), FilterStatus.Continue);
  assert.equal(s.reply, null);
  assert.equal(counter('rbac.shadow.sh_shadow_denied'), before + 1);
  assert.equal(decode(f, new FakeStream({ peer: peer(SPIFFE_OK) })), FilterStatus.Continue);
  assert.equal(counter('rbac.shadow.policy.only.shadow_allowed'), 1);
  const log = makeFilter('rbac', { rules: { action: 'LOG', policies: { p: { permissions: [{ any: true }], principals: [{ any: true }] } } } }, 'log');
  assert.equal(decode(log, new FakeStream()), FilterStatus.Continue);
  const empty = makeFilter('rbac', { rules: { action: 'ALLOW' } }, 'empty');
  assert.equal(decode(empty, new FakeStream()), FilterStatus.Stop, 'ALLOW with no policies denies everything (Envoy)');
});

test('rbac validation: errors name the JSON path and the value; unsupported matchers are refused', () => {
  const P = 'servers[0].listeners[0].stream_filters[0].config';
  const cases: [unknown, string][] = [
    [{ rules: { action: 'MAYBE' } }, `${P}.rules.action: "MAYBE" must be one of ALLOW, DENY, LOG`],
    [{ rules: { policies: { p: { permissions: [{ metadata: {} }], principals: [{ any: true }] } } } }, `${P}.rules.policies.p.permissions[0].metadata: Permission "metadata" is not supported`],
    [{ rules: { policies: { p: { permissions: [{ any: true }], principals: [{ sourceIp: { addressPrefix: 'nope' } }] } } } }, `${P}.rules.policies.p.principals[0].sourceIp.addressPrefix: "nope" is not an IP address`],
    [{ rules: { policies: { p: { permissions: [{ header: { name: 'a', safe_regex_match: { regex: '(a' } } }], principals: [{ any: true }] } } } }, `${P}.rules.policies.p.permissions[0].header.safe_regex_match.regex`],
    [{ rules: { policies: { p: { permissions: [{ any: true }], principals: [{ any: true }], condition: {} } } } }, `${P}.rules.policies.p.condition: condition (CEL) is not supported`],
    [{ matcher: {} }, `${P}.matcher: matcher (the xDS matcher tree) is not supported`],
    [{ rules: { policies: { p: { permissions: [{ any: true, header: { name: 'a' } }], principals: [{ any: true }] } } } }, 'needs exactly one of'],
    [{ rules: { policies: { p: { permissions: [{ requested_server_name: { exact: 'a' } }], principals: [{ any: true }] } } } }, 'network RBAC filter only'],
    [{ bogus: 1 }, `${P}.bogus: unknown key`],
  ];
  for (const [raw, want] of cases) {
    const { cfg, issues } = validateFilter('rbac', raw);
    assert.equal(cfg, undefined, JSON.stringify(raw));
    assert.ok(issues.errors.some((e) => e.includes(want)), `${JSON.stringify(raw)}: ${issues.errors.join(' | ')}`);
  }
});

test('network rbac validation: L4 only (headers refused), stat prefix counters', () => {
  const errors: string[] = [];
  const ctx = { error: (p: string, m: string) => errors.push(`${p}: ${m}`), warn: () => {}, listenerName: 'tcp' } as unknown as FilterValidationContext;
  assert.equal(validateNetworkRbac({ stat_prefix: 't.', rules: { policies: { p: { permissions: [{ header: { name: 'a' } }], principals: [{ any: true }] } } } }, 'f.config', ctx), undefined);
  assert.match(errors.join('\n'), /f\.config\.rules\.policies\.p\.permissions\[0\]\.header: the network RBAC filter cannot see headers/);
  const ok = validateNetworkRbac({ stat_prefix: 't.', rules: { policies: { p: { permissions: [{ destination_port: 443 }], principals: [{ direct_remote_ip: { address_prefix: '127.0.0.1', prefix_len: 32 } }] } } } }, 'f.config', ctx);
  assert.ok(ok !== undefined && ok.cells !== null);
  assert.ok(filterCounters().has('rbac_network.tcp.t.allowed'));
});

test('CIDR matching without net.BlockList: IPv4, IPv4-mapped IPv6, IPv6 with :: and an embedded IPv4', async () => {
  const { cidrMatcher, parseV4, parseV6 } = await import('../../src/filters/shared/ip');
  const v4 = cidrMatcher('10.1.0.0', 16);
  assert.equal(v4('10.1.200.3'), true);
  assert.equal(v4('10.2.0.1'), false);
  assert.equal(v4('::ffff:10.1.0.9'), true);
  assert.equal(v4('10.1.0'), false);
  assert.equal(v4('10.1.0.256'), false);
  assert.equal(cidrMatcher('0.0.0.0', 0)('203.0.113.7'), true);
  assert.equal(cidrMatcher('127.0.0.1', 32)('127.0.0.2'), false);
  assert.equal(parseV4('1.2.3.4'), 0x01020304);
  const v6 = cidrMatcher('2001:db8::', 32);
  assert.equal(v6('2001:db8:1::5'), true);
  assert.equal(v6('2001:db9::5'), false);
  assert.equal(v6('10.0.0.1'), false);
  assert.equal(cidrMatcher('::1', 128)('::1'), true);
  assert.equal(cidrMatcher('::1', 128)('::2'), false);
  const w = new Uint32Array(4);
  assert.equal(parseV6('::ffff:1.2.3.4', w), true);
  assert.deepEqual([...w], [0, 0, 0xffff, 0x01020304]);
  assert.equal(parseV6('1:2:3:4:5:6:7:8', w), true);
  assert.equal(parseV6('1:2:3:4:5:6:7', w), false);
  assert.equal(parseV6('1::2::3', w), false);
  assert.equal(parseV6('1.2.3.4::', w), false);
});
