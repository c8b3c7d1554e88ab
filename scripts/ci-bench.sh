#!/usr/bin/env bash
# CI perf job: a quick interleaved run of the TCP, Bolt and TLS-handshake workloads against Outrigger,
# haproxy, nginx and the direct path. Prints the ratio table; writes JSON/Markdown/
# SVG under bench/results/ci/ (git-ignored) or $BENCH_OUT.
# Exit status: non-zero only when a workload errors (a peer failed to start, a run
# had connection errors or moved nothing) or the harness itself fails - never
# because a ratio looks bad on a noisy machine.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT="${BENCH_OUT:-bench/results/ci}"
PEERS="${BENCH_PEERS:-outrigger,haproxy,nginx,direct}"

if ! scripts/install-peers.sh; then
  echo "ci-bench: could not install haproxy/nginx; those peers will be reported as unavailable" >&2
fi

# Bounded: the quick run takes about 2.5 minutes; give up after 10.
timeout --kill-after=10 600 npm run --silent bench -- ${BENCH_WORKLOADS:-tcp-bulk tcp-rr bolt tls-handshake http1} --quick --peers "$PEERS" --out "$OUT"
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "ci-bench: timed out" >&2
fi
[ -f "$OUT/latest.md" ] && echo "ci-bench: report in $OUT/latest.md" >&2
exit "$rc"
