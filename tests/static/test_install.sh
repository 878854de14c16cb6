#!/usr/bin/env bash
# test_install.sh - `make install` and `make uninstall` into a DESTDIR, checked as a packager
# would check them:
#   - the tree a PREFIX=/usr/local install makes, path by path with type and mode (nothing
#     missing, nothing more), the units naming the installed binaries and configuration;
#   - nothing written (or removed) outside DESTDIR;
#   - a second install over an edited configuration keeps it;
#   - `systemd-analyze verify` of every installed unit: its binaries (as installed under
#     DESTDIR) and its Documentation= man pages (MANPATH on DESTDIR's), any message failing
#     it; a broken copy of a unit must fail the same check (the check is not vacuous);
#   - the exposure score of `systemd-analyze security --offline=true` stays at most 1.5;
#   - a PREFIX=/usr INSTALL_STRIP=1 install: units naming /usr/bin, stripped binaries;
#   - `make uninstall` leaves the configuration (backfilld.yaml, jobs.d/ and what is in it)
#     and the emptied directories, nothing else.
# It builds into its own BUILD directory (build/static-install): the top-level binaries and
# build/normal stay as they are. A missing tool fails it, naming the package.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=build/static-install
prefix=/usr/local

fail() {
	echo "test_install: FAIL: $*" >&2
	exit 1
}

# command, Debian package
for need in make:build-essential cc:build-essential readelf:binutils pkg-config:pkg-config \
	systemd-analyze:systemd man:man-db sed:sed find:findutils diff:diffutils cmp:diffutils; do
	command -v "${need%%:*}" >/dev/null ||
		fail "${need%%:*} not found: install ${need#*:} (make deps installs what the tests need)"
done

# The install under test is make's defaults plus what the command line says: nothing from the
# caller's environment or from an enclosing make (make check SANITIZE=1 passes MAKEFLAGS).
unset MAKEFLAGS MFLAGS MAKELEVEL DESTDIR PREFIX BINDIR MANDIR SYSCONFDIR UNITDIR SYSUSERSDIR \
	INSTALL_STRIP INSTALL STRIP BUILD
mk() {
	make -C "$root" --no-print-directory BUILD="$build" "$@"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/make.log
# run the command, its output in the log; on failure show the log and stop with the reason
run() {
	local why=$1
	shift
	if ! "$@" >"$log" 2>&1; then
		cat "$log" >&2
		fail "$why"
	fi
}

# The directories the Makefile's defaults name, the way the Makefile finds them.
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || true)
sysusersdir=$(pkg-config --variable=sysusersdir systemd 2>/dev/null || true)
[[ -n $unitdir ]] || unitdir=$prefix/lib/systemd/system
[[ -n $sysusersdir ]] || sysusersdir=$prefix/lib/sysusers.d
bindir=$prefix/bin
mandir=$prefix/share/man
confdir=/etc/backfilld

# --- nothing outside DESTDIR: every place a DESTDIR-less install would write, before/after --
snapshot() {
	local d
	for d in "$bindir" "$mandir" "$prefix/lib/systemd" "$prefix/lib/sysusers.d" "$prefix/etc" \
		"$confdir"; do
		if [[ -e $d ]]; then find "$d" -printf '%p %y %m %U:%G %s %T@ %C@\n'; fi
	done
	for d in "$unitdir" "$sysusersdir"; do
		if [[ -d $d ]]; then
			find "$d" -maxdepth 1 -name 'backfill*' -printf '%p %y %m %U:%G %s %T@ %C@\n'
		fi
	done
}
snapshot | sort >"$tmp/outside.before"
check_outside() {
	snapshot | sort >"$tmp/outside.after"
	diff -u "$tmp/outside.before" "$tmp/outside.after" >&2 ||
		fail "$1 changed files outside DESTDIR (above: - before, + after)"
}

