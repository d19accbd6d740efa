#!/bin/sh
# mkinitramfs.sh OUT.cpio INIT CATSAY
#
# Builds vmproc's guest initramfs: an UNCOMPRESSED newc cpio, because a
# guest kernel whose code is emulated never finishes inflating a gzip one
# (shared/PLATFORM.md). The output is reproducible byte for byte: fixed
# owners, modes, mtimes and inode numbers, entries in C-locale order.
#
# Environment:
#   MKINITRAMFS_NO_BUSYBOX=1  leave busybox and its applet links out (an
#                             image of init and catsay only, to measure what
#                             the ~2 MB of busybox costs at boot)
#   MKINITRAMFS_BUSYBOX=PATH  the static busybox to use (default
#                             /bin/busybox, from Debian's busybox-static)
set -eu

if [ $# -ne 3 ]; then
	echo "usage: $0 OUT.cpio INIT CATSAY" >&2
	exit 2
fi
out=$1
init=$2
catsay=$3
busybox=${MKINITRAMFS_BUSYBOX:-/bin/busybox}
no_busybox=${MKINITRAMFS_NO_BUSYBOX:-0}

applets="sh ash cat echo ls mkdir rm mv cp ln mount umount ps kill sleep
true false env id uname head tail wc grep sed tr sort uniq dd df du find
xargs stat touch chmod chown date hostname vi tar gzip sync poweroff reboot
printf test [ seq yes dmesg free top"

die() {
	echo "mkinitramfs: $*" >&2
	exit 1
}

for f in "$init" "$catsay"; do
	if [ ! -f "$f" ] || [ ! -x "$f" ]; then
		die "$f: not an executable file"
	fi
done
command -v cpio >/dev/null || die "cpio not found (apt-get install cpio)"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# Directories first; modes set explicitly so the umask cannot leak in.
make_dirs() {
	for d in bin dev etc proc root run sbin sys tmp usr usr/bin; do
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

# busybox must be static: the image has no dynamic loader or libc.
add_busybox() {
	[ -x "$busybox" ] || die "$busybox: not found (apt-get install busybox-static)"
	if command -v file >/dev/null && ! file -L "$busybox" | grep -q 'statically linked'; then
		die "$busybox: not statically linked (use Debian's busybox-static)"
	fi
	have=$("$busybox" --list) || die "$busybox --list failed"
	for a in $applets; do
		printf '%s\n' "$have" | grep -qxF -- "$a" ||
			die "$busybox has no applet '$a'"
	done
	install -m 0755 "$busybox" "$stage/bin/busybox"
	for a in $applets; do
		ln -s busybox "$stage/bin/$a"
	done
}

make_dirs
make_etc
install -m 0755 "$init" "$stage/init"
install -m 0755 "$catsay" "$stage/bin/catsay"
[ "$no_busybox" = 1 ] || add_busybox

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
