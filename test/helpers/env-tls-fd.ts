// Imported first by tests of the FdSocket path (on by default; this keeps it on whatever the environment): src/network/listener.ts reads OUTRIGGER_TLS_FD when it loads.
process.env.OUTRIGGER_TLS_FD = '1';
