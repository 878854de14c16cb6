# shellcheck shell=bash
# tests/lib/pg.sh - throwaway PostgreSQL 15 clusters for the integration tests.
#
# Sourced by tests/run_integration.sh and by every tests/integration/test_*.sh. It owns:
#   - a temporary directory per shell (BF_TMPDIR), removed on exit by bf_cleanup;
#   - the clusters this shell started (and only those): bf_cleanup stops them, even when the test
#     fails, is interrupted (INT -> exit 130, TERM -> exit 143) or trips set -e.
# A test run by the runner inherits the runner's BF_TMPDIR and the env of the cluster `main`; its
# first pg_start/pg_start_standby (or an explicit bf_tmpdir_init) makes a sub-directory of it, so a
# test's cleanup never touches the runner's clusters or files.
#
# API
#   bf_tmpdir_init                       make BF_TMPDIR, install the EXIT/INT/TERM traps
#   bf_defer CMD [ARG...]                run CMD in bf_cleanup (last deferred runs first)
#   bf_cleanup                           deferred commands, stop own clusters, rm BF_TMPDIR
#   pg_start NAME [CONF_LINE...]         initdb + start in $BF_TMPDIR/NAME on a free port
#   pg_start_standby PRIMARY NAME        pg_basebackup of PRIMARY, streaming, as application NAME
#   pg_stop NAME [fast|immediate|smart]  stop (fast by default)
#   pg_restart NAME                      restart on the same port
#   pg_start_again NAME                  start a cluster pg_stop stopped, on the same port
#   pg_use NAME [DB]                     point PGHOST/PGPORT/PGUSER/PGDATABASE at NAME
#   pg_conninfo NAME [DB]                print "host=127.0.0.1 port=P user=postgres dbname=DB"
#   psql_q SQL [PSQL_ARG...]             psql -X -qAt -v ON_ERROR_STOP=1 -c SQL on the PG* env
#   psql_on NAME SQL [PSQL_ARG...]       the same on cluster NAME
# Exported per cluster (NAME upper-cased): BF_PG_PORT_<NAME>, BF_PG_DATA_<NAME> (the data
# directory), BF_PG_DIR_<NAME> (cluster dir: data/, server.log, the unix socket).
# The first cluster a shell tree starts with pg_start is the primary (BF_PG_PRIMARY): PGHOST=127.0.0.1,
# PGPORT, PGUSER=postgres and PGDATABASE=postgres are exported for it.
# Knobs: BF_PG_BIN (default /usr/lib/postgresql/15/bin), BF_KEEP_TMP=1, TMPDIR.
# As root, servers run as the system user `bftest` (PostgreSQL refuses root).

if [[ -n ${_BF_PG_SH_LOADED-} ]]; then
	return 0
fi
_BF_PG_SH_LOADED=1

BF_PG_BIN=${BF_PG_BIN:-/usr/lib/postgresql/15/bin}
export BF_PG_BIN
case ":$PATH:" in
*":$BF_PG_BIN:"*) ;;
*) export PATH="$BF_PG_BIN:$PATH" ;;
esac

# Per-shell state, never exported: a child process starts with none of it.
_BF_CLUSTERS=()     # names started by this shell, in start order
_BF_DEFERRED=()     # commands for bf_cleanup, as eval-able strings
_BF_OWN_TMPDIR=""   # the BF_TMPDIR this shell created (and will remove)
_BF_OWNER_PID=""    # the shell that did (subshells must not clean up)
_BF_CLEANED=0

_bf_err() {
	printf 'pg.sh: %s\n' "$*" >&2
}

