# dynamodb_stream: build the C core and run the developer tasks.
# LuaRocks conventions: override LUA, LUA_INCDIR, PREFIX, LUA_LIBDIR (C modules)
# and LUA_SHAREDIR (Lua modules) on the command line.
#
# One source, four interpreters, each into its own build folder:
#   make                   Lua 5.4 -> build/
#   make LUA=lua5.3        Lua 5.3 -> build-5.3/
#   make LUA=lua5.1        Lua 5.1 -> build-5.1/   (with Debian's lua-compat53-dev)
#   make LUA=luajit        LuaJIT 2.1 -> build-luajit/ (headers of libluajit2-5.1-dev,
#                          the OpenResty branch that nginx's lua module links)

ifeq ($(origin LUA),undefined)
  LUA_VERSION ?= 5.4
  LUA := lua$(LUA_VERSION)
endif
ifneq ($(filter luajit%,$(notdir $(LUA))),)
  LUA_VERSION ?= 5.1
  LUA_INCDIR  ?= /usr/include/luajit-2.1
  BUILD       ?= build-luajit
else
  LUA_VERSION ?= $(or $(filter 5.%,$(patsubst lua%,%,$(notdir $(LUA)))),5.4)
  LUA_INCDIR  ?= /usr/include/lua$(LUA_VERSION)
  BUILD       ?= $(if $(filter 5.4,$(LUA_VERSION)),build,build-$(LUA_VERSION))
endif
# Where Debian's lua-compat53-dev puts compat-5.3.h (used by 5.1 and LuaJIT only).
COMPAT53_INCDIR ?= /usr/include/lua5.1
PREFIX       ?= /usr/local
LUA_LIBDIR   ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUA_SHAREDIR ?= $(PREFIX)/share/lua/$(LUA_VERSION)
DESTDIR      ?=
PKG_CONFIG   ?= pkg-config
CC           ?= cc
CFLAGS       ?= -O2 -g
LIBFLAG      ?= -shared

WARN      := -std=c99 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
DEPS_CFLAGS = $(shell $(PKG_CONFIG) --cflags libcurl libcjson libcrypto 2>/dev/null)
DEPS_LIBS   = $(shell $(PKG_CONFIG) --libs libcurl libcjson libcrypto 2>/dev/null || echo -lcurl -lcjson -lcrypto)
ALL_CFLAGS := $(WARN) -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden -I$(LUA_INCDIR) -idirafter $(COMPAT53_INCDIR) $(CFLAGS)

