#!/usr/bin/env bash
# Boots the same guest kernel + initramfs alternately in vmproc and in QEMU
# 7.2 `-M microvm`, N times each, and compares the time from process start
# to the guest init being ready (its 'R' byte on port 0x600) and to the
# guest's poweroff (the VMM process exiting after the init's status byte on
# port 0x601). See bench/README.md.
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME and printf must use '.' as decimal point

usage() {
	cat <<EOF
Usage: ${0##*/} [-n N] [-b VMPROC] [-k VMLINUX] [-i CPIO] [-c WORDS] [-s] [-p] [-t SECONDS] [-v]

Boots build/vmlinux + build/initramfs.cpio alternately in vmproc
(build/vmproc boot) and in QEMU -M microvm, N times each, with 128 MiB of
guest memory and the same kernel command line (apart from the virtio-mmio
device words each VMM adds), and prints per-run times, then for time-to-init
and time-to-poweroff the median for each side and the ratio vmproc/QEMU.

Times are wall clock from just before the VMM process is started:
  init      QEMU: when the guest's 'R' reaches isa-debugcon (port 0x600);
            vmproc: its in-process time to 'R' plus its start-up offset
            (process exit minus its in-process poweroff time), an upper bound.
  poweroff  when the VMM process has exited, after the guest init wrote
            its exit status to port 0x601 (QEMU: isa-debug-exit).
vmproc's own in-process figures (from VM creation start) are shown as well.

Fails if either side does not reach init, panics, or does not exit with
guest status 0.

Options:
  -n N        boots per side (default 5)
  -b VMPROC   the vmproc CLI (default build/vmproc)
  -k VMLINUX  guest kernel (default build/vmlinux)
  -i CPIO     initramfs (default build/initramfs.cpio)
  -c WORDS    extra kernel command-line words for both sides (default
              none). Only words with '=' or known to the kernel: the kernel
              hands an unknown plain word to the guest init, which runs it.
  -s          tuned peer: QEMU's virtio-serial with max_ports=1 (its default
              of 31 ports costs the emulated guest kernel seconds to probe;
              vmproc's console has one port)
  -p          each VMM in its own best configuration instead of an
              identical guest: QEMU as the first bring-up booted it
              (docs/platform.md, "The first bring-up, under QEMU"; its
              documented command line, less words Linux 6.1 does not
              register, plus the same clearcpuid= mask; everything in one
              initramfs, build/initramfs-full.cpio), vmproc with its
              defaults (its own command line; the minimal initramfs plus
              the erofs system image on virtio-blk). Both guests hold the
              same init and the same busybox.
  -t SECONDS  give up on one boot after this long (default 900)
  -v          show each VMM's console output after each boot
  -h          this help
EOF
}

die() {
	printf 'boot_vs_qemu: error: %s\n' "$*" >&2
	exit 1
}

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/.." && pwd -P)
BENCH=boot_vs_qemu
# shellcheck source=bench/qemu_microvm.sh
. "$here/qemu_microvm.sh"

runs=5
kernel=$root/build/vmlinux
initrd=$root/build/initramfs.cpio
vmproc=$root/build/vmproc
limit=900
verbose=0
serial_dev=virtio-serial-device
extra=""
own_best=0
while getopts ':n:b:k:i:c:spt:vh' opt; do
	case $opt in
	n) runs=$OPTARG ;;
	b) vmproc=$OPTARG ;;
	c) extra=$OPTARG ;;
	s) serial_dev=virtio-serial-device,max_ports=1 ;;
	p) own_best=1 ;;
	k) kernel=$OPTARG ;;
	i) initrd=$OPTARG ;;
	t) limit=$OPTARG ;;
	v) verbose=1 ;;
	h) usage; exit 0 ;;
	:) usage >&2; die "-$OPTARG needs an argument" ;;
	*) usage >&2; die "unknown option -$OPTARG" ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { usage >&2; die "unexpected argument: $1"; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "-n wants a positive number, not '$runs'"
[[ $limit =~ ^[1-9][0-9]*$ ]] || die "-t wants seconds, not '$limit'"

qemu=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
[ -x "$vmproc" ] || die "$vmproc missing: run make"
vmproc=$(cd -- "$(dirname -- "$vmproc")" && pwd -P)/$(basename -- "$vmproc")
[ -f "$kernel" ] || die "$kernel missing: run make"
[ -f "$initrd" ] || die "$initrd missing: run make"
[ -w /dev/kvm ] || die "/dev/kvm is not usable"
kernel=$(cd -- "$(dirname -- "$kernel")" && pwd -P)/$(basename -- "$kernel")
initrd=$(cd -- "$(dirname -- "$initrd")" && pwd -P)/$(basename -- "$initrd")

MEM_MIB=128
# QEMU's guest gets the command line vmproc gives its own (see
# vmproc_guest_cmdline in qemu_microvm.sh).
CMDLINE=$(vmproc_guest_cmdline "$vmproc")
QEMU_CMDLINE=$CMDLINE
qemu_initrd_src=$initrd
if [ "$own_best" = 1 ]; then
	# The first bring-up's QEMU recipe (docs/platform.md, "The first
	# bring-up, under QEMU"): "noxsave clearcpuid=<names> mitigations=off
	# nopti nofsgsbase nopcid lpj=10384624 tsc=reliable panic=-1". noxsave
	# and nopti are not registered in 6.1 (the kernel would hand them to
	# init as its program), and the clearcpuid= list this host needs is
	# vmproc's, so that one is reused.
	mask=$(grep -oE 'clearcpuid=[0-9,]+' <<<"$CMDLINE" || true)
	QEMU_CMDLINE="console=hvc0 quiet reboot=k panic=-1 mitigations=off nofsgsbase nopcid"
	QEMU_CMDLINE+=" lpj=10384624 tsc=reliable${mask:+ $mask}"
	qemu_initrd_src=$(dirname -- "$initrd")/initramfs-full.cpio
	[ -f "$qemu_initrd_src" ] || die "$qemu_initrd_src missing: run make"
fi
EXIT_PORT_STATUS=0 # the init's status byte we expect (no program to run)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/boot_vs_qemu.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- one vmproc boot --------------------------------------------------------
# Sets vm_init_us, vm_exit_us (wall clock from process start; init derived)
# and vm_in_init, vm_in_exit (vmproc's own figures, ms as printed).
vmproc_boot() {
	local out=$tmp/vmproc.console err=$tmp/vmproc.err pid rc t0 t1 line
	t0=$(now_us)
	timeout -k 5 "$limit" "$vmproc" "${vmproc_args[@]}" >"$out" 2>"$err" &
	pid=$!
	pids+=("$pid")
	rc=0
	wait "$pid" || rc=$?
	t1=$(now_us)
	forget "$pid"
	check_console vmproc "$out" "$err"
	[ "$rc" -ne 124 ] || fail_run "vmproc: no poweroff within $limit s" "$out" "$err"
	line=$(grep -E '^vmproc: guest booted to init in [0-9.]+ ms and powered off after [0-9.]+ ms' "$err") ||
		fail_run "vmproc: guest did not reach init and power off (exit $rc)" "$out" "$err"
	[ "$rc" -eq "$EXIT_PORT_STATUS" ] ||
		fail_run "vmproc: exit status $rc, wanted $EXIT_PORT_STATUS" "$out" "$err"
	vm_in_init=$(sed -E 's/.* init in ([0-9.]+) ms .*/\1/' <<<"$line")
	vm_in_exit=$(sed -E 's/.* after ([0-9.]+) ms.*/\1/' <<<"$line")
	vm_exit_us=$((t1 - t0))
	# vmproc has no outside-visible signal at 'R'; its time from process
	# start to VM creation start (plus teardown after the poweroff) is
	# wall exit minus in-process exit. Adding it to the in-process time to
	# 'R' gives an upper bound on the wall time from process start to 'R'.
	local in_init_us in_exit_us
	in_init_us=$(awk -v m="$vm_in_init" 'BEGIN { printf "%d", m * 1000 }')
	in_exit_us=$(awk -v m="$vm_in_exit" 'BEGIN { printf "%d", m * 1000 }')
	vm_init_us=$((vm_exit_us - in_exit_us + in_init_us))
	show_console vmproc "$out"
}

printf 'boot_vs_qemu: %d boots each, %d MiB of guest memory\n' "$runs" "$MEM_MIB"
for f in "$vmproc" "$kernel" "$initrd"; do
	printf 'boot_vs_qemu: %s (%s)\n' "$f" "$(date -r "$f" '+%F %T')"
done
# Run private copies, so that a rebuild of build/ while the benchmark runs
# cannot mix versions; reading them also warms the page cache for both.
cp -- "$vmproc" "$tmp/vmproc"
cp -- "$kernel" "$tmp/vmlinux"
cp -- "$initrd" "$tmp/initramfs.cpio"
cp -- "$qemu_initrd_src" "$tmp/qemu-initramfs.cpio"
vmproc=$tmp/vmproc kernel=$tmp/vmlinux initrd=$tmp/initramfs.cpio
qemu_initrd=$tmp/qemu-initramfs.cpio
cat -- "$qemu" >/dev/null
qemu_cmdline
vmproc_args=(boot --kernel "$kernel" --initrd "$initrd" --memory "$MEM_MIB")
# Newer vmproc also attaches build/system.erofs (/usr) by default; QEMU's
# guest gets only the kernel and the initramfs, so vmproc's must too.
if [ "$own_best" = 1 ]; then
	sys=$(dirname -- "$qemu_initrd_src")/system.erofs
	[ -f "$sys" ] || die "$sys missing: run make"
	cp -- "$sys" "$tmp/system.erofs"
	vmproc_args+=(--system "$tmp/system.erofs")
elif "$vmproc" boot -h 2>/dev/null | grep -q -- '--system'; then
	vmproc_args+=(--system '')
fi
[ -z "$extra" ] || vmproc_args+=(--cmdline "$extra")
printf 'boot_vs_qemu: %s\n' "$("$qemu" --version | head -n 1)"
printf 'boot_vs_qemu: kernel command line: %s%s\n    + each VMM'"'"'s virtio_mmio.device= words\n' \
	"$CMDLINE" "${extra:+ $extra}"
[ "$own_best" = 0 ] || printf 'boot_vs_qemu: QEMU command line (-p): %s\nboot_vs_qemu: QEMU initramfs (-p): %s\n' \
	"$QEMU_CMDLINE" "${qemu_initrd_src##*/}"
printf 'boot_vs_qemu: qemu command: %s' "$qemu"
printf ' %q' "${qemu_args[@]}"
printf '\n'
printf 'boot_vs_qemu: vmproc command: %s' "$vmproc"
printf ' %q' "${vmproc_args[@]}"
printf '\n'
printf 'boot_vs_qemu: started %s on %s (%s cores, load average %s)\n' \
	"$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$(uname -n)" "$(nproc)" \
	"$(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n%-4s %-7s %12s %12s   %s\n' run vmm 'init ms' 'poweroff ms' \
	'(vmproc in-process: init / poweroff ms)'

: >"$tmp/vi"; : >"$tmp/ve"; : >"$tmp/vii"; : >"$tmp/vie"; : >"$tmp/qi"; : >"$tmp/qe"
: >"$tmp/ri"; : >"$tmp/re"
for ((i = 1; i <= runs; i++)); do
	vmproc_boot
	printf '%-4d %-7s %12s %12s   (%s / %s)\n' "$i" vmproc "$(ms "$vm_init_us")" \
		"$(ms "$vm_exit_us")" "$vm_in_init" "$vm_in_exit"
	ms "$vm_init_us" >>"$tmp/vi"
	ms "$vm_exit_us" >>"$tmp/ve"
	echo "$vm_in_init" >>"$tmp/vii"
	echo "$vm_in_exit" >>"$tmp/vie"
	qemu_boot
	printf '%-4d %-7s %12s %12s\n' "$i" qemu "$(ms "$q_init_us")" "$(ms "$q_exit_us")"
	ms "$q_init_us" >>"$tmp/qi"
	ms "$q_exit_us" >>"$tmp/qe"
	# Each pair ran back to back, under about the same load from others.
	awk -v a="$vm_init_us" -v b="$q_init_us" 'BEGIN { printf "%.4f\n", a / b }' >>"$tmp/ri"
	awk -v a="$vm_exit_us" -v b="$q_exit_us" 'BEGIN { printf "%.4f\n", a / b }' >>"$tmp/re"
done

vi=$(median <"$tmp/vi"); ve=$(median <"$tmp/ve")
vii=$(median <"$tmp/vii"); vie=$(median <"$tmp/vie")
qi=$(median <"$tmp/qi"); qe=$(median <"$tmp/qe")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
verdict() { awk -v r="$1" 'BEGIN { print (r <= 0.5 ? "met" : "NOT met") }'; }

printf '\nmedians of %d boots (wall clock from process start, ms):\n' "$runs"
pair_median() { sort -g "$1" | awk '{ v[NR] = $1 } END {
	printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-10s %12s %12s %12s   %-13s  %s\n' '' vmproc qemu vmproc/qemu 'target <= 0.5' \
	'(median of per-pair ratios)'
printf '%-10s %12s %12s %12s   %-13s  (%s)\n' init "$vi" "$qi" "$(ratio "$vi" "$qi")" \
	"$(verdict "$(ratio "$vi" "$qi")")" "$(pair_median "$tmp/ri")"
printf '%-10s %12s %12s %12s   %-13s  (%s)\n' poweroff "$ve" "$qe" "$(ratio "$ve" "$qe")" \
	"$(verdict "$(ratio "$ve" "$qe")")" "$(pair_median "$tmp/re")"
printf 'vmproc in-process medians (from VM creation start): init %s ms, poweroff %s ms\n' \
	"$vii" "$vie"
printf 'finished %s (load average %s)\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" \
	"$(cut -d' ' -f1-3 /proc/loadavg)"
