#!/usr/bin/env bash
# Builds a minimal Debian tree to run as a guest root:
#
#   scripts/mkroot-debian.sh DIR [SUITE]      (default SUITE: bookworm)
#   build/vmproc run --root DIR /bin/cat /etc/debian_version
#
# debootstrap --variant=minbase from the machine's own Debian mirror
# (deb.debian.org unless MIRROR is set). Needs root and the debootstrap
# package (installed here if missing). Nothing of it is committed; the
# tree is about 200 MB. With --root DIR (overlay, the default) the guest
# may change its root and DIR stays as built.
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] || {
	echo "usage: $0 DIR [SUITE]" >&2
	exit 2
}
dir=$1
suite=${2:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
if ! command -v debootstrap >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
fi
if [ -e "$dir/etc/debian_version" ]; then
	echo "mkroot-debian: $dir already holds a Debian tree" >&2
	exit 0
fi
mkdir -p "$dir"
debootstrap --variant=minbase "$suite" "$dir" "$mirror"
# The guest's init mounts /dev, /proc, /sys, /tmp and /run inside; make
# sure the directories exist (debootstrap makes most of them).
mkdir -p "$dir/dev" "$dir/proc" "$dir/sys" "$dir/tmp" "$dir/run"
echo "mkroot-debian: $dir: $(cat "$dir/etc/debian_version")"
