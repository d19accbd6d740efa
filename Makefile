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
# libcrypto (OpenSSL, libssl-dev): HMAC-SHA256 for snapshot files.
CRYPTO_CFLAGS := $(shell pkg-config --cflags libcrypto 2>/dev/null)
CRYPTO_LIBS := $(or $(shell pkg-config --libs libcrypto 2>/dev/null),-lcrypto)
# libseccomp: the lock-down's syscall allowlist (src/api/lockdown.c).
SECCOMP_CFLAGS := $(shell pkg-config --cflags libseccomp)
SECCOMP_LIBS := $(shell pkg-config --libs libseccomp)
ALL_CFLAGS += $(CRYPTO_CFLAGS) $(SECCOMP_CFLAGS)
LDLIBS := -lpthread -lrt $(CRYPTO_LIBS) $(SECCOMP_LIBS)
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
$(HOSTBUILD)/tests/%: tests/e2e/%.c tests/harness.h tests/e2e/scenarios.h tests/e2e/proc_counts.h \
		$(HOSTBUILD)/libvmproc.a
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
		$(BUILD)/host/test_init_logic $(GUEST_SERVE_TESTS)
	tests/run.sh unit $(UNIT_TESTS) $(BUILD)/host/test_init_logic $(GUEST_SERVE_TESTS) \
		"guest/catsay/test_catsay.sh $(BUILD)/host/catsay" \
		"tests/tools/fstest/test_fstest.sh $(BUILD)/host/fstest" \
		tests/unit/test_check_layers.sh

# A guest init that misbehaves on purpose, in an initramfs of its own
# (tests/e2e/test_hostile.c).
$(BUILD)/hostile/init: tests/e2e/hostile/hostile_init.c guest/include/vmproc_abi.h
	@mkdir -p $(@D)
	$(GUEST_CC) $(GUEST_CFLAGS) -o $@ $<
$(BUILD)/hostile-initramfs.cpio: $(BUILD)/hostile/init $(GUEST_MKINITRAMFS)
	$(GUEST_MKINITRAMFS) $@ $<

check-e2e: guest kernel $(BUILD)/hostile-initramfs.cpio $(E2E_TESTS) $(HOSTBUILD)/vmproc
	tests/run.sh e2e $(E2E_TESTS) "tests/e2e/test_cli_run.sh $(HOSTBUILD)/vmproc"

# Everything once more under AddressSanitizer and UBSan.
check-asan: guest kernel
	$(MAKE) HOSTBUILD=$(BUILD)/asan SANITIZE=1 check-unit
	$(MAKE) HOSTBUILD=$(BUILD)/asan SANITIZE=1 check-e2e

# libFuzzer targets (tests/fuzz/fuzz_<name>.c), built with clang and the
# sanitizers from instrumented objects of their own (build/fuzz/obj);
# each one's seeds are converted from the text ones in
# tests/fuzz/corpus/<corpus>/*.hex. A new target: add its name to
# FUZZ_TARGETS and, if it needs more than FUZZ_SRCS, set
# FUZZ_SRCS_<name>; FUZZ_CORPUS_<name> if its corpus folder is not <name>.
# `make check-fuzz` runs each for FUZZ_SECONDS (times FUZZ_WEIGHT_<name>,
# default 1) with -timeout=10, so a hang fails (tests/fuzz/run.sh): by
# default 60 s for virtio-fs and 30 s for each other target, about 2.5
# minutes in all. FUZZ_SECONDS=N changes them in proportion.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_DIR ?= $(BUILD)/fuzz
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
	-Isrc -Iguest/include -Itests -Wall -Wextra -Wno-gnu-variable-sized-type-not-at-end \
	-DVMPROC_DATADIR='"$(VMPROC_DATADIR)"' \
	$(FUZZ_EXTRA_CFLAGS)
