# dynamodb_stream: build the C core and run the developer tasks.
# LuaRocks conventions: override LUA, LUA_INCDIR, PREFIX, LUA_LIBDIR (C modules)
# and LUA_SHAREDIR (Lua modules) on the command line.

LUA_VERSION  ?= 5.4
LUA          ?= lua$(LUA_VERSION)
LUA_INCDIR   ?= /usr/include/lua$(LUA_VERSION)
PREFIX       ?= /usr/local
LUA_LIBDIR   ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUA_SHAREDIR ?= $(PREFIX)/share/lua/$(LUA_VERSION)
DESTDIR      ?=
PKG_CONFIG   ?= pkg-config
CC           ?= cc
CFLAGS       ?= -O2 -g
LIBFLAG      ?= -shared
BUILD        ?= build

WARN      := -std=c99 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
DEPS_CFLAGS = $(shell $(PKG_CONFIG) --cflags libcurl libcjson libcrypto 2>/dev/null)
DEPS_LIBS   = $(shell $(PKG_CONFIG) --libs libcurl libcjson libcrypto 2>/dev/null || echo -lcurl -lcjson -lcrypto)
ALL_CFLAGS := $(WARN) -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden -I$(LUA_INCDIR) $(CFLAGS)

SRC    := $(wildcard csrc/*.c)
OBJ    := $(SRC:csrc/%.c=$(BUILD)/obj/%.o)
TARGET := $(BUILD)/dynamodb_stream/core.so
LUA_SRC := $(wildcard lua/dynamodb_stream/*.lua)

# Paths that let a plain interpreter find the module from the repository root.
export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;
export LUA_CPATH := $(CURDIR)/$(BUILD)/?.so;;

.PHONY: all deps test demo valgrind install uninstall clean

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

# Every spec, against a DynamoDB Local started for the run; then the C specs
# under valgrind. Ends with "N passed, N failed".
test: deps
	$(MAKE) all
	scripts/with-ddb-local scripts/run-specs $(LUA)

valgrind: deps
	$(MAKE) all
	scripts/run-specs --valgrind-only $(LUA)

demo: deps
	$(MAKE) all
	scripts/with-ddb-local scripts/demo $(LUA)

install: $(TARGET)
	install -d $(DESTDIR)$(LUA_LIBDIR)/dynamodb_stream $(DESTDIR)$(LUA_SHAREDIR)/dynamodb_stream
	install -m 0755 $(TARGET) $(DESTDIR)$(LUA_LIBDIR)/dynamodb_stream/core.so
	install -m 0644 $(LUA_SRC) $(DESTDIR)$(LUA_SHAREDIR)/dynamodb_stream/

uninstall:
	rm -f $(DESTDIR)$(LUA_LIBDIR)/dynamodb_stream/core.so
	rm -rf $(DESTDIR)$(LUA_SHAREDIR)/dynamodb_stream

clean:
	rm -rf $(BUILD)
