# imapd: an IMAP4rev1 server for mbox files on Unix shell-account hosts.
# GNU make. `make check` installs what is missing, builds, and runs every test;
# `make demo` runs a real server on 127.0.0.1:1143 (see README.md).

PREFIX    ?= /usr/local
SBINDIR   ?= $(PREFIX)/sbin
MANDIR    ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR   ?= /lib/systemd/system
DESTDIR   ?=

# B is the build directory; SAN=1 makes an ASan+UBSan build, FUZZ=1 a libFuzzer one.
B         ?= build
SAN       ?= 0
FUZZ      ?= 0

CC        ?= cc
PKGS      := libsystemd pam libssl libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# imapd itself loads libssl when it first needs TLS (imapd/tls.c), so it does not link
# it; the tests do, for their TLS clients.
PKG_LIBS  := $(shell pkg-config --libs libsystemd pam 2>/dev/null)
SSL_LIBS  := $(shell pkg-config --libs libssl libcrypto 2>/dev/null)
LDLIBS    := $(PKG_LIBS) -llockfile -lz

WARN      := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	     -Wpointer-arith -Wcast-qual -Wvla -Werror
HARDEN    := -fstack-protector-strong -fstack-clash-protection -fPIE
LDHARDEN  := -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack
OPT       := -O2 -g -D_FORTIFY_SOURCE=2

ifeq ($(SAN),1)
OPT       := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	     -fno-sanitize-recover=all
LDHARDEN  += -fsanitize=address,undefined
endif
ifeq ($(FUZZ),1)
CC        := clang
OPT       := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
	     -DIMAPD_FUZZ=1 -DIMAPD_TEST_HOOKS=1
endif

CPPFLAGS  += -I. -D_GNU_SOURCE
ALL_CFLAGS := -std=c17 $(WARN) $(HARDEN) $(OPT) $(PKG_CFLAGS) $(CFLAGS)

# Sources: every .c of the three modules; main.c stays out of the library so that
# tests link everything but main().
IMAPD_SRCS := $(filter-out imapd/main.c,$(sort $(wildcard imapd/*.c)))
AUTH_SRCS  := $(sort $(wildcard auth/*.c))
MBOX_SRCS  := $(sort $(wildcard mbox/*.c))
LIB_SRCS   := $(IMAPD_SRCS) $(AUTH_SRCS) $(MBOX_SRCS)
LIB_OBJS   := $(LIB_SRCS:%.c=$(B)/%.o)
UNIT_SRCS  := $(sort $(wildcard tests/unit/test-*.c))
UNIT_BINS  := $(UNIT_SRCS:%.c=$(B)/%)
# The store's test hooks (crash points, size knobs read from IMAPD_MBOX_* variables) are
# compiled only into the library the unit tests link, never into the server.
HOOK_SRCS  := mbox/mbox-open.c mbox/mbox-journal.c mbox/mbox-modseq.c
TEST_OBJS  := $(filter-out $(HOOK_SRCS:%.c=$(B)/%.o),$(LIB_OBJS)) $(HOOK_SRCS:%.c=$(B)/hooks/%.o)
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/fuzz-*.c))
FUZZ_BINS  := $(FUZZ_SRCS:%.c=$(B)/%)

ifeq ($(B),build)
BIN       := imapd/imapd
else
BIN       := $(B)/imapd/imapd
endif

.PHONY: all unit fuzz check demo demo-clean install clean deps san

all: $(BIN)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(B)/hooks/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DIMAPD_TEST_HOOKS=1 $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(B)/libimapd.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(B)/libimapd-test.a: $(TEST_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(B)/imapd/main.o $(B)/libimapd.a
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/unit/%: tests/unit/%.c $(B)/libimapd-test.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDHARDEN) $(LDFLAGS) -o $@ $< $(B)/libimapd-test.a \
		$(LDLIBS) $(SSL_LIBS) -lcmocka

$(B)/tests/fuzz/%: tests/fuzz/%.c $(B)/libimapd.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $< \
		$(B)/libimapd.a $(LDLIBS) $(SSL_LIBS)

unit: $(BIN) $(UNIT_BINS)

fuzz:
	$(MAKE) B=build-fuzz FUZZ=1 build-fuzz/libimapd.a \
		$(FUZZ_SRCS:%.c=build-fuzz/%)

san:
	$(MAKE) B=build-san SAN=1 unit

deps:
	@tests/deps.sh check

check: deps
	tests/check.sh

demo:
	@tests/deps.sh demo
	$(MAKE) all
	tests/demo.sh run

demo-clean:
	tests/demo.sh clean

# Debian places with PREFIX=/usr. The units name the installed binary. The PAM file and
# the settings file are never overwritten: they are the site's once installed.
DOCDIR    ?= $(PREFIX)/share/doc/imapd
UNITS     := systemd/imapd.socket systemd/imapd@.service systemd/imaps.socket \
	     systemd/imaps@.service

install: $(BIN)
	install -d $(DESTDIR)$(SBINDIR)
	install -m 755 $(BIN) $(DESTDIR)$(SBINDIR)/imapd
	install -d $(DESTDIR)$(UNITDIR)
	for u in $(UNITS); do \
		sed 's|/usr/sbin/imapd|$(SBINDIR)/imapd|' $$u >$(DESTDIR)$(UNITDIR)/$${u#systemd/} && \
		chmod 644 $(DESTDIR)$(UNITDIR)/$${u#systemd/} || exit 1; \
	done
	install -d $(DESTDIR)$(SYSCONFDIR)/pam.d
	test -e $(DESTDIR)$(SYSCONFDIR)/pam.d/imap || \
		install -m 644 doc/pam.d-imap $(DESTDIR)$(SYSCONFDIR)/pam.d/imap
	test -e $(DESTDIR)$(SYSCONFDIR)/imapd.conf || \
		install -m 644 doc/imapd.conf.example $(DESTDIR)$(SYSCONFDIR)/imapd.conf
	install -d $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 644 doc/imapd.8 $(DESTDIR)$(MANDIR)/man8/imapd.8
	install -m 644 doc/imapd.conf.5 $(DESTDIR)$(MANDIR)/man5/imapd.conf.5
	install -d $(DESTDIR)$(DOCDIR)/examples
	install -m 644 doc/deployment.md $(DESTDIR)$(DOCDIR)/deployment.md
	install -m 644 doc/imapd.conf.example systemd/inetd.conf $(DESTDIR)$(DOCDIR)/examples/
	install -m 644 systemd/xinetd.d/imapd $(DESTDIR)$(DOCDIR)/examples/xinetd.imapd

clean:
	rm -rf build build-san build-fuzz imapd/imapd

-include $(LIB_OBJS:.o=.d) $(HOOK_SRCS:%.c=$(B)/hooks/%.d) $(B)/imapd/main.d
