#!/usr/bin/env bash
# Put phone numbers on the invite STOP list (docs/api.md, "Invites"): no
# invite SMS is ever sent to them again.  For the operator, who fills it
# from the SMS provider's STOP replies:
#
#     scripts/invite-stop.sh +15551234567 [...]
#     scripts/invite-stop.sh --remove +15551234567    (they asked back in)
#
# Connects with the libpq environment (PGHOST, PGPORT, PGDATABASE, PGUSER),
# as scripts/migrate.sh does.
set -euo pipefail

psql_bin=/usr/bin/psql
[ -x "$psql_bin" ] || psql_bin=/usr/lib/postgresql/15/bin/psql

remove=0
if [ "${1:-}" = --remove ]; then
    remove=1
    shift
fi

if [ $# -eq 0 ]; then
    echo "usage: $0 [--remove] <E.164 phone>..." >&2
    exit 2
fi

for phone in "$@"; do
    if ! [[ $phone =~ ^\+[1-9][0-9]{6,14}$ ]]; then
        echo "invite-stop: not an E.164 number: $phone" >&2
        exit 2
    fi
done

for phone in "$@"; do
    if [ $remove = 1 ]; then
        sql='delete from invite_optouts where phone = :'"'"'phone'"'"
    else
        sql='insert into invite_optouts (phone) values (:'"'"'phone'"'"')
             on conflict do nothing'
    fi
    "$psql_bin" -X -q -v ON_ERROR_STOP=1 -v phone="$phone" <<<"$sql;"
done
