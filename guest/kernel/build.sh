#!/usr/bin/env bash
# Builds the vmproc guest kernel (an uncompressed ELF vmlinux with a PVH
# entry note) from Debian's linux-source-6.1 package, the Kconfig fragment
# vmproc.config and the patches in patches/, and installs it into OUTDIR:
#
#   guest/kernel/build.sh OUTDIR     ->  OUTDIR/vmlinux, OUTDIR/kernel.config
#
# Builds are cached outside the source tree, keyed by the sha256 of the
# linux-source-6.1 package version, the fragment, every patch (sorted) and
# this script:
#
#   ${VMPROC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vmproc}/kernel/KEY/
#       vmlinux  kernel.config  System.map  build.log  key-manifest
#
# A cache hit only copies files. A miss unpacks the source into a temporary
# directory next to the cache, patches, configures (tinyconfig + fragment +
# olddefconfig), checks that every line of the fragment holds in the final
# .config, builds vmlinux (~4 min on 2 cores), and renames the finished
# entry into place, so a failed or interrupted build leaves no cache entry.
#
# Needs: linux-source-6.1 build-essential flex bison bc libelf-dev
# libssl-dev cpio dwarves (and patch, xz-utils, binutils, util-linux).
set -euo pipefail

say() { printf 'kernel: %s\n' "$*"; }
die() { printf 'kernel: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
out_arg=$1

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
self="$here/$(basename -- "${BASH_SOURCE[0]}")"
fragment="$here/vmproc.config"
tarball=/usr/src/linux-source-6.1.tar.xz
src_pkg=linux-source-6.1
arch=x86_64

[ -f "$fragment" ] || die "missing $fragment"
shopt -s nullglob
patches=("$here"/patches/*.patch)
shopt -u nullglob
# Sort explicitly (C locale) so the key and the apply order never depend on
# the caller's locale.
if [ ${#patches[@]} -gt 0 ]; then
	mapfile -t patches < <(printf '%s\n' "${patches[@]}" | LC_ALL=C sort)
fi

pkg_version=$(dpkg-query -W -f='${Version}' "$src_pkg" 2>/dev/null) ||
	die "package $src_pkg is not installed (apt-get install $src_pkg)"
[ -n "$pkg_version" ] || die "package $src_pkg has no version (not installed?)"

# --- cache key ---------------------------------------------------------------
# A manifest of labelled content hashes, hashed once more: renaming a patch
# (which changes the apply order) changes the key too.
manifest() {
	printf 'vmproc-guest-kernel v1\n'
	printf 'package %s %s\n' "$src_pkg" "$pkg_version"
	printf 'arch %s\n' "$arch"
	printf 'fragment %s\n' "$(sha256sum < "$fragment" | cut -d' ' -f1)"
	local p
	for p in ${patches[@]+"${patches[@]}"}; do
		printf 'patch %s %s\n' "$(basename -- "$p")" "$(sha256sum < "$p" | cut -d' ' -f1)"
	done
	printf 'build.sh %s\n' "$(sha256sum < "$self" | cut -d' ' -f1)"
}
key=$(manifest | sha256sum | cut -d' ' -f1)

if [ -n "${VMPROC_CACHE_DIR:-}" ]; then
	cache_root=$VMPROC_CACHE_DIR
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
	cache_root=$XDG_CACHE_HOME/vmproc
else
	[ -n "${HOME:-}" ] || die "neither VMPROC_CACHE_DIR, XDG_CACHE_HOME nor HOME is set"
	cache_root=$HOME/.cache/vmproc
fi
kdir=$cache_root/kernel
cache=$kdir/$key

mkdir -p -- "$out_arg"
outdir=$(cd -- "$out_arg" && pwd -P)

# Copies the cached kernel into OUTDIR (through temporary names, so OUTDIR
# never holds a partial vmlinux).
install_out() {
	local f dst
	for f in vmlinux:vmlinux kernel.config:kernel.config; do
		dst=$outdir/${f#*:}
		cp --reflink=auto -- "$cache/${f%%:*}" "$dst.tmp.$$"
		mv -f -- "$dst.tmp.$$" "$dst"
	done
	say "cache $cache"
	say "installed $outdir/vmlinux ($(stat -c %s "$outdir/vmlinux") bytes) and $outdir/kernel.config"
}

if [ -f "$cache/vmlinux" ]; then
	say "up to date (key $key)"
	install_out
	exit 0
fi

# --- build -------------------------------------------------------------------
for tool in make gcc flex bison bc patch xz tar readelf flock; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "'$tool' not found (apt-get install build-essential flex bison bc libelf-dev libssl-dev cpio dwarves patch xz-utils)"
done
[ -f "$tarball" ] || die "missing $tarball (apt-get install $src_pkg)"

mkdir -p -- "$kdir"
# One builder per key; whoever waits re-checks the cache afterwards.
exec 9>"$kdir/.lock.$key"
if ! flock -n 9; then
	say "another build of $key is running; waiting for it"
	flock 9
fi
if [ -f "$cache/vmlinux" ]; then
	say "built by another process meanwhile (key $key)"
	install_out
	exit 0
fi

tmp=$(mktemp -d -- "$kdir/.build.$key.XXXXXX")
cleanup() { rm -rf -- "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
log=$tmp/build.log
failed_log=$kdir/$key.failed.log
rm -f -- "$failed_log" "$kdir/$key.failed.config"

# Runs a command with its output in the build log; on failure, shows the end
# of the log and keeps a copy of it next to the cache.
run() {
	if ! "$@" >>"$log" 2>&1; then
		tail -n 60 "$log" | sed 's/^/kernel: | /' >&2
		cp -f -- "$log" "$failed_log"
		die "failed: $* (full log: $failed_log)"
	fi
}

start=$(date +%s)
say "cache miss (key $key): building $src_pkg $pkg_version"
say "unpacking $tarball"
run tar -C "$tmp" --no-same-owner -xf "$tarball"
src=$tmp/linux-source-6.1
[ -f "$src/Makefile" ] || die "$tarball did not unpack to linux-source-6.1/"

for p in ${patches[@]+"${patches[@]}"}; do
	say "applying $(basename -- "$p")"
	run patch -d "$src" -p1 --forward --batch --fuzz=0 --no-backup-if-mismatch -i "$p"
done

mk() { run make -C "$src" ARCH="$arch" KBUILD_BUILD_USER=vmproc KBUILD_BUILD_HOST=vmproc "$@"; }

say "configuring: tinyconfig + vmproc.config + olddefconfig"
mk tinyconfig
run sh -c 'cd "$1" && ./scripts/kconfig/merge_config.sh -m .config "$2"' sh "$src" "$fragment"
mk olddefconfig

# Every line of the fragment must hold in the final .config: Kconfig drops
# an option silently when a dependency is missing or a symbol is misspelt.
say "verifying the fragment against .config"
find "$src" -name 'Kconfig*' -type f -print0 |
	xargs -0 sed -n 's/^[[:space:]]*\(menu\)\{0,1\}config[[:space:]]\{1,\}\([A-Za-z0-9_]\{1,\}\).*/\2/p' |
	LC_ALL=C sort -u >"$tmp/symbols"
bad=()
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
	lineno=$((lineno + 1))
	line=${line%$'\r'}
	if [[ $line =~ ^#\ CONFIG_([A-Za-z0-9_]+)\ is\ not\ set[[:space:]]*$ ]]; then
		sym=${BASH_REMATCH[1]}
		want="not set"
		# Holds if the symbol is n or invisible (absent from .config).
		if grep -q "^CONFIG_${sym}=" "$src/.config"; then
			bad+=("line $lineno: '$line' but .config has: $(grep "^CONFIG_${sym}=" "$src/.config")")
		fi
	elif [[ $line =~ ^CONFIG_([A-Za-z0-9_]+)=(.*)$ ]]; then
		sym=${BASH_REMATCH[1]}
		want=${BASH_REMATCH[2]}
		if ! grep -qxF -- "$line" "$src/.config"; then
			have=$(grep -e "^CONFIG_${sym}=" -e "^# CONFIG_${sym} is not set" "$src/.config" || true)
			bad+=("line $lineno: '$line' but .config has: ${have:-nothing (dependency missing?)}")
		fi
	elif [[ $line =~ ^[[:space:]]*(#.*)?$ ]]; then
		continue
	else
		bad+=("line $lineno: not a Kconfig line: '$line'")
		continue
	fi
	if ! grep -qxF -- "$sym" "$tmp/symbols"; then
		bad+=("line $lineno: CONFIG_$sym is not a Kconfig symbol in this source")
	fi
done <"$fragment"
if [ ${#bad[@]} -gt 0 ]; then
	printf 'kernel: | %s\n' "${bad[@]}" >&2
	cp -f -- "$src/.config" "$kdir/$key.failed.config"
	die "${#bad[@]} line(s) of vmproc.config do not hold in the final .config (saved as $kdir/$key.failed.config)"
fi

jobs=$(nproc 2>/dev/null || echo 2)
say "building vmlinux with make -j$jobs (log: $log; takes minutes)"
mk -j"$jobs" vmlinux

# The VMM enters through the PVH note (Xen ELF note type 0x12).
# (Captured first: with pipefail, grep -q closing a pipe early could fail it.)
notes=$(readelf -n "$src/vmlinux")
grep -Eq 'Xen.*(0x00000012|PHYS32_ENTRY)' <<<"$notes" ||
	die "vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); is CONFIG_PVH set?"

stage=$tmp/entry
mkdir -- "$stage"
cp -- "$src/vmlinux" "$stage/vmlinux"
cp -- "$src/.config" "$stage/kernel.config"
cp -- "$src/System.map" "$stage/System.map"
cp -- "$log" "$stage/build.log"
manifest >"$stage/key-manifest"
rm -rf -- "$cache"   # only an incomplete leftover can be here (no vmlinux)
mv -T -- "$stage" "$cache"
say "built in $(( $(date +%s) - start )) s"
rm -rf -- "$src"
install_out
