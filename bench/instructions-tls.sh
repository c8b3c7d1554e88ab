#!/bin/bash
# User-space instructions per full TLS 1.3 handshake (ECDSA P-256, tcp_proxy to an echo backend,
# 64-byte echo, close: the tls-handshake workload's connection) of the sidecar, counted by
# callgrind: load-independent, for before/after comparisons of per-connection work (the
# counterpart of instructions.sh for HTTP/1.1). Kernel time is not counted.
#
#   bench/instructions-tls.sh [ROOT...]     ROOT: checkouts with dist/ built (default: this one)
#
# Per ROOT: the bench's tls config (one ECDSA listener), the sidecar under valgrind, WARM
# handshakes of warm-up (JIT tiers settle), counters zeroed, N handshakes counted (C loops).
# Env: N (1500), WARM (1500), C (8), PORT (18390), KEEP (a directory: keep the callgrind
# output there, for callgrind_annotate); OUTRIGGER_NATIVE_TLS passes through.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-1500}; WARM=${WARM:-1500}; C=${C:-8}; PORT=${PORT:-18390}
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 2; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
# Echo backend and the config, from this checkout's bench build.
node -e "
const fs = require('fs');
const net = require('net');
const { makeCert } = require('$here/dist/bench/lib/certs.js');
const { outriggerConfig } = require('$here/dist/bench/peers/configs.js');
const cert = makeCert('$tmp', 'ecdsa');
const b = net.createServer({ allowHalfOpen: true }, (s) => { s.on('data', (d) => s.write(d)); s.on('end', () => s.end()); s.on('error', () => {}); });
b.listen(0, '127.0.0.1', () => {
  const tls = [{ name: 'ecdsa', port: $PORT, cert }];
  fs.writeFileSync('$tmp/cfg.json', JSON.stringify(outriggerConfig({ mode: 'tls', port: $PORT, backendPort: b.address().port, dir: '$tmp', adminPort: $PORT + 1, tls })));
  fs.writeFileSync('$tmp/ready', '');
});" &
pids+=($!)
for _ in $(seq 1 100); do [ -e "$tmp/ready" ] && break; sleep 0.1; done
# The client: C loops of connect, full handshake (no tickets), 64-byte echo, close; prints the count done.
cat >"$tmp/client.js" <<'EOF'
const tls = require('tls');
const [port, total, conc] = process.argv.slice(2).map(Number);
const msg = Buffer.alloc(64, 0x61);
let started = 0, done = 0, failed = 0;
function one() {
  if (started >= total) return;
  started++;
  const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, secureOptions: require('constants').SSL_OP_NO_TICKET });
  let got = 0;
  s.on('secureConnect', () => s.write(msg));
  s.on('data', (d) => { got += d.length; if (got >= msg.length) s.end(); });
  s.on('error', () => { failed++; });
  s.on('close', () => { if (got >= msg.length) done++; else failed++; if (done + failed === total) console.log(done); else one(); });
}
for (let i = 0; i < conc; i++) one();
EOF
for root in "${@:-$here}"; do
  (cd "$root" && exec valgrind --tool=callgrind --smc-check=all-non-file --separate-threads=yes --callgrind-out-file="$tmp/cg.%p" \
    node dist/src/cli.js start -c "$tmp/cfg.json" --workers 1 --log-level warn >"$tmp/sidecar.log" 2>&1) &
  vg=$!
  pids+=($vg)
  for _ in $(seq 1 600); do ss -ltn | grep -q "127.0.0.1:$PORT " && break; sleep 0.2; done
  node "$tmp/client.js" "$PORT" "$WARM" "$C" >/dev/null
  callgrind_control --zero "$vg" >/dev/null
  ok=$(node "$tmp/client.js" "$PORT" "$N" "$C")
  callgrind_control --dump=counted "$vg" >/dev/null
  sleep 1
  # One file per thread: -01 is the main thread (the data plane with one worker), the others
  # V8's compiler and GC helpers (their share moves with JIT timing: shown apart).
  main=$(grep -h '^summary:' "$tmp"/cg."$vg".*-01 2>/dev/null | tail -1 | cut -d' ' -f2)
  ir=$(grep -h '^summary:' "$tmp"/cg."$vg".* 2>/dev/null | awk '{ s += $2 } END { printf "%.0f", s }')
  kill "$vg" 2>/dev/null || true
  wait "$vg" 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$tmp"/cg."$vg".* "$KEEP"/; fi
  rm -f "$tmp"/cg.*
  echo "$root: $ok handshakes, instructions per handshake (user space): main thread $((main / (ok > 0 ? ok : 1))), all threads $((ir / (ok > 0 ? ok : 1)))"
  for _ in $(seq 1 50); do ss -ltn | grep -q "127.0.0.1:$PORT " || break; sleep 0.2; done
done
