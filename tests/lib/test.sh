# shellcheck shell=bash
# test.sh - the preamble of every integration test, sourced first:
#     . "$BF_ROOT/tests/lib/test.sh"
# strict mode, the libraries (servers, assertions, the daemon), and the test's own temporary
# directory, whose cleanup stops whatever the test started.
set -euo pipefail
. "$BF_ROOT/tests/lib/pg.sh"
. "$BF_ROOT/tests/lib/assert.sh"
. "$BF_ROOT/tests/lib/daemon.sh"
bf_tmpdir_init
