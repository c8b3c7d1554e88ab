// RBAC policies gated by the peer's IPv4 ranges (src/filters/shared/rbac.ts CompiledRbac): the
// policies a peer can match are found once per peer address, and a policy whose gate passed
// tests only its permissions (its principals are exactly the gate's ranges). Verdicts as before:
// peers that change between requests, mixed gated and ungated policies, IPv6 and mapped peers.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { CompiledRbac, type RbacInput } from '../../src/filters/shared/rbac';
import { StreamRbacInput, type RbacFilterConfig } from '../../src/filters/stream/rbac/rbac';
import type { FilterStream } from '../../src/api/stream-filter';
import { validateFilter } from '../helpers/filter-stream';

class Input implements RbacInput {
  ipReads = 0;
  constructor(
    private ip: string,
    private readonly headers: Record<string, string> = {},
  ) {}
  setIp(ip: string): this {
    this.ip = ip;
    return this;
  }
  header(name: string): string | undefined {
    return this.headers[name];
  }
  path(): string | undefined {
    return this.headers[':path'];
  }
  localPort(): number {
    return 80;
  }
  localIp(): string {
    return '127.0.0.1';
  }
  remoteIp(): string {
    this.ipReads++;
    return this.ip;
  }
  peer(): null {
    return null;
  }
  sni(): string {
    return '';
  }
}

function compiled(policies: Record<string, unknown>): CompiledRbac {
  return new CompiledRbac(compiledRules(policies));
}

// The bench's shape (bench/filters-cost.ts): 9 policies for other networks, the last for the local one.
function benchLike(): CompiledRbac {
  const policies: Record<string, unknown> = {};
  for (let i = 0; i < 9; i++) {
    policies[`p${i}`] = {
      permissions: [{ and_rules: { rules: [{ header: { name: ':method', exact_match: 'DELETE' } }, { url_path: { path: { prefix: `/admin/${i}/` } } }] } }],
      principals: [{ source_ip: { address_prefix: `10.${i}.0.0`, prefix_len: 16 } }],
    };
  }
  policies['zz-local'] = { permissions: [{ any: true }], principals: [{ direct_remote_ip: { address_prefix: '127.0.0.0', prefix_len: 8 } }] };
  return new CompiledRbac(compiledRules(policies));
}

function compiledRules(policies: Record<string, unknown>): ConstructorParameters<typeof CompiledRbac>[0] {
  const { cfg, issues } = validateFilter<RbacFilterConfig>('rbac', { rules: { action: 'ALLOW', policies } });
  assert.deepEqual(issues.errors, []);
  return (cfg as RbacFilterConfig).rules as NonNullable<RbacFilterConfig['rules']>;
}

test('rbac gates: the peer address is read once per request, not once more per principal tested', () => {
  const r = benchLike();
  const x = new Input('127.0.0.1');
  for (let i = 0; i < 5; i++) assert.equal(r.match(x), 9);
  assert.equal(x.ipReads, 5, 'one read per match: the gate proved the principal');
});

test('rbac gates: verdicts follow the peer from request to request', () => {
  const r = benchLike();
  const del = (ip: string, path: string) => new Input(ip, { ':method': 'DELETE', ':path': path });
  assert.equal(r.match(del('10.3.1.1', '/admin/3/x')), 3);
  assert.equal(r.match(del('10.3.1.1', '/admin/4/x')), -1, 'the permission of p3 does not hold, p4 is for 10.4/16');
  assert.equal(r.match(del('10.4.1.1', '/admin/4/x')), 4);
  assert.equal(r.match(new Input('127.0.0.1')), 9);
  assert.equal(r.match(del('10.3.1.1', '/admin/3/x')), 3, 'back to the first peer');
  assert.equal(r.match(new Input('11.0.0.1')), -1);
  assert.equal(r.match(new Input('::ffff:127.0.0.2')), 9, 'IPv4-mapped IPv6 peer');
  assert.equal(r.match(new Input('::1')), -1, 'IPv6 peer outside every IPv4 range');
  const x = new Input('10.0.0.1', { ':method': 'DELETE', ':path': '/admin/0/' });
  assert.equal(r.match(x), 0);
  assert.equal(r.match(x.setIp('10.1.0.1')), -1, 'same input object, another peer');
});

