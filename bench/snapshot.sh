#!/usr/bin/env bash
# Spawning from a snapshot, next to a cold boot and a native fork + exec:
# latency of `vmproc run` for /bin/true and catsay (medians and p99 over
# N runs each), and the host memory that N concurrent idle clones of one
# snapshot cost (RSS and PSS from /proc, and how much of it is guest
# pages each clone wrote itself). See bench/README.md.
set -euo pipefail
export LC_ALL=C

usage() {
	cat <<EOF
Usage: ${0##*/} [-n N] [-c N] [-C N] [-S N] [-N N] [-b VMPROC] [-t SECONDS]

  -n N        snapshot spawns per program (default 20)
  -c N        cold spawns per program (default 20; each boots a VM, about
              30 s where the guest kernel is emulated)
  -C N        concurrent idle clones for the memory figures (default 20;
              0: skip)
  -S N        clones starting at once (default 4): each is idle once up,
              but a starting one keeps its guest kernel busy, and where
              that kernel is emulated its timer ticks alone outrun the
              host when hundreds start together
  -N N        native fork + exec runs per program (default 200)
  -b VMPROC   the vmproc CLI (default build/vmproc)
  -t SECONDS  give up on one VM after this long (default 900)

The snapshot cache is a private temporary one, built by the first
snapshot run (that build is timed and reported on its own, not counted).
Fails if a run does not work; never on a timing.
EOF
}

die() {
	printf 'snapshot.sh: error: %s\n' "$*" >&2
	exit 1
}

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/.." && pwd -P)
snap_runs=20 cold_runs=20 clones=20 starting=4 native_runs=200 limit=900
vmproc=$root/build/vmproc
while getopts ':n:c:C:S:N:b:t:h' opt; do
	case $opt in
	n) snap_runs=$OPTARG ;;
	c) cold_runs=$OPTARG ;;
	C) clones=$OPTARG ;;
	S) starting=$OPTARG ;;
	N) native_runs=$OPTARG ;;
	b) vmproc=$OPTARG ;;
	t) limit=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; die "bad option -$OPTARG" ;;
	esac
done
for v in snap_runs cold_runs native_runs limit starting; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v wants a positive number, not '${!v}'"
done
[[ $clones =~ ^[0-9]+$ ]] || die "-C wants a number"
[ -x "$vmproc" ] || die "$vmproc missing: run make"
catsay_native=$root/build/host/catsay
[ -x "$catsay_native" ] || die "$catsay_native missing: run make check-unit (it builds it)"
cc=$(command -v cc) || die "no C compiler"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmproc-bench-snapshot.XXXXXX")
pids=()
cleanup() {
	# Twice: vmproc passes the first SIGTERM to the guest program, which
	# hundreds of guests at once would take minutes to act on where the
	# guest kernel is emulated; the second stops the VM at once.
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.5
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
"$cc" -std=c11 -O2 -o "$tmp/timing" "$here/timing.c" || die "cannot build bench/timing.c"
cp -- "$vmproc" "$tmp/vmproc"
vmproc=$tmp/vmproc
export VMPROC_CACHE_DIR=$tmp/cache

# stats FILE: "median p99 (n runs)" of the numbers in FILE, one a line.
stats() {
	sort -n "$1" | awk '{v[NR] = $1} END {
		if (NR == 0) { print "no runs"; exit }
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		i = int(0.99 * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR
		printf "%10.1f %10.1f  (%d runs)", m, v[i], NR }'
}
median() { sort -n "$1" | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# Sequential timed runs; each must exit 0. Output goes to /dev/null.
timed() { # OUT N PROGRAM ARGS...
	local out=$1 n=$2
	shift 2
	"$tmp/timing" spawn "$n" "$@" </dev/null >"$out.raw" 2>"$out.err" ||
		die "$* failed: $(tail -3 "$out.err")"
	grep -E '^[0-9.]+$' "$out.raw" >"$out" || die "$*: no timings"
}

echo "vmproc snapshot benchmark ($(nproc) CPUs; guest kernel $(grep -qwE 'vmx|svm' /proc/cpuinfo && echo native || echo emulated))"
t0=$EPOCHREALTIME
"$vmproc" snapshot build --timeout "$limit" >/dev/null 2>"$tmp/build.err" ||
	die "snapshot build failed: $(cat "$tmp/build.err")"
printf 'snapshot build (one boot + capture + write): %.1f s\n\n' \
	"$(echo "$EPOCHREALTIME - $t0" | bc)"

printf '%-34s %10s %10s\n' "ms per spawn" median p99
for prog in true catsay; do
	case $prog in
	true) guest=/bin/true native=/bin/true ;;
	catsay) guest=/bin/catsay native=$catsay_native ;;
	esac
	timed "$tmp/native.$prog" "$native_runs" "$native"
	timed "$tmp/snap.$prog" "$snap_runs" "$vmproc" run -n --snapshot --timeout "$limit" "$guest"
	timed "$tmp/cold.$prog" "$cold_runs" "$vmproc" run -n --no-snapshot --timeout "$limit" "$guest"
	printf '%-34s %s\n' "$prog: native fork+exec" "$(stats "$tmp/native.$prog")"
	printf '%-34s %s\n' "$prog: vmproc run, from snapshot" "$(stats "$tmp/snap.$prog")"
	printf '%-34s %s\n' "$prog: vmproc run, cold boot" "$(stats "$tmp/cold.$prog")"
	printf '%-34s %10.1fx faster than a cold boot, %.0fx slower than native\n' \
		"$prog: snapshot (medians)" \
		"$(echo "$(median "$tmp/cold.$prog") / $(median "$tmp/snap.$prog")" | bc -l)" \
		"$(echo "$(median "$tmp/snap.$prog") / $(median "$tmp/native.$prog")" | bc -l)"
