// RBAC evaluation order (src/filters/shared/rbac.ts): cheap tests first, same verdicts. A policy
// whose principals are IPv4 ranges that exclude the peer is skipped without reading a header; the
// first matching policy (by name order) still decides, for IPv4, IPv4-mapped IPv6 and IPv6 peers.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { CompiledRbac, type RbacInput, type RbacRules } from '../../src/filters/shared/rbac';
import type { RbacFilterConfig } from '../../src/filters/stream/rbac/rbac';
import { validateFilter } from '../helpers/filter-stream';

class SpyInput implements RbacInput {
  reads: string[] = [];
  constructor(
    private readonly ip: string,
    private readonly headers: Record<string, string>,
  ) {}
  header(name: string): string | undefined {
    this.reads.push(name);
    return this.headers[name];
  }
  path(): string | undefined {
    this.reads.push(':path');
    return this.headers[':path'];
  }
  localPort(): number {
    return 8080;
  }
  localIp(): string {
    return '127.0.0.1';
  }
  remoteIp(): string {
    return this.ip;
  }
  peer(): null {
    return null;
  }
  sni(): string {
    return '';
  }
}

function rules(policies: Record<string, unknown>, action = 'ALLOW'): RbacRules {
  const { cfg, issues } = validateFilter<RbacFilterConfig>('rbac', { rules: { action, policies } });
  assert.deepEqual(issues.errors, []);
  return (cfg as RbacFilterConfig).rules as RbacRules;
}

const methodAndPath = { and_rules: { rules: [{ header: { name: ':method', exact_match: 'DELETE' } }, { url_path: { path: { prefix: '/admin/' } } }] } };

test('rbac: a policy whose IPv4 principals exclude the peer reads no header; verdicts unchanged', () => {
  const policies: Record<string, unknown> = {};
  for (let i = 0; i < 9; i++) policies[`p${i}`] = { permissions: [methodAndPath], principals: [{ source_ip: { address_prefix: `10.${i}.0.0`, prefix_len: 16 } }] };
  policies['zz'] = { permissions: [{ any: true }], principals: [{ direct_remote_ip: { address_prefix: '127.0.0.0', prefix_len: 8 } }] };
  const e = new CompiledRbac(rules(policies));
  const local = new SpyInput('127.0.0.1', { ':method': 'DELETE', ':path': '/admin/x' });
  assert.equal(e.names[e.match(local)], 'zz');
  assert.deepEqual(local.reads, []);
  // A peer inside p3's range: p3's permission is read and matches.
  const in3 = new SpyInput('10.3.1.1', { ':method': 'DELETE', ':path': '/admin/x' });
  assert.equal(e.names[e.match(in3)], 'p3');
  assert.deepEqual(in3.reads, [':method', ':path']);
  // Same peer, permission not matching: no policy.
  assert.equal(e.match(new SpyInput('10.3.1.1', { ':method': 'GET', ':path': '/admin/x' })), -1);
  // IPv4-mapped IPv6 peers are IPv4 peers; IPv6 peers match no IPv4 range.
  assert.equal(e.names[e.match(new SpyInput('::ffff:10.5.0.9', { ':method': 'DELETE', ':path': '/admin/' }))], 'p5');
  assert.equal(e.match(new SpyInput('::1', { ':method': 'DELETE', ':path': '/admin/' })), -1);
});

test('rbac: the cheaper side first inside and / or lists and mixed principals, same verdicts', () => {
  const e = new CompiledRbac(
    rules({
      a: {
        permissions: [{ or_rules: { rules: [{ header: { name: 'x-a', present_match: true } }, { destination_port: 8080 }] } }],
        principals: [{ and_ids: { ids: [{ header: { name: 'x-user', exact_match: 'bob' } }, { remote_ip: { address_prefix: '192.168.0.0', prefix_len: 16 } }] } }],
      },
      b: { permissions: [{ header: { name: 'x-b', exact_match: '1' } }], principals: [{ any: true }, { source_ip: { address_prefix: '::1', prefix_len: 128 } }] },
    }),
  );
  const outside = new SpyInput('10.0.0.1', { 'x-user': 'bob' });
  assert.equal(e.match(outside), -1);
  // Port before header (or), IP before header (and): policy a reads nothing; b reads its header.
  assert.deepEqual(outside.reads, ['x-b']);
  assert.equal(e.names[e.match(new SpyInput('192.168.3.4', { 'x-user': 'bob' }))], 'a');
  assert.equal(e.names[e.match(new SpyInput('::1', { 'x-b': '1' }))], 'b');
  assert.equal(e.match(new SpyInput('192.168.3.4', { 'x-user': 'alice' })), -1);
});
