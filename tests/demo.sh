#!/usr/bin/env bash
# tests/demo.sh - `make demo`: a real backfill on a throwaway PostgreSQL 15.
#
# Starts a server in a temporary directory (tests/lib/pg.sh), creates accounts with
# 1,000,000 rows and a new nullable column email_lower (the "expand" step of an
# expand-contract migration), runs backfilld --exit-when-done on conf/demo.yaml while a
# watcher prints backfill.progress every few seconds, then shows the result and stops the
# server. Knobs: DEMO_ROWS (default 1000000), BF_KEEP_TMP=1.
set -euo pipefail
BF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$BF_ROOT"
. tests/lib/pg.sh
. tests/lib/assert.sh

rows=${DEMO_ROWS:-1000000}
pg_require_bins
echo "== starting a throwaway PostgreSQL 15"
pg_start demo >/dev/null
psql_q "CREATE DATABASE demo"
BF_DEMO_DB=$(pg_conninfo demo demo)
export BF_DEMO_DB PGDATABASE=demo

echo "== creating accounts with $rows rows and a new, empty column email_lower"
psql_q "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL,
                               created_at timestamptz NOT NULL DEFAULT now())"
psql_q "INSERT INTO accounts (id, email)
        SELECT g, 'User.' || g || '@Example.COM' FROM generate_series(1, $rows) g"
psql_q "ALTER TABLE accounts ADD COLUMN email_lower text"
psql_q "VACUUM ANALYZE accounts"

echo "== backfilld -c conf/demo.yaml --exit-when-done"
"$BF_ROOT/backfilld" -c conf/demo.yaml --exit-when-done &
daemon=$!
bf_defer kill "$daemon"
shown=0
while kill -0 "$daemon" 2>/dev/null; do
	# a progress table every 3 seconds, from any session: the operator's query
	if ((SECONDS - shown >= 3)) && [[ $(psql_q "SELECT to_regclass('backfill.progress') IS NOT NULL") == t ]]; then
		shown=$SECONDS
		psql -X -q -c "SELECT name, state, rows_done, rows_estimate, percent, rows_per_second, eta
		               FROM backfill.progress" | sed 's/^/   | /'
	fi
	read -r -t 0.2 <> <(:) || true
done
rc=0
wait "$daemon" || rc=$?

echo "== SELECT * FROM backfill.progress"
psql -X -x -c "SELECT * FROM backfill.progress"
left=$(psql_q "SELECT count(*) FROM accounts WHERE email_lower IS DISTINCT FROM lower(email)")
echo "== rows still to do: $left (backfilld exit status $rc)"
echo "== stopping the server"
if [[ $rc != 0 || $left != 0 ]]; then
	echo "demo: FAILED" >&2
	exit 1
fi
echo "demo: OK"
