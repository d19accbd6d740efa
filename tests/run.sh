#!/usr/bin/env bash
# Runs test programs and prints one summary line: "N passed, N failed".
# Usage: tests/run.sh SUITE-NAME 'COMMAND [ARGS]'...
# Each command prints "PASS name" / "FAIL name: why" lines (the shell
# test scripts print their own "N passed, N failed", counted too); a
# command that exits non-zero without printing a FAIL line counts as one
# failure, so a crash is never silent.
set -u
suite=$1
shift
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for cmd in "$@"; do
	echo "== $suite: $cmd"
	start=$(date +%s)
	bash -c "$cmd" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	p=$(grep -c '^PASS ' "$log")
	f=$(grep -c '^FAIL ' "$log")
	# Shell tests summarise themselves.
	if sum=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1) && [ -n "$sum" ]; then
		p=$((p + $(echo "$sum" | awk '{print $1}')))
		f=$((f + $(echo "$sum" | awk '{print $3}')))
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $cmd: exited with status $rc"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	echo "-- $suite: $cmd: $p passed, $f failed in $(( $(date +%s) - start )) s"
done
echo
echo "$suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
