#!/usr/bin/env bash
# What running a program in its own VM costs: `vmproc run /bin/true` next to
# a native fork + exec of /bin/true and next to QEMU -M microvm running the
# same program in the same kind of guest; and the rate at which a program's
# standard output leaves the VM, next to a native pipe. See bench/README.md.
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME and printf must use '.' as decimal point

usage() {
	cat <<EOF
Usage: ${0##*/} [-n N] [-N N] [-r N] [-m MIB] [-b VMPROC] [-i CPIO] [-q] [-d] [-t SECONDS] [-v]

Latency: runs /bin/true N times each with build/vmproc run and with QEMU
-M microvm (the same build/vmlinux; build/initramfs-full.cpio, which holds
busybox, and /bin/true on the kernel command line for the guest init to
run), alternately, and many times natively (fork + exec + wait).
Prints medians of the wall time from process start to exit, and ratios.

Throughput: pipes MIB MiB of zeros out of the guest,
  vmproc run /bin/sh -c 'head -c BYTES /dev/zero' | reader
and natively, head -c BYTES /dev/zero | reader. The reader (bench/timing.c,
built into a temporary directory) times the first byte to the last, so the
VM's boot and teardown are left out. Prints medians in MiB/s and the ratio.

Fails if a run does not work (wrong exit status, output missing, guest
panic); never on a timing.

Options:
  -n N        latency runs per VMM (default 5; each boots a VM)
  -N N        native fork + exec runs (default 1000)
  -r N        throughput runs through vmproc (default 3; each boots a VM;
              natively 3 times as many)
  -m MIB      MiB to pipe per throughput run (default 256; 16 on hosts
              without vmx/svm, whose emulated guest kernel moves about
              0.25 MiB/s: 256 MiB would take 17 minutes a run)
  -b VMPROC   the vmproc CLI (default build/vmproc)
  -i CPIO     vmproc's initramfs (default build/initramfs.cpio)
  -q          no QEMU (latency of vmproc and native only)
  -d          identical guests: QEMU gets vmproc's minimal initramfs and
              build/system.erofs as its virtio-blk disk (/usr), as vmproc
              does, instead of everything in initramfs-full.cpio
  -t SECONDS  give up on one VM after this long (default 900)
  -v          show each VMM's console output after each QEMU boot
  -h          this help
EOF
}

die() {
	printf 'run_vs_native: error: %s\n' "$*" >&2
	exit 1
}

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/.." && pwd -P)
BENCH=run_vs_native
# shellcheck source=bench/qemu_microvm.sh
. "$here/qemu_microvm.sh"

runs=5
native_runs=1000
tput_runs=3
mib=256
grep -qwE 'vmx|svm' /proc/cpuinfo || mib=16
vmproc=$root/build/vmproc
initrd=$root/build/initramfs.cpio
with_qemu=1
same_guest=0
limit=900
verbose=0
while getopts ':n:N:r:m:b:i:qdt:vh' opt; do
	case $opt in
	n) runs=$OPTARG ;;
	N) native_runs=$OPTARG ;;
	r) tput_runs=$OPTARG ;;
	m) mib=$OPTARG ;;
	b) vmproc=$OPTARG ;;
	i) initrd=$OPTARG ;;
	q) with_qemu=0 ;;
	d) same_guest=1 ;;
	t) limit=$OPTARG ;;
	v) verbose=1 ;;
	h) usage; exit 0 ;;
	:) usage >&2; die "-$OPTARG needs an argument" ;;
	*) usage >&2; die "unknown option -$OPTARG" ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { usage >&2; die "unexpected argument: $1"; }
for v in runs native_runs tput_runs mib limit; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v wants a positive number, not '${!v}'"
done

build=$root/build
[ -x "$vmproc" ] || die "$vmproc missing: run make"
vmproc=$(cd -- "$(dirname -- "$vmproc")" && pwd -P)/$(basename -- "$vmproc")
"$vmproc" run --help >/dev/null 2>&1 || die "$vmproc has no 'run' command"
for f in vmlinux initramfs-full.cpio system.erofs; do
	[ -f "$build/$f" ] || die "$build/$f missing: run make"
done
[ -f "$initrd" ] || die "$initrd missing: run make"
[ -w /dev/kvm ] || die "/dev/kvm is not usable"
cc=$(command -v cc) || die "no C compiler (cc) for the reader"
if [ "$with_qemu" = 1 ]; then
	qemu=$(command -v qemu-system-x86_64) ||
		die "qemu-system-x86_64 not found (apt-get install qemu-system-x86, or -q)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/run_vs_native.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Private copies, so that a rebuild of build/ while the benchmark runs