FUZZ_TARGETS := virtiofs blk ports mmio
FUZZ_SRCS := $(wildcard src/util/*.c src/virtio/*.c) src/mem/guest_mem.c
FUZZ_SRCS_virtiofs := $(FUZZ_SRCS) $(wildcard src/fuse/*.c) src/vmm/fuse_backend.c
# The ports target runs the channel's backend of a spawned child
# (src/api/child_io.c), which needs the library around it.
FUZZ_SRCS_ports := $(LIB_SRCS)
FUZZ_CORPUS_virtiofs := fuse
FUZZ_WEIGHT_virtiofs := 2
fuzz_srcs = $(or $(FUZZ_SRCS_$(1)),$(FUZZ_SRCS))
fuzz_objs = $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(call fuzz_srcs,$(1)))
fuzz_corpus = $(or $(FUZZ_CORPUS_$(1)),$(1))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_STAMPS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/seeds/%.stamp)
.PHONY: check-fuzz fuzz
.PRECIOUS: $(FUZZ_DIR)/obj/%.o
$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<
.SECONDEXPANSION:
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $$(call fuzz_objs,$$*) \
		$(wildcard tests/fuzz/*.h) tests/unit/mmio_driver.h $(wildcard src/*/*.h) \
		include/vmproc.h
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(call fuzz_objs,$*) -lpthread -lrt $(CRYPTO_LIBS) $(SECCOMP_LIBS)
$(FUZZ_DIR)/seeds/%.stamp: $$(wildcard tests/fuzz/corpus/$$(call fuzz_corpus,$$*)/*.hex) \
		tests/fuzz/make_seeds.py
	rm -rf $(FUZZ_DIR)/seeds/$*
	python3 tests/fuzz/make_seeds.py --bin $(FUZZ_DIR)/seeds/$* \
		$(wildcard tests/fuzz/corpus/$(call fuzz_corpus,$*)/*.hex)
	touch $@
# The snapshot file parser and the restore validation of the device state
# in it (tests/fuzz/fuzz_snapshot.c) is built apart: with the fuzzing hook
# (MACs computed, any value taken) that the library refuses, so from
# objects of its own; its seeds are snapshots it writes itself with this
# build's structures.
FUZZ_SNAPSHOT_SRCS := $(FUZZ_SRCS) $(wildcard src/snapshot/*.c) src/x86/kvm_state.c
$(BUILD)/fuzz/fuzz_snapshot: tests/fuzz/fuzz_snapshot.c $(FUZZ_SNAPSHOT_SRCS) \
		$(wildcard src/*/*.h) include/vmproc.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(filter-out -DVMPROC_DATADIR=%,$(FUZZ_CFLAGS)) $(CRYPTO_CFLAGS) \
		-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION \
		-Wno-gnu-variable-sized-type-not-at-end \
		-o $@ tests/fuzz/fuzz_snapshot.c $(FUZZ_SNAPSHOT_SRCS) -lpthread $(CRYPTO_LIBS)
$(BUILD)/fuzz/snapshot-seeds.stamp: $(BUILD)/fuzz/fuzz_snapshot
	rm -rf $(BUILD)/fuzz/snapshot-seeds
	mkdir -p $(BUILD)/fuzz/snapshot-seeds
	$(BUILD)/fuzz/fuzz_snapshot --write-seeds $(BUILD)/fuzz/snapshot-seeds
	touch $@
FUZZ_SNAPSHOT_RUN_ARGS = $(BUILD)/fuzz/fuzz_snapshot $(BUILD)/fuzz/snapshot-seeds \
	$(FUZZ_SECONDS) $(BUILD)/fuzz/work/fuzz_snapshot
fuzz: $(FUZZ_BINS) $(FUZZ_STAMPS) $(BUILD)/fuzz/fuzz_snapshot $(BUILD)/fuzz/snapshot-seeds.stamp
check-fuzz: fuzz
	tests/run.sh fuzz $(foreach t,$(FUZZ_TARGETS),"tests/fuzz/run.sh $(FUZZ_DIR)/fuzz_$(t) \
		$(FUZZ_DIR)/seeds/$(t) $$(( $(FUZZ_SECONDS) * $(or $(FUZZ_WEIGHT_$(t)),1) )) \
		$(FUZZ_DIR)/work/fuzz_$(t)") "tests/fuzz/run.sh $(FUZZ_SNAPSHOT_RUN_ARGS)"

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
# clang-tidy, cppcheck, then the floor plan of docs/architecture.md: which
# folder may include which, no include cycles, no file over 800 lines.
lint:
	clang-tidy --quiet --warnings-as-errors='*' -checks='$(TIDY_CHECKS)' $(LIB_SRCS) $(wildcard cli/*.c) \
		-- -std=c11 -D_GNU_SOURCE -DVMPROC_DATADIR='"/usr/share/vmproc"' -Iinclude -Isrc -Iguest/include
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
		-D_GNU_SOURCE -DVMPROC_DATADIR=\"/usr/share/vmproc\" -Iinclude -Isrc -Iguest/include src cli
	python3 scripts/check-layers.py

clean:
	rm -rf $(BUILD)

-include $(shell find $(HOSTBUILD)/obj $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
