#!/bin/sh
# Runs a catsay binary (path in $1) on the cases in testdata/ and compares
# its output with the expected output kept there. Builds nothing.
#
# A case NAME is testdata/NAME.in (standard input) and NAME.out (expected
# standard output), optionally NAME.mode (CATSAY_MODE to set; absent: the
# variable is unset) and NAME.rc (expected exit status; absent: 0).
# A few generated cases follow (large inputs, arguments).
set -u

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
	echo "usage: $0 CATSAY_BINARY" >&2
	exit 2
fi
catsay=$1
data=$(dirname "$0")/testdata
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

# run_case NAME: one file-based case.
run_case() {
	name=$1
	want_rc=0
	[ -f "$data/$name.rc" ] && want_rc=$(cat "$data/$name.rc")
	if [ -f "$data/$name.mode" ]; then
		CATSAY_MODE=$(cat "$data/$name.mode") "$catsay" \
			<"$data/$name.in" >"$tmp/out" 2>"$tmp/err"
	else
		env -u CATSAY_MODE "$catsay" \
			<"$data/$name.in" >"$tmp/out" 2>"$tmp/err"
	fi
	rc=$?
	if [ "$rc" -ne "$want_rc" ]; then
		fail "$name: exit status $rc, expected $want_rc"
	elif ! cmp -s "$tmp/out" "$data/$name.out"; then
		fail "$name: output differs:"
		diff "$data/$name.out" "$tmp/out" | head -20
	elif [ "$want_rc" -ne 0 ] && [ ! -s "$tmp/err" ]; then
		fail "$name: failed without a message on stderr"
	elif [ "$want_rc" -eq 0 ] && [ -s "$tmp/err" ]; then
		fail "$name: unexpected stderr: $(head -c 200 "$tmp/err")"
	else
		pass
	fi
}

for input in "$data"/*.in; do
	run_case "$(basename "$input" .in)"
done

# 20 MB of short lines: every line must come out, once, in order.
yes 'hello world' | head -n 1000000 >"$tmp/big.in"
if env -u CATSAY_MODE "$catsay" <"$tmp/big.in" >"$tmp/big.out"; then
	lines=$(wc -l <"$tmp/big.out")
	inner=$(grep -c '^[/|\\] hello world [|\\/]$' "$tmp/big.out")
	# 1000000 bubble lines + top and bottom border + 5 lines of cat.
	if [ "$lines" -eq 1000007 ] && [ "$inner" -eq 1000000 ]; then
		pass
	else
		fail "big input: $lines lines, $inner bubble lines"
	fi
else
	fail "big input: exit status $?"
fi

# One 1 MB line without spaces: 25000 lines of exactly 40 columns.
head -c 1000000 /dev/zero | tr '\0' 'x' >"$tmp/long.in"
if env -u CATSAY_MODE "$catsay" <"$tmp/long.in" >"$tmp/long.out"; then
	full=$(grep -c '^[/|\\] x\{40\} [|\\/]$' "$tmp/long.out")
	if [ "$full" -eq 25000 ]; then
		pass
	else
		fail "long line: $full full lines, expected 25000"
	fi
else
	fail "long line: exit status $?"
fi

# Arguments are a usage error.
echo hi | "$catsay" extra >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 2 ] && [ ! -s "$tmp/out" ] && [ -s "$tmp/err" ]; then
	pass
else
	fail "arguments: exit status $rc, expected 2 with a message"
fi

# An empty CATSAY_MODE is not a mode either.
echo hi | CATSAY_MODE='' "$catsay" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 2 ] && [ ! -s "$tmp/out" ]; then
	pass
else
	fail "empty CATSAY_MODE: exit status $rc, expected 2"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
