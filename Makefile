# backfilld - build, test and demo.
#
#   make            build backfilld and backfillctl
#   make check      every test: format, unit (Check), fuzz replay, static, integration (real
#                   PostgreSQL 15)
#   make static     the tests that need no database: tests/static/test_*.sh (install tree,
#                   units, man pages, rules)
#   make demo       a real backfill of a 1,000,000-row table on a throwaway server
#   make bench      backfilld against the single UPDATE and hand-written loops
#   make deps       install the Debian packages it needs (as root), else print the command
#   make check SANITIZE=1   the same tests under AddressSanitizer and UBSan
#   make fuzz       libFuzzer on the config loader and the /metrics request head (clang;
#                   FUZZ_SECONDS each, 600 by default); crashes land in tests/fuzz/crashes/
#   make install    the binaries, man pages, systemd units, sysusers.d file and, unless one
#                   is there already, the example configuration; honours DESTDIR, PREFIX
#                   (/usr/local), BINDIR, MANDIR, SYSCONFDIR (/etc), UNITDIR, SYSUSERSDIR
#                   (systemd's, from pkg-config) and INSTALL_STRIP=1 (strip the binaries)
#   make uninstall  removes what install wrote, except the configuration

CC       ?= cc
MAKEFLAGS += --no-print-directory
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)

DEB_PKGS  = build-essential pkg-config libpq-dev libev-dev libyaml-dev check postgresql-15 \
            postgresql-contrib-15 clang-format gnuplot-nox procps python3 jq \
            systemd man-db groff-base prometheus
# Commands that tell whether a package's part is present, in DEB_PKGS order where it matters.
# The static tests use systemd-analyze (systemd), man and groff (man-db, groff-base) and
# promtool (prometheus).
DEPS_OK   = test -f /usr/include/ev.h && pkg-config --exists yaml-0.1 check libpq \
            && test -x /usr/lib/postgresql/15/bin/initdb && command -v clang-format >/dev/null \
            && command -v gnuplot >/dev/null && command -v pgrep >/dev/null \
            && command -v python3 >/dev/null && command -v jq >/dev/null \
            && command -v systemd-analyze >/dev/null && command -v man >/dev/null \
            && command -v groff >/dev/null && command -v promtool >/dev/null

PKG_CFLAGS := $(shell pkg-config --cflags yaml-0.1 libpq 2>/dev/null) \
              -I$(shell $(PG_CONFIG) --includedir 2>/dev/null || echo /usr/include/postgresql)
PKG_LIBS   := $(shell pkg-config --libs yaml-0.1 libpq 2>/dev/null || echo -lyaml -lpq) -lev -lm
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm -lpthread)

WARN     = -Wall -Wextra -Werror -Wshadow -Wconversion -Wno-sign-conversion -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L $(WARN) $(CFLAGS) \
             -Iinclude $(PKG_CFLAGS)
LDFLAGS ?=

ifeq ($(SANITIZE),1)
BUILD    = build/sanitize
ALL_CFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
export ASAN_OPTIONS = detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS = print_stacktrace=1:halt_on_error=1
else
BUILD    = build/normal
endif

