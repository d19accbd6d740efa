#!/bin/sh
# Runs an fstest binary built for the host (path in $1) against temporary
# directories: `ops` must pass on local file systems and fail where an
# operation cannot work, `escape` must find a marker file that is
# reachable and only then, and `bench` must print its figures. Builds
# nothing. Cases that need root (mounts, chown, device nodes) print a SKIP
# line without it.
#
# fstest's own PASS/FAIL lines are kept in files and only shown indented,
# so that tests/run.sh counts this script's summary line alone.
set -u

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
	echo "usage: $0 FSTEST_BINARY" >&2
	exit 2
fi
fstest=$1
tmp=$(mktemp -d)
mounts=""
cleanup() {
	for m in $mounts; do
		umount "$m" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
passed=0
failed=0

pass() { passed=$((passed + 1)); }
fail() {
	failed=$((failed + 1))
	echo "FAIL: $*"
	sed 's/^/    | /' "$tmp/out" "$tmp/err" 2>/dev/null | head -60
}
skip() { echo "SKIP: $*"; }

# run ARGS...: runs fstest; output in $tmp/out and $tmp/err, status in $rc.
run() {
	"$fstest" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}
has() { grep -q -- "$1" "$tmp/out"; }
# The summary line says N passed and 0 failed, N at least $1.
summary_ok() {
	last=$(tail -n 1 "$tmp/out")
	n=$(echo "$last" | sed -n 's/^fstest: \([0-9][0-9]*\) passed, 0 failed$/\1/p')
	[ -n "$n" ] && [ "$n" -ge "$1" ]
}
is_root() { [ "$(id -u)" -eq 0 ]; }
# mount_or_skip WHAT ARGS...: mounts as root, else says why not (status 1).
try_mount() {
	if ! is_root; then
		skip "$1: needs root"
		return 1
	fi
	what=$1
	shift
	if ! mount "$@" 2>"$tmp/mnterr"; then
		skip "$what: mount failed: $(cat "$tmp/mnterr")"
		return 1
	fi
	return 0
}

OPS_CASES="create write_read pread_pwrite append stat chmod truncate ftruncate utimensat
open_close fsync mkdir_rmdir unlink rename rename_noreplace rename_exchange link symlink
readdir statfs xattr posix_lock flock large_file mkfifo cleanup"

# ops_passes WHAT DIR: the whole ops run passes and leaves DIR as it was.
ops_passes() {
	what=$1
	dir=$2
	run ops "$dir"
	missing=""
	for c in $OPS_CASES; do
		has "^PASS $c\$" || missing="$missing $c"
	done
	if [ "$rc" -ne 0 ] || has '^FAIL '; then
		fail "ops on $what: exit status $rc"
	elif [ -n "$missing" ]; then
		fail "ops on $what: no PASS for$missing"
	elif ! summary_ok 25; then
		fail "ops on $what: bad summary line"
	elif [ -n "$(ls -A "$dir")" ]; then
		fail "ops on $what: left $(ls -A "$dir") behind"
	else
		pass
	fi
}

# --- usage ---------------------------------------------------------------

for args in "" "ops" "ops a b" "frob $tmp" "escape $tmp" "bench $tmp -s 0" "ops --bogus $tmp"; do
	# shellcheck disable=SC2086 # split on purpose
	run $args
	if [ "$rc" -eq 2 ] && [ -s "$tmp/err" ]; then
		pass
	else
		fail "usage \"$args\": exit status $rc, expected 2 with a message"
	fi
done
run escape "$tmp" ""
if [ "$rc" -eq 2 ]; then
	pass
else
	fail "escape with an empty marker: exit status $rc, expected 2"
fi

# --- ops: passes on local file systems -----------------------------------

mkdir "$tmp/local"
ops_passes "a directory in $(dirname "$tmp")" "$tmp/local"
if is_root; then
	if has '^PASS chown$'; then pass; else fail "ops as root: no PASS chown"; fi
else
	if has '^SKIP chown: '; then pass; else fail "ops as non-root: no SKIP chown"; fi
fi
if has '^SKIP mknod: ' && has '^SKIP setuid: '; then
	pass
else
	fail "ops without --expect-no-*: mknod and setuid not skipped"
fi

mkdir "$tmp/tmpfs"
if try_mount "ops on tmpfs" -t tmpfs -o size=64m,mode=0755 fstest "$tmp/tmpfs"; then
	mounts="$tmp/tmpfs $mounts"
	ops_passes tmpfs "$tmp/tmpfs"
fi

# --- ops: fails where operations cannot work -----------------------------

run ops "$tmp/does-not-exist"
if [ "$rc" -eq 1 ] && has '^FAIL setup: .*(No such file or directory)$' &&
	has '^fstest: 0 passed, 1 failed$'; then
	pass
else
	fail "ops on a missing directory: exit status $rc, expected 1 with FAIL setup"
fi

echo x >"$tmp/plainfile"
run ops "$tmp/plainfile"
if [ "$rc" -eq 1 ] && has '^FAIL setup: .*not a directory'; then
	pass
else
	fail "ops on a file: exit status $rc, expected 1 with FAIL setup"
fi

mkdir -p "$tmp/rosrc" "$tmp/ro"
echo keep >"$tmp/rosrc/keep"
if try_mount "ops on a read-only bind mount" --bind "$tmp/rosrc" "$tmp/ro"; then
	mounts="$tmp/ro $mounts"
	if ! mount -o remount,bind,ro "$tmp/ro" 2>"$tmp/mnterr"; then
		skip "ops on a read-only bind mount: remount ro: $(cat "$tmp/mnterr")"
	else
		run ops "$tmp/ro"
		if [ "$rc" -eq 1 ] && has '^FAIL setup: mkdir .*(Read-only file system)$' &&
			[ "$(ls -A "$tmp/rosrc")" = keep ]; then
			pass
		else
			fail "ops on a read-only bind mount: exit status $rc, expected 1 with FAIL"
		fi
	fi
fi

# A file system too small for the large writes: those cases fail, each
# with its own FAIL line, the others still pass and cleanup still works.
mkdir "$tmp/tiny"
if try_mount "ops on a full tmpfs" -t tmpfs -o size=512k,mode=0755 fstest "$tmp/tiny"; then
	mounts="$tmp/tiny $mounts"
	run ops "$tmp/tiny"
	if [ "$rc" -eq 1 ] && has '^FAIL write_read: .*(No space left on device)$' &&
		has '^PASS create$' && has '^PASS rename$' && has '^PASS cleanup$' &&
		[ -z "$(ls -A "$tmp/tiny")" ]; then
		pass
	else
		fail "ops on a 512 KiB tmpfs: exit status $rc, expected 1, FAIL write_read, clean"
	fi
fi

# Devices and set-user-ID files are allowed on a normal directory for
# root: with --expect-no-* those cases must fail.
if is_root; then
	mkdir "$tmp/strict"
	run ops --expect-no-devices --expect-no-setuid "$tmp/strict"
	if [ "$rc" -eq 1 ] && has '^FAIL mknod: .*succeeded' &&
		has '^FAIL setuid: .*set-user-ID bit' && has '^PASS cleanup$' &&
		[ "$(grep -c '^FAIL ' "$tmp/out")" -eq 2 ]; then
		pass
	else
		fail "ops --expect-no-devices --expect-no-setuid as root: expected FAIL mknod and setuid"
	fi
else
	skip "ops --expect-no-devices as root: needs root"
fi

# --- escape -----------------------------------------------------------------

marker="FSTEST-MARKER-$$-secret"
mkdir -p "$tmp/esc/share/sub/deep" "$tmp/esc/hidden"
echo "$marker: outside the share" >"$tmp/esc/hidden/secret"
echo "nothing here" >"$tmp/esc/share/sub/deep/file"
echo "more" >"$tmp/esc/share/top"
ln "$tmp/esc/share/top" "$tmp/esc/share/sub/toplink"
ln -s ../top "$tmp/esc/share/sub/rel-inside"
ln -s deep "$tmp/esc/share/sub/dirlink"
ln -s does-not-exist "$tmp/esc/share/dangling"
share=$tmp/esc/share

# A plain share: nothing to find, no FAIL, and the mknod/setuid lines are
# information only.
run escape "$share" "$marker" secret /nonexistent-fstest/secret
if [ "$rc" -eq 0 ] && ! has '^FAIL ' && summary_ok 5 && has '^PASS dotdot$' &&
	has '^PASS absolute$' && has '^PASS walk$' && has '^PASS symlinks$' &&
	has '^PASS rename_race$' && has '^INFO mknod: ' && has '^INFO setuid: '; then
	pass
else
	fail "escape on a plain share: exit status $rc, expected 0 and no FAIL"
fi
if [ -z "$(find "$share" -name '.fstest*')" ]; then
	pass
else
	fail "escape left $(find "$share" -name '.fstest*') behind"
fi

# expect_escape WHAT CASE ARGS...: fstest escape ARGS must exit 1 with
# "FAIL CASE: escaped via".
expect_escape() {
	what=$1
	case=$2
	shift 2
	run escape "$@"
	if [ "$rc" -eq 1 ] && has "^FAIL $case: escaped via "; then
		pass
	else
		fail "escape $what: exit status $rc, expected 1 with FAIL $case"
	fi
}

# The marker reachable through ".." (hidden/secret next to the share).
expect_escape "through .." dotdot "$share" "$marker" hidden/secret
# ... by its absolute path.
expect_escape "by absolute path" absolute "$share" "$marker" "$tmp/esc/hidden/secret"
# ... through symlinks planted in the share: relative and absolute.
ln -s ../../hidden/secret "$share/sub/evil-rel"
expect_escape "through a relative symlink" symlinks "$share" "$marker" secret
rm "$share/sub/evil-rel"
ln -s "$tmp/esc/hidden/secret" "$share/evil-abs"
expect_escape "through an absolute symlink" symlinks "$share" "$marker" secret
rm "$share/evil-abs"
ln -s "$tmp/esc/hidden" "$share/evil-dir"
expect_escape "through a symlink to a directory" symlinks "$share" "$marker" secret
rm "$share/evil-dir"
# ... through a hard link in the share.
ln "$tmp/esc/hidden/secret" "$share/sub/deep/hard"
expect_escape "through a hard link" walk "$share" "$marker" secret
rm "$share/sub/deep/hard"
# The marker inside the share, named by a path that leads into it.
cp "$tmp/esc/hidden/secret" "$share/copy"
expect_escape "marker inside the share" dotdot "$share" "$marker" share/copy
rm "$share/copy"
# After all that, the plain share is clean again.
run escape -i 50 "$share" "$marker" secret
if [ "$rc" -eq 0 ] && ! has '^FAIL '; then
	pass
else
	fail "escape on the plain share again: exit status $rc, expected 0"
fi

if is_root; then
	run escape --expect-no-devices --expect-no-setuid -i 20 "$share" "$marker" secret
	if [ "$rc" -eq 1 ] && has '^FAIL mknod: ' && has '^FAIL setuid: ' &&
		[ "$(grep -c '^FAIL ' "$tmp/out")" -eq 2 ]; then
		pass
	else
		fail "escape --expect-no-* as root: expected FAIL mknod and setuid only"
	fi
else
	skip "escape --expect-no-* as root: needs root"
fi

# --- bench --------------------------------------------------------------------

mkdir "$tmp/bench"
run bench "$tmp/bench" -s 8 -n 300
missing=""
for k in write_MiBps read_MiBps create_per_s stat_per_s unlink_per_s; do
	grep -Eq "^bench $k=[0-9]+\.[0-9]\$" "$tmp/out" || missing="$missing $k"
done
if [ "$rc" -ne 0 ] || has '^FAIL ' || [ -n "$missing" ]; then
	fail "bench: exit status $rc, missing figures:$missing"
elif ! has '^INFO read: .*page cache' || ! summary_ok 5; then
	fail "bench without -r: no page cache warning or bad summary"
elif [ -n "$(ls -A "$tmp/bench")" ]; then
	fail "bench left $(ls -A "$tmp/bench") behind"
else
	pass
fi

head -c 3000000 /dev/urandom >"$tmp/readme.dat"
run bench -r "$tmp/readme.dat" -s 2 -n 10 "$tmp/bench"
if [ "$rc" -eq 0 ] && grep -Eq '^bench read_MiBps=[0-9]+\.[0-9]$' "$tmp/out" &&
	has "^INFO read: 2.9 MiB from $tmp/readme.dat" && ! has 'page cache'; then
	pass
else
	fail "bench -r FILE: exit status $rc"
fi

run bench "$tmp/does-not-exist" -s 1 -n 10
if [ "$rc" -eq 1 ] && has '^FAIL write: '; then
	pass
else
	fail "bench on a missing directory: exit status $rc, expected 1 with FAIL"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