test('rbac gates: ungated policies (header principals, any) keep their place in the order', () => {
  const r = compiled({
    a: { permissions: [{ header: { name: 'x-a', present_match: true } }], principals: [{ source_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } }] },
    b: { permissions: [{ any: true }], principals: [{ header: { name: 'x-b', present_match: true } }] },
    c: { permissions: [{ any: true }], principals: [{ source_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } }, { source_ip: { address_prefix: '192.168.0.0', prefix_len: 16 } }] },
  });
  assert.equal(r.match(new Input('10.1.1.1', { 'x-a': '1', 'x-b': '1' })), 0);
  assert.equal(r.match(new Input('10.1.1.1', { 'x-b': '1' })), 1);
  assert.equal(r.match(new Input('10.1.1.1')), 2);
  assert.equal(r.match(new Input('192.168.3.3', { 'x-a': '1' })), 2, 'second range of c; a is for 10/8');
  assert.equal(r.match(new Input('172.16.0.1', { 'x-a': '1' })), -1);
  assert.equal(r.match(new Input('172.16.0.1', { 'x-b': '1' })), 1);
});

test('rbac input: connections of one peer interleaving (another port) reuse its IP without cutting it again', () => {
  const x = new StreamRbacInput();
  const ask = (remote: string): string => {
    x.bind({ protocol: 'bolt', remoteAddress: () => remote } as unknown as FilterStream);
    const ip = x.remoteIp();
    x.bind(null);
    return ip;
  };
  const orig = String.prototype.lastIndexOf;
  let cuts = 0;
  String.prototype.lastIndexOf = function (this: string, ...a: Parameters<typeof orig>): number {
    cuts++;
    return orig.apply(this, a);
  };
  let got: string[];
  try {
    got = ['127.0.0.1:1000', '127.0.0.1:2000', '127.0.0.1:1000', '127.0.0.1:3000'].map(ask);
    assert.equal(cuts, 1, 'cut once for the first connection');
    got.push(...['127.0.0.10:1000', '[::1]:80', '[::1]:81', '::1:82', '10.0.0.1', '', '10.0.0.1:5'].map(ask));
  } finally {
    String.prototype.lastIndexOf = orig;
  }
  assert.deepEqual(got, ['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.10', '::1', '::1', '::1', '10.0.0.1', '', '10.0.0.1']);
});

test('StreamRbacInput: a stream that holds the peer IP (the RPC light view) gives it as is; remoteAddress() is not parsed', () => {
  let parsed = 0;
  const ip = '10.1.2.3';
  const s = {
    protocol: 'bolt',
    remoteAddress: () => {
      parsed++;
      return '10.1.2.3:5000';
    },
    remoteIp: () => ip,
  } as unknown as FilterStream;
  const x = new StreamRbacInput();
  x.bind(s);
  assert.equal(x.remoteIp(), ip);
  assert.equal(x.remoteIp(), ip);
  assert.equal(parsed, 0, 'the "ip:port" text is not read');
  // Without remoteIp(): the IP is cut out of remoteAddress(), as before.
  const t = { protocol: 'http1', remoteAddress: () => '[::1]:80' } as unknown as FilterStream;
  x.bind(t);
  assert.equal(x.remoteIp(), '::1');
  x.bind(null);
});

test('rbac gates: a peer whose first candidate always matches (gate + any permission) gets it at once; verdicts as before as peers change', () => {
  const r = compiled({
    a: { permissions: [{ any: true }], principals: [{ source_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } }] },
    b: { permissions: [{ header: { name: 'x-b', present_match: true } }], principals: [{ source_ip: { address_prefix: '0.0.0.0', prefix_len: 0 } }] },
  });
  const reads: string[] = [];
  class Counting extends Input {
    override header(name: string): string | undefined {
      reads.push(name);
      return super.header(name);
    }
  }
  assert.equal(r.match(new Counting('10.1.1.1', { 'x-b': '1' })), 0);
  assert.deepEqual(reads, []);
  assert.equal(r.match(new Counting('11.1.1.1', { 'x-b': '1' })), 1, 'another peer: b tested');
  assert.equal(r.match(new Counting('11.1.1.1')), -1);
  assert.equal(r.match(new Counting('10.2.2.2')), 0, 'back to a peer of a');
  // An ungated policy first (policies go in name order): nothing is known per peer.
  const u = compiled({
    a: { permissions: [{ any: true }], principals: [{ header: { name: 'x-h', present_match: true } }] },
    b: { permissions: [{ any: true }], principals: [{ source_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } }] },
  });
  assert.equal(u.match(new Input('10.1.1.1', { 'x-h': '1' })), 0);
  assert.equal(u.match(new Input('10.1.1.1')), 1);
  assert.equal(u.match(new Input('10.1.1.1', { 'x-h': '1' })), 0, 'the same peer, the header again');
});
