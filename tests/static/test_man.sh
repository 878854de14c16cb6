#!/usr/bin/env bash
# tests/static/test_man.sh - the man pages (daemon/*.[0-9]) as man(1) renders them, no daemon,
# no database. For every page:
#   - `MANWIDTH=80 man --warnings -l PAGE` succeeds and prints nothing on stderr: a warning
#     of groff (an unknown macro, a line it cannot break, ...) fails the page, quoted;
#   - no rendered line is wider than 80 columns (a literal display too long for a terminal
#     draws no warning, so it is measured);
#   - its .Dt names the file: title and section as in NAME.SECTION, which `make install`
#     uses for its place (man5/backfilld.yaml.5);
#   - every .Xr to one of the project's pages (backfill*) names a page that exists.
# Prints `ok - PAGE` / `not ok - PAGE` (then why, indented) per page and ends with `test_man:
# N passed, N failed`; exits 1 if any failed, or at once when man or groff is missing (Debian
# packages man-db and groff-base) or when there is no page at all. Run from anywhere, with no
# argument; `test_man.sh PAGE...` checks those pages instead (a .Xr then looks beside each).
set -euo pipefail
here=${BASH_SOURCE[0]%/*}
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
cd "$here/../.."

WIDTH=80

die() {
	echo "test_man: FAIL: $*" >&2
	exit 1
}

command -v man >/dev/null || die "man is not installed (Debian package man-db)"
command -v groff >/dev/null || die "groff is not installed (Debian package groff-base)"

if [ "$#" -gt 0 ]; then
	pages=("$@")
else
	shopt -s nullglob
	pages=(daemon/*.[0-9])
	shopt -u nullglob
	[ "${#pages[@]}" -gt 0 ] || die "no man page in daemon/ (daemon/*.[0-9])"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0

# The problems of one page, one per line, on stdout (nothing when it is fine).
check_page() {
	local page=$1 dir name section dt_title dt_section line n=0 rc=0
	local out=$tmp/out err=$tmp/err

	if [ ! -f "$page" ]; then
		echo "no such file"
		return
	fi

	env -u MAN_KEEP_FORMATTING MANWIDTH="$WIDTH" man --warnings -l "$page" >"$out" 2>"$err" ||
		rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "man exited with $rc"
	fi
	if [ -s "$err" ]; then
		sed 's/^/man: /' "$err"
	fi

	# the rendered text, overstrikes removed should a pager setting leave any
	while IFS= read -r line; do
		n=$((n + 1))
		if [ "${#line}" -gt "$WIDTH" ]; then
			echo "rendered line $n is ${#line} columns wide (at most $WIDTH): $line"
		fi
	done < <(sed 's/.\x08//g' "$out")

	dir=.
	[ "${page%/*}" = "$page" ] || dir=${page%/*}
	name=${page##*/}
	section=${name##*.}
	name=${name%.*}
	read -r dt_title dt_section _ < <(sed -n 's/^\.Dt[[:space:]]\{1,\}//p' "$page") || true
	if [ "${dt_title:-}" != "${name^^}" ] || [ "${dt_section:-}" != "$section" ]; then
		echo ".Dt says '${dt_title:-} ${dt_section:-}', the file name '${name^^} $section'"
	fi

	while read -r xr_name xr_section _; do
		case $xr_name in
		backfill*)
			xr_section=${xr_section%%[!0-9]*}
			if [ ! -f "$dir/$xr_name.$xr_section" ]; then
				echo ".Xr $xr_name $xr_section names no page $dir/$xr_name.$xr_section"
			fi
			;;
		esac
	done < <(sed -n 's/^\.Xr[[:space:]]\{1,\}//p' "$page")
}

for page in "${pages[@]}"; do
	problems=$(check_page "$page")
	if [ -z "$problems" ]; then
		echo "ok - $page"
		passed=$((passed + 1))
	else
		echo "not ok - $page"
		while IFS= read -r line; do
			echo "    $line"
		done <<<"$problems"
		failed=$((failed + 1))
	fi
done

echo "test_man: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
