/** Request-target normalization before routing (src/router/path.ts). */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { DEFAULT_PATH_OPTIONS as D, EscapedSlashes, absoluteForm, normalizeTarget, resolveTarget } from '../../src/router/path';

test('dot segments, merged slashes, unreserved escapes and backslashes normalize to one path', () => {
  const cases: [string, string][] = [
    ['/x/../admin', '/admin'],
    ['/./admin', '/admin'],
    ['//admin', '/admin'],
    ['/%61dmin', '/admin'],
    ['/public/%2e%2e/admin', '/admin'],
    ['/%2e/admin', '/admin'],
    ['/%2E%2E/%2e%2E/admin', '/admin'],
    ['/a\\..\\admin', '/admin'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/..', '/'],
    ['/../../x', '/x'],
    ['/a//b///c', '/a/b/c'],
    ['/a/./b/?q=/../x', '/a/b/?q=/../x'],
  ];
  for (const [from, to] of cases) assert.equal(normalizeTarget(from, D), to, from);
});

test('paths that need nothing come back as the same string; odd escapes are kept', () => {
  for (const u of ['/', '/admin/', '/ok/path?x=../y', '/a%2Fb', '/a%zz', '/a%2', '/.hidden/x', '/a/..b', '/a/b.', '/%20x', '*']) assert.equal(normalizeTarget(u, D), u, u);
  assert.equal(normalizeTarget('//a/../b', { ...D, normalize: false }), '/a/../b', 'merge only');
  assert.equal(normalizeTarget('//a/../b', { ...D, mergeSlashes: false }), '//b', 'normalize only');
  assert.equal(normalizeTarget('//a/../b', { normalize: false, mergeSlashes: false, escapedSlashes: EscapedSlashes.Keep }), '//a/../b');
});

test('escaped slashes: keep, reject, unescape and forward, unescape and redirect', () => {
  const u = '/x%2F..%2fadmin%5Cy?q';
  assert.equal(normalizeTarget(u, D), u);
  assert.deepEqual(normalizeTarget(u, { ...D, escapedSlashes: EscapedSlashes.Reject }), { status: 400, location: '' });
  assert.equal(normalizeTarget(u, { ...D, escapedSlashes: EscapedSlashes.UnescapeAndForward }), '/admin/y?q');
  assert.deepEqual(normalizeTarget(u, { ...D, escapedSlashes: EscapedSlashes.UnescapeAndRedirect }), { status: 307, location: '/admin/y?q' });
  assert.equal(normalizeTarget('/plain', { ...D, escapedSlashes: EscapedSlashes.Reject }), '/plain');
});

test('absolute-form targets: the authority replaces Host, the path is origin-form', () => {
  assert.deepEqual(absoluteForm('http://h:8/x?y'), { authority: 'h:8', url: '/x?y' });
  assert.deepEqual(absoluteForm('HTTPS://h'), { authority: 'h', url: '/' });
  assert.deepEqual(absoluteForm('http://h?q'), { authority: 'h', url: '/?q' });
  for (const bad of ['https://u@h/', 'ftp://h/x', 'http:///x', 'h:80']) assert.equal(absoluteForm(bad), 400, bad);
  assert.equal(absoluteForm('/x'), null);
  assert.equal(absoluteForm('*'), null);
  assert.deepEqual(resolveTarget('http://api.example/a/../b', 'other', D), { url: '/b', authority: 'api.example', status: 0 });
  assert.deepEqual(resolveTarget('ftp://x/', 'h', D), { url: 'ftp://x/', authority: 'h', status: 400 });
  const same = '/fine?x';
  assert.equal(resolveTarget(same, 'h', D), same);
});
