#!/bin/sh
# mkinitramfs.sh OUT.cpio INIT [CATSAY [PROGRAM...]]
#
# Builds vmproc's guest initramfs: an UNCOMPRESSED newc cpio, because a
# guest kernel whose code is emulated never finishes inflating a gzip one
# (docs/platform.md, "Kernel configuration and measured costs"). The
# output is reproducible byte for byte: fixed owners, modes, mtimes and
# inode numbers, entries in C-locale order.
#
# By default the image is minimal and merged-usr: /init, /etc/passwd,
# /etc/group, empty mount points and /bin -> usr/bin, /sbin -> usr/sbin.
# The programs live in the system image (mksystem.sh), which init mounts
# at /usr from the virtio-blk disk /dev/vda. The guest kernel copies every
# initramfs byte into tmpfs, which costs seconds when its code is
# emulated, while the disk is read on demand.
#
# Environment:
#   MKINITRAMFS_FULL=1        a self-contained image for peers without the
#                             disk: busybox, its applet links, CATSAY and
#                             each PROGRAM (as /bin/<its file name>) in a
#                             real /bin (CATSAY is then required)
#   MKINITRAMFS_BUSYBOX=PATH  the static busybox to use (default
#                             /bin/busybox, from Debian's busybox-static)
set -eu

die() {
	echo "mkinitramfs: $*" >&2
	exit 1
}

full=${MKINITRAMFS_FULL:-0}
if [ $# -lt 2 ] || { [ "$full" = 1 ] && [ $# -lt 3 ]; } ||
	{ [ "$full" != 1 ] && [ $# -gt 3 ]; }; then
	echo "usage: $0 OUT.cpio INIT [CATSAY [PROGRAM...]]  (CATSAY needed with MKINITRAMFS_FULL=1, PROGRAMs only with it)" >&2
	exit 2
fi
out=$1
init=$2
catsay=${3:-}
shift 2
[ $# -gt 0 ] && shift

. "$(dirname "$0")/busybox.sh"

for f in "$init" ${catsay:+"$catsay"} "$@"; do
	if [ ! -f "$f" ] || [ ! -x "$f" ]; then
		die "$f: not an executable file"
	fi
done
command -v cpio >/dev/null || die "cpio not found (apt-get install cpio)"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# Directories first; modes set explicitly so the umask cannot leak in.
make_dirs() {
	for d in "$@"; do
		mkdir -p "$stage/$d"
		chmod 0755 "$stage/$d"
	done
	chmod 0700 "$stage/root"
	chmod 1777 "$stage/tmp"
}

make_etc() {
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
		'nobody:x:65534:65534::/:/bin/false' >"$stage/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$stage/etc/group"
	chmod 0644 "$stage/etc/passwd" "$stage/etc/group"
}

if [ "$full" = 1 ]; then
	make_dirs bin dev etc proc root run sbin sys tmp usr usr/bin
	install -m 0755 "$catsay" "$stage/bin/catsay"
	for f in "$@"; do
		install -m 0755 "$f" "$stage/bin/$(basename "$f")"
	done
	install_busybox "$stage/bin"
else
	# /usr stays empty: the system image is mounted over it.
	make_dirs dev etc proc root run sys tmp usr
	ln -s usr/bin "$stage/bin"
	ln -s usr/sbin "$stage/sbin"
fi
make_etc
install -m 0755 "$init" "$stage/init"

# Reproducibility: one mtime for everything (-h: the links themselves),
# names in C-locale order, and cpio's --reproducible for inode numbers.
find "$stage" -exec touch -h -d @0 {} +
mkdir -p "$(dirname "$out")"
(
	cd "$stage"
	find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible
) >"$out.tmp"
mv "$out.tmp" "$out"