# cannot mix versions; reading them also warms the page cache.
cp -- "$vmproc" "$tmp/vmproc"
for f in vmlinux initramfs-full.cpio system.erofs; do
	cp -- "$build/$f" "$tmp/$f"
done
cp -- "$initrd" "$tmp/initramfs.cpio"
vmproc=$tmp/vmproc kernel=$tmp/vmlinux
"$cc" -std=c11 -O2 -o "$tmp/timing" "$here/timing.c" || die "cannot build bench/timing.c"
bytes=$((mib * 1024 * 1024))
MEM_MIB=128
# --no-snapshot: both VMMs boot their guest (bench/snapshot.sh measures
# spawning from a snapshot, vmproc run's default).
vmproc_args=(run --no-snapshot --kernel "$kernel" --initrd "$tmp/initramfs.cpio" --system "$tmp/system.erofs"
	--memory "$MEM_MIB" --timeout "$limit")

# QEMU's guest: vmproc's kernel command line, and the program for its init
# as a plain word, which the kernel hands to init as argv[1] (a word with
# neither '=' nor '.'). Not after "--": QEMU microvm appends its
# virtio_mmio.device= words at the end, and after "--" they would go to
# init too, leaving the guest without devices.
EXIT_PORT_STATUS=0 # /bin/true's
extra=/bin/true
serial_dev=virtio-serial-device
if [ "$with_qemu" = 1 ]; then
	QEMU_CMDLINE=$(vmproc_guest_cmdline "$vmproc")
	if [ "$same_guest" = 1 ]; then
		qemu_initrd=$tmp/initramfs.cpio
		# shellcheck disable=SC2054 # the commas are QEMU option syntax
		qemu_extra_args=(-drive "file=$tmp/system.erofs,if=none,id=sys,format=raw,readonly=on"
			-device virtio-blk-device,drive=sys)
	else
		qemu_initrd=$tmp/initramfs-full.cpio
	fi
	qemu_cmdline
	cat -- "$qemu" >/dev/null
fi

# --- vmproc runs ---------------------------------------------------------------
# One `vmproc run --trace /bin/true`. Sets v_exit_us (wall clock from
# process start to exit) and v_ready_ms (vmproc's in-process time to the
# guest init being ready, from its trace).
vmproc_true() {
	local out=$tmp/vmproc.out err=$tmp/vmproc.err rc=0 t0 t1
	t0=$(now_us)
	"$vmproc" "${vmproc_args[@]}" --trace /bin/true </dev/null >"$out" 2>"$err" || rc=$?
	t1=$(now_us)
	[ "$rc" -eq 0 ] || fail_run "vmproc run /bin/true: exit status $rc" /dev/null "$err"
	v_exit_us=$((t1 - t0))
	v_ready_ms=$(awk '/^ *guest init ready / { print $4; exit }' "$err")
	[ -n "$v_ready_ms" ] || v_ready_ms=-
}

# One throughput run through vmproc. Sets t_rate (MiB/s, first byte to last)
# and t_wall_ms (the whole pipeline, boot included).
vmproc_pipe() {
	local err=$tmp/pipe.err res t0 t1
	t0=$(now_us)
	res=$("$vmproc" "${vmproc_args[@]}" /bin/sh -c "head -c $bytes /dev/zero" \
		</dev/null 2>"$err" | "$tmp/timing" read) ||
		fail_run "vmproc run ... | reader failed" /dev/null "$err"
	t1=$(now_us)
	rate_of "$res" vmproc "$err"
	t_wall_ms=$(ms $((t1 - t0)))
}

native_pipe() {
	local res
	res=$(head -c "$bytes" /dev/zero | "$tmp/timing" read)
	rate_of "$res" native /dev/null
}

rate_of() { # "BYTES FIRST SPAN_NS" SIDE STDERR: sets t_rate
	local got first span
	read -r got first span <<<"$1"
	[ "$got" -eq "$bytes" ] || fail_run "$2: the reader got $got bytes, not $bytes" /dev/null "$3"
	[ "$span" -gt 0 ] || fail_run "$2: all $got bytes came in one read" /dev/null "$3"
	t_rate=$(awk -v b="$((got - first))" -v s="$span" \
		'BEGIN { printf "%.1f", b / 1048576 / (s / 1e9) }')
}

