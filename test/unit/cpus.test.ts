/** Worker CPU choice: the process's affinity mask, not CPU numbers from 0. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as os from 'node:os';
import { allowedCpus, parseCpuList } from '../../src/worker/cpus';

test('CPU lists parse like the kernel prints them', () => {
  assert.deepEqual(parseCpuList('0-3,8,10-11'), [0, 1, 2, 3, 8, 10, 11]);
  assert.deepEqual(parseCpuList('1'), [1]);
  assert.deepEqual(parseCpuList('3,1-2\n'), [1, 2, 3]);
  assert.deepEqual(parseCpuList('2-1'), []);
  assert.deepEqual(parseCpuList('a-b'), []);
});

test('allowed CPUs come from Cpus_allowed_list, else 0..n-1', () => {
  assert.deepEqual(allowedCpus('Name:\tnode\nCpus_allowed:\t2\nCpus_allowed_list:\t1\n'), [1]);
  assert.deepEqual(allowedCpus('Cpus_allowed_list:\t0,2-3\n'), [0, 2, 3]);
  assert.equal(allowedCpus('no such line').length, os.availableParallelism());
  // This process: a non-empty list of distinct CPUs.
  const mine = allowedCpus();
  assert.ok(mine.length >= 1 && new Set(mine).size === mine.length);
});
