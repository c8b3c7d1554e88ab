#!/usr/bin/env bash
# Installs the comparison proxies used by `npm run bench` (haproxy, nginx with the
# stream module) and h2load (nghttp2-client, the http2 workload's load driver) from
# Debian apt when they are missing. Envoy is not packaged
# here: put an `envoy` binary on PATH or set ENVOY_BIN to have it benchmarked.
# Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-peers: not root and no sudo; install haproxy nginx libnginx-mod-stream yourself" >&2
    exit 1
  fi
fi

# Locate the nginx stream module .so (Debian ships it in libnginx-mod-stream).
find_stream_module() {
  for p in /usr/lib/nginx/modules/ngx_stream_module.so \
           /usr/share/nginx/modules/ngx_stream_module.so \
           /usr/lib64/nginx/modules/ngx_stream_module.so; do
    if [ -f "$p" ]; then echo "$p"; return 0; fi
  done
  return 1
}

want=()
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || want+=(haproxy)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || want+=(nginx)
find_stream_module >/dev/null || want+=(libnginx-mod-stream)
command -v h2load >/dev/null 2>&1 || want+=(nghttp2-client)
command -v openssl >/dev/null 2>&1 || want+=(openssl)
command -v curl >/dev/null 2>&1 || want+=(curl) # the http tests' HTTP/1.1 and h2c peer
command -v taskset >/dev/null 2>&1 || want+=(util-linux) # CPU pinning of the bench
command -v wrk >/dev/null 2>&1 || want+=(wrk) # HTTP/1.1 load under config pushes and health tests
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || want+=(iptables) # transparent interception tests (REDIRECT in a network namespace)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /usr/bin/ip ] || want+=(iproute2) # the network namespaces of those tests

if [ "${#want[@]}" -gt 0 ]; then
  echo "install-peers: installing ${want[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists only if they look absent/stale (older than a day), and once more
  # if the install still fails on them (a package version gone from the mirror).
  updated=0
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n1)" ]; then
    $SUDO apt-get update -q
    updated=1
  fi
  # Services must not be started by the package scripts; the bench runs its own.
  if ! $SUDO apt-get install -y -q --no-install-recommends "${want[@]}"; then
    [ "$updated" -eq 1 ] && exit 1
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${want[@]}"
  fi
fi

echo "haproxy: $(command -v haproxy || echo /usr/sbin/haproxy) ($(/usr/sbin/haproxy -v 2>/dev/null | head -n1 || echo missing))"
echo "nginx:   $(command -v nginx || echo /usr/sbin/nginx) ($(/usr/sbin/nginx -v 2>&1 | head -n1 || echo missing))"
echo "nginx stream module: $(find_stream_module || echo MISSING)"
echo "h2load:  $(command -v h2load || echo 'missing (the http2 workload falls back to a node:http2 client)')"
if [ -n "${ENVOY_BIN:-}" ] && [ -x "${ENVOY_BIN}" ]; then
  echo "envoy:   ${ENVOY_BIN}"
elif command -v envoy >/dev/null 2>&1; then
  echo "envoy:   $(command -v envoy)"
else
  echo "envoy:   not found (set ENVOY_BIN or put envoy on PATH to include it)"
fi