ratio() { # A B: A/B, to 3 significant digits but never in e-notation
	awk -v a="$1" -v b="$2" 'BEGIN { r = a / b
		if (r >= 100) printf "%.0f", r; else if (r >= 0.01) printf "%.3f", r
		else printf "%.6f", r }'
}

printf 'run_vs_native: %s (%s)\n' "$vmproc" "$(date -r "$tmp/vmproc" '+%F %T')"
printf 'run_vs_native: vmproc command: %s' "$vmproc"
printf ' %q' "${vmproc_args[@]}"
printf ' /bin/true\n'
if [ "$with_qemu" = 1 ]; then
	printf 'run_vs_native: %s\n' "$("$qemu" --version | head -n 1)"
	printf 'run_vs_native: qemu command: %s' "$qemu"
	printf ' %q' "${qemu_args[@]}"
	printf '\n'
fi
printf 'run_vs_native: started %s on %s (%s cores, load average %s)\n' \
	"$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$(uname -n)" "$(nproc)" \
	"$(cut -d' ' -f1-3 /proc/loadavg)"

# --- latency --------------------------------------------------------------------
printf '\nlatency of /bin/true, wall clock from process start to exit:\n'
printf '%-4s %-7s %12s   %s\n' run vmm 'exit ms' '(guest init ready, ms)'
: >"$tmp/v"; : >"$tmp/vr"; : >"$tmp/q"; : >"$tmp/qr"
for ((i = 1; i <= runs; i++)); do
	vmproc_true
	printf '%-4d %-7s %12s   (%s in-process)\n' "$i" vmproc "$(ms "$v_exit_us")" "$v_ready_ms"
	ms "$v_exit_us" >>"$tmp/v"
	[ "$v_ready_ms" = - ] || echo "$v_ready_ms" >>"$tmp/vr"
	if [ "$with_qemu" = 1 ]; then
		qemu_boot
		printf '%-4d %-7s %12s   (%s from process start)\n' "$i" qemu "$(ms "$q_exit_us")" \
			"$(ms "$q_init_us")"
		ms "$q_exit_us" >>"$tmp/q"
		ms "$q_init_us" >>"$tmp/qr"
	fi
done
"$tmp/timing" spawn "$native_runs" /bin/true >"$tmp/n" || die "native /bin/true failed"
native=$(sort -g "$tmp/n" | awk '{ v[NR] = $1 } END {
	m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f", m }')
vm=$(median <"$tmp/v")

printf '\nmedians (ms, wall clock from process start to exit):\n'
printf '%-22s %12s %14s\n' '' 'median ms' 'x native'
printf '%-22s %12s %14s\n' "native fork+exec ($native_runs)" "$native" 1
printf '%-22s %12s %14s\n' "vmproc run ($runs)" "$vm" "$(ratio "$vm" "$native")"
if [ "$with_qemu" = 1 ]; then
	q=$(median <"$tmp/q")
	printf '%-22s %12s %14s\n' "qemu microvm ($runs)" "$q" "$(ratio "$q" "$native")"
	printf 'vmproc/qemu: %s\n' "$(ratio "$vm" "$q")"
	printf 'guest init ready: vmproc %s ms (in-process, from VM creation), qemu %s ms (from process start)\n' \
		"$( [ -s "$tmp/vr" ] && median <"$tmp/vr" || echo -)" "$(median <"$tmp/qr")"
fi

# --- throughput -----------------------------------------------------------------
printf '\nstdout throughput, %d MiB of zeros to a reader, first byte to last:\n' "$mib"
printf '%-4s %-7s %12s   %s\n' run side 'MiB/s' '(whole pipeline, boot included, ms)'
: >"$tmp/tv"; : >"$tmp/tn"
for ((i = 1; i <= tput_runs; i++)); do
	vmproc_pipe
	printf '%-4d %-7s %12s   (%s)\n' "$i" vmproc "$t_rate" "$t_wall_ms"
	echo "$t_rate" >>"$tmp/tv"
done
for ((i = 1; i <= 3 * tput_runs; i++)); do
	native_pipe
	echo "$t_rate" >>"$tmp/tn"
done
tv=$(median <"$tmp/tv")
tn=$(median <"$tmp/tn")
printf '\nmedians (MiB/s):\n'
printf '%-34s %10s\n' "native: head | reader ($((3 * tput_runs)))" "$tn"
printf '%-34s %10s\n' "vmproc run head | reader ($tput_runs)" "$tv"
printf 'vmproc/native: %s\n' "$(ratio "$tv" "$tn")"
printf '\nfinished %s (load average %s)\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" \
	"$(cut -d' ' -f1-3 /proc/loadavg)"