done

[ "$clones" -gt 0 ] || exit 0
echo
echo "host memory of $clones idle clones (128 MiB guests), each waiting in sleep"
up_count() { cat "$tmp"/clone.* 2>/dev/null | grep -c '^up$' || true; }
deadline=$((SECONDS + limit + 10 * clones))
t0=$EPOCHREALTIME
for i in $(seq "$clones"); do
	# At most $starting clones booting... restoring at once.
	while [ $((i - 1 - $(up_count))) -ge "$starting" ]; do
		[ $SECONDS -lt $deadline ] || die "only $(up_count) of $clones clones came up"
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || die "a clone ended: $(cat "$tmp"/clone.* | grep -v '^up$' | head -3)"; done
		sleep 0.2
	done
	"$vmproc" run -n --snapshot --timeout 86400 /bin/sh -c 'echo up; exec sleep 100000' \
		>"$tmp/clone.$i" 2>&1 &
	pids+=("$!")
done
while [ "$(up_count)" -lt "$clones" ]; do
	[ $SECONDS -lt $deadline ] || die "only $(up_count) of $clones clones came up"
	for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || die "a clone ended: $(cat "$tmp"/clone.* | grep -v '^up$' | head -3)"; done
	sleep 1
done
printf '  all %d up after %.0f s (%d starting at once)\n' "$clones" \
	"$(echo "$EPOCHREALTIME - $t0" | bc)" "$starting"
sleep 2
# Per process: RSS and PSS of everything, and the guest RAM mapping's
# private (written: copied on write) pages.
for p in "${pids[@]}"; do
	awk -v snap="$VMPROC_CACHE_DIR" '
		/^[0-9a-f]+-[0-9a-f]+ / { guest = index($0, snap) > 0 }
		/^Rss:/ { rss += $2 }
		/^Pss:/ { pss += $2 }
		/^Private_Dirty:/ && guest { written += $2 }
		/^Anonymous:/ && guest { anon += $2 }
		END { printf "%d %d %d %d\n", rss, pss, written, anon }' "/proc/$p/smaps"
done >"$tmp/mem"
awk -v n="$clones" '{ rss += $1; pss += $2; w += $3 }
	END {
		printf "  per clone: RSS %.1f MiB, PSS %.1f MiB, guest pages it wrote %.1f MiB\n",
			rss / n / 1024, pss / n / 1024, w / n / 1024
		printf "  per clone beyond its own written pages (PSS - written): %.2f MiB\n",
			(pss - w) / n / 1024
		printf "  all %d clones: PSS %.1f MiB (a cold-booted VM holds its whole guest: compare RSS)\n",
			n, pss / 1024 }' "$tmp/mem"
free -m | awk 'NR <= 2'
