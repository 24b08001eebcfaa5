#!/usr/bin/env bash
# Apply pending migrations (docs/api.md, "Script interfaces").
#
# Connects with the libpq environment (PGHOST, PGPORT, PGDATABASE, PGUSER, ...).
# Applies, in name order, each $FAMCALL_SQL_DIR/NNN_*.sql (default: the repo's sql/)
# not yet recorded in schema_migrations. A file and its schema_migrations row are
# one transaction (psql -1), so a failing file leaves nothing behind; migration
# files must therefore not contain BEGIN/COMMIT or statements that cannot run in a
# transaction block (CREATE INDEX CONCURRENTLY, VACUUM, ...).
# schema_migrations.version is the file name, e.g. 001_schema.sql.
set -euo pipefail

here=$(cd -- "$(dirname -- "$0")" && pwd)
sqldir=${FAMCALL_SQL_DIR:-$here/../sql}

psql_bin=/usr/bin/psql
[ -x "$psql_bin" ] || psql_bin=/usr/lib/postgresql/15/bin/psql
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
psql=("$psql_bin" -X -q -v ON_ERROR_STOP=1)

"${psql[@]}" -c 'create table if not exists schema_migrations (
    version    text primary key,
    applied_at timestamptz not null default now())' ||
    { echo "migrate: cannot reach the database" >&2; exit 1; }

applied=$("${psql[@]}" -tA -c 'select version from schema_migrations')

shopt -s nullglob
LC_COLLATE=C    # plain byte order for the file names
for file in "$sqldir"/[0-9][0-9][0-9]_*.sql; do
    name=$(basename -- "$file")
    if grep -qxF -- "$name" <<<"$applied"; then
        continue
    fi
    # the name goes into a SQL literal below
    if ! [[ $name =~ ^[0-9]{3}_[A-Za-z0-9_.-]+\.sql$ ]]; then
        echo "migrate: bad migration file name: $name" >&2
        exit 1
    fi
    if "${psql[@]}" -1 -f "$file" \
        -c "insert into schema_migrations (version) values ('$name')"; then
        echo "applied $name"
    else
        echo "migration $name failed; rolled back" >&2
        exit 1
    fi
done
