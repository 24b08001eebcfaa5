#!/usr/bin/env bash
# A local PostgreSQL 15 cluster for development and tests (docs/api.md,
# "Script interfaces"):
#
#   scripts/pg.sh init  DATADIR PORT   initdb if DATADIR has no PG_VERSION
#   scripts/pg.sh start DATADIR PORT   start (no-op if running), wait, create db famcall
#   scripts/pg.sh stop  DATADIR        fast shutdown (no error if not running)
#
# The cluster listens on 127.0.0.1 only and puts its Unix socket in DATADIR, so it
# never clashes with a system PostgreSQL. Its log is DATADIR/../log/postgresql.log.
# The superuser and owner of database famcall is the role famcall.
# FAMCALL_PG_FAST=1 (tests only): initdb --no-sync, and the server starts with
# fsync=off and full_page_writes=off (synchronous_commit stays on).
#
# PostgreSQL refuses to run as root, so as root the server binaries run as the
# postgres OS user, which then owns DATADIR and the log file. That user must be
# able to reach DATADIR (every parent directory searchable by others).
# Unix socket paths are limited to 107 bytes: keep DATADIR short.
set -euo pipefail

PGBIN=${FAMCALL_PG_BIN:-/usr/lib/postgresql/15/bin}
FAST=${FAMCALL_PG_FAST:-0}

usage() {
    echo "usage: $0 init DATADIR PORT | start DATADIR PORT | stop DATADIR" >&2
    exit 2
}

# run a server binary as the cluster's owner
pgrun() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# give a path to the postgres OS user when running as root
own() {
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$@"
    fi
}

[ $# -ge 2 ] || usage
cmd=$1
data=$(realpath -m -- "$2")
logdir=$(dirname -- "$data")/log
logfile=$logdir/postgresql.log
cd /    # the postgres user may not be able to read the caller's directory

case $cmd in
init)
    [ $# = 3 ] || usage
    port=$3
    [ -f "$data/PG_VERSION" ] && exit 0
    mkdir -p -- "$data"
    chmod 700 -- "$data"
    own "$data"
    nosync=()
    [ "$FAST" = 1 ] && nosync=(--no-sync)
    pgrun "$PGBIN/initdb" -D "$data" -U famcall -E UTF8 --no-locale \
        --auth=trust "${nosync[@]}" >/dev/null
    # Trust authentication: this is a local development/test cluster reachable
    # only through its own socket directory and the loopback interface (see
    # listen_addresses below). Never use this script for a production cluster.
    pgrun tee "$data/pg_hba.conf" >/dev/null <<HBA
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  trust
host    all       all   ::1/128       trust
HBA
    sockdir=${data//\'/\'\'}    # quoted for postgresql.conf
    pgrun tee -a "$data/postgresql.conf" >/dev/null <<CONF

# famcall (scripts/pg.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
max_connections = 200
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
CONF
    ;;
start)
    [ $# = 3 ] || usage
    port=$3
    [ -f "$data/PG_VERSION" ] || { echo "$0: $data is not initialised" >&2; exit 1; }
    if ! pgrun "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        mkdir -p -- "$logdir"
        touch -- "$logfile"
        own "$logfile"
        opts="-p $port"
        [ "$FAST" = 1 ] && opts="$opts -c fsync=off -c full_page_writes=off"
        pgrun "$PGBIN/pg_ctl" -D "$data" -l "$logfile" -o "$opts" -w -t 60 \
            start >/dev/null ||
            { echo "$0: PostgreSQL did not start, see $logfile" >&2; exit 1; }
    fi
    for _ in $(seq 1 100); do
        "$PGBIN/pg_isready" -q -h "$data" -p "$port" -U famcall -d postgres && break
        sleep 0.1
    done
    "$PGBIN/pg_isready" -q -h "$data" -p "$port" -U famcall -d postgres ||
        { echo "$0: PostgreSQL is not ready on port $port" >&2; exit 1; }
    psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$data" -p "$port" -U famcall)
    if [ -z "$("${psql[@]}" -d postgres -tAc \
            "select 1 from pg_database where datname = 'famcall'")" ]; then
        "${psql[@]}" -d postgres -c 'create database famcall'
    fi
    ;;
stop)
    [ $# = 2 ] || usage
    [ -f "$data/PG_VERSION" ] || exit 0
    if pgrun "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        pgrun "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
    fi
    ;;
*)
    usage
    ;;
esac
