// Imported first by tests of the FdSocket path: src/network/listener.ts reads OUTRIGGER_TLS_FD when it loads.
process.env.OUTRIGGER_TLS_FD = '1';
