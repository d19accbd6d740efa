#!/usr/bin/env bash
# virtio-fs throughput and metadata rates through vmproc's in-process FUSE
# server, next to QEMU -M microvm with a vhost-user-fs device served by
# QEMU's virtiofsd, on the same guest kernel, in one invocation. The guest
# program is fstest bench on both sides. See bench/README.md.
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME, printf and awk must use '.' as decimal point

usage() {
	cat <<EOF
Usage: ${0##*/} [-n RUNS] [-s MIB] [-f FILES] [-t SECONDS] [-m MIB] [-b VMPROC]
       [-d VIRTIOFSD] [-c CACHE] [-o SIDE] [-B] [-k] [-v]

Runs 'fstest bench /mnt/share -s MIB -n FILES -r /mnt/share/readfile' in a
guest whose /mnt/share is a fresh host directory holding 'readfile' (MIB MiB
of random data, written by the host just before the run), alternately:
  vmproc  build/vmproc run -v DIR:/mnt/share ... (its own virtio-fs server),
          started from a snapshot (built once before the first run);
  qemu    qemu-system-x86_64 -M microvm with vhost-user-fs-device and
          /usr/lib/qemu/virtiofsd --socket-path=... -o source=DIR
          -o cache=auto, booting the same build/vmlinux with
          build/initramfs-full.cpio; the guest mounts the share itself.
Same kernel command line, guest memory and vCPUs on both sides. The guest
boot is not measured: fstest times each phase itself (guest monotonic
clock), on both sides the same way:
  write_MiBps   MIB MiB in 1 MiB write()s to a new file, then fsync
  read_MiBps    reading readfile (not in the guest's page cache) in 1 MiB reads
  create_per_s  FILES open(O_CREAT|O_EXCL) + close in a new directory
  stat_per_s    stat() of each of them
  unlink_per_s  unlink() of each of them
Prints the median of RUNS runs per side and vmproc/virtiofsd for each
figure (higher is better for all five; the target is >= 1.0). Fails if a
run fails (fstest FAIL, exit status, panic, timeout), never on a timing.

Options:
  -n RUNS       runs per side (default 3)
  -s MIB        MiB written and read per run (default 16)
  -f FILES      files created, stat'ed and unlinked per run (default
                10000; on a host whose KVM emulates the guest kernel that
                takes hours per run: see bench/README.md)
  -t SECONDS    give up on one run after this long (default 900 + 30 per
                MiB + 4 per file)
  -m MIB        guest memory on both sides (default 128, vmproc's default)
  -b VMPROC     the vmproc CLI (default build/vmproc)
  -d VIRTIOFSD  the peer's daemon (default /usr/lib/qemu/virtiofsd)
  -c CACHE      virtiofsd's -o cache= mode: auto, always or none (default
                auto)
  -o SIDE       run only SIDE (vmproc or qemu): no ratios
  -B            vmproc boots its guest for each run (--no-snapshot)
                instead of starting from a snapshot
  -k            keep the temporary directory (consoles, logs) at the end
  -v            show each run's figures, fstest's output and the VMMs'
                logs
  -h            this help
EOF
}

die() {
	printf 'virtiofs: error: %s\n' "$*" >&2
	exit 1
}

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/.." && pwd -P)
BENCH=virtiofs
# shellcheck source=bench/qemu_microvm.sh
. "$here/qemu_microvm.sh"

runs=3
mib=16
files=10000
limit=
MEM_MIB=128
CPUS=1
vmproc=$root/build/vmproc
virtiofsd=/usr/lib/qemu/virtiofsd
cache=auto
only=
snapshot=1
keep_tmp=0
verbose=0
while getopts ':n:s:f:t:m:b:d:c:o:Bkvh' opt; do
	case $opt in
	n) runs=$OPTARG ;;
	s) mib=$OPTARG ;;
	f) files=$OPTARG ;;
	t) limit=$OPTARG ;;
	m) MEM_MIB=$OPTARG ;;
	b) vmproc=$OPTARG ;;
	d) virtiofsd=$OPTARG ;;
	c) cache=$OPTARG ;;
	o) only=$OPTARG ;;
	B) snapshot=0 ;;
	k) keep_tmp=1 ;;
	v) verbose=1 ;;
	h) usage; exit 0 ;;
	:) usage >&2; die "-$OPTARG needs an argument" ;;
	*) usage >&2; die "unknown option -$OPTARG" ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { usage >&2; die "unexpected argument: $1"; }
