# vmproc build. `make` builds the library, the CLI, the guest kernel (cached
# outside the tree), the guest init and image; `make check` runs every test;
# `make demo` runs catsay in a VM. See README.md.

BUILD := build
# Host-side objects (library, CLI, tests) go here; the sanitizer build
# points it elsewhere and shares the guest artefacts in $(BUILD).
HOSTBUILD ?= $(BUILD)
PREFIX ?= /usr/local
DATADIR_INSTALLED = $(PREFIX)/share/vmproc
# Where the library looks for the default kernel and initramfs.
VMPROC_DATADIR ?= $(abspath $(BUILD))

CC ?= cc
WARN := -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes -Wshadow \
	-Wpointer-arith -Wformat=2 -Wvla
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Iinclude -Isrc -Iguest/include \
	-fvisibility=hidden -fPIC -MMD -MP -DVMPROC_DATADIR='"$(VMPROC_DATADIR)"'
# libseccomp: the lock-down's syscall allowlist (src/api/lockdown.c).
SECCOMP_CFLAGS := $(shell pkg-config --cflags libseccomp)
SECCOMP_LIBS := $(shell pkg-config --libs libseccomp)
ALL_CFLAGS += $(SECCOMP_CFLAGS)
LDLIBS := -lpthread -lrt $(SECCOMP_LIBS)
ifeq ($(SANITIZE),1)
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

SONAME := libvmproc.so.0
SOVERSION := 0.1.0

LIB_SRCS := $(wildcard src/util/*.c src/mem/*.c src/vmm/*.c src/x86/*.c src/virtio/*.c src/fuse/*.c src/snapshot/*.c \
	src/api/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(HOSTBUILD)/obj/%.o)
CLI_OBJS := $(patsubst %.c,$(HOSTBUILD)/obj/%.o,$(wildcard cli/*.c))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(HOSTBUILD)/tests/%,$(wildcard tests/unit/test_*.c))
E2E_TESTS := $(patsubst tests/e2e/%.c,$(HOSTBUILD)/tests/%,$(wildcard tests/e2e/test_*.c))
EXAMPLES := $(patsubst examples/%.c,$(HOSTBUILD)/examples/%,$(wildcard examples/*.c))

.PHONY: all lib cli kernel demo check check-unit check-e2e check-asan install clean \
	deps format lint

all: lib cli guest kernel $(EXAMPLES)

lib: $(HOSTBUILD)/libvmproc.a $(HOSTBUILD)/libvmproc.so $(HOSTBUILD)/vmproc.pc
cli: $(HOSTBUILD)/vmproc

include guest/guest.mk

$(HOSTBUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(HOSTBUILD)/libvmproc.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(HOSTBUILD)/libvmproc.so.$(SOVERSION): $(LIB_OBJS) src/libvmproc.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/libvmproc.map \
		$(LDFLAGS) -o $@ $(LIB_OBJS) $(LDLIBS)

$(HOSTBUILD)/libvmproc.so: $(HOSTBUILD)/libvmproc.so.$(SOVERSION)
	ln -sf libvmproc.so.$(SOVERSION) $(HOSTBUILD)/$(SONAME)
	ln -sf libvmproc.so.$(SOVERSION) $@

$(HOSTBUILD)/vmproc.pc: vmproc.pc.in Makefile
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(SOVERSION)|' $< > $@

$(HOSTBUILD)/vmproc: $(CLI_OBJS) $(HOSTBUILD)/libvmproc.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Examples see only the public header and link the shared library, as a
# program using an installed vmproc would.
$(HOSTBUILD)/examples/%: examples/%.c $(HOSTBUILD)/libvmproc.so include/vmproc.h
	@mkdir -p $(@D)
	$(CC) -std=c11 $(WARN) $(CFLAGS) -Iinclude $(LDFLAGS) -o $@ $< -L$(HOSTBUILD) -lvmproc \
		-Wl,-rpath,$(abspath $(HOSTBUILD))

# Unit tests link the library's objects directly, so they can reach
# internal modules (virtqueue, boot params, ELF loader).
$(HOSTBUILD)/tests/%: tests/unit/%.c tests/harness.h $(HOSTBUILD)/libvmproc.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Itests -o $@ $< $(HOSTBUILD)/libvmproc.a $(LDLIBS)
# The CLI's option parser, tested without a VM: it also links cli/options.c.
$(HOSTBUILD)/tests/test_cli_options: tests/unit/test_cli_options.c tests/harness.h \
		$(HOSTBUILD)/obj/cli/options.o $(HOSTBUILD)/libvmproc.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Itests -I. -o $@ $< $(HOSTBUILD)/obj/cli/options.o \
		$(HOSTBUILD)/libvmproc.a $(LDLIBS)
$(HOSTBUILD)/tests/%: tests/e2e/%.c tests/harness.h tests/e2e/scenarios.h $(HOSTBUILD)/libvmproc.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Itests -o $@ $< $(HOSTBUILD)/libvmproc.a $(LDLIBS)

# The guest kernel: built once per (source version, fragment, patches),
# cached under ~/.cache/vmproc/kernel/<hash>/ and copied here.
KERNEL_INPUTS := guest/kernel/build.sh guest/kernel/vmproc.config $(wildcard guest/kernel/patches/*.patch)
kernel: $(BUILD)/vmlinux
$(BUILD)/vmlinux: $(KERNEL_INPUTS)
	guest/kernel/build.sh $(BUILD)

# catsay in its own VM, then (--trace, on stderr) where the boot time went.
demo: all
	echo hello | $(HOSTBUILD)/vmproc run --trace /bin/catsay

check-unit: $(UNIT_TESTS) $(BUILD)/host/catsay $(BUILD)/host/fstest \
		$(BUILD)/host/test_init_logic $(BUILD)/host/test_serve
	tests/run.sh unit $(UNIT_TESTS) $(BUILD)/host/test_init_logic $(BUILD)/host/test_serve \
		"guest/catsay/test_catsay.sh $(BUILD)/host/catsay" \
		"guest/fstest/test_fstest.sh $(BUILD)/host/fstest"

check-e2e: guest kernel $(E2E_TESTS) $(HOSTBUILD)/vmproc
	tests/run.sh e2e $(E2E_TESTS) "tests/e2e/test_cli_run.sh $(HOSTBUILD)/vmproc"

# Everything once more under AddressSanitizer and UBSan.
check-asan: guest kernel
	$(MAKE) HOSTBUILD=$(BUILD)/asan SANITIZE=1 check-unit
	$(MAKE) HOSTBUILD=$(BUILD)/asan SANITIZE=1 check-e2e

# libFuzzer target for virtio-fs and its FUSE server (tests/fuzz/): the
# library sources it needs, compiled into it with clang and the sanitizers;
# seeds converted from the text ones in tests/fuzz/corpus/fuse/*.hex.
# `make check-fuzz FUZZ_SECONDS=N` fuzzes for N seconds (tests/fuzz/run.sh).
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
	-Isrc -Iguest/include -Itests -Wall -Wextra
FUZZ_SRCS := $(wildcard src/util/*.c src/virtio/*.c src/fuse/*.c) src/mem/guest_mem.c
FUZZ_HEX := $(wildcard tests/fuzz/corpus/fuse/*.hex)
FUZZ_RUN_ARGS = $(BUILD)/fuzz/fuzz_virtiofs $(BUILD)/fuzz/seeds $(FUZZ_SECONDS) $(BUILD)/fuzz/work
.PHONY: check-fuzz
$(BUILD)/fuzz/fuzz_virtiofs: tests/fuzz/fuzz_virtiofs.c tests/unit/mmio_driver.h $(FUZZ_SRCS) \
		$(wildcard src/*/*.h) include/vmproc.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_virtiofs.c $(FUZZ_SRCS) -lpthread
