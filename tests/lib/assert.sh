# shellcheck shell=bash
# tests/lib/assert.sh - assertions and the one way to wait in the integration tests.
#
# Every assertion prints `ok - DESC` or `not ok - DESC (expected X, got Y)`, counts failures in
# BF_FAILS and returns 0 either way, so a test under `set -e` goes on and reports every failure;
# test_finish then exits 1 if any failed. Under the runner a failure is also appended to
# $BF_ASSERT_LOG, so a test that forgets test_finish (or exits 0 anyway) still FAILs.
# wait_for returns 1 on timeout (under set -e that ends the test, which is usually what you want:
# the following steps depend on the condition).
#
# API
#   wait_for DESC TIMEOUT_SECONDS CMD...   poll CMD every 0.1s until it succeeds
#   assert_eq DESC EXPECTED ACTUAL
#   assert_true DESC CMD...                CMD exits 0
#   assert_false DESC CMD...               CMD exits non-zero
#   assert_ge DESC A B / assert_le DESC A B    integers: A >= B / A <= B
#   assert_match DESC REGEX TEXT           bash ERE, unanchored
#   test_finish                            summary; exit 1 if any assertion failed

if [[ -n ${_BF_ASSERT_SH_LOADED-} ]]; then
	return 0
fi
_BF_ASSERT_SH_LOADED=1
BF_FAILS=0
BF_OKS=0

_bf_ok() {
	BF_OKS=$((BF_OKS + 1))
	printf 'ok - %s\n' "$1"
}

# _bf_not_ok DESC DETAIL
_bf_not_ok() {
	BF_FAILS=$((BF_FAILS + 1))
	printf 'not ok - %s (%s)\n' "$1" "$2"
	if [[ -n ${BF_ASSERT_LOG-} ]]; then
		printf 'not ok - %s (%s)\n' "$1" "$2" >>"$BF_ASSERT_LOG"
	fi
}

_bf_now_us() {
	local t=${EPOCHREALTIME//[!0-9]/}
	printf '%s' "$((10#$t))"
}

# wait_for DESC TIMEOUT_SECONDS CMD...: run CMD (output hidden) every 0.1s until it exits 0.
# TIMEOUT may have a decimal part (2.5). On timeout prints the last output of CMD and returns 1.
wait_for() {
	local desc=$1 timeout=$2 whole frac us deadline out=""
	shift 2
	if [[ ! $timeout =~ ^([0-9]+)(\.([0-9]{1,6}))?$ ]]; then
		printf 'wait_for: bad timeout "%s" for %s\n' "$timeout" "$desc" >&2
		return 2
	fi
	whole=${BASH_REMATCH[1]}
	frac=${BASH_REMATCH[3]}000000
	us=$((10#$whole * 1000000 + 10#${frac:0:6}))
	deadline=$(($(_bf_now_us) + us))
	while true; do
		if out=$("$@" 2>&1); then
			return 0
		fi
		if (($(_bf_now_us) >= deadline)); then
			printf 'timeout after %ss waiting for %s\n' "$timeout" "$desc"
			if [[ -n $out ]]; then
				printf '  last output of %s:\n%s\n' "$*" "$out" | head -n 20
			fi
			return 1
		fi
		sleep 0.1
	done
}

assert_eq() {
	if [[ $# -ne 3 ]]; then
		_bf_not_ok "${1-assert_eq}" "assert_eq needs DESC EXPECTED ACTUAL, got $# arguments"
	elif [[ $2 == "$3" ]]; then
		_bf_ok "$1"
	else
		_bf_not_ok "$1" "expected '$2', got '$3'"
	fi
	return 0
}

assert_true() {
	local desc=$1 rc=0
	shift
	"$@" || rc=$?
	if ((rc == 0)); then
		_bf_ok "$desc"
	else
		_bf_not_ok "$desc" "expected success of: $*, got exit $rc"
	fi
	return 0
}

assert_false() {
	local desc=$1 rc=0
	shift
	"$@" || rc=$?
	if ((rc != 0)); then
		_bf_ok "$desc"
	else
		_bf_not_ok "$desc" "expected failure of: $*, got exit 0"
	fi
	return 0
}

_bf_is_int() {
	[[ $1 =~ ^-?[0-9]+$ ]]
}

# _bf_cmp DESC OP A B
_bf_cmp() {
	local desc=$1 op=$2 a=$3 b=$4
	if ! _bf_is_int "$a" || ! _bf_is_int "$b"; then
		_bf_not_ok "$desc" "expected integers, got '$a' and '$b'"
	elif { [[ $op == ge ]] && ((a >= b)); } || { [[ $op == le ]] && ((a <= b)); }; then
		_bf_ok "$desc"
	else
		local sym='>='
		[[ $op == le ]] && sym='<='
		_bf_not_ok "$desc" "expected $sym $b, got $a"
	fi
	return 0
}

assert_ge() {
	_bf_cmp "$1" ge "$2" "$3"
}

assert_le() {
	_bf_cmp "$1" le "$2" "$3"
}

assert_match() {
	if [[ $3 =~ $2 ]]; then
		_bf_ok "$1"
	else
		_bf_not_ok "$1" "expected a match of /$2/, got '$3'"
	fi
	return 0
}

# test_finish: print the summary and exit 1 if any assertion failed, 0 otherwise.
test_finish() {
	printf '# assertions: %d ok, %d not ok\n' "$BF_OKS" "$BF_FAILS"
	if ((BF_FAILS > 0)); then
		exit 1
	fi
	exit 0
}