for ov in n:runs s:mib f:files m:MEM_MIB; do
	v=${ov#*:}
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "-${ov%%:*} wants a positive number, not '${!v}'"
done
[ -n "$limit" ] || limit=$((900 + 30 * mib + 4 * files))
[[ $limit =~ ^[1-9][0-9]*$ ]] || die "-t wants seconds, not '$limit'"
case $cache in auto | always | none) ;; *) die "-c wants auto, always or none, not '$cache'" ;; esac
case $only in '' | vmproc | qemu) ;; *) die "-o wants vmproc or qemu, not '$only'" ;; esac
with_vmproc=1 with_qemu=1
[ "$only" != qemu ] || with_vmproc=0
[ "$only" != vmproc ] || with_qemu=0

# --- what each side needs -------------------------------------------------------
build=$root/build
[ -w /dev/kvm ] || die "/dev/kvm is not usable"
[ -f "$build/vmlinux" ] || die "$build/vmlinux missing: run make"
[ -x "$vmproc" ] || die "$vmproc missing: run make"
vmproc=$(cd -- "$(dirname -- "$vmproc")" && pwd -P)/$(basename -- "$vmproc")
if [ "$with_vmproc" = 1 ]; then
	for f in initramfs.cpio system.erofs; do
		[ -f "$build/$f" ] || die "$build/$f missing: run make"
	done
	"$vmproc" run --help 2>&1 | grep -qE -- '^ *-v, --volume' ||
		die "$vmproc run has no -v HOST:GUEST (virtio-fs shares): rebuild it (make), or -o qemu"
	if command -v dump.erofs >/dev/null; then
		dump.erofs --path=/bin/fstest "$build/system.erofs" 2>/dev/null | grep -q '^File' ||
			die "$build/system.erofs has no /bin/fstest: run make"
	fi
fi
if [ "$with_qemu" = 1 ]; then
	qemu=$(command -v qemu-system-x86_64) ||
		die "qemu-system-x86_64 not found (apt-get install qemu-system-x86), or -o vmproc"
	[ -x "$virtiofsd" ] || die "$virtiofsd not found (Debian 12: qemu-system-common), or -o vmproc"
	[ -f "$build/initramfs-full.cpio" ] || die "$build/initramfs-full.cpio missing: run make"
	command -v cpio >/dev/null || die "cpio not found (apt-get install cpio)"
	cpio --quiet -t <"$build/initramfs-full.cpio" | grep -qx 'bin/fstest' ||
		die "$build/initramfs-full.cpio has no bin/fstest: run make"
	# virtiofsd (its namespace sandbox, and serving files as their owners)
	# needs root.
	[ "$(id -u)" = 0 ] || die "virtiofsd needs root; run as root, or -o vmproc"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmproc-bench-virtiofs.XXXXXX")
chmod 0700 "$tmp"
# Stops everything still running. timeout(1) runs each VMM in a process
# group of its own and passes signals on to it. Twice SIGTERM: vmproc
# passes the first to the guest program, whose emulated guest kernel may
# take long to act on it, and stops the VM at once on the second. Then
# SIGKILL for whatever is left.
vfs_cleanup() {
	local p i alive
	trap '' INT TERM
	for p in "${pids[@]}"; do kill -TERM -- "$p" 2>/dev/null || true; done
	for ((i = 0; i < 100; i++)); do
		alive=0
		for p in "${pids[@]}"; do ! kill -0 "$p" 2>/dev/null || alive=1; done
		[ "$alive" = 1 ] || break
		[ "$i" != 10 ] || for p in "${pids[@]}"; do kill -TERM -- "$p" 2>/dev/null || true; done
		sleep 0.1
	done
	for p in "${pids[@]}"; do
		kill -KILL -- "-$p" 2>/dev/null || true
		kill -KILL -- "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ "$keep_tmp" = 1 ]; then
		printf 'virtiofs: kept %s\n' "$tmp" >&2
	else
		rm -rf -- "$tmp"
	fi
}
trap vfs_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Private copies, so that a rebuild of build/ while the benchmark runs
# cannot mix versions.
cp -- "$vmproc" "$tmp/vmproc"
vmproc=$tmp/vmproc
kernel=$tmp/vmlinux
cp -- "$build/vmlinux" "$kernel"
if [ "$with_vmproc" = 1 ]; then
	cp -- "$build/initramfs.cpio" "$build/system.erofs" "$tmp/"
