#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time over a copy of its seeds.
# Usage: tests/fuzz/run.sh FUZZER SEED_DIR SECONDS [WORK_DIR]
# WORK_DIR (default build/fuzz/work/<fuzzer name>) gets the working corpus
# (seeds plus what the fuzzer adds, kept between runs), the log and any
# crash artefact; the repository is never written. Prints
# "PASS <name>: N runs, no crash" or "FAIL <name>: ..." (tests/run.sh
# counts these lines) and exits non-zero on a crash.
set -u
if [ $# -lt 3 ]; then
	echo "usage: $0 FUZZER SEED_DIR SECONDS [WORK_DIR]" >&2
	exit 2
fi
fuzzer=$1
seeds=$2
seconds=$3
name=$(basename "$fuzzer")
work=${4:-build/fuzz/work/$name}
if [ ! -x "$fuzzer" ]; then
	echo "FAIL $name: no fuzzer at $fuzzer"
	exit 1
fi
if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
	echo "FAIL $name: no seeds in $seeds"
	exit 1
fi
mkdir -p "$work/corpus" "$work/artifacts"
cp -f "$seeds"/* "$work/corpus/"
log=$work/fuzz.log
echo "$name: fuzzing for ${seconds}s, corpus $work/corpus, log $log"
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$work/artifacts/" "$work/corpus" >"$log" 2>&1
rc=$?
# A crashed target leaves its private host tree behind (it prints where).
tree=$(sed -n 's/^[a-z_]*: host tree in \(.*vmproc-fuzz-[A-Za-z0-9]*\)$/\1/p' "$log" | head -1)
[ -n "$tree" ] && [ -d "$tree" ] && rm -rf -- "$tree"
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
artefact=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -1 | sed 's/Test unit written to //')
if [ "$rc" -eq 0 ] && [ -z "$artefact" ]; then
	echo "PASS $name: ${runs:-?} runs, no crash (${rate:-?} exec/s, ${cov:-no coverage line})"
	exit 0
fi
echo "--- last lines of $log:"
grep -E 'invariant violated|ERROR:|SUMMARY:|^    #[0-9] ' "$log" | head -30
echo "FAIL $name: crash after ${runs:-?} runs (exit $rc); input: ${artefact:-none written}; log: $log"
echo "    reproduce: $fuzzer ${artefact:-<input>}"
[ "$name" = fuzz_virtiofs ] && echo "    (FUZZ_VIRTIOFS_TRACE=1 prints each reply)"
exit 1
