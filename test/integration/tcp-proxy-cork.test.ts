/**
 * The whole TCP proxy suite again with the cork/uncork write strategy (OUTRIGGER_IO=cork:
 * Node's own read buffers, writes flushed with cork()/write()/uncork()).
 */
process.env.OUTRIGGER_IO = 'cork';
// eslint-disable-next-line @typescript-eslint/no-require-imports
require('./tcp-proxy.test');