$(BUILD)/fuzz/seeds.stamp: $(FUZZ_HEX) tests/fuzz/make_seeds.py
	rm -rf $(BUILD)/fuzz/seeds
	python3 tests/fuzz/make_seeds.py --bin $(BUILD)/fuzz/seeds $(FUZZ_HEX)
	touch $@
check-fuzz: $(BUILD)/fuzz/fuzz_virtiofs $(BUILD)/fuzz/seeds.stamp
	tests/run.sh fuzz "tests/fuzz/run.sh $(FUZZ_RUN_ARGS)"

# The whole suite with one summary line at the end (tests/check.sh).
check: all
	tests/check.sh

deps:
	scripts/install-deps.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(DATADIR_INSTALLED)
	$(MAKE) HOSTBUILD=$(BUILD)/install VMPROC_DATADIR=$(DATADIR_INSTALLED) lib cli
	install -m 644 include/vmproc.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(BUILD)/install/libvmproc.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libvmproc.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf libvmproc.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libvmproc.so
	install -m 644 $(BUILD)/install/libvmproc.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(BUILD)/install/vmproc.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 755 $(BUILD)/install/vmproc $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(BUILD)/vmlinux $(BUILD)/initramfs.cpio $(BUILD)/system.erofs \
		$(DESTDIR)$(DATADIR_INSTALLED)/

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

TIDY_CHECKS := -*,clang-analyzer-*,bugprone-*,-bugprone-easily-swappable-parameters,\
	-bugprone-reserved-identifier,-bugprone-narrowing-conversions,\
	-bugprone-implicit-widening-of-multiplication-result,-clang-analyzer-security.insecureAPI.*
lint:
	clang-tidy --quiet --warnings-as-errors='*' -checks='$(TIDY_CHECKS)' $(LIB_SRCS) $(wildcard cli/*.c) \
		-- -std=c11 -D_GNU_SOURCE -DVMPROC_DATADIR='"/usr/share/vmproc"' -Iinclude -Isrc -Iguest/include
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
		-D_GNU_SOURCE -DVMPROC_DATADIR=\"/usr/share/vmproc\" -Iinclude -Isrc -Iguest/include src cli

clean:
	rm -rf $(BUILD)

-include $(shell find $(HOSTBUILD)/obj -name '*.d' 2>/dev/null)
