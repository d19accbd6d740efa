#!/bin/sh
# mksystem.sh OUT.erofs CATSAY [PROGRAM...]
#
# Builds vmproc's system image: a read-only erofs file system that the VMM
# attaches as the virtio-blk disk /dev/vda and the guest init mounts at
# /usr. The image root is the content of /usr:
#
#   bin/busybox, bin/<applet> -> busybox, bin/catsay, bin/<PROGRAM>...,
#   sbin -> bin
#
# Each further PROGRAM (e.g. fstest) is installed as bin/<its file name>.
#
# (with the initramfs's /bin -> usr/bin and /sbin -> usr/sbin links, every
# program is in /bin, /sbin, /usr/bin and /usr/sbin).
#
# Unlike the initramfs, whose every byte the guest kernel copies at boot,
# the disk is read on demand through the page cache. The image is
# uncompressed (the guest kernel has no EROFS_FS_ZIP: decompressing in an
# emulated guest kernel would be slow) and reproducible byte for byte:
# fixed timestamps, owners, UUID and no xattrs. Its size is a multiple of
# 512 bytes, as virtio-blk exposes whole sectors.
#
# Environment:
#   MKINITRAMFS_BUSYBOX=PATH  the static busybox to use (default
#                             /bin/busybox, from Debian's busybox-static)
set -eu

die() {
	echo "mksystem: $*" >&2
	exit 1
}

if [ $# -lt 2 ]; then
	echo "usage: $0 OUT.erofs CATSAY [PROGRAM...]" >&2
	exit 2
fi
out=$1
catsay=$2
shift 2

. "$(dirname "$0")/busybox.sh"

# A constant, so that two builds give the same bytes ("vmproc" in hex).
uuid=4c0e5d8a-2b6f-4e1d-9a37-766d70726f63

for f in "$catsay" "$@"; do
	if [ ! -f "$f" ] || [ ! -x "$f" ]; then
		die "$f: not an executable file"
	fi
done
command -v mkfs.erofs >/dev/null ||
	die "mkfs.erofs not found (apt-get install erofs-utils)"

stage=$(mktemp -d)
trap 'rm -rf "$stage" "$out.tmp"' EXIT

# The stage directory is the image root, mounted at /usr: its mode (0700
# from mktemp) must not leak in.
chmod 0755 "$stage"
mkdir "$stage/bin"
chmod 0755 "$stage/bin"
install_busybox "$stage/bin"
install -m 0755 "$catsay" "$stage/bin/catsay"
for f in "$@"; do
	install -m 0755 "$f" "$stage/bin/$(basename "$f")"
done
ln -s bin "$stage/sbin"

# Reproducibility: -T 0 gives every inode and the superblock the same time
# (and compact inodes, as no mtime differs from it), --all-root fixes the
# owners, -U the UUID, -x -1 keeps host xattrs (SELinux labels) out; the
# directory entries are sorted by mkfs.erofs itself. No -z: uncompressed.
mkdir -p "$(dirname "$out")"
rm -f "$out.tmp"
SOURCE_DATE_EPOCH=0 mkfs.erofs --quiet -x -1 -T 0 --all-root -U "$uuid" \
	"$out.tmp" "$stage" >/dev/null || die "mkfs.erofs failed"

size=$(stat -c %s "$out.tmp")
if [ $((size % 512)) -ne 0 ]; then
	truncate -s $(((size + 511) / 512 * 512)) "$out.tmp"
fi
mv "$out.tmp" "$out"
