# roomdrop - build, test, demo, bench, install.
#
#   make                      build library, server, client, examples into build/
#   make check                install missing deps, build, run every test (lint, unit, live)
#   make demo                 install missing deps, build, run the demo
#   make bench                build and run the benchmarks
#   make fuzz FUZZ_SECONDS=N  run the libFuzzer target (clang)
#   make SANITIZER=address|undefined|thread ...   same, in build/<sanitizer>/
#   make GUI=0                build the server without GTK
#   make HIREDIS=0            build the server without cluster mode (--redis)
#   make install PREFIX=/usr DESTDIR=/tmp/x
#
# New .c files are picked up by directory: shared/*.c -> libroomdrop.a, server/*.c ->
# roomdrop-server (server/gui_*.c with GUI=1, else server/nogui_*.c; server/redis_*.c with
# HIREDIS=1, else server/noredis_*.c), client/*.c -> roomdrop,
# shared/examples/*.c, tests/unit/test_*.c, tests/fuzz/fuzz_*.c, bench/*.c: one program each.

VERSION   := 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=
CC        ?= cc
PKG_CONFIG ?= pkg-config
SANITIZER ?=
FUZZ_SECONDS ?= 60

ifeq ($(SANITIZER),)
BUILD ?= build
else
BUILD ?= build/$(SANITIZER)
endif

# GTK is used when present unless GUI=0 is given.
GUI ?= $(shell $(PKG_CONFIG) --exists gtk4 2>/dev/null && echo 1 || echo 0)

# Cluster mode (server --redis) needs hiredis; without it the server builds and refuses --redis.
HIREDIS ?= $(shell $(PKG_CONFIG) --exists hiredis 2>/dev/null && echo 1 || echo 0)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
        -Wno-missing-field-initializers
ifneq ($(filter 1 true,$(CI) $(WERROR)),)
WARN += -Werror
endif

OPT ?= -O2 -g
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -pthread $(OPT) $(WARN) -fno-strict-aliasing \
               -DRD_VERSION='"$(VERSION)"'
LDFLAGS_BASE := -pthread

ifneq ($(SANITIZER),)
CFLAGS_BASE += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer
LDFLAGS_BASE += -fsanitize=$(SANITIZER)
ifeq ($(SANITIZER),undefined)
CFLAGS_BASE += -fno-sanitize-recover=undefined
endif
endif

DEP_PKGS  := zlib libssl libcrypto libutf8proc
DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(DEP_PKGS) 2>/dev/null)
DEP_LIBS   := $(shell $(PKG_CONFIG) --libs $(DEP_PKGS) 2>/dev/null)
CMOCKA_CFLAGS := $(shell $(PKG_CONFIG) --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)
EDIT_CFLAGS := $(shell $(PKG_CONFIG) --cflags libedit 2>/dev/null)
EDIT_LIBS   := $(shell $(PKG_CONFIG) --libs libedit 2>/dev/null)
# the server's persistent state (server/state.c: nickname owners)
SQLITE_CFLAGS := $(shell $(PKG_CONFIG) --cflags sqlite3 2>/dev/null)
SQLITE_LIBS   := $(shell $(PKG_CONFIG) --libs sqlite3 2>/dev/null)
# the server's configuration file (server/conf.c, --config): inih, an INI reader
INIH_CFLAGS := $(shell $(PKG_CONFIG) --cflags inih 2>/dev/null)
INIH_LIBS   := $(shell $(PKG_CONFIG) --libs inih 2>/dev/null)
ifeq ($(GUI),1)
GTK_CFLAGS := $(shell $(PKG_CONFIG) --cflags gtk4 2>/dev/null)
GTK_LIBS   := $(shell $(PKG_CONFIG) --libs gtk4 2>/dev/null)
endif

ifeq ($(HIREDIS),1)
HIREDIS_CFLAGS := $(shell $(PKG_CONFIG) --cflags hiredis 2>/dev/null)
HIREDIS_LIBS   := $(shell $(PKG_CONFIG) --libs hiredis 2>/dev/null)
endif

CFLAGS_ALL := $(CFLAGS_BASE) -Ishared $(DEP_CFLAGS) $(CFLAGS)
LDLIBS_ALL := $(DEP_LIBS) $(LDLIBS)

