# e2b - one non-recursive Makefile.
#
#   make                 build $(B)/e2b (host), $(B)/envd (static guest applets), man pages
#   make check           unit tests, the same under ASan+UBSan, end-to-end and SDK tests
#   make fuzz            fuzz every parser of outside input (libFuzzer with clang, else replay)
#   make install         PREFIX=/usr/local DESTDIR=
#   make B=build-x ...   build elsewhere (lets several builds share one tree)
#
# New files need no edit here: lib/*.c go into libe2b.a, cmd/*.c into e2b,
# tests/unit/t-*.c become unit tests. Guest-side code (linked statically into
# envd) is exactly lib/envd-*.c plus the base modules in GUEST_BASE, which
# must not need libcurl, libarchive, libgit2 or libseccomp. Nothing else is
# named envd-*: the host's client of envd is lib/sandbox-client.c.

VERSION := 0.1.0
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
DESTDIR ?=

B ?= build
CC ?= cc
PKG_CONFIG ?= pkg-config
HOST_PKGS := libcurl jansson libarchive libgit2 libevent libseccomp zlib libnftables libcrypto
# Opened with dlopen on first use, not linked (lib/dl.h says why): their
# sonames are compiled in.
DL_PKGS := libarchive libgit2 libcurl libnftables libcrypto
LINK_PKGS := $(filter-out $(DL_PKGS),$(HOST_PKGS))
soname = $(shell objdump -p $$($(PKG_CONFIG) --variable=libdir $(1))/$(1).so 2>/dev/null | awk '/SONAME/ {print $$2}')
DL_SONAMES := -DE2B_ARCHIVE_SONAME='"$(call soname,libarchive)"' \
	-DE2B_GIT_SONAME='"$(call soname,libgit2)"' -DE2B_CURL_SONAME='"$(call soname,libcurl)"' \
	-DE2B_NFT_SONAME='"$(call soname,libnftables)"' -DE2B_CRYPTO_SONAME='"$(call soname,libcrypto)"' \
	-DE2B_SSL_SONAME='"$(call soname,libssl)"'
GUEST_PKGS := jansson libevent zlib

WFLAGS := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wold-style-definition -Wpointer-arith -Wvla -Wno-unused-parameter \
	-Werror=implicit-function-declaration -Werror
E2B_CPPFLAGS := -D_GNU_SOURCE -DE2B_VERSION='"$(VERSION)"' -Ilib
E2B_CFLAGS := -std=gnu11 -O2 -g $(WFLAGS) $(E2B_CPPFLAGS) $(CPPFLAGS) $(CFLAGS)
HOST_CFLAGS := $(E2B_CFLAGS) $(shell $(PKG_CONFIG) --cflags $(HOST_PKGS))
HOST_LIBS := $(shell $(PKG_CONFIG) --libs $(LINK_PKGS)) -ldl -lutil -lpthread
# Unit tests also call the libraries directly (to write test archives).
TEST_LIBS := $(HOST_LIBS) $(shell $(PKG_CONFIG) --libs $(DL_PKGS))
GUEST_LIBS := -Wl,-Bstatic $(shell $(PKG_CONFIG) --libs --static $(GUEST_PKGS)) -lutil