LIB_SRCS = $(filter-out daemon/backfilld.c daemon/backfillctl.c,$(wildcard daemon/*.c))
LIB_OBJS = $(LIB_SRCS:daemon/%.c=$(BUILD)/%.o)
TEST_SRCS = $(wildcard tests/check_*.c)
TEST_OBJS = $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%.o)
HEADERS  = $(wildcard include/backfilld/*.h)

.PHONY: backfilld backfillctl all deps check unit integration demo bench clean format format-check tidy cppcheck valgrind fuzz fuzz-deps fuzz-replay static install uninstall

all: backfilld backfillctl

$(BUILD)/%.o: daemon/%.c $(HEADERS) | $(BUILD)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%.o: tests/%.c $(HEADERS) tests/suites.h | $(BUILD)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -Wno-conversion -c -o $@ $<

$(BUILD):
	mkdir -p $(BUILD)/tests

$(BUILD)/libbackfilld.a: $(LIB_OBJS)
	@rm -f $@ && ar rcs $@ $^

$(BUILD)/backfilld: $(BUILD)/backfilld.o $(BUILD)/libbackfilld.a
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/backfillctl: $(BUILD)/backfillctl.o $(BUILD)/libbackfilld.a
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# The binaries at the top of the tree are the ones the tests, the demo and the README use.
backfilld: $(BUILD)/backfilld
	@rm -f $@ && install -m 755 $< $@
backfillctl: $(BUILD)/backfillctl
	@rm -f $@ && install -m 755 $< $@

$(BUILD)/check_unit: $(TEST_OBJS) $(BUILD)/libbackfilld.a
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(PKG_LIBS)

deps:
	@if $(DEPS_OK); then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "make deps: installing $(DEB_PKGS)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $(DEB_PKGS) >/dev/null \
			|| { echo "make deps: apt-get failed" >&2; exit 1; }; \
	else \
		echo "make deps: missing packages; run as root:" >&2; \
		echo "  apt-get update && apt-get install -y $(DEB_PKGS)" >&2; exit 1; \
	fi

unit: $(BUILD)/check_unit
	$(BUILD)/check_unit

# The fuzz targets' entry points, run by a plain driver on the seed corpus and on every crash
# the fuzzer ever found (kept as regression inputs): part of `make check`, with any compiler.
FUZZ_TARGETS = config metrics
FUZZ_SECONDS ?= 600
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
             -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Iinclude $(PKG_CFLAGS)

$(BUILD)/fuzz_replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(BUILD)/libbackfilld.a
	@echo "  LINK    $@"
	@$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ tests/fuzz/fuzz_$*.c tests/fuzz/replay.c \
		$(BUILD)/libbackfilld.a $(PKG_LIBS)

fuzz-replay: $(FUZZ_TARGETS:%=$(BUILD)/fuzz_replay_%)
	@for t in $(FUZZ_TARGETS); do \
		printf 'fuzz replay %s: ' $$t; \
		$(BUILD)/fuzz_replay_$$t tests/fuzz/corpus/$$t \
			$$(test -d tests/fuzz/crashes/$$t && echo tests/fuzz/crashes/$$t) || exit 1; \
	done

fuzz-deps:
	@if command -v clang >/dev/null && test -f "$$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a)"; \
	then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			clang libclang-rt-14-dev >/dev/null || { echo "make fuzz: apt-get failed" >&2; exit 1; }; \
	else echo "make fuzz: needs clang with libFuzzer: apt-get install clang libclang-rt-14-dev" >&2; exit 1; fi

fuzz: deps fuzz-deps
	@mkdir -p build/fuzz
	@for t in $(FUZZ_TARGETS); do \
		echo "  FUZZ    $$t for $(FUZZ_SECONDS) s"; \
		clang $(FUZZ_FLAGS) -o build/fuzz/fuzz_$$t tests/fuzz/fuzz_$$t.c $(LIB_SRCS) $(PKG_LIBS) \
			|| exit 1; \
		mkdir -p build/fuzz/corpus_$$t tests/fuzz/crashes/$$t; \
		build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 -artifact_prefix=tests/fuzz/crashes/$$t/ \
			build/fuzz/corpus_$$t tests/fuzz/corpus/$$t || exit 1; \
	done

integration: all
	tests/run_integration.sh

# Every tests/static/test_*.sh, as `bash TEST`, each one run whatever the others did; the
# target fails if one did.
static:
	@failed=; for t in $(sort $(wildcard tests/static/test_*.sh)); do \
		echo "  STATIC  $$t"; bash "$$t" </dev/null || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "make static: failed:$$failed" >&2; exit 1; fi

check: deps
	$(MAKE) format-check
	$(MAKE) all unit fuzz-replay
	$(MAKE) static
	$(MAKE) integration

demo: deps
	$(MAKE) all
	tests/demo.sh

bench: deps
	$(MAKE) all
	tests/bench/run.sh

format:
	clang-format -i daemon/*.c include/backfilld/*.h tests/*.c tests/*.h tests/fuzz/*.c

format-check:
	clang-format --dry-run --Werror daemon/*.c include/backfilld/*.h tests/*.c tests/*.h \
		tests/fuzz/*.c

cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--std=c11 -Iinclude --suppress=missingIncludeSystem daemon tests/*.c tests/fuzz/*.c

tidy:
	clang-tidy --quiet daemon/*.c -- $(ALL_CFLAGS)

valgrind: all
	tests/run_integration.sh valgrind

clean:
	rm -rf build backfilld backfillctl tests/tmp

# --- make install / make uninstall -------------------------------------------------------------
# GNU-style directories under DESTDIR (a staging root: nothing is written outside it when set).
# SYSCONFDIR is /etc whatever PREFIX is: the daemon's default is /etc/backfilld/backfilld.yaml.
# UNITDIR and SYSUSERSDIR are systemd's own (pkg-config), else under PREFIX.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
SYSCONFDIR  ?= /etc
systemd_var  = $(shell pkg-config --variable=$(1) systemd 2>/dev/null)
UNITDIR     ?= $(or $(call systemd_var,systemdsystemunitdir),$(PREFIX)/lib/systemd/system)
SYSUSERSDIR ?= $(or $(call systemd_var,sysusersdir),$(PREFIX)/lib/sysusers.d)
INSTALL     ?= install
STRIP       ?= strip
CONFDIR      = $(SYSCONFDIR)/backfilld
# Every page in daemon/, whatever its name: daemon/NAME.N goes to $(MANDIR)/manN/NAME.N.
MANPAGES     = $(sort $(wildcard daemon/*.[1-8]))
man_dest     = $(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(1)))/$(notdir $(1))
UNITS        = backfilld.service backfilld@.service
# A newline, to make one recipe line of each page in a $(foreach).
define nl


endef
# The tree's units and example configuration name /usr/local/bin and /etc/backfilld; the
# installed ones name the directories of this install.
INSTALL_SED  = -e 's|/usr/local/bin/backfill|$(BINDIR)/backfill|g' -e 's|/etc/backfilld|$(CONFDIR)|g'
# Directories are created (mode 755) when missing and left as they are when present: a shared
# one such as /usr/local/bin keeps its owner and mode.
install_dirs = for d in $(1); do test -d "$$d" || $(INSTALL) -d -m 755 "$$d" || exit 1; done

install: $(BUILD)/backfilld $(BUILD)/backfillctl
	@$(call install_dirs,$(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(CONFDIR) $(DESTDIR)$(CONFDIR)/jobs.d \
		$(sort $(foreach p,$(MANPAGES),$(patsubst %/,%,$(dir $(call man_dest,$(p)))))))
	$(INSTALL) -m 755 $(if $(filter 1,$(INSTALL_STRIP)),-s --strip-program=$(STRIP)) \
		$(BUILD)/backfilld $(BUILD)/backfillctl $(DESTDIR)$(BINDIR)/
	$(foreach p,$(MANPAGES),$(INSTALL) -m 644 $(p) $(call man_dest,$(p))$(nl))
	@set -e; for u in $(UNITS); do \
		sed $(INSTALL_SED) systemd/$$u > $(BUILD)/$$u; \
		echo "$(INSTALL) -m 644 systemd/$$u (BINDIR, SYSCONFDIR) $(DESTDIR)$(UNITDIR)/$$u"; \
		$(INSTALL) -m 644 $(BUILD)/$$u $(DESTDIR)$(UNITDIR)/$$u; \
	done
	$(INSTALL) -m 644 systemd/backfilld.sysusers $(DESTDIR)$(SYSUSERSDIR)/backfilld.conf
	@set -e; conf=$(DESTDIR)$(CONFDIR)/backfilld.yaml; \
	if [ -e "$$conf" ] || [ -L "$$conf" ]; then \
		echo "make install: $$conf is there already, kept (the example: conf/backfilld.yaml)"; \
		exit 0; \
	fi; \
	sed $(INSTALL_SED) conf/backfilld.yaml > $(BUILD)/backfilld.yaml; \
	echo "$(INSTALL) -m 640 conf/backfilld.yaml (SYSCONFDIR) $$conf"; \
	$(INSTALL) -m 640 $(BUILD)/backfilld.yaml "$$conf"; \
	if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
		if getent group backfilld >/dev/null; then chgrp backfilld "$$conf"; \
		else echo "make install: no group backfilld yet: run systemd-sysusers, then" \
			"chgrp backfilld $$conf"; fi; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/backfilld $(DESTDIR)$(BINDIR)/backfillctl
	rm -f $(foreach p,$(MANPAGES),$(call man_dest,$(p)))
	rm -f $(UNITS:%=$(DESTDIR)$(UNITDIR)/%) $(DESTDIR)$(SYSUSERSDIR)/backfilld.conf
	@echo "make uninstall: kept the configuration, $(DESTDIR)$(CONFDIR)"
