/**
 * The spliced-session cases of tcp-splice.test.ts on the JS path: OUTRIGGER_NATIVE=0 (no addon,
 * so no splice) for the test process and the sidecar children it starts.
 */
process.env.OUTRIGGER_NATIVE = '0';
// eslint-disable-next-line @typescript-eslint/no-require-imports
require('./tcp-splice.test');