fi
if [ "$with_qemu" = 1 ]; then
	cp -- "$build/initramfs-full.cpio" "$tmp/"
	qemu_initrd=$tmp/initramfs-full.cpio
	cat -- "$qemu" "$virtiofsd" >/dev/null
fi

share=$tmp/share # the same path every run (fresh content each time)
guest_dir=/mnt/share
readfile=readfile # no '.': the QEMU guest's command line must have none
tag=benchshare
fstest_args=(bench "$guest_dir" -s "$mib" -n "$files" -r "$guest_dir/$readfile")

# A fresh share: the previous run's leftovers gone, a new read file of
# random data that no guest has seen (so in no guest page cache; it is in
# the host's, for both sides alike).
fresh_share() {
	rm -rf -- "$share"
	mkdir -m 0755 -- "$share"
	head -c $((mib * 1024 * 1024)) /dev/urandom >"$share/$readfile"
}

# --- vmproc ---------------------------------------------------------------------
export VMPROC_CACHE_DIR=$tmp/cache # a private snapshot cache
vm_opts=(--memory "$MEM_MIB" --cpus "$CPUS" --kernel "$kernel" --initrd "$tmp/initramfs.cpio"
	--system "$tmp/system.erofs")
if [ "$snapshot" = 1 ]; then
	vmproc_args=(run -n --snapshot)
else
	vmproc_args=(run -n --no-snapshot)
fi
vmproc_args+=("${vm_opts[@]}" --trace -v "$share:$guest_dir" fstest "${fstest_args[@]}")

# Runs a VMM command (timeout -k 10 LIMIT CMD...) in the background, so
# that a signal to this script ends the wait at once. Sets rc and
# wall_us. The command's stdout and stderr go to OUT and ERR.
run_timed() { # OUT ERR CMD...
	local out=$1 err=$2 pid t0 t1
	shift 2
	t0=$(now_us)
	timeout -k 10 "$limit" "$@" </dev/null >"$out" 2>"$err" &
	pid=$!
	pids+=("$pid")
	rc=0
	wait "$pid" || rc=$?
	t1=$(now_us)
	forget "$pid"
	wall_us=$((t1 - t0))
}

vmproc_fs_run() {
	local out=$tmp/vmproc.out err=$tmp/vmproc.err
	fresh_share
	run_timed "$out" "$err" "$vmproc" "${vmproc_args[@]}"
	check_console vmproc "$out" "$err"
	[ "$rc" -ne 124 ] || fail_run "vmproc: no exit within $limit s (-t)" "$out" "$err"
	[ "$rc" -ne 127 ] || fail_run "vmproc: fstest not found in the guest (rebuild build/system.erofs)" "$out" "$err"
	[ "$rc" -eq 0 ] || fail_run "vmproc: exit status $rc (fstest failed, or vmproc did)" "$out" "$err"
	figures vmproc "$out" "$err"
	if [ "$verbose" = 1 ]; then
		printf -- '--- vmproc: output ---\n'
		cat -- "$out"
		printf -- '--- vmproc: --trace ---\n'
		cat -- "$err"
		printf -- '---\n'
	fi
}

