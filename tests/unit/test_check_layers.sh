#!/bin/sh
# Tests scripts/check-layers.py on small made-up trees in a temporary
# directory: a tree that follows the floor plan passes silently, and each
# kind of violation (an upward include, a peer include, src/ reaching into
# cli/ or tests/, cli/ reaching past include/vmproc.h, an include that
# resolves nowhere, a cycle, a file over 800 lines) fails with one line
# naming the file and line. Prints "N passed, N failed" (tests/run.sh).
set -u

here=$(cd "$(dirname "$0")" && pwd)
check="$here/../../scripts/check-layers.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

pass() { passed=$((passed + 1)); }
fail() {
	failed=$((failed + 1))
	echo "FAIL: $*"
	sed 's/^/    | /' "$tmp/out"
}

# put TREE FILE [INCLUDE...]: writes TREE/FILE, including each INCLUDE.
put() {
	t=$1
	f=$2
	shift 2
	mkdir -p "$(dirname "$t/$f")"
	: >"$t/$f"
	for i in "$@"; do
		printf '#include "%s"\n' "$i" >>"$t/$f"
	done
	printf '/* %s */\n' "$f" >>"$t/$f"
}

# A tree as the floor plan draws it.
clean_tree() {
	t=$tmp/$1
	rm -rf "$t"
	put "$t" include/vmproc.h
	put "$t" guest/include/vmproc_abi.h
	put "$t" src/util/error.h
	put "$t" src/util/error.c util/error.h
	put "$t" src/mem/guest_mem.h util/error.h
	put "$t" src/x86/cpu.h mem/guest_mem.h util/error.h
	put "$t" src/x86/cpu.c x86/cpu.h vmproc_abi.h
	put "$t" src/virtio/virtqueue.h mem/guest_mem.h
	put "$t" src/virtio/fs.h virtio/virtqueue.h
	put "$t" src/fuse/server.h util/error.h
	put "$t" src/snapshot/snapshot.h x86/cpu.h
	put "$t" src/vmm/vm.h snapshot/snapshot.h virtio/fs.h fuse/server.h vmproc.h
	put "$t" src/vmm/vm.c vm.h vmm/vm.h x86/cpu.h
	put "$t" src/api/child.c vmm/vm.h vmproc.h vmproc_abi.h
	put "$t" cli/cli.h vmproc.h
	put "$t" cli/main.c cli.h vmproc.h
}

# expect_clean NAME: the tree passes, silently.
expect_clean() {
	python3 "$check" "$tmp/$1" >"$tmp/out" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] && [ ! -s "$tmp/out" ]; then
		pass
	else
		fail "$1: expected a clean pass, got status $rc"
	fi
}

# expect_one NAME PATTERN: the tree fails with exactly one line, matching
# PATTERN (a grep -E expression).
expect_one() {
	python3 "$check" "$tmp/$1" >"$tmp/out" 2>&1
	rc=$?
	if [ "$rc" -eq 1 ] && [ "$(wc -l <"$tmp/out")" -eq 1 ] && grep -qE -- "$2" "$tmp/out"; then
		pass
	else
		fail "$1: expected status 1 and one line matching '$2', got status $rc"
	fi
}

clean_tree clean
expect_clean clean

clean_tree upward
put "$tmp/upward" src/x86/cpu.c x86/cpu.h vmm/vm.h
expect_one upward '^src/x86/cpu\.c:2: "vmm/vm\.h": upward include'

clean_tree upward_to_api
put "$tmp/upward_to_api" src/api/config.h vmproc.h
put "$tmp/upward_to_api" src/vmm/vm.c vmm/vm.h api/config.h
expect_one upward_to_api '^src/vmm/vm\.c:2: "api/config\.h": upward include'

clean_tree peer
put "$tmp/peer" src/fuse/server.h util/error.h virtio/virtqueue.h
expect_one peer '^src/fuse/server\.h:2: "virtio/virtqueue\.h": peer include'

clean_tree into_cli
put "$tmp/into_cli" src/api/child.c vmm/vm.h ../../cli/cli.h
expect_one into_cli '^src/api/child\.c:2: .*src/ never includes cli/ or tests/'

clean_tree into_tests
put "$tmp/into_tests" tests/harness.h
put "$tmp/into_tests" src/vmm/vm.c vmm/vm.h ../../tests/harness.h
expect_one into_tests '^src/vmm/vm\.c:2: .*src/ never includes cli/ or tests/'

clean_tree cli_internal
put "$tmp/cli_internal" cli/main.c cli.h vmm/vm.h
expect_one cli_internal '^cli/main\.c:2: "vmm/vm\.h".*cli/ includes only include/vmproc\.h'

clean_tree cli_abi
put "$tmp/cli_abi" cli/main.c cli.h vmproc_abi.h
expect_one cli_abi '^cli/main\.c:2: "vmproc_abi\.h".*cli/ includes only include/vmproc\.h'

clean_tree unresolved
put "$tmp/unresolved" src/vmm/vm.c vmm/vm.h vmm/missing.h
expect_one unresolved '^src/vmm/vm\.c:2: "vmm/missing\.h": no such file'

clean_tree unknown_folder
put "$tmp/unknown_folder" src/net/net.c util/error.h
expect_one unknown_folder '^src/net/net\.c:1: not in a folder of the floor table'

clean_tree cycle
put "$tmp/cycle" src/vmm/a.h vmm/b.h
put "$tmp/cycle" src/vmm/b.h c.h
put "$tmp/cycle" src/vmm/c.h vmm/a.h
expect_one cycle '^src/vmm/a\.h:1: include cycle: src/vmm/a\.h -> src/vmm/b\.h -> src/vmm/c\.h -> src/vmm/a\.h$'

clean_tree self_include
put "$tmp/self_include" src/util/error.h util/error.h
expect_one self_include '^src/util/error\.h:1: include cycle: src/util/error\.h -> src/util/error\.h$'

# 800 lines pass, 801 do not; cli/ too.
clean_tree long_ok
seq 1 800 | sed 's|^|// |' >"$tmp/long_ok/src/util/long.c"
seq 1 800 | sed 's|^|// |' >"$tmp/long_ok/cli/long.c"
expect_clean long_ok

clean_tree too_long
seq 1 801 | sed 's|^|// |' >"$tmp/too_long/src/util/long.c"
expect_one too_long '^src/util/long\.c:801: 801 lines, more than 800'

clean_tree too_long_cli
seq 1 900 | sed 's|^|// |' >"$tmp/too_long_cli/cli/long.c"
expect_one too_long_cli '^cli/long\.c:900: 900 lines, more than 800'

# Several problems: one line each, and the allow-list of long files is
# empty in the real script.
clean_tree several
put "$tmp/several" src/x86/cpu.c x86/cpu.h vmm/vm.h
put "$tmp/several" src/fuse/server.h util/error.h virtio/virtqueue.h
python3 "$check" "$tmp/several" >"$tmp/out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && [ "$(wc -l <"$tmp/out")" -eq 2 ]; then
	pass
else
	fail "several: expected status 1 and two lines, got status $rc"
fi
if grep -qE '^TOO_LONG_ALLOWED = \{\}$' "$check"; then
	pass
else
	failed=$((failed + 1))
	echo "FAIL: the allow-list of long files in $check is not empty"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
