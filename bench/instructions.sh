#!/bin/bash
# User-space instructions per HTTP/1.1 request of the sidecar, counted by callgrind: a figure
# that a loaded machine does not change (unlike CPU time), for before/after comparisons of
# per-request work. Kernel time is not counted (the syscalls per request are the same set).
#
#   bench/instructions.sh [ROOT...]     ROOT: checkouts with dist/ built (default: this one)
#
# Per ROOT: a Node backend (bench/backend.ts, 1 KiB responses), the bench's http1 config,
# the sidecar under valgrind --tool=callgrind, WARM requests of warm-up (JIT tiers settle),
# counters zeroed, N requests counted (h2load --h1, C connections). ~3 minutes per ROOT.
# Env: N (20000), WARM (20000), C (20), PORT (18380), KEEP (a directory: each ROOT's callgrind
# files are kept there as cg.<n>.* for callgrind_annotate).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-20000}; WARM=${WARM:-20000}; C=${C:-20}; PORT=${PORT:-18380}
command -v valgrind >/dev/null && command -v h2load >/dev/null || { echo "needs valgrind and h2load" >&2; exit 2; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
# The backend and the config come from this checkout's bench build.
node -e "
const fs = require('fs');
const { startBackend } = require('$here/dist/bench/backend.js');
const { outriggerConfig } = require('$here/dist/bench/peers/configs.js');
startBackend().then((b) => {
  fs.writeFileSync('$tmp/cfg.json', JSON.stringify(outriggerConfig({ mode: 'http1', port: $PORT, backendPort: b.http, dir: '$tmp', adminPort: $PORT + 1 })));
  fs.writeFileSync('$tmp/ready', '');
});" &
pids+=($!)
for _ in $(seq 1 100); do [ -e "$tmp/ready" ] && break; sleep 0.1; done
for root in "${@:-$here}"; do
  (cd "$root" && exec valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file="$tmp/cg.%p" \
    node dist/src/cli.js start -c "$tmp/cfg.json" --workers 1 --log-level warn >"$tmp/sidecar.log" 2>&1) &
  vg=$!
  pids+=($vg)
  for _ in $(seq 1 600); do ss -ltn | grep -q "127.0.0.1:$PORT " && break; sleep 0.2; done
  h2load --h1 -c "$C" -m 1 -t 1 -n "$WARM" "http://127.0.0.1:$PORT/" >/dev/null
  callgrind_control --zero "$vg" >/dev/null
  ok=$(h2load --h1 -c "$C" -m 1 -t 1 -n "$N" "http://127.0.0.1:$PORT/" | grep -oE '[0-9]+ succeeded' | cut -d' ' -f1)
  callgrind_control --dump=counted "$vg" >/dev/null
  sleep 1
  ir=$(grep -h '^summary:' "$tmp"/cg."$vg".* 2>/dev/null | tail -1 | cut -d' ' -f2)
  kill "$vg" 2>/dev/null || true
  wait "$vg" 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"; n=$(ls "$KEEP" | wc -l)
    for f in "$tmp"/cg."$vg".*; do [ -e "$f" ] && mv "$f" "$KEEP/cg.$n.$(basename "$f")"; done
  fi
  rm -f "$tmp"/cg.*
  echo "$root: $ok requests, $((ir / (ok > 0 ? ok : 1))) instructions per request (user space, all threads)"
  for _ in $(seq 1 50); do ss -ltn | grep -q "127.0.0.1:$PORT " || break; sleep 0.2; done
done