# --- QEMU + virtiofsd -----------------------------------------------------------
# The guest init runs the words of the kernel command line it does not know
# as its program (run_vs_native.sh explains why not after "--"). A quoted
# word may hold spaces, but the kernel takes a word with '=' as a
# parameter or environment variable and drops one with '.', so the script
# has neither. The init reports the program's exit status through
# isa-debug-exit.
fstest_words="${fstest_args[*]}"
case $fstest_words in *[=.\"]*) die "the guest command may not hold '=', '.' or '\"': $fstest_words" ;; esac
qemu_script="mkdir -p $guest_dir && mount -t virtiofs $tag $guest_dir && exec fstest $fstest_words"
EXIT_PORT_STATUS=0
serial_dev=virtio-serial-device
sock=$tmp/virtiofsd.sock
if [ "$with_qemu" = 1 ]; then
	QEMU_CMDLINE=$(vmproc_guest_cmdline "$vmproc")
	extra="/bin/sh -c \"$qemu_script\""
	qemu_add_virtiofs "$sock" "$tag"
	qemu_cmdline
	# The machine's CPU count as vmproc's.
	for ((i = 0; i < ${#qemu_args[@]}; i++)); do
		[ "${qemu_args[i]}" != -smp ] || qemu_args[i + 1]=$CPUS
	done
fi

# Kills QEMU (PID) when virtiofsd is gone (the guest would then wait on
# its share forever) or when KVM could not emulate an instruction (QEMU
# stops the VM and waits).
qemu_fs_watch() { # QEMU_PID ERR FLAG
	while kill -0 "$1" 2>/dev/null; do
		if ! kill -0 "$vfsd_pid" 2>/dev/null; then
			sleep 2 # QEMU exiting normally ends virtiofsd as well
			if kill -0 "$1" 2>/dev/null; then
				echo virtiofsd >"$3"
				kill -- "$1" 2>/dev/null || true
			fi
			return
		fi
		if grep -q 'KVM internal error' -- "$2"; then
			kill -- "$1" 2>/dev/null || true
			return
		fi
		sleep 1
	done
}

qemu_fs_run() {
	local out=$qemu_console err=$tmp/qemu.err log=$tmp/virtiofsd.log flag=$tmp/watch.flag
	local wpid status
	fresh_share
	rm -f -- "$out" "$err" "$flag" "$qemu_debugcon"
	virtiofsd_start "$share" "$sock" "$log" -o cache="$cache"
	# The watcher needs QEMU's pid: QEMU starts here, not in run_timed.
	local pid t0 t1
	t0=$(now_us)
	timeout -k 10 "$limit" "$qemu" "${qemu_args[@]}" </dev/null >"$err" 2>&1 &
	pid=$!
	pids+=("$pid")
	qemu_fs_watch "$pid" "$err" "$flag" &
	wpid=$!
	pids+=("$wpid")
	rc=0
	wait "$pid" || rc=$?
	t1=$(now_us)
	wall_us=$((t1 - t0))
	forget "$pid"
	kill -- "$wpid" 2>/dev/null || true
	wait "$wpid" 2>/dev/null || true
	forget "$wpid"
	virtiofsd_stop
	touch -- "$out"
	cat -- "$log" >>"$err"
	if grep -q 'KVM internal error' -- "$err"; then
		fail_run "qemu: KVM could not emulate a guest instruction" "$out" "$err"
	fi
	check_console qemu "$out" "$err"
	if [ -s "$flag" ]; then
		fail_run "qemu: virtiofsd exited while the guest ran (its log is at the end of stderr)" \
			"$out" "$err"
	fi
	[ "$rc" -ne 124 ] || fail_run "qemu: no poweroff within $limit s (-t)" "$out" "$err"
	# isa-debug-exit makes QEMU exit with (value << 1) | 1.
	if [ $((rc & 1)) -ne 1 ] || [ "$rc" -ge 124 ]; then
		fail_run "qemu: exit $rc, not through isa-debug-exit (a reset or a panic?)" "$out" "$err"
	fi
	status=$(((rc - 1) >> 1))
	[ "$status" -ne 127 ] || fail_run "qemu: fstest not found in the guest" "$out" "$err"
	[ "$status" -eq 0 ] ||
		fail_run "qemu: guest exit status $status (the mount or fstest failed)" "$out" "$err"
	figures qemu "$out" "$err"
	if [ "$verbose" = 1 ]; then
		printf -- '--- qemu: console ---\n'
		tr -d '\r' <"$out"
		printf -- '--- qemu: stderr and virtiofsd ---\n'
		cat -- "$err"
		printf -- '---\n'
	fi
}

# --- figures --------------------------------------------------------------------
keys=(write_MiBps read_MiBps create_per_s stat_per_s unlink_per_s)
labels=("write MiB/s" "read MiB/s" "create /s" "stat /s" "unlink /s")

# Reads fstest's output in OUT and sets fig[KEY] for the five figures.
# fstest prints "bench KEY=VALUE" with one decimal, too coarse for the
# figures of an emulated guest kernel (0.2 MiB/s), so the value is
# recomputed from its INFO line (the amount and the time in ms) when that
# agrees with the rounded one.
declare -A fig
figures() { # SIDE OUT ERR
	local k v
	fig=()
	while read -r k v; do
		fig[$k]=$v
	done < <(tr -d '\r' <"$2" | awk '
		/^bench [A-Za-z_]+=[0-9.]+$/ { split($2, kv, "="); b[kv[1]] = kv[2] }
		$1 == "INFO" && $2 == "write:" {
			for (i = 4; i < NF; i++) if ($i == "writes:" && $(i + 1) > 0) p["write_MiBps"] = $3 / $(i + 1)
		}
		$1 == "INFO" && $2 == "read:" {
			for (i = 4; i < NF; i++) if ($i == "in" && $(i + 1) > 0) p["read_MiBps"] = $3 / $(i + 1)
		}
		$1 == "INFO" && ($2 == "create:" || $2 == "stat:" || $2 == "unlink:") && $4 == "files" &&
		    $5 == "in" && $6 > 0 {
			p[substr($2, 1, length($2) - 1) "_per_s"] = $3 / $6
		}
		END {
			for (k in b) {
				v = b[k]
				if ((k in p) && p[k] - v < 0.051 && v - p[k] < 0.051) v = p[k]
				printf "%s %.6g\n", k, v
			}
		}')
	for k in "${keys[@]}"; do
		[ -n "${fig[$k]:-}" ] || fail_run "$1: no 'bench $k=' line from fstest" "$2" "$3"
	done
	grep -qE '^fstest: [0-9]+ passed, 0 failed' < <(tr -d '\r' <"$2") ||
		fail_run "$1: fstest did not end with '0 failed'" "$2" "$3"
}

num() { # VALUE: 3 significant digits or more, never e-notation
	awk -v v="$1" 'BEGIN { a = v < 0 ? -v : v
		if (a >= 100) printf "%.0f", v; else if (a >= 10) printf "%.1f", v
		else if (a >= 1) printf "%.2f", v; else printf "%.3f", v }'
}
med() { # FILE: the median of its numbers
	sort -g -- "$1" | awk '{ v[NR] = $1 } END {
		printf "%.6g", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

record() { # SIDE RUN: appends this run's figures to the per-side files
	local k line
	line=$(printf '%-4s %-7s' "$2" "$1")
	for k in "${keys[@]}"; do
		echo "${fig[$k]}" >>"$tmp/fig.$1.$k"
		line+=$(printf ' %11s' "$(num "${fig[$k]}")")
	done
	line+=$(printf ' %9.1f' "$(awk -v u="$wall_us" 'BEGIN { print u / 1e6 }')")
	printf '%s\n' "$line" >>"$tmp/raw"
	[ "$verbose" = 0 ] || printf 'run %s\n' "$line"
}

# --- the runs -------------------------------------------------------------------
printf 'virtiofs: %d run(s) per side; %d MiB written and read, %d files; guest: %d MiB, %d vCPU\n' \
	"$runs" "$mib" "$files" "$MEM_MIB" "$CPUS"
printf 'virtiofs: %s (%s)\n' "$vmproc" "$(date -r "$tmp/vmproc" '+%F %T')"
printf 'virtiofs: kernel %s (%s)\n' "$build/vmlinux" "$(date -r "$build/vmlinux" '+%F %T')"
if [ "$with_vmproc" = 1 ]; then
	printf 'virtiofs: vmproc command: %s' "$vmproc"
	printf ' %q' "${vmproc_args[@]}"
	printf '\n'
fi
if [ "$with_qemu" = 1 ]; then
	printf 'virtiofs: %s; virtiofsd: %s\n' "$("$qemu" --version | head -n 1)" \
		"$("$virtiofsd" --version 2>&1 | head -n 1)"
	printf 'virtiofs: virtiofsd command: %s --socket-path=%s -o source=%s -o cache=%s\n' \
		"$virtiofsd" "$sock" "$share" "$cache"
	printf 'virtiofs: qemu command: %s' "$qemu"
	printf ' %q' "${qemu_args[@]}"
	printf '\n'
fi
printf 'virtiofs: time limit %d s per run; started %s on %s (%s cores, load average %s)\n' \
	"$limit" "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$(uname -n)" "$(nproc)" \
	"$(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$with_vmproc" = 1 ] && [ "$snapshot" = 1 ]; then
	# One boot, not measured: later runs restore the booted guest. The
	# shares are per spawn, so one snapshot serves every run.
	run_timed "$tmp/snap.out" "$tmp/snap.err" "$vmproc" snapshot build "${vm_opts[@]}"
	[ "$rc" -eq 0 ] || fail_run "vmproc snapshot build: exit status $rc" "$tmp/snap.out" "$tmp/snap.err"
	printf 'virtiofs: vmproc snapshot built in %.1f s (not measured)\n' \
		"$(awk -v u="$wall_us" 'BEGIN { print u / 1e6 }')"
fi

: >"$tmp/raw"
[ "$verbose" = 0 ] || printf '\n    %-4s %-7s %11s %11s %11s %11s %11s %9s\n' run side \
	write_MiBps read_MiBps create/s stat/s unlink/s 'wall s'
for ((i = 1; i <= runs; i++)); do
	# Alternate, so that a change of load hits both sides alike.
	if [ "$with_vmproc" = 1 ]; then
		[ "$verbose" = 1 ] || printf 'run %d/%d vmproc ... ' "$i" "$runs"
		vmproc_fs_run
		record vmproc "$i"
		[ "$verbose" = 1 ] || printf '%.1f s\n' "$(awk -v u="$wall_us" 'BEGIN { print u / 1e6 }')"
	fi
	if [ "$with_qemu" = 1 ]; then
		[ "$verbose" = 1 ] || printf 'run %d/%d qemu   ... ' "$i" "$runs"
		qemu_fs_run
		record qemu "$i"
		[ "$verbose" = 1 ] || printf '%.1f s\n' "$(awk -v u="$wall_us" 'BEGIN { print u / 1e6 }')"
	fi
done

if [ "$verbose" = 1 ]; then
	printf '\nall runs (wall s: from starting the VMM to its exit, guest boot included):\n'
	printf '%-4s %-7s %11s %11s %11s %11s %11s %9s\n' run side \
		write_MiBps read_MiBps create/s stat/s unlink/s 'wall s'
	cat -- "$tmp/raw"
fi

printf '\nmedians of %d run(s); fstest bench, %d MiB, %d files, %d MiB guest:\n' \
	"$runs" "$mib" "$files" "$MEM_MIB"
if [ -z "$only" ]; then
	printf '%-12s %11s %11s %17s  %-15s %s\n' figure vmproc virtiofsd vmproc/virtiofsd \
		'target >= 1.0' '(per-pair ratios: median)'
	for ((j = 0; j < ${#keys[@]}; j++)); do
		k=${keys[j]}
		v=$(med "$tmp/fig.vmproc.$k")
		q=$(med "$tmp/fig.qemu.$k")
		r=$(awk -v a="$v" -v b="$q" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
		paste -d' ' "$tmp/fig.vmproc.$k" "$tmp/fig.qemu.$k" |
			awk '{ printf "%.6g\n", ($2 > 0 ? $1 / $2 : 0) }' >"$tmp/pair.$k"
		printf '%-12s %11s %11s %17s  %-15s (%s)\n' "${labels[j]}" "$(num "$v")" "$(num "$q")" "$r" \
			"$(awk -v r="$r" 'BEGIN { print (r >= 1.0 ? "met" : "NOT met") }')" \
			"$(awk -v r="$(med "$tmp/pair.$k")" 'BEGIN { printf "%.2f", r }')"
	done
else
	printf '%-12s %11s\n' figure "$only"
	for ((j = 0; j < ${#keys[@]}; j++)); do
		printf '%-12s %11s\n' "${labels[j]}" "$(num "$(med "$tmp/fig.$only.${keys[j]}")")"
	done
fi
printf 'finished %s (load average %s)\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" \
	"$(cut -d' ' -f1-3 /proc/loadavg)"
