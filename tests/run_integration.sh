#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# tests/run_integration.sh [valgrind] - the integration tests, against a real PostgreSQL 15.
#
# Starts one throwaway cluster `main` (tests/lib/pg.sh), then runs each
# tests/integration/test_*.sh in sorted order (or those named in $BF_TESTS: space-separated
# basenames or globs, `.sh` optional) as `bash TEST` under `timeout`, each in a fresh database
# t_<name>. A test passes when it exits 0 and no assertion failed. Ends with the line
# `N passed, N failed`; exits 1 if any failed or none ran.
#
# A test sees: PGHOST PGPORT PGUSER PGDATABASE (its own database on `main`), BF_TEST_DB,
# BF_TEST_NAME, BF_ROOT, BF_TMPDIR, BF_BIN (the daemon, or a valgrind wrapper of it), BF_CTL,
# BF_VALGRIND (0/1), BF_PG_PRIMARY=main, BF_PG_PORT_MAIN, BF_PG_DATA_MAIN, BF_PG_DIR_MAIN.
# It begins with
#     . "$BF_ROOT/tests/lib/test.sh"
# (strict mode, the libraries, its own temporary directory) and may start clusters of its own (pg_start, pg_start_standby main NAME): they live in a
# sub-directory of BF_TMPDIR and are stopped when the test exits, however it exits.
#
# Knobs: BF_TESTS, BF_TEST_TIMEOUT (seconds, default 300), BF_KEEP_TMP=1 (keep the directory
# with logs/NAME.log and the clusters' server.log), BF_PG_BIN.

set -euo pipefail

usage() {
	echo "usage: tests/run_integration.sh [valgrind]" >&2
	exit 1
}

mode=${1-}
case $mode in
"") BF_VALGRIND=0 ;;
valgrind) BF_VALGRIND=1 ;;
*) usage ;;
esac

BF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$BF_ROOT"

# Start clean: harness state inherited from a caller's environment would be misread as ours.
unset BF_TMPDIR BF_PG_PRIMARY BF_TEST_DB BF_TEST_NAME BF_ASSERT_LOG
for v in $(compgen -v BF_PG_PORT_) $(compgen -v BF_PG_DATA_) $(compgen -v BF_PG_DIR_); do
	unset "$v"
done

# shellcheck source=tests/lib/pg.sh
. tests/lib/pg.sh
# shellcheck source=tests/lib/assert.sh
. tests/lib/assert.sh

if ! pg_require_bins; then
	echo "run_integration: cannot run the integration tests without PostgreSQL 15" >&2
	exit 1
fi
for b in timeout tail; do
	command -v "$b" >/dev/null || {
		echo "run_integration: '$b' not found" >&2
		exit 1
	}
done

