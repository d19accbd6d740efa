# shellcheck shell=sh
# busybox.sh: sourced (not run) by mkinitramfs.sh and mksystem.sh, so
# that the initramfs and the system image offer the same programs.
#
# The sourcing script defines die() first.
#
# Environment:
#   MKINITRAMFS_BUSYBOX=PATH  the static busybox to use (default
#                             /bin/busybox, from Debian's busybox-static)

busybox=${MKINITRAMFS_BUSYBOX:-/bin/busybox}

applets="sh ash cat echo ls mkdir rm mv cp ln mount umount ps kill sleep
true false env id uname head tail wc grep sed tr sort uniq dd df du find
xargs stat touch chmod chown date hostname vi tar gzip sync poweroff reboot
printf test [ seq yes dmesg free top"

# install_busybox DIR: DIR/busybox and a DIR/<applet> -> busybox link per
# applet. busybox must be static: the guest has no dynamic loader or libc.
install_busybox() {
	[ -x "$busybox" ] || die "$busybox: not found (apt-get install busybox-static)"
	if command -v file >/dev/null; then
		file -L "$busybox" | grep -q 'statically linked' ||
			die "$busybox: not statically linked (use Debian's busybox-static)"
	elif command -v readelf >/dev/null; then
		! readelf -lW "$busybox" | grep -q 'INTERP' ||
			die "$busybox: not statically linked (use Debian's busybox-static)"
	fi
	have=$("$busybox" --list) || die "$busybox --list failed"
	for a in $applets; do
		printf '%s\n' "$have" | grep -qxF -- "$a" ||
			die "$busybox has no applet '$a'"
	done
	install -m 0755 "$busybox" "$1/busybox"
	for a in $applets; do
		ln -s busybox "$1/$a"
	done
}
