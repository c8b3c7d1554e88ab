/**
 * Cost per route match: the linear-time regex engine (V8's `l` flag, src/router/regex.ts) against
 * backtracking RegExp, on the bench's route table and on a table of 20 regex routes.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/router-regex.js
 *
 * The route caches are bypassed (route.matches on every route, as a cache miss does) so the
 * figures are the matching itself; a cached lookup is one Map get whatever the engine.
 */
import { compileHttpRouter, type HttpRoute, type HttpRouteRequest } from '../src/router/http-routes';
import { DEFAULT_PATH_OPTIONS, resolveTarget } from '../src/router/path';
import { linearRegex } from '../src/router/regex';

/** V8's linear-engine flag (enabled by src/router/regex.ts). */
const LINEAR_FLAG = 'l';

function req(path: string): HttpRouteRequest {
  return { path, header: () => undefined };
}

/** ns per call of fn over `inputs` (best of 5 rounds). */
function nsPer(fn: (s: string) => unknown, inputs: readonly string[], rounds = 200_000): number {
  let best = Infinity;
  for (let k = 0; k < 5; k++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) fn(inputs[i % inputs.length]);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / rounds);
  }
  return best;
}

const PATTERNS = [
  '/api/v1/users/[0-9]+',
  '/api/v1/users/[0-9]+/posts/[0-9]+',
  '/api/v2/orders/[a-f0-9]{8}',
  '/static/.*\\.(css|js|png)',
  '/img/[a-z]+/[0-9]+x[0-9]+\\.jpg',
  '/v[0-9]+/health',
  '/search\\?.*',
  '/items/[A-Za-z0-9_-]+',
  '/a/b/c/[^/]+/d',
  '/(foo|bar|baz)/[0-9]+',
  '/users/[0-9]+/settings(/.*)?',
  '/docs/[a-z-]+\\.html',
  '/feed/[0-9]{4}/[0-9]{2}/[0-9]{2}',
  '/files/.+',
  '/rpc/[A-Z][a-zA-Z]+/[a-z][a-zA-Z]+',
  '/cart/[0-9]+/items/[0-9]+',
  '/geo/-?[0-9]+\\.[0-9]+,-?[0-9]+\\.[0-9]+',
  '/tags/[a-z]+(,[a-z]+)*',
  '/x/[0-9a-f]{16}',
  '/catch/(.*)',
];
const PATHS = ['/api/v1/users/12345', '/static/app/main.js', '/rpc/OrderService/placeOrder', '/tags/a,b,c,d', '/catch/everything/else/here', '/nomatch'];

// The whole table, first match wins, as a cache miss runs it.
const linear = PATTERNS.map((p) => linearRegex(p, 'bench'));
const backtracking = PATTERNS.map((p) => new RegExp(`^(?:${p})$`));
const linearNoPrefix = PATTERNS.map((p) => new RegExp(`^(?:${p})$`, LINEAR_FLAG));
const firstMatch = (table: readonly { test(s: string): boolean }[]) => (s: string) => {
  for (let i = 0; i < table.length; i++) if (table[i].test(s)) return i;
  return -1;
};
for (const p of PATHS) if (firstMatch(linear)(p) !== firstMatch(backtracking)(p)) throw new Error(`engines disagree on ${p}`);

const benchTable = compileHttpRouter({ name: 'bench', virtualHosts: [{ name: 'bench', domains: ['*'], routers: [{ match: { prefix: '/' }, route: { cluster_name: 'backend' } }] }] });
const benchRoute = benchTable.virtualHost('x')!.routes[0] as HttpRoute;
const benchVh = benchTable.virtualHost('127.0.0.1:8080')!;
const benchReqs = ['/', '/echo', '/x/y'].map(req);

const rows: [string, number][] = [
  ['bench table (prefix "/"), route.matches', nsPer((s) => benchRoute.matches(s, benchReqs[0]), ['/', '/echo', '/x/y'])],
  ['bench table, cached vh.match', nsPer((s) => benchVh.match(benchReqs[s.length % 3]), ['/', '/echo', '/x/y'])],
  ['20 regex routes, backtracking RegExp (whole table)', nsPer(firstMatch(backtracking), PATHS, 50_000)],
  ['20 regex routes, linear engine alone (whole table)', nsPer(firstMatch(linearNoPrefix), PATHS, 50_000)],
  ['20 regex routes, literal prefix + linear (whole table)', nsPer(firstMatch(linear), PATHS, 50_000)],
  ['one regex /api/v1/users/[0-9]+, backtracking', nsPer((s) => backtracking[0].test(s), PATHS)],
  ['one regex /api/v1/users/[0-9]+, linear', nsPer((s) => linear[0].test(s), PATHS)],
];
const TARGETS = ['/', '/echo', '/api/v1/users/12345?expand=true&x=1', '/static/app/main.js'];
rows.push(['resolveTarget (normalization scan), clean paths', nsPer((s) => resolveTarget(s, 'h', DEFAULT_PATH_OPTIONS), TARGETS)]);
rows.push(['resolveTarget, /public/./a/../b (rebuilt)', nsPer((s) => resolveTarget(s, 'h', DEFAULT_PATH_OPTIONS), ['/public/./a/../b'])]);
const hostile = '/' + 'a'.repeat(64 * 1024) + '!';
const redos = linearRegex('^/(a+)+$', 'bench');
const t0 = performance.now();
redos.test(hostile);
rows.push(['^/(a+)+$ on a 64 KiB hostile path, linear (ns)', (performance.now() - t0) * 1e6]);
for (const [name, ns] of rows) console.log(`${name.padEnd(56)} ${ns.toFixed(0).padStart(10)} ns`);
