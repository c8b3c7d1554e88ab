/**
 * The whole TCP proxy suite again with the TypeScript fallbacks instead of the native addon
 * (OUTRIGGER_NATIVE=0: fs.writevSync, ArrayBuffer slabs, one worker thread owning the listening socket, no pinning).
 * The sidecar child processes inherit this environment.
 */
process.env.OUTRIGGER_NATIVE = '0';
// eslint-disable-next-line @typescript-eslint/no-require-imports
require('./tcp-proxy.test');
