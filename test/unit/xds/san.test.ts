import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type * as tls from 'node:tls';
import { certSans, sanMatches } from '../../../src/tls/san';

const cert = (subjectaltname: string): tls.PeerCertificate => ({ subjectaltname } as tls.PeerCertificate);

test('certSans reads Node\'s subjectaltname, quoted values included', () => {
  assert.deepEqual(certSans(cert('DNS:a.example, URI:spiffe://cluster.local/ns/x/sa/y, IP Address:10.0.0.1, email:a@b')), [
    ['DNS', 'a.example'], ['URI', 'spiffe://cluster.local/ns/x/sa/y'], ['IP_ADDRESS', '10.0.0.1'], ['EMAIL', 'a@b'],
  ]);
  assert.deepEqual(certSans(cert('URI:"spiffe://x/a,b", DNS:c')), [['URI', 'spiffe://x/a,b'], ['DNS', 'c']]);
  assert.deepEqual(certSans(cert('')), []);
});

test('sanMatches: exact/prefix/suffix/contains, typed or any type, one match is enough', () => {
  const c = cert('DNS:reviews.default.svc, URI:spiffe://cluster.local/ns/default/sa/reviews');
  assert.equal(sanMatches(c, [{ kind: 'exact', value: 'spiffe://cluster.local/ns/default/sa/reviews' }]), true);
  assert.equal(sanMatches(c, [{ kind: 'exact', value: 'spiffe://cluster.local/ns/default/sa/ratings' }]), false);
  assert.equal(sanMatches(c, [{ kind: 'prefix', value: 'spiffe://cluster.local/ns/default/' }]), true);
  assert.equal(sanMatches(c, [{ kind: 'suffix', value: '.default.svc', sanType: 'DNS' }]), true);
  assert.equal(sanMatches(c, [{ kind: 'suffix', value: '.default.svc', sanType: 'URI' }]), false);
  assert.equal(sanMatches(c, [{ kind: 'contains', value: 'nope' }, { kind: 'contains', value: '/sa/' }]), true);
  // A value smuggled into another SAN's text does not count.
  assert.equal(sanMatches(cert('DNS:"x, URI:spiffe://evil"'), [{ kind: 'exact', value: 'spiffe://evil', sanType: 'URI' }]), false);
});
