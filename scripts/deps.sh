#!/usr/bin/env bash
# Install the Debian packages famcall needs to build, run and test. Idempotent:
# returns at once when everything is present.
set -euo pipefail

PACKAGES=(
    build-essential pkg-config
    nginx-core nginx-dev                      # the server and its module build kit
    postgresql-15 libpq-dev                   # database and client library
    libjansson-dev libjwt-dev libssl-dev libsodium-dev
    libyajl-dev                               # bench/ws/wsload: its frame parser
    coturn                                    # TURN relay
    libmojolicious-perl libtest-simple-perl   # t/: Test::More + Test::Mojo
    wrk curl openssl python3                  # bench/ (t/30: wsload's self-test)
    valgrind                                  # bench/sql/: instruction counts
    iproute2 procps                           # t/: ss (which worker holds a socket), ps
    iptables                                  # t/51-nat*: the NAT routers in namespaces
    clang libclang-rt-14-dev                  # sanitizers (test-asan) and libFuzzer (fuzz)
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
    gstreamer1.0-nice libsoup-3.0-dev libjson-glib-dev   # client/gstreamer-app
    libcurl4-openssl-dev                      # the push dispatcher (HTTP/2 to the providers)
    nodejs                                    # t/7x: the mock push providers (node:http2)
    chromium fonts-liberation fonts-noto-color-emoji  # t/60-mobile-web.t: the app's web build
    prometheus                                # t/90: promtool check metrics
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
# Debian starts the packaged services on install where it can; famcall runs its
# own instances, so make sure the system ones do not hold our ports.
for svc in nginx postgresql coturn; do
    service "$svc" stop > /dev/null 2>&1 || true
done