GUEST_BASE := lib/util.c lib/error.c lib/strbuf.c lib/json.c lib/fsutil.c lib/http1.c lib/opt.c lib/vmlink.c
LIB_SRCS := $(sort $(wildcard lib/*.c))
GUEST_SRCS := $(GUEST_BASE) $(sort $(wildcard lib/envd-*.c))
CMD_SRCS := $(filter-out cmd/guest-main.c,$(sort $(wildcard cmd/*.c)))
UNIT_SRCS := $(sort $(wildcard tests/unit/t-*.c))
MAN_SRCS := $(sort $(wildcard man/*.scd))

LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o)
GUEST_OBJS := $(GUEST_SRCS:%.c=$(B)/guest/%.o) $(B)/guest/cmd/guest-main.o
CMD_OBJS := $(CMD_SRCS:%.c=$(B)/%.o)
UNIT_BINS := $(UNIT_SRCS:%.c=$(B)/%)
MAN_PAGES := $(MAN_SRCS:man/%.scd=$(B)/man/%)

all: $(B)/e2b $(B)/envd man

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/lib/dl-archive.o $(B)/lib/dl-git.o $(B)/lib/dl-curl.o $(B)/lib/dl-nft.o $(B)/lib/dl-crypto.o $(B)/lib/dl-ssl.o: HOST_CFLAGS += $(DL_SONAMES)

# Guest objects are compiled separately, with the guest libraries' flags.
$(B)/guest/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(E2B_CFLAGS) $(shell $(PKG_CONFIG) --cflags $(GUEST_PKGS)) -MMD -MP -c -o $@ $<

$(B)/libe2b.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(B)/e2b: $(CMD_OBJS) $(B)/libe2b.a
	$(CC) $(E2B_CFLAGS) $(LDFLAGS) -o $@ $(CMD_OBJS) $(B)/libe2b.a $(HOST_LIBS)

# The guest agent must run in any root filesystem, so it is fully static.
$(B)/envd: $(GUEST_OBJS)
	$(CC) $(E2B_CFLAGS) $(LDFLAGS) -static -o $@ $^ $(GUEST_LIBS) 2> $(B)/envd.link.log || \
		{ cat $(B)/envd.link.log; exit 1; }

$(B)/tests/unit/%: tests/unit/%.c tests/unit/tap.h $(B)/libe2b.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -Itests/unit -o $@ $< $(B)/libe2b.a $(TEST_LIBS)

# Man pages: SYNOPSIS and OPTIONS come from the command table (e2b __man).
man: $(MAN_PAGES)
$(B)/man/%: man/%.scd $(B)/e2b tools/gen-man.sh
	@mkdir -p $(dir $@)
	tools/gen-man.sh $(B)/e2b $< | scdoc > $@.tmp && mv $@.tmp $@

unit: $(UNIT_BINS)

# check installs what it needs first, then builds with a fresh make (whose
# pkg-config calls then find the libraries).
check:
	tools/deps.sh
	$(MAKE) all unit
	tools/check.sh "$(B)"

check-unit: all unit
	prove -f $(UNIT_BINS)

check-asan:
	$(MAKE) B=$(B)-asan CFLAGS="$(SAN_CFLAGS)" LDFLAGS="$(SAN_LDFLAGS)" $(B)-asan/e2b unit
	ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/unit/lsan.supp \
		prove -f $(UNIT_SRCS:%.c=$(B)-asan/%)

# Fuzzing: one harness per parser of outside input, tests/fuzz/fuzz-<t>.c,
# linked against the whole library (tests/fuzz/fuzz.h says how they work).
#   make fuzz [FUZZ_TIME=60] [FUZZ_TARGETS="envd-http layer"]
#       libFuzzer (clang) for FUZZ_TIME seconds per target, in $(B)-fuzz;
#       new inputs kept in $(B)-fuzz/corpus/<t>, crashes in $(B)-fuzz/crash-<t>-*
#   make fuzz-replay (run by make check)
#       every seed corpus tests/fuzz/corpus/<t> replayed with gcc under ASan+UBSan
FUZZ_TIME ?= 60
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz-%.c,%,$(sort $(wildcard tests/fuzz/fuzz-*.c)))
FUZZ_COMMON := tests/fuzz/jail.c
# The harnesses that talk to a whole envd share its driver.
FUZZ_ENVD := envd-http connect
fuzz_srcs = tests/fuzz/fuzz-$(1).c $(FUZZ_COMMON) $(if $(filter $(1),$(FUZZ_ENVD)),tests/fuzz/envd-driver.c)
FUZZ_DEPS := $(FUZZ_COMMON) tests/fuzz/envd-driver.c $(wildcard tests/fuzz/*.h) $(B)/libe2b.a
SAN_CFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -O1
SAN_LDFLAGS := -fsanitize=address,undefined
CLANG ?= $(shell command -v clang 2>/dev/null)

$(B)/fuzz/replay-%: tests/fuzz/fuzz-%.c tests/fuzz/replay.c $(FUZZ_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(LDFLAGS) -Itests/fuzz -o $@ $(call fuzz_srcs,$*) tests/fuzz/replay.c $(B)/libe2b.a $(TEST_LIBS)

$(B)/fuzz/fuzz-%: tests/fuzz/fuzz-%.c $(FUZZ_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(LDFLAGS) -fsanitize=fuzzer -Itests/fuzz -o $@ $(call fuzz_srcs,$*) $(B)/libe2b.a $(TEST_LIBS)

fuzz-replay:
	$(MAKE) -s B=$(B)-asan CFLAGS="$(SAN_CFLAGS)" LDFLAGS="$(SAN_LDFLAGS)" \
		$(FUZZ_TARGETS:%=$(B)-asan/fuzz/replay-%)
	@for t in $(FUZZ_TARGETS); do \
		ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/unit/lsan.supp \
			$(B)-asan/fuzz/replay-$$t tests/fuzz/corpus/$$t || exit 1; \
	done

# fuzz installs clang first (tools/deps.sh fuzz), then a fresh make finds it.
fuzz:
	tools/deps.sh fuzz
	$(MAKE) fuzz-run

ifneq ($(CLANG),)
fuzz-run:
	$(MAKE) -s B=$(B)-fuzz CC=$(CLANG) CFLAGS="$(SAN_CFLAGS) -fsanitize=fuzzer-no-link" \
		LDFLAGS="$(SAN_LDFLAGS)" $(FUZZ_TARGETS:%=$(B)-fuzz/fuzz/fuzz-%)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(B)-fuzz/corpus/$$t; echo "## fuzz $$t ($(FUZZ_TIME) s)"; \
		$(B)-fuzz/fuzz/fuzz-$$t -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 -artifact_prefix=$(B)-fuzz/crash-$$t- \
			$(B)-fuzz/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done
else
fuzz-run: fuzz-replay
	@echo "fuzz: no clang, replayed the corpora only (apt-get install clang for libFuzzer)"
endif

# Benchmarks print our figures beside a peer's, measured in the same run.
bench: all
	tools/deps.sh bench
	@for b in tests/bench/*.sh; do echo "## $$b"; E2B_BUILD_DIR=$(CURDIR)/$(B) sh "$$b" || exit 1; done

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) \
		$(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR) $(DESTDIR)$(PREFIX)/lib/e2b
	install -m 0755 $(B)/e2b $(DESTDIR)$(BINDIR)/e2b
	install -m 0755 $(B)/envd $(DESTDIR)$(PREFIX)/lib/e2b/envd
	install -m 0644 $(MAN_PAGES) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 completions/e2b.bash $(DESTDIR)$(BASHCOMPDIR)/e2b
	install -m 0644 completions/_e2b $(DESTDIR)$(ZSHCOMPDIR)/_e2b
	install -m 0644 completions/e2b.fish $(DESTDIR)$(FISHCOMPDIR)/e2b.fish

# A Debian package of `make install` into /usr, with the systemd unit.
deb: all
	rm -rf $(B)/deb && $(MAKE) install DESTDIR=$(abspath $(B)/deb) PREFIX=/usr
	install -D -m 0644 packaging/e2b-serve.service $(B)/deb/lib/systemd/system/e2b-serve.service
	packaging/debian/make-deb.sh $(abspath $(B)/deb) $(VERSION) $(B)/e2b_$(VERSION)_$$(dpkg --print-architecture).deb \
		$(call soname,libarchive) $(call soname,libgit2) $(call soname,libcurl) \
		$(call soname,libnftables) $(call soname,libcrypto)

# The sources through clang as well (syntax and warnings only): clang
# refuses what gcc lets through, such as a goto that jumps over a
# cleanup variable (freed uninitialised at the label).
check-clang:
	@if [ -n "$(CLANG)" ]; then \
		$(CLANG) -fsyntax-only $(filter-out -O2 -g,$(HOST_CFLAGS)) $(DL_SONAMES) -Icmd $(LIB_SRCS) $(CMD_SRCS) && \
		echo "clang: lib/ and cmd/ compile without a warning"; \
	else echo "clang: not installed, skipped"; fi

# Editor and analyser support. compile_commands.json lists how every
# source is compiled (host flags for lib/ and cmd/, guest flags for the
# static binary's objects) for clangd and clang-tidy; `make tidy` runs
# .clang-tidy's checks over lib/ and cmd/; `make format` applies
# .clang-format and `make format-check` shows what it would change.
compile_commands.json: Makefile $(LIB_SRCS) $(CMD_SRCS)
	@{ echo "["; sep=""; \
	for f in $(LIB_SRCS) $(CMD_SRCS); do \
		printf '%s{"directory": "%s", "file": "%s", "command": "%s -c -o /dev/null %s"}\n' \
			"$$sep" "$(CURDIR)" "$$f" "$(CC) $(subst ",\\\",$(HOST_CFLAGS))" "$$f"; sep=","; \
	done; echo "]"; } > $@.tmp && mv $@.tmp $@
	@echo "wrote $@"

tidy: compile_commands.json
	clang-tidy -p . --quiet $(LIB_SRCS) $(CMD_SRCS)

FORMAT_SRCS = $(wildcard lib/*.[ch] cmd/*.[ch] tests/unit/*.[ch] tests/fuzz/*.[ch])
format:
	clang-format -i --style=file $(FORMAT_SRCS)

format-check:
	@clang-format --dry-run --Werror --style=file $(FORMAT_SRCS)

clean:
	rm -rf $(B) $(B)-asan $(B)-fuzz

.PHONY: all man unit check check-unit check-asan check-clang fuzz fuzz-run fuzz-replay bench install deb clean tidy format format-check
.DELETE_ON_ERROR:

-include $(shell find $(B) -name '*.d' -type f -not -path '$(B)/deb/*' 2>/dev/null)
