#!/usr/bin/env bash
# coturn for the local stack (`make run`) and the test harness (t/lib): writes
# its configuration under the data dir and becomes turnserver, in the
# foreground (the caller holds its pid and stops it with SIGTERM).
#
# Usage: turn.sh
# Reads FAMCALL_DATA_DIR, FAMCALL_TURN_PORT (3478), FAMCALL_BIND (127.0.0.1:
# coturn listens and relays there) and FAMCALL_TURN_RELAY_PORTS (49160-49660);
# with FAMCALL_TURN_TLS_PORT, FAMCALL_TURN_CERT and FAMCALL_TURN_PKEY (PEM
# files) it takes TURN over TLS on that port too (the NAT suites: 443).
#
# Everything coturn keeps is under $FAMCALL_DATA_DIR: the shared secret
# (turn.key, made once and kept), its configuration, database, pid file and
# log. The secret is in turn/turnserver.conf, mode 0600, never on the command
# line, where `ps` would show it to every user. Loopback peers are allowed:
# this is the local and test configuration only (production:
# conf/examples/turnserver.conf).
set -euo pipefail

data=${FAMCALL_DATA_DIR:?FAMCALL_DATA_DIR is not set}
port=${FAMCALL_TURN_PORT:-3478}
bind=${FAMCALL_BIND:-127.0.0.1}
relay=${FAMCALL_TURN_RELAY_PORTS:-49160-49660}

case $relay in
    [0-9]*-[0-9]*) min=${relay%-*} max=${relay#*-} ;;
    *) echo "FAMCALL_TURN_RELAY_PORTS: MIN-MAX, not '$relay'" >&2; exit 1 ;;
esac

mkdir -p "$data/turn" "$data/log"
chmod 0700 "$data/turn"
[ -s "$data/turn.key" ] || (umask 077; openssl rand -hex 32 > "$data/turn.key")
secret=$(tr -d '\r\n' < "$data/turn.key")

tls=no-tls
if [ -n "${FAMCALL_TURN_TLS_PORT:-}" ]; then
    tls="tls-listening-port=$FAMCALL_TURN_TLS_PORT
cert=${FAMCALL_TURN_CERT:?FAMCALL_TURN_CERT is not set}
pkey=${FAMCALL_TURN_PKEY:?FAMCALL_TURN_PKEY is not set}"
fi

conf=$data/turn/turnserver.conf
(umask 077; cat > "$conf.tmp" <<CONF
# written by scripts/turn.sh: the local and test coturn; edits are lost
listening-ip=$bind
relay-ip=$bind
listening-port=$port
min-port=$min
max-port=$max
realm=famcall
use-auth-secret
static-auth-secret=$secret
fingerprint
$tls
no-dtls
no-cli
no-multicast-peers
allow-loopback-peers
userdb=$data/turn/turndb
pidfile=$data/turn/turnserver.pid
log-file=$data/log/turnserver.log
simple-log
CONF
)
chmod 0600 "$conf.tmp"
mv "$conf.tmp" "$conf"

exec turnserver -c "$conf" --no-stdout-log
