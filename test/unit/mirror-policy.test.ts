/** request_mirror_policies compilation: MOSN object form, Envoy list form, refusals naming the field. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { compileMirrorPolicies } from '../../src/filters/stream/mirror/policy';

test('MOSN and Envoy forms', () => {
  assert.equal(compileMirrorPolicies({}, 'r'), null);
  assert.deepEqual(compileMirrorPolicies({ request_mirror_policies: { cluster: 'm', percent: 25 } }, 'r'), [{ cluster: 'm', fraction: 0.25, router: false }]);
  assert.deepEqual(compileMirrorPolicies({ request_mirror_policies: [{ cluster: 'a' }, { cluster: 'b', runtime_fraction: { default_value: { numerator: 5, denominator: 'TEN_THOUSAND' } } }] }, 'r'), [
    { cluster: 'a', fraction: 1, router: false },
    { cluster: 'b', fraction: 0.0005, router: false },
  ]);
  // Policies that came over xDS: sent by the router itself.
  assert.deepEqual(compileMirrorPolicies({ request_mirror_policies: [{ cluster: 'x', sent_by_router: true }] }, 'r'), [{ cluster: 'x', fraction: 1, router: true }]);
});

test('refusals name the field', () => {
  assert.throws(() => compileMirrorPolicies({ request_mirror_policies: { percent: 5 } }, 'r0'), /r0\.route\.request_mirror_policies\.cluster/);
  assert.throws(() => compileMirrorPolicies({ request_mirror_policies: { cluster: 'm', percent: 150 } }, 'r0'), /percent: 150 must be/);
  assert.throws(() => compileMirrorPolicies({ request_mirror_policies: [{ cluster: 'm', runtime_fraction: { default_value: { numerator: 1, denominator: 'BILLION' } } }] }, 'r0'), /\[0\]\.runtime_fraction/);
  assert.throws(() => compileMirrorPolicies({ request_mirror_policies: [{ cluster: 'm', sent_by_router: 'yes' }] }, 'r0'), /\[0\]\.sent_by_router: "yes" must be true or false/);
});
