# The guest side of vmproc: init, the catsay demo, the initramfs and the
# system image.
# Included from the top-level Makefile, which defines BUILD. Every
# variable here starts with GUEST_ so the two cannot clash.

GUEST_CC := musl-gcc
GUEST_HOST_CC = $(CC)
GUEST_WARN := -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes
# Static, small and stripped: the guest has no libc, and every byte of the
# uncompressed initramfs (init) is copied by the (possibly emulated) guest
# kernel.
GUEST_CFLAGS := -std=c11 -static -Os -s $(GUEST_WARN) -Iguest/include
GUEST_HOST_CFLAGS := -std=c11 -O2 -g $(GUEST_WARN) -Iguest/include

GUEST_INIT_SRCS := guest/init/init.c guest/init/init_logic.c guest/init/report.c \
	guest/init/serve.c guest/init/fresh.c guest/init/mounts.c
GUEST_INIT_DEPS := $(GUEST_INIT_SRCS) guest/init/init_logic.h guest/init/report.h \
	guest/init/serve.h guest/init/fresh.h guest/init/mounts.h guest/include/vmproc_abi.h guest/guest.mk
# The init's host tests live in tests/guest/ and link the init's own
# sources, built for the host. test_serve and test_serve_tty run the
# channel's serve loop on the host, with socketpairs for the ports, and
# stubs for fresh.c (which would set the host's clock) and mounts.c
# (tests/guest/serve_session.c).
GUEST_SERVE_TEST_SRCS := tests/guest/serve_session.c guest/init/serve.c guest/init/report.c \
	guest/init/init_logic.c
GUEST_SERVE_TESTS := $(BUILD)/host/test_serve $(BUILD)/host/test_serve_tty
GUEST_CATSAY_DEPS := guest/catsay/catsay.c guest/guest.mk
# fstest is a test tool (tests/tools/fstest/), but the virtio-fs tests and
# the benchmark run it in the guest, so it is built into the images too.
GUEST_FSTEST_SRCS := $(wildcard tests/tools/fstest/*.c)
GUEST_FSTEST_DEPS := $(GUEST_FSTEST_SRCS) tests/tools/fstest/fstest.h guest/guest.mk
GUEST_MKINITRAMFS := guest/image/mkinitramfs.sh
GUEST_MKSYSTEM := guest/image/mksystem.sh
GUEST_BUSYBOX_SH := guest/image/busybox.sh

.PHONY: guest check-catsay check-fstest check-guest-init check-guest

guest: $(BUILD)/guest/init $(BUILD)/guest/catsay $(BUILD)/guest/fstest $(BUILD)/initramfs.cpio \
	$(BUILD)/initramfs-full.cpio $(BUILD)/system.erofs

$(BUILD)/guest/init: $(GUEST_INIT_DEPS)
	@mkdir -p $(@D)
	$(GUEST_CC) $(GUEST_CFLAGS) -o $@ $(GUEST_INIT_SRCS)

$(BUILD)/guest/catsay: $(GUEST_CATSAY_DEPS)
	@mkdir -p $(@D)
	$(GUEST_CC) $(GUEST_CFLAGS) -o $@ guest/catsay/catsay.c

# The file-system test program (virtio-fs shares), in /usr/bin.
$(BUILD)/guest/fstest: $(GUEST_FSTEST_DEPS)
	@mkdir -p $(@D)
	$(GUEST_CC) $(GUEST_CFLAGS) -o $@ $(GUEST_FSTEST_SRCS)

# The default initramfs: init and mount points only. Programs come from
# system.erofs, which init mounts read-only at /usr from /dev/vda.
$(BUILD)/initramfs.cpio: $(BUILD)/guest/init $(GUEST_MKINITRAMFS) \
		$(GUEST_BUSYBOX_SH) guest/guest.mk
	$(GUEST_MKINITRAMFS) $@ $(BUILD)/guest/init

# Self-contained (busybox, catsay and fstest inside), for a VMM without the
# disk, e.g. the QEMU benchmark peer. Boots seconds slower on an emulated
# guest kernel, which copies all of it.
$(BUILD)/initramfs-full.cpio: $(BUILD)/guest/init $(BUILD)/guest/catsay $(BUILD)/guest/fstest \
		$(GUEST_MKINITRAMFS) $(GUEST_BUSYBOX_SH) guest/guest.mk
	MKINITRAMFS_FULL=1 $(GUEST_MKINITRAMFS) $@ \
		$(BUILD)/guest/init $(BUILD)/guest/catsay $(BUILD)/guest/fstest

# The guest's /usr: busybox, its applets, catsay and fstest (needs
# erofs-utils).
$(BUILD)/system.erofs: $(BUILD)/guest/catsay $(BUILD)/guest/fstest $(GUEST_MKSYSTEM) \
		$(GUEST_BUSYBOX_SH) guest/guest.mk
	$(GUEST_MKSYSTEM) $@ $(BUILD)/guest/catsay $(BUILD)/guest/fstest

# Host builds, only for tests that run on the host.
$(BUILD)/host/catsay: $(GUEST_CATSAY_DEPS)
	@mkdir -p $(@D)
	$(GUEST_HOST_CC) $(GUEST_HOST_CFLAGS) -o $@ guest/catsay/catsay.c

$(BUILD)/host/fstest: $(GUEST_FSTEST_DEPS)
	@mkdir -p $(@D)
	$(GUEST_HOST_CC) $(GUEST_HOST_CFLAGS) -o $@ $(GUEST_FSTEST_SRCS)

$(BUILD)/host/test_init_logic: tests/guest/test_init_logic.c tests/harness.h \
		guest/init/init_logic.c guest/init/init_logic.h guest/include/vmproc_abi.h \
		guest/guest.mk
	@mkdir -p $(@D)
	$(GUEST_HOST_CC) $(GUEST_HOST_CFLAGS) -Iguest/init -Itests -o $@ \
		tests/guest/test_init_logic.c guest/init/init_logic.c

$(GUEST_SERVE_TESTS): $(BUILD)/host/%: tests/guest/%.c $(GUEST_SERVE_TEST_SRCS) \
		tests/guest/serve_session.h guest/init/init_logic.h guest/init/report.h \
		guest/init/serve.h guest/init/fresh.h guest/init/mounts.h \
		guest/include/vmproc_abi.h tests/harness.h guest/guest.mk
	@mkdir -p $(@D)
	$(GUEST_HOST_CC) $(GUEST_HOST_CFLAGS) -Iguest/init -Itests -o $@ $< $(GUEST_SERVE_TEST_SRCS)

check-catsay: $(BUILD)/host/catsay
	guest/catsay/test_catsay.sh $(BUILD)/host/catsay

check-fstest: $(BUILD)/host/fstest
	tests/tools/fstest/test_fstest.sh $(BUILD)/host/fstest

check-guest-init: $(BUILD)/host/test_init_logic $(GUEST_SERVE_TESTS)
	$(BUILD)/host/test_init_logic
	$(BUILD)/host/test_serve
	$(BUILD)/host/test_serve_tty

check-guest: check-catsay check-fstest check-guest-init