LIB_SRC    := $(wildcard shared/*.c)
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB        := $(BUILD)/libroomdrop.a
# The file application's vocabulary (shared/files/): not part of libroomdrop; the server,
# the client and their tests link it before the library.
FILES_SRC  := $(wildcard shared/files/*.c)
FILES_LIB  := $(BUILD)/libroomdrop_files.a

SERVER_SRC := $(filter-out server/gui_%.c server/nogui_%.c server/redis_%.c server/noredis_%.c,\
                $(wildcard server/*.c))
ifeq ($(GUI),1)
SERVER_SRC += $(wildcard server/gui_*.c)
else
SERVER_SRC += $(wildcard server/nogui_*.c)
endif
ifeq ($(HIREDIS),1)
SERVER_SRC += $(wildcard server/redis_*.c)
else
SERVER_SRC += $(wildcard server/noredis_*.c)
endif
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/obj/%.o)
SERVER     := $(BUILD)/roomdrop-server

CLIENT_SRC := $(wildcard client/*.c)
CLIENT_OBJ := $(CLIENT_SRC:%.c=$(BUILD)/obj/%.o)
CLIENT     := $(BUILD)/roomdrop

EXAMPLES   := $(patsubst shared/examples/%.c,$(BUILD)/examples/%,$(wildcard shared/examples/*.c))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
TEST_HELPERS := $(patsubst tests/helpers/%.c,$(BUILD)/tests/%,$(wildcard tests/helpers/*.c))
BENCHES    := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

PROGRAMS := $(LIB) $(if $(SERVER_SRC),$(SERVER)) $(if $(CLIENT_SRC),$(CLIENT)) $(EXAMPLES)

.PHONY: all check check-lint format-check check-unit check-live demo bench fuzz install uninstall clean format deps \
        tests help
.DEFAULT_GOAL := all
.SECONDARY:

all: $(PROGRAMS)

help:
	@sed -n '2,16p' Makefile | sed 's/^# \{0,1\}//'

# ---- compilation ------------------------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(if $(filter server/gui_%,$<),$(GTK_CFLAGS)) \
	  $(if $(filter server/redis_%,$<),$(HIREDIS_CFLAGS)) \
	  $(if $(filter client/%,$<),$(EDIT_CFLAGS)) $(if $(filter tests/%,$<),$(CMOCKA_CFLAGS)) \
	  $(if $(filter server/state.c,$<),$(SQLITE_CFLAGS)) \
	  $(if $(filter server/conf.c,$<),$(INIH_CFLAGS)) \
	  -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(FILES_LIB): $(FILES_SRC:%.c=$(BUILD)/obj/%.o)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(SERVER): $(SERVER_OBJ) $(FILES_LIB) $(LIB)
	$(CC) $(LDFLAGS_BASE) $(LDFLAGS) -o $@ $(SERVER_OBJ) $(FILES_LIB) $(LIB) $(GTK_LIBS) $(SQLITE_LIBS) \
	  $(INIH_LIBS) \
	  $(HIREDIS_LIBS) $(LDLIBS_ALL)

$(CLIENT): $(CLIENT_OBJ) $(FILES_LIB) $(LIB)
	$(CC) $(LDFLAGS_BASE) $(LDFLAGS) -o $@ $(CLIENT_OBJ) $(FILES_LIB) $(LIB) $(EDIT_LIBS) $(LDLIBS_ALL) -lm

$(BUILD)/examples/%: $(BUILD)/obj/shared/examples/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(FILES_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) $(LDFLAGS) -o $@ $(filter %.o,$^) $(FILES_LIB) $(LIB) $(CMOCKA_LIBS) \
	  $(TEST_LIBS) $(LDLIBS_ALL)

# A unit test of a server module links that module's object (it never includes the .c).
$(BUILD)/tests/test_files_store: $(BUILD)/obj/server/files_store.o
# (a unit test of the SQLite state: the Redis half is test_cluster_state's, live)
$(BUILD)/tests/test_state: $(BUILD)/obj/server/state.o $(BUILD)/obj/server/noredis_cluster.o
$(BUILD)/tests/test_state: TEST_LIBS = $(SQLITE_LIBS)
$(BUILD)/tests/test_conf: $(BUILD)/obj/server/conf.o
$(BUILD)/tests/test_conf: TEST_LIBS = $(INIH_LIBS)
$(BUILD)/tests/test_refused: $(BUILD)/obj/server/refused.o

# a client module's unit test links that module too
$(BUILD)/tests/test_bundle: $(BUILD)/obj/client/bundle.o
$(BUILD)/tests/test_progress: $(BUILD)/obj/tests/unit/test_progress.o $(BUILD)/obj/client/progress.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(CMOCKA_LIBS) $(LDLIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/obj/tests/helpers/%.o $(FILES_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) $(LDFLAGS) -o $@ $< $(FILES_LIB) $(LIB) $(LDLIBS_ALL)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS_ALL) -lm

# LD_PRELOAD shims for fault injection in live tests (tests/preload/*.c -> one .so each)
PRELOADS := $(patsubst tests/preload/%.c,$(BUILD)/tests/%.so,$(wildcard tests/preload/*.c))
$(BUILD)/tests/%.so: tests/preload/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -Wall -Wextra -shared -fPIC -o $@ $< -ldl

tests: $(UNIT_TESTS) $(TEST_HELPERS) $(PRELOADS)

# ---- dependencies -------------------------------------------------------------------------
deps:
	@scripts/install-deps.sh

# ---- tests ----------------------------------------------------------------------------------
# check installs what is missing first, then re-reads this Makefile (so pkg-config sees
# the new packages) for the real work.
check: deps
	@$(MAKE) --no-print-directory check-lint check-unit check-live

check-lint: format-check
	@scripts/lint.sh

check-unit: all tests
	@scripts/run-unit-tests.sh $(BUILD) $(UNIT_TESTS)

check-live: all tests
	@BUILD=$(BUILD) GUI=$(GUI) scripts/run-live-tests.sh

# ---- demo and bench -----------------------------------------------------------------------
demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/demo.sh

# Benchmarks build in their own folder with their own flags, so they never reuse objects
# compiled for the tests (or a sanitizer) and the tests never reuse theirs.
BENCH_BUILD := build/bench-O2
bench: deps
	@$(MAKE) --no-print-directory BUILD=$(BENCH_BUILD) SANITIZER= OPT="-O2 -g -DNDEBUG" \
	    all tests $(patsubst $(BUILD)/%,$(BENCH_BUILD)/%,$(BENCHES))
	@BUILD=$(BENCH_BUILD) scripts/bench.sh

# ---- fuzzing (clang + libFuzzer) ----------------------------------------------------------
FUZZ_BUILD := build/fuzz
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRC))
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=undefined -Ishared $(DEP_CFLAGS) -DRD_VERSION='"$(VERSION)"'

$(FUZZ_BUILD)/%: tests/fuzz/%.c $(LIB_SRC) $(FILES_SRC) $(wildcard shared/*.h shared/files/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(FILES_SRC) $(DEP_LIBS) -pthread

fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/run-fuzz.sh $(FUZZ_BINS)

# ---- install ----------------------------------------------------------------------------
PUBLIC_HEADERS := $(filter-out shared/internal.h shared/srv_internal.h shared/rd_link.h,$(wildcard shared/*.h))
INCDIR := $(DESTDIR)$(PREFIX)/include/roomdrop
LIBDIR := $(DESTDIR)$(PREFIX)/lib
BINDIR := $(DESTDIR)$(PREFIX)/bin
PCDIR  := $(LIBDIR)/pkgconfig

install: all
	install -d $(INCDIR) $(LIBDIR) $(PCDIR) $(BINDIR)
	install -m 0644 $(PUBLIC_HEADERS) $(INCDIR)/
	install -m 0644 $(LIB) $(LIBDIR)/
	$(if $(wildcard $(SERVER)),install -m 0755 $(SERVER) $(BINDIR)/)
	$(if $(wildcard $(CLIENT)),install -m 0755 $(CLIENT) $(BINDIR)/)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@REQUIRES@|$(DEP_PKGS)|g' shared/roomdrop.pc.in > $(PCDIR)/roomdrop.pc

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/roomdrop $(LIBDIR)/libroomdrop.a $(PCDIR)/roomdrop.pc \
	       $(BINDIR)/roomdrop $(BINDIR)/roomdrop-server

clean:
	rm -rf build

FORMAT_SRC := $(wildcard shared/*.[ch] shared/files/*.[ch] shared/examples/*.c server/*.[ch] client/*.[ch] \
	tests/unit/*.[ch] tests/helpers/*.[ch] tests/preload/*.c tests/fuzz/*.c bench/*.c)

format:
	clang-format -i $(FORMAT_SRC)

# Fails (and names the places) when a source file is not as .clang-format lays it out.
format-check:
	@clang-format --dry-run -Werror $(FORMAT_SRC)
	@echo "format: $(words $(FORMAT_SRC)) files as .clang-format lays them out"

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
