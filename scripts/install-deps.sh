#!/usr/bin/env bash
# Installs what vmproc needs on Debian 12, as root. Safe to run again:
# it only calls apt-get when a package is missing.
set -euo pipefail

packages=(
	# host build and tests; libssl-dev: libcrypto, whose HMAC-SHA256
	# authenticates snapshot files (the guest kernel build needs it too)
	build-essential make pkg-config clang clang-format clang-tidy cppcheck libssl-dev
	# the lock-down of VMM processes (seccomp allowlist, src/api/lockdown.c)
	libseccomp-dev
	# guest kernel build (Debian's kernel source, built with our fragment)
	linux-source-6.1 flex bison bc libelf-dev xz-utils kmod
	# guest user space: static init, busybox, initramfs, system image
	musl-tools busybox-static cpio erofs-utils
	# benchmark peer
	qemu-system-x86
	# tests
	python3 procps
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "install-deps: warning: /dev/kvm is not usable by $(id -un); VMs will not start" >&2
fi