# --- the expected tree ------------------------------------------------------------------------
# "TYPE MODE PATH" lines (find's %y %m %P), every parent directory included (755: install -d
# makes them so, whatever the umask).
expect_tree() {
	local line path
	for line in "$@"; do
		echo "$line"
		path=${line#* * }
		while [[ $path == */* ]]; do
			path=${path%/*}
			echo "d 755 $path"
		done
	done | sort -u
}
actual_tree() {
	(cd "$1" && find . -mindepth 1 -printf '%y %m %P\n') | sort
}
compare_tree() { # dir, expected file, what
	actual_tree "$1" >"$tmp/tree.actual"
	if ! diff -u "$2" "$tmp/tree.actual" >"$tmp/tree.diff"; then
		sed -n '3,$p' "$tmp/tree.diff" | grep '^[-+]' | sed 's/^-/  missing: /; s/^+/  extra:   /' >&2
		fail "$3: the tree differs from the expected one (missing: expected but absent; extra:" \
			"written but not expected)"
	fi
}

files=(
	"f 755 ${bindir#/}/backfilld"
	"f 755 ${bindir#/}/backfillctl"
	"f 644 ${unitdir#/}/backfilld.service"
	"f 644 ${unitdir#/}/backfilld@.service"
	"f 644 ${sysusersdir#/}/backfilld.conf"
	"f 640 ${confdir#/}/backfilld.yaml"
	"d 755 ${confdir#/}/jobs.d"
)
shopt -s nullglob
pages=("$root"/daemon/*.[1-8])
shopt -u nullglob
for page in "${pages[@]}"; do
	name=${page##*/}
	files+=("f 644 ${mandir#/}/man${name##*.}/$name")
done
expect_tree "${files[@]}" >"$tmp/tree.install"

# --- install ----------------------------------------------------------------------------------
dest=$tmp/dest
mkdir "$dest"
run "the build into $build failed" mk -j"$(nproc)" "$build/backfilld" "$build/backfillctl"
run "make install DESTDIR=$dest PREFIX=$prefix failed" mk install DESTDIR="$dest" PREFIX="$prefix"
check_outside "make install DESTDIR=..."
compare_tree "$dest" "$tmp/tree.install" "make install DESTDIR=... PREFIX=$prefix"

for b in backfilld backfillctl; do
	"$dest$bindir/$b" --version >/dev/null || fail "the installed $b does not run"
	readelf -S "$dest$bindir/$b" | grep -q '\.symtab' ||
		fail "$b was stripped without INSTALL_STRIP=1"
done
cmp -s "$root/conf/backfilld.yaml" "$dest$confdir/backfilld.yaml" ||
	fail "the installed backfilld.yaml is not conf/backfilld.yaml (SYSCONFDIR is /etc)"
cmp -s "$root/systemd/backfilld.sysusers" "$dest$sysusersdir/backfilld.conf" ||
	fail "the installed backfilld.conf is not systemd/backfilld.sysusers"
for page in "${pages[@]}"; do
	name=${page##*/}
	cmp -s "$page" "$dest$mandir/man${name##*.}/$name" || fail "man page $name differs"
done

# the units name the installed paths
unit_has() { # unit file, exact line
	grep -qxF -- "$2" "$1" || fail "${1##*/} lacks the line: $2"
}
svc=$dest$unitdir/backfilld.service
tpl=$dest$unitdir/backfilld@.service
unit_has "$svc" "ExecStartPre=$bindir/backfilld -c $confdir/backfilld.yaml --check"
unit_has "$svc" "ExecStart=$bindir/backfilld -c $confdir/backfilld.yaml"
unit_has "$tpl" "ExecStartPre=$bindir/backfilld -c $confdir/%i.yaml --check"
unit_has "$tpl" "ExecStart=$bindir/backfilld -c $confdir/%i.yaml"
for u in "$svc" "$tpl"; do
	# shellcheck disable=SC2016 # systemd's $MAINPID, literally
	unit_has "$u" 'ExecReload=/bin/kill -HUP $MAINPID'
	unit_has "$u" 'Type=notify'
	unit_has "$u" 'User=backfilld'
done

# --- systemd-analyze verify, on the units as installed ---------------------------------------
# verify checks that Exec*= binaries exist and that man pages of Documentation= open: the
# copy it reads differs from the installed unit only in $bindir/ being $dest$bindir/, and
# man searches DESTDIR's pages only. Any message (an unknown key is only a warning) fails.
verify_unit() { # unit file, DESTDIR, BINDIR, MANDIR; prints what systemd-analyze said
	local vdir out
	vdir=$(mktemp -d "$tmp/verify.XXXXXX")
	sed "s|$3/|$2$3/|g" "$1" >"$vdir/${1##*/}"
	if ! out=$(MANPATH=$2$4 systemd-analyze verify --man=yes "$vdir/${1##*/}" 2>&1) ||
		[[ -n $out ]]; then
		printf '%s\n' "${out:-systemd-analyze verify failed without a message}"
		return 1
	fi
}
verify_all() { # DESTDIR, BINDIR, MANDIR
	local u out
	for u in "$1$unitdir"/backfilld*.service; do
		if ! out=$(verify_unit "$u" "$@"); then
			printf '%s\n' "$out" >&2
			fail "systemd-analyze verify ${u#"$1"}: see above (a man page of Documentation=" \
				"must be installed by make install: daemon/NAME.N)"
		fi
	done
}
verify_all "$dest" "$bindir" "$mandir"

# the same check must fail on broken units
broken=$tmp/broken
mkdir "$broken"
sed "s|^ExecStart=$bindir/backfilld|ExecStart=$bindir/backfilld-missing|" "$svc" \
	>"$broken/backfilld.service"
if verify_unit "$broken/backfilld.service" "$dest" "$bindir" "$mandir" >/dev/null; then
	fail "systemd-analyze verify passed a unit whose ExecStart binary is missing"
fi
sed 's|^Type=notify|Type=notify\nNoSuchKey=1|' "$tpl" >"$broken/backfilld@.service"
if verify_unit "$broken/backfilld@.service" "$dest" "$bindir" "$mandir" >/dev/null; then
	fail "systemd-analyze verify passed a unit with an unknown key"
fi
sed 's|^Documentation=man:backfilld(8)|Documentation=man:backfilld-nosuchpage(8)|' "$svc" \
	>"$broken/backfilld.service"
if verify_unit "$broken/backfilld.service" "$dest" "$bindir" "$mandir" >/dev/null; then
	fail "systemd-analyze verify passed a unit whose Documentation= man page is missing"
fi

# the hardening does not regress (1.5 here: 15 on systemd-analyze's scale of tenths)
for u in "$svc" "$tpl"; do
	systemd-analyze security --offline=true --threshold=15 "$u" >"$log" 2>&1 || {
		grep -E '✗|Overall' "$log" >&2 || cat "$log" >&2
		fail "systemd-analyze security: ${u##*/} is exposed above 1.5"
	}
done

# --- a second install keeps an edited configuration -------------------------------------------
conf=$dest$confdir/backfilld.yaml
echo '# edited by the operator' >>"$conf"
chmod 600 "$conf"
cp -p "$conf" "$tmp/conf.edited"
echo 'jobs: []' >"$dest$confdir/jobs.d/nightly.yaml"
chmod 644 "$dest$confdir/jobs.d/nightly.yaml"
run "the second make install failed" mk install DESTDIR="$dest" PREFIX="$prefix"
grep -q 'backfilld.yaml is there already, kept' "$log" ||
	fail "the second make install did not say it kept the configuration"
cmp -s "$tmp/conf.edited" "$conf" || fail "the second make install overwrote backfilld.yaml"
[[ $(stat -c %a "$conf") == 600 ]] || fail "the second make install changed backfilld.yaml's mode"
sed 's|^f 640 \(.*/backfilld.yaml\)$|f 600 \1|' "$tmp/tree.install" >"$tmp/tree.again"
echo "f 644 ${confdir#/}/jobs.d/nightly.yaml" >>"$tmp/tree.again"
sort -o "$tmp/tree.again" "$tmp/tree.again"
compare_tree "$dest" "$tmp/tree.again" "the second make install"
check_outside "the second make install"

# --- PREFIX=/usr, stripped ----------------------------------------------------------------------
dest2=$tmp/dest-usr
mkdir "$dest2"
run "make install DESTDIR=... PREFIX=/usr INSTALL_STRIP=1 failed" \
	mk install DESTDIR="$dest2" PREFIX=/usr INSTALL_STRIP=1
check_outside "make install DESTDIR=... PREFIX=/usr"
unit_has "$dest2$unitdir/backfilld.service" "ExecStart=/usr/bin/backfilld -c $confdir/backfilld.yaml"
unit_has "$dest2$unitdir/backfilld@.service" "ExecStart=/usr/bin/backfilld -c $confdir/%i.yaml"
if grep -l /usr/local "$dest2$unitdir"/backfilld*.service "$dest2$confdir/backfilld.yaml"; then
	fail "a PREFIX=/usr install still names /usr/local (files above)"
fi
for b in backfilld backfillctl; do
	[[ -x $dest2/usr/bin/$b ]] || fail "PREFIX=/usr: no /usr/bin/$b"
	if readelf -S "$dest2/usr/bin/$b" | grep -q '\.symtab'; then
		fail "INSTALL_STRIP=1 did not strip $b"
	fi
done
verify_all "$dest2" /usr/bin /usr/share/man

# --- uninstall --------------------------------------------------------------------------------
run "make uninstall DESTDIR=... failed" mk uninstall DESTDIR="$dest" PREFIX="$prefix"
check_outside "make uninstall DESTDIR=..."
{
	grep '^d ' "$tmp/tree.again"
	grep -E " ${confdir#/}/(backfilld.yaml|jobs.d/nightly.yaml)\$" "$tmp/tree.again"
} | sort >"$tmp/tree.uninstall"
compare_tree "$dest" "$tmp/tree.uninstall" \
	"make uninstall (only the configuration and the emptied directories stay)"
cmp -s "$tmp/conf.edited" "$conf" || fail "make uninstall changed backfilld.yaml"

echo "test_install: OK (${#pages[@]} man pages; units verified; nothing written outside DESTDIR)"
