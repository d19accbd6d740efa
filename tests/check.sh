#!/usr/bin/env bash
# The whole test suite: unit tests, end-to-end tests, then both again
# built with AddressSanitizer and UndefinedBehaviorSanitizer, then the
# fuzz targets (make check-fuzz; FUZZ_SECONDS, see the Makefile). Prints each
# suite's summary and, last, one line for everything: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
total_pass=0
total_fail=0
status=0
run_suite() {
	local name=$1
	shift
	local log
	log=$(mktemp)
	echo "=== $name: make $*"
	make --no-print-directory "$@" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	local line
	line=$(grep -E '^[a-z0-9-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
	rm -f "$log"
	if [ -z "$line" ]; then
		echo "$name: the suite did not run (make exited $rc)"
		total_fail=$((total_fail + 1))
		status=1
		return
	fi
	total_pass=$((total_pass + $(echo "$line" | awk '{print $2}')))
	total_fail=$((total_fail + $(echo "$line" | awk '{print $4}')))
	[ "$rc" -eq 0 ] || status=1
	summary+=("$name: ${line#*: }")
}
summary=()
run_suite unit check-unit
run_suite e2e check-e2e
run_suite asan-unit HOSTBUILD=build/asan SANITIZE=1 check-unit
# test_load's 50 VMs once are enough for the load; under the sanitizers
# 10 of them cover the same host code in a fifth of the time.
VMPROC_LOAD_VMS=10 run_suite asan-e2e HOSTBUILD=build/asan SANITIZE=1 check-e2e
run_suite fuzz check-fuzz
echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
echo "check: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && exit "$status"
exit 1