# pg_require_bins: fail loudly (never skip) when the server binaries are missing.
pg_require_bins() {
	local b missing=()
	for b in initdb pg_ctl postgres pg_basebackup pg_isready psql createdb; do
		[[ -x $BF_PG_BIN/$b ]] || missing+=("$b")
	done
	if ((${#missing[@]})); then
		_bf_err "PostgreSQL 15 binaries missing in $BF_PG_BIN: ${missing[*]}" \
			"(install postgresql-15: run 'make deps' as root, or set BF_PG_BIN)"
		return 1
	fi
}

_bf_is_root() {
	[[ $EUID -eq 0 ]]
}

# The account that owns clusters: bftest as root, the caller otherwise. Created once; a concurrent
# run creating it at the same moment is fine.
_bf_ensure_pg_user() {
	_bf_is_root || return 0
	getent passwd bftest >/dev/null && return 0
	useradd --system --no-create-home --shell /usr/sbin/nologin bftest 2>/dev/null ||
		getent passwd bftest >/dev/null || {
		_bf_err "cannot create the system user bftest (useradd failed)"
		return 1
	}
}

# _bf_as_pg CMD...: run a server-side command as the cluster owner, from / (bftest cannot read
# root's working directory) and without the harness's PG* client settings.
_bf_as_pg() {
	local -a clean=(env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE -u PGHOSTADDR -u PGSERVICE)
	if _bf_is_root; then
		(cd / && runuser -u bftest -- "${clean[@]}" "$@")
	else
		"${clean[@]}" "$@"
	fi
}

_bf_chown_pg() {
	if _bf_is_root; then
		chown bftest: "$@"
	fi
}

# _bf_poll TIMEOUT CMD...: run CMD every 0.1s until it succeeds (0) or TIMEOUT seconds pass (1).
_bf_poll() {
	local timeout=$1 deadline now
	shift
	now=${EPOCHREALTIME//[!0-9]/}
	deadline=$((now + timeout * 1000000))
	while true; do
		"$@" >/dev/null 2>&1 && return 0
		now=${EPOCHREALTIME//[!0-9]/}
		((now < deadline)) || return 1
		sleep 0.1
	done
}

_bf_name_ok() {
	if [[ ! $1 =~ ^[A-Za-z][A-Za-z0-9_]*$ ]]; then
		_bf_err "bad cluster name '$1' (letters, digits, _; starting with a letter)"
		return 1
	fi
}

# _bf_var KIND NAME: the value of BF_PG_<KIND>_<NAME> (empty when unknown).
_bf_var() {
	local v="BF_PG_${1}_${2^^}"
	printf '%s' "${!v-}"
}

_bf_need_cluster() {
	if [[ -z $(_bf_var PORT "$1") ]]; then
		_bf_err "unknown cluster '$1' (not started by pg_start/pg_start_standby here or in a parent)"
		return 1
	fi
}

# bf_tmpdir_init: create BF_TMPDIR and the cleanup traps. Under a parent that already has one (a
# test run by the runner), the new one is a sub-directory of the parent's. Idempotent per shell.
bf_tmpdir_init() {
	if [[ -n $_BF_OWN_TMPDIR && $_BF_OWNER_PID == "$BASHPID" ]]; then
		return 0
	fi
	local dir parent
	parent=${BF_TMPDIR-}
	if [[ -n $parent && -d $parent ]]; then
		dir=$(mktemp -d "$parent/${BF_TEST_DB:-sub}.XXXXXX") || return 1
	else
		parent=${TMPDIR:-/tmp}
		dir=$(mktemp -d "$parent/backfilld-test.XXXXXX") || return 1
	fi
	dir=$(cd "$dir" && pwd -P) || return 1
	chmod 755 "$dir"
	_BF_OWN_TMPDIR=$dir
	_BF_OWNER_PID=$BASHPID
	_BF_CLEANED=0
	export BF_TMPDIR=$dir
	trap bf_cleanup EXIT
	trap '_bf_on_signal 130' INT
	trap '_bf_on_signal 143' TERM
}

_bf_on_signal() {
	trap - EXIT INT TERM
	bf_cleanup
	exit "$1"
}

# bf_defer CMD [ARG...]: have bf_cleanup run CMD (e.g. kill a daemon the test started).
bf_defer() {
	local s
	s=$(printf '%q ' "$@")
	_BF_DEFERRED+=("$s")
}

# bf_cleanup: run deferred commands (newest first), stop every cluster this shell started
# (immediate, errors ignored, newest first so standbys go before their primary) and remove
# BF_TMPDIR unless BF_KEEP_TMP=1. Preserves $?; safe under set -eu; runs once.
bf_cleanup() {
	local rc=$? i name data
	local -
	set +eu
	if [[ $_BF_OWNER_PID != "$BASHPID" || $_BF_CLEANED == 1 ]]; then
		return "$rc"
	fi
	_BF_CLEANED=1
	for ((i = ${#_BF_DEFERRED[@]} - 1; i >= 0; i--)); do
		eval "${_BF_DEFERRED[i]}" >/dev/null 2>&1
	done
	_BF_DEFERRED=()
	for ((i = ${#_BF_CLUSTERS[@]} - 1; i >= 0; i--)); do
		name=${_BF_CLUSTERS[i]}
		data=$(_bf_var DATA "$name")
		if [[ -n $data && -f $data/postmaster.pid ]]; then
			_bf_as_pg pg_ctl -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1
		fi
	done
	_BF_CLUSTERS=()
	if [[ -n $_BF_OWN_TMPDIR && -d $_BF_OWN_TMPDIR ]]; then
		if [[ ${BF_KEEP_TMP-} == 1 ]]; then
			printf 'pg.sh: kept %s (BF_KEEP_TMP=1)\n' "$_BF_OWN_TMPDIR" >&2
		else
			rm -rf -- "$_BF_OWN_TMPDIR"
		fi
	fi
	return "$rc"
}

_bf_port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# _bf_free_port: print a TCP port on 127.0.0.1 that nothing listens on and that no cluster known
# to this shell (started here or exported by a parent) has, scanning from a random base.
_bf_free_port() {
	local base p n v taken=" " low span
	for v in $(compgen -v BF_PG_PORT_); do
		taken+="${!v} "
	done
	# below the kernel's ephemeral range, from which every outgoing connection (a psql of
	# the test, the daemon's own) takes its local port: one of those could hold the port
	# chosen here by the time a server or the metrics endpoint binds it
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=32768
	((low > 21000)) || low=32768
	span=$((low - 20000))
	base=$((20000 + (RANDOM * 32768 + RANDOM) % span))
	for ((n = 0; n < 500; n++)); do
		p=$((20000 + (base - 20000 + n * 7) % span))
		[[ $taken == *" $p "* ]] && continue
		_bf_port_in_use "$p" && continue
		printf '%s\n' "$p"
		return 0
	done
	_bf_err "no free TCP port found on 127.0.0.1"
	return 1
}

_bf_log_tail() {
	local log=$1
	if [[ -f $log ]]; then
		printf -- '--- last lines of %s ---\n' "$log" >&2
		tail -n 25 "$log" >&2
		printf -- '---\n' >&2
	fi
}

# _bf_launch NAME: start the prepared cluster NAME on a free port. The port is (re)written into
# postgresql.conf before each attempt; a start that fails because another process took the port
# between the probe and the bind is retried on another one. Then waits for pg_isready (30s).
_bf_launch() {
	local name=$1 dir data log port attempt size rc
	dir=$(_bf_var DIR "$name")
	data=$dir/data
	log=$dir/server.log
	for ((attempt = 1; attempt <= 5; attempt++)); do
		port=$(_bf_free_port) || return 1
		sed -i "s/^port = .*/port = $port/" "$data/postgresql.conf"
		export "BF_PG_PORT_${name^^}=$port"
		size=0
		[[ -f $log ]] && size=$(stat -c %s "$log")
		rc=0
		_bf_as_pg pg_ctl -D "$data" -l "$log" -w -t 30 start >/dev/null 2>&1 || rc=$?
		if ((rc == 0)); then
			break
		fi
		if tail -c +"$((size + 1))" "$log" 2>/dev/null |
			grep -qE 'could not bind|Address already in use|could not create any TCP/IP sockets'; then
			_bf_err "port $port was taken meanwhile; retrying ($attempt/5)"
			continue
		fi
		# Timed out or failed otherwise: make sure no half-started server stays behind.
		_bf_as_pg pg_ctl -D "$data" -m immediate -w stop >/dev/null 2>&1
		_bf_err "cluster $name did not start (pg_ctl exit $rc)"
		_bf_log_tail "$log"
		return 1
	done
	if ((attempt > 5)); then
		_bf_err "cluster $name: no usable port after 5 attempts"
		_bf_log_tail "$log"
		return 1
	fi
	if ! _bf_poll 30 pg_isready -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
		_bf_err "timeout after 30s waiting for cluster $name (port $port) to accept connections"
		_bf_log_tail "$log"
		return 1
	fi
}

# _bf_prepare_dir NAME: create $BF_TMPDIR/NAME owned by the cluster owner, record its variables.
_bf_prepare_dir() {
	local name=$1 dir sock
	_bf_name_ok "$name" || return 1
	pg_require_bins || return 1
	bf_tmpdir_init || return 1
	_bf_ensure_pg_user || return 1
	dir=$BF_TMPDIR/$name
	if [[ -e $dir ]]; then
		_bf_err "cluster $name already exists in $dir"
		return 1
	fi
	sock="$dir/.s.PGSQL.65535"
	if ((${#sock} > 107)); then
		_bf_err "path too long for a unix socket: $sock (set TMPDIR to a shorter directory)"
		return 1
	fi
	mkdir -m 755 "$dir" && _bf_chown_pg "$dir" || return 1
	if _bf_is_root && ! runuser -u bftest -- test -w "$dir"; then
		_bf_err "user bftest cannot reach $dir (is ${TMPDIR:-/tmp} traversable by others?)"
		return 1
	fi
	export "BF_PG_DIR_${name^^}=$dir" "BF_PG_DATA_${name^^}=$dir/data"
}

# Settings fit for tests (synchronous_commit stays at its default: tests compare against it).
_bf_base_conf() {
	local dir=$1
	cat <<EOF

# --- backfilld test harness ---
port = 0
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
full_page_writes = off
shared_buffers = 128MB
max_connections = 100
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 0
logging_collector = off
EOF
}

# pg_start NAME [CONF_LINE...]: a fresh cluster in $BF_TMPDIR/NAME; extra lines go at the end of
# postgresql.conf (so they win). The first pg_start of a shell tree becomes the primary.
pg_start() {
	local name=${1-} line dir data hba
	if [[ -z $name ]]; then
		_bf_err "usage: pg_start NAME [postgresql.conf line...]"
		return 1
	fi
	shift
	_bf_prepare_dir "$name" || return 1
	dir=$(_bf_var DIR "$name")
	data=$dir/data
	_BF_CLUSTERS+=("$name")
	if ! _bf_as_pg initdb -D "$data" -U postgres --auth=trust -E UTF8 --locale=C --no-sync \
		>"$dir/initdb.log" 2>&1; then
		_bf_err "initdb failed for $name"
		tail -n 20 "$dir/initdb.log" >&2
		return 1
	fi
	{
		_bf_base_conf "$dir"
		for line in "$@"; do
			printf '%s\n' "$line"
		done
	} >>"$data/postgresql.conf"
	hba=$data/pg_hba.conf
	if ! grep -qE '^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
		printf 'host replication all 127.0.0.1/32 trust\n' >>"$hba"
	fi
	_bf_launch "$name" || return 1
	if [[ -z ${BF_PG_PRIMARY-} ]]; then
		export BF_PG_PRIMARY=$name
		pg_use "$name" postgres
	fi
}

# pg_start_standby PRIMARY NAME: a streaming hot standby of PRIMARY (a cluster of this shell or
# exported by a parent, e.g. `main` from the runner), application_name NAME; returns once the
# primary shows it in pg_stat_replication as streaming (30s).
pg_start_standby() {
	local primary=${1-} name=${2-} pport dir data log state
	if [[ -z $primary || -z $name ]]; then
		_bf_err "usage: pg_start_standby PRIMARY NAME"
		return 1
	fi
	_bf_need_cluster "$primary" || return 1
	pport=$(_bf_var PORT "$primary")
	_bf_prepare_dir "$name" || return 1
	dir=$(_bf_var DIR "$name")
	data=$dir/data
	log=$dir/server.log
	_BF_CLUSTERS+=("$name")
	if ! _bf_as_pg pg_basebackup -h 127.0.0.1 -p "$pport" -U postgres -D "$data" -R -X stream \
		-c fast -N >"$dir/basebackup.log" 2>&1; then
		_bf_err "pg_basebackup of $primary (port $pport) into $data failed"
		tail -n 20 "$dir/basebackup.log" >&2
		return 1
	fi
	# The copied postgresql.conf is the primary's: give the standby its own socket dir and port.
	cat >>"$data/postgresql.conf" <<EOF

# --- standby $name of $primary ---
port = 0
unix_socket_directories = '$dir'
hot_standby = on
wal_receiver_status_interval = 1s
EOF
	# -R wrote primary_conninfo (with the backup's options); use a plain one that names us.
	sed -i '/^primary_conninfo[[:space:]]*=/d' "$data/postgresql.auto.conf"
	printf "primary_conninfo = 'host=127.0.0.1 port=%s user=postgres application_name=%s'\n" \
		"$pport" "$name" >>"$data/postgresql.auto.conf"
	if [[ ! -f $data/standby.signal ]]; then
		_bf_err "pg_basebackup -R wrote no standby.signal in $data"
		return 1
	fi
	_bf_launch "$name" || return 1
	if ! _bf_poll 30 _bf_streaming "$pport" "$name"; then
		state=$(_bf_repl_state "$pport" "$name" 2>&1)
		_bf_err "timeout after 30s waiting for standby $name to stream from $primary" \
			"(pg_stat_replication state: '${state}')"
		_bf_log_tail "$log"
		return 1
	fi
}

_bf_repl_state() {
	psql -X -qAt -h 127.0.0.1 -p "$1" -U postgres -d postgres -v ON_ERROR_STOP=1 \
		-c "SELECT state FROM pg_stat_replication WHERE application_name = '$2'"
}

_bf_streaming() {
	[[ $(_bf_repl_state "$1" "$2") == streaming ]]
}

# pg_stop NAME [MODE]: stop cluster NAME (fast, immediate or smart; fast by default).
pg_stop() {
	local name=${1-} mode=${2:-fast} data
	_bf_need_cluster "$name" || return 1
	case $mode in
	fast | immediate | smart) ;;
	*)
		_bf_err "pg_stop: bad mode '$mode' (fast, immediate or smart)"
		return 1
		;;
	esac
	data=$(_bf_var DATA "$name")
	_bf_as_pg pg_ctl -D "$data" -m "$mode" -w -t 60 stop >/dev/null || {
		_bf_err "pg_stop $name failed"
		return 1
	}
}

# pg_restart NAME: fast restart (or start, if stopped) on the same port; waits for readiness.
# _bf_pg_ctl_on NAME WHAT PG_CTL_ARGS...: pg_ctl on the cluster's data directory, then wait
# until it accepts connections on its port again.
_bf_pg_ctl_on() {
	local name=${1-} what=${2-} dir port
	shift 2
	_bf_need_cluster "$name" || return 1
	dir=$(_bf_var DIR "$name")
	port=$(_bf_var PORT "$name")
	if ! _bf_as_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 30 "$@" >/dev/null 2>&1; then
		_bf_err "$what $name failed (port $port)"
		_bf_log_tail "$dir/server.log"
		return 1
	fi
	if ! _bf_poll 30 pg_isready -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
		_bf_err "timeout after 30s waiting for cluster $name to accept connections"
		_bf_log_tail "$dir/server.log"
		return 1
	fi
}

pg_start_again() {
	_bf_pg_ctl_on "${1-}" pg_start_again start
}

pg_restart() {
	_bf_pg_ctl_on "${1-}" pg_restart -m fast restart
}

# pg_use NAME [DB]: export PGHOST/PGPORT/PGUSER/PGDATABASE for cluster NAME (DB: postgres).
pg_use() {
	local name=${1-}
	_bf_need_cluster "$name" || return 1
	export PGHOST=127.0.0.1 PGUSER=postgres
	PGPORT=$(_bf_var PORT "$name")
	PGDATABASE=${2:-postgres}
	export PGPORT PGDATABASE
}

# pg_conninfo NAME [DB]: libpq conninfo for cluster NAME; DB defaults to $PGDATABASE (the test's
# database under the runner; standbys have it too), else postgres.
pg_conninfo() {
	local name=${1-} port
	_bf_need_cluster "$name" || return 1
	port=$(_bf_var PORT "$name")
	printf 'host=127.0.0.1 port=%s user=postgres dbname=%s\n' "$port" "${2:-${PGDATABASE:-postgres}}"
}

# psql_q SQL [PSQL_ARG...]: run SQL on the current PG* environment, print unaligned tuples only.
psql_q() {
	psql -X -qAt -v ON_ERROR_STOP=1 "${@:2}" -c "$1"
}

# psql_on NAME SQL [PSQL_ARG...]: psql_q on cluster NAME (same database name as PGDATABASE).
psql_on() {
	local name=${1-} port
	_bf_need_cluster "$name" || return 1
	port=$(_bf_var PORT "$name")
	PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres psql_q "${@:2}"
}