# The tests to run, in sorted order.
shopt -s nullglob
all=(tests/integration/test_*.sh)
shopt -u nullglob
tests=()
passed=0
failed=0
if [[ -n ${BF_TESTS-} ]]; then
	read -r -a patterns <<<"$BF_TESTS"
	for pat in "${patterns[@]}"; do
		found=0
		for t in "${all[@]}"; do
			base=${t##*/}
			# shellcheck disable=SC2053 # $pat is a glob on purpose
			if [[ $base == $pat || $base == $pat.sh ]]; then
				found=1
			fi
		done
		if ((found == 0)); then
			echo "FAIL $pat (BF_TESTS: no test matches it)"
			failed=$((failed + 1))
		fi
	done
	for t in "${all[@]}"; do
		base=${t##*/}
		for pat in "${patterns[@]}"; do
			# shellcheck disable=SC2053
			if [[ $base == $pat || $base == $pat.sh ]]; then
				tests+=("$t")
				break
			fi
		done
	done
else
	tests=("${all[@]}")
fi

bf_tmpdir_init
mkdir -p "$BF_TMPDIR/logs"

BF_CTL=$BF_ROOT/backfillctl
BF_BIN=$BF_ROOT/backfilld
if ((BF_VALGRIND)); then
	command -v valgrind >/dev/null || {
		echo "run_integration: valgrind mode but valgrind is not installed" >&2
		exit 1
	}
	mkdir -p "$BF_TMPDIR/bin"
	# exec: the test's pid (for signals, wait) is the daemon's.
	printf '#!/bin/sh\nexec valgrind --error-exitcode=99 --leak-check=full -q %q "$@"\n' \
		"$BF_BIN" >"$BF_TMPDIR/bin/backfilld"
	chmod 755 "$BF_TMPDIR/bin/backfilld"
	BF_BIN=$BF_TMPDIR/bin/backfilld
fi
for b in "$BF_ROOT/backfilld" "$BF_CTL"; do
	[[ -x $b ]] || echo "note: $b is not built (make all); tests that need it will fail"
done
export BF_ROOT BF_BIN BF_CTL BF_VALGRIND

# On INT/TERM (bf_cleanup runs deferred commands first): stop the running test, which stops
# its own clusters, before the runner stops `main` and removes the directory.
child=""
tailer=""
stop_running_test() {
	if [[ -n $child ]]; then
		kill -TERM "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	if [[ -n $tailer ]]; then
		kill "$tailer" 2>/dev/null || true
		wait "$tailer" 2>/dev/null || true
	fi
}
bf_defer stop_running_test

if ! pg_start main; then
	echo "run_integration: could not start the test cluster" >&2
	exit 1
fi

# stop_strays NAME: a cluster still running under BF_TMPDIR that is not `main` was left by a test
# killed before its cleanup ran; stop it so the next tests and the machine stay clean.
stop_strays() {
	local pidfile data
	while IFS= read -r pidfile; do
		data=${pidfile%/postmaster.pid}
		[[ $data == "$BF_PG_DATA_MAIN" ]] && continue
		echo "warning: $1 left a server running in $data; stopping it"
		_bf_as_pg pg_ctl -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
	done < <(find "$BF_TMPDIR" -mindepth 2 -maxdepth 5 -name postmaster.pid 2>/dev/null)
}

timeout_s=${BF_TEST_TIMEOUT:-300}
for t in "${tests[@]}"; do
	base=${t##*/}
	name=${base%.sh}
	db=${name#test_}
	db=${db,,}
	db=t_${db//[^a-z0-9_]/_}
	db=${db:0:63}
	log=$BF_TMPDIR/logs/$name.log
	alog=$BF_TMPDIR/logs/$name.failures
	: >"$log"
	: >"$alog"
	echo "== $name"
	start=$SECONDS

	if ! pg_isready -q -h 127.0.0.1 -p "$BF_PG_PORT_MAIN" && ! pg_restart main; then
		echo "run_integration: cluster main is down and does not restart" >&2
		echo "FAIL $name (0s)"
		failed=$((failed + 1))
		continue
	fi
	if ! createdb "$db" >>"$log" 2>&1; then
		cat "$log"
		echo "FAIL $name (0s)"
		failed=$((failed + 1))
		continue
	fi

	rc=0
	PGDATABASE=$db BF_TEST_DB=$db BF_TEST_NAME=$name BF_ASSERT_LOG=$alog \
		timeout -k 10 "$timeout_s" bash "$t" </dev/null >>"$log" 2>&1 &
	child=$!
	tail -n +1 -s 0.1 --pid="$child" -f "$log" &
	tailer=$!
	wait "$child" || rc=$?
	child=""
	wait "$tailer" || true
	tailer=""

	case $rc in
	0) ;;
	124 | 137) echo "$name: timed out after ${timeout_s}s" ;;
	*) echo "$name: exit status $rc" ;;
	esac
	if ((rc == 0)) && [[ -s $alog ]]; then
		echo "$name: exited 0 but assertions failed:"
		cat "$alog"
		rc=1
	fi
	stop_strays "$name"
	if ((rc == 0)); then
		echo "PASS $name ($((SECONDS - start))s)"
		passed=$((passed + 1))
	else
		echo "FAIL $name ($((SECONDS - start))s)"
		failed=$((failed + 1))
	fi
done

if ((${#tests[@]} == 0)); then
	echo "no integration test ran" >&2
fi
echo "$passed passed, $failed failed"
if ((failed > 0 || passed == 0)); then
	exit 1
fi
exit 0