SRC    := $(wildcard csrc/*.c)
OBJ    := $(SRC:csrc/%.c=$(BUILD)/obj/%.o)
TARGET := $(BUILD)/dynamodb_stream/core.so
LUA_SRC := $(wildcard lua/dynamodb_stream/*.lua)
LUA_STREAM_SRC := $(wildcard lua/dynamodb_stream/stream/*.lua)
LUA_CREDENTIALS_SRC := $(wildcard lua/dynamodb_stream/credentials/*.lua)
LUA_LEASES_SRC := $(wildcard lua/dynamodb_stream/leases/*.lua)
# The interpreter bin/dynamodb-stream is installed to run with (its #! line).
LUA_BIN ?= $(or $(shell command -v $(LUA) 2>/dev/null),$(LUA))

# Paths that let a plain interpreter find the module from the repository root.
export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;
export LUA_CPATH := $(CURDIR)/$(BUILD)/?.so;;

.PHONY: all deps test demo valgrind asan fuzz fuzz-build cppcheck install uninstall clean bench luajit-build compat-builds
.PHONY: check check-deps unit number-check

all: $(TARGET)

$(TARGET): $(OBJ)
	@mkdir -p $(@D)
	$(CC) $(LIBFLAG) -o $@ $(OBJ) $(DEPS_LIBS) -lm $(LDFLAGS)

$(BUILD)/obj/%.o: csrc/%.c $(wildcard csrc/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPS_CFLAGS) -c -o $@ $<

# Installs the Debian packages and the DynamoDB Local jar that are missing.
deps:
	scripts/install-deps

# Says what is missing of the same list (and how to install it), installing nothing.
check-deps:
	scripts/check-deps

# The newcomer's command: installs what is missing, then make check.
test: deps
	$(MAKE) check

# Every phase, installing nothing: the specs, the specs again under LuaJIT,
# Lua 5.3 and Lua 5.1 with their builds, the specs with the ASan+UBSan build,
# the specs under valgrind (each against a fresh DynamoDB Local), a short fuzz
# pass (CI_FUZZ_SECONDS per harness) and cppcheck. Ends with ONE line
# "N passed, N failed" over all phases. PHASES="specs luajit" runs only those
# phases of scripts/run-specs, with only the builds they use.
CI_FUZZ_SECONDS ?= 30
PHASES ?=
check: check-deps
	$(MAKE) all $(if $(PHASES),$(if $(filter luajit,$(PHASES)),luajit-build) \
	  $(if $(filter lua5.3 lua5.1,$(PHASES)),compat-builds) $(if $(filter asan,$(PHASES)),asan-build) \
	  $(if $(filter fuzz,$(PHASES)),fuzz-build),asan-build fuzz-build luajit-build compat-builds)
	FUZZ_SECONDS=$(CI_FUZZ_SECONDS) FUZZ_TARGETS="$(FUZZ_TARGETS)" FUZZ_BUILD=$(FUZZ_BUILD) ASAN_BUILD=$(ASAN_BUILD) \
	  LUAJIT_BUILD=$(LUAJIT_BUILD) scripts/run-specs $(if $(PHASES),$(PHASES:%=--phase %),--all) $(LUA)

# The unit specs only (spec/unit: no network, no service, no server; seconds),
# with this make's interpreter and build.
unit: all
	env -u DDB_LOCAL_ENDPOINT $(LUA) $$(command -v busted) --cpath='$(BUILD)/?.so' spec/unit

# number.c and float_conv.c (no Lua) against glibc's printf and strtod on
# pseudo-random inputs (fuzz/number_check.c); spec/unit/core/number_spec.lua
# builds and runs it: $(BUILD)/number_check [doubles [seed]].
NUMBER_CHECK_SRC := fuzz/number_check.c csrc/number.c csrc/float_conv.c
number-check: $(BUILD)/number_check
$(BUILD)/number_check: $(NUMBER_CHECK_SRC) fuzz/number_oracle.h $(wildcard csrc/*.h)
	@mkdir -p $(@D)
	$(CC) $(WARN) -D_POSIX_C_SOURCE=200809L -Icsrc $(CFLAGS) -o $@ $(NUMBER_CHECK_SRC) -lm

# The other interpreters' builds, whatever this make was told about LUA.
LUAJIT_BUILD  ?= build-luajit
LUAJIT_INCDIR ?= /usr/include/luajit-2.1
luajit-build:
	$(MAKE) LUA=luajit LUA_VERSION=5.1 LUA_INCDIR=$(LUAJIT_INCDIR) BUILD=$(LUAJIT_BUILD) all
compat-builds:
	$(MAKE) LUA=lua5.3 LUA_VERSION=5.3 LUA_INCDIR=/usr/include/lua5.3 BUILD=build-5.3 all
	$(MAKE) LUA=lua5.1 LUA_VERSION=5.1 LUA_INCDIR=/usr/include/lua5.1 BUILD=build-5.1 all

# The whole spec suite with lua5.4 under valgrind (memcheck; definite and
# indirect leaks are errors; spawned processes are not traced).
valgrind: deps
	$(MAKE) all
	scripts/run-specs --phase valgrind $(LUA)

# ---- sanitizers and fuzzing (see fuzz/README.md) -----------------------------

# The module built with AddressSanitizer + UndefinedBehaviorSanitizer (gcc, so
# the runtime matches $$(gcc -print-file-name=libasan.so) preloaded into lua5.4),
# then the whole spec suite with it.
ASAN_BUILD  ?= build-asan
ASAN_CC     ?= gcc
ASAN_CFLAGS ?= -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

asan-build:
	$(MAKE) BUILD=$(ASAN_BUILD) CC=$(ASAN_CC) CFLAGS="$(ASAN_CFLAGS)" LDFLAGS="-fsanitize=address,undefined" all
	$(ASAN_CC) -shared -fPIC -O2 -o $(ASAN_BUILD)/asan-unpreload.so scripts/asan-unpreload.c

asan: deps
	$(MAKE) all asan-build
	ASAN_BUILD=$(ASAN_BUILD) scripts/run-specs --phase asan $(LUA)

# libFuzzer harnesses (clang): the module's C files and Debian's static Lua
# are linked into each fuzzer; the module itself never links liblua.
FUZZ_BUILD   ?= $(BUILD)-fuzz
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  ?= -O1 -g -fno-omit-frame-pointer
FUZZ_LUA_LIB ?= /usr/lib/x86_64-linux-gnu/liblua$(LUA_VERSION).a
FUZZ_SECONDS ?= 120
FUZZ_TARGETS := json av number records filter
FUZZ_OBJ     := $(SRC:csrc/%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_ALLFLAGS = $(WARN) -D_POSIX_C_SOURCE=200809L -I$(LUA_INCDIR) -Icsrc $(FUZZ_CFLAGS) $(FUZZ_SAN)

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
.SECONDARY: $(FUZZ_OBJ)

$(FUZZ_BUILD)/obj/%.o: csrc/%.c $(wildcard csrc/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_ALLFLAGS) -fsanitize=fuzzer-no-link $(DEPS_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/fuzz_number: fuzz/fuzz_number.c fuzz/number_oracle.h $(FUZZ_BUILD)/obj/number.o \
  $(FUZZ_BUILD)/obj/float_conv.o $(FUZZ_BUILD)/obj/base64.o
	$(FUZZ_CC) $(FUZZ_ALLFLAGS) -fsanitize=fuzzer -o $@ $(filter %.c %.o,$^) -lm

$(FUZZ_BUILD)/fuzz_filter: fuzz/fuzz_filter.c $(FUZZ_BUILD)/obj/filter.o $(FUZZ_BUILD)/obj/json_lex.o \
  $(FUZZ_BUILD)/obj/number.o $(FUZZ_BUILD)/obj/float_conv.o $(FUZZ_BUILD)/obj/buffer.o
	$(FUZZ_CC) $(FUZZ_ALLFLAGS) -fsanitize=fuzzer -o $@ $^ -lm

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_lua.c fuzz/harness.lua $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_ALLFLAGS) -fsanitize=fuzzer -DFUZZ_TARGET='"$*"' -DFUZZ_HARNESS='"$(CURDIR)/fuzz/harness.lua"' \
	  -o $@ fuzz/fuzz_lua.c $(FUZZ_OBJ) $(FUZZ_LUA_LIB) $(DEPS_LIBS) -lm -ldl

# Each harness for FUZZ_SECONDS (default 120), from fuzz/corpus plus what
# earlier runs found ($(FUZZ_BUILD)/corpus-*); crashes land in $(FUZZ_BUILD)/artifacts.
fuzz: fuzz-build
	scripts/fuzz-run --build $(FUZZ_BUILD) --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

cppcheck:
	cppcheck -q --enable=warning --error-exitcode=1 --inline-suppr -I csrc csrc

# Decode, end-to-end, latency, idle-cost and poll-round figures against the
# anchors (Node, lua-cjson, the cJSON-arena floor), measured in one run.
bench: deps
	DEPS_PACKAGES=bench/debian-packages scripts/install-deps
	$(MAKE) all
	bench/run.sh

# The API reference (LDoc, Debian's lua-ldoc) from the comments in
# lua/dynamodb_stream/: build/doc/index.html. See config.ld.
.PHONY: doc
doc:
	@command -v ldoc >/dev/null || { echo "make doc: ldoc is missing (apt-get install lua-ldoc)" >&2; exit 1; }
	ldoc .

demo: deps
	$(MAKE) all
	scripts/with-ddb-local scripts/demo $(LUA)

install: $(TARGET)
	install -d $(DESTDIR)$(LUA_LIBDIR)/dynamodb_stream $(DESTDIR)$(LUA_SHAREDIR)/dynamodb_stream
	install -m 0755 $(TARGET) $(DESTDIR)$(LUA_LIBDIR)/dynamodb_stream/core.so
	install -m 0644 $(LUA_SRC) $(DESTDIR)$(LUA_SHAREDIR)/dynamodb_stream/
	install -d $(DESTDIR)$(LUA_SHAREDIR)/dynamodb_stream/stream
	install -m 0644 $(LUA_STREAM_SRC) $(DESTDIR)$(LUA_SHAREDIR)/dynamodb_stream/stream/
	install -d $(DESTDIR)$(LUA_SHAREDIR)/dynamodb_stream/credentials
	install -m 0644 $(LUA_CREDENTIALS_SRC) $(DESTDIR)$(LUA_SHAREDIR)/dynamodb_stream/credentials/
	install -d $(DESTDIR)$(LUA_SHAREDIR)/dynamodb_stream/leases
	install -m 0644 $(LUA_LEASES_SRC) $(DESTDIR)$(LUA_SHAREDIR)/dynamodb_stream/leases/
	install -d $(DESTDIR)$(PREFIX)/bin
	sed -e '1s|.*|#!$(LUA_BIN)|' \
	  -e 's|^local installed_paths = nil$$|local installed_paths = { "$(LUA_SHAREDIR)", "$(LUA_LIBDIR)" }|' \
	  bin/dynamodb-stream >$(DESTDIR)$(PREFIX)/bin/dynamodb-stream
	chmod 0755 $(DESTDIR)$(PREFIX)/bin/dynamodb-stream

uninstall:
	rm -f $(DESTDIR)$(LUA_LIBDIR)/dynamodb_stream/core.so
	rm -rf $(DESTDIR)$(LUA_SHAREDIR)/dynamodb_stream
	rm -f $(DESTDIR)$(PREFIX)/bin/dynamodb-stream

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(LUAJIT_BUILD) build-5.3 build-5.1
