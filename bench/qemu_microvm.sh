# shellcheck shell=bash
# QEMU microvm as a benchmark peer, and helpers the benchmarks share.
# Sourced (not run) by boot_vs_qemu.sh and run_vs_native.sh, which define
# die() and set BENCH (their name, for messages), tmp (a private
# directory), limit (seconds per boot), verbose (0 or 1), qemu, and for
# qemu_cmdline/qemu_boot the variables listed there.
# shellcheck disable=SC2154,SC2034 # those variables, and the results set here

# Prints the kernel command line vmproc gives its own guest (src/vmm/vm.c:
# base_cmdline, plus emulated_cmdline on hosts without vmx/svm), read from
# the vmproc binary under test so the two cannot drift apart, minus
# vmproc's virtio_mmio.device= word. QEMU microvm appends
# " virtio_mmio.device=512@0x...:N" itself for each virtio-mmio transport
# with a device plugged, but only with acpi=off (auto-kernel-cmdline).
# The clearcpuid= word: on a PVM host the guest runs CPUID natively
# (docs/platform.md, "CPUID runs natively"), so neither vmproc's CPUID
# mask nor QEMU's qemu64 model hides XSAVE, SMAP, ...; without it the
# kernel dies on xrstor.
vmproc_guest_cmdline() { # VMPROC
	local cmdline emulated
	cmdline=$(strings -n 16 -- "$1" | grep -m 1 -E '^console=hvc0 quiet ' || true)
	if [ -z "$cmdline" ]; then
		cmdline="console=hvc0 quiet reboot=k panic=-1 mitigations=off tsc=reliable"
		printf '%s: warning: no command line found in %s; assuming "%s"\n' \
			"$BENCH" "$1" "$cmdline" >&2
	fi
	if ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
		emulated=$(strings -n 16 -- "$1" | grep -m 1 -E '^ ?clearcpuid=' || true)
		[ -n "$emulated" ] ||
			die "$1 has no clearcpuid= words for this emulated-KVM host"
		cmdline="$cmdline ${emulated# }"
	fi
	printf '%s\n' "$cmdline"
}

pids=() # background processes still running
forget() { # PID: drop it from pids
	local p keep=()
	for p in "${pids[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	pids=("${keep[@]}")
}
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -- "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf -- "$tmp"
}
qemu_extra_args=()

now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
ms() { printf '%d.%d\n' $(($1 / 1000)) $(($1 % 1000 / 100)); } # µs -> "ms.d"

# Shows the end of a console log and the VMM's stderr, then dies.
fail_run() { # WHAT CONSOLE STDERR
	{
		printf '\n--- %s: console (last 40 lines) ---\n' "$1"
		tail -n 40 -- "$2" 2>/dev/null || true
		printf -- '--- %s: stderr ---\n' "$1"
		cat -- "$3" 2>/dev/null || true
		printf -- '---\n'
	} >&2
	die "$1"
}

check_console() { # SIDE CONSOLE STDERR
	if grep -qE 'Kernel panic|BUG:|Oops' -- "$2"; then
		fail_run "$1: guest kernel panicked or oopsed" "$2" "$3"
	fi
}

show_console() { # SIDE CONSOLE
	[ "$verbose" = 1 ] || return 0
	printf -- '--- %s console ---\n' "$1"
	cat -- "$2"
	printf -- '---\n'
}
# --- one QEMU boot ----------------------------------------------------------
# Reads the isa-debugcon fifo, printing "TIME_US BYTE" per byte until EOF.
debugcon_reader() { # FIFO
	local c t
	exec 3<"$1"
	while IFS= read -r -N 1 -u 3 c; do
		t=$EPOCHREALTIME
		printf '%s %d\n' "${t/./}" "'$c"
	done
}

# acpi=off: our kernel has no ACPI, and only without ACPI does microvm put
# its virtio-mmio devices on the kernel command line. isa-debugcon and
# isa-debug-exit sit on microvm's ISA bus at vmproc's event and exit ports.
# Sets qemu_args from MEM_MIB, kernel, qemu_initrd, QEMU_CMDLINE, extra,
# serial_dev and qemu_extra_args (more devices, may be empty).
# shellcheck disable=SC2054 # the commas are QEMU option syntax
qemu_cmdline() {
	qemu_console=$tmp/qemu.console
	qemu_debugcon=$tmp/debugcon.fifo
	qemu_args=(
		-M microvm,acpi=off,x-option-roms=off,rtc=off,isa-serial=off
		-enable-kvm -cpu qemu64,+xsaveerptr -m "${MEM_MIB}M" -smp 1
		-nodefaults -no-user-config -display none -no-reboot
		-kernel "$kernel" -initrd "$qemu_initrd" -append "$QEMU_CMDLINE${extra:+ $extra}"
		-device "$serial_dev"
		-chardev "file,id=con,path=$qemu_console" -device virtconsole,chardev=con
		-chardev "file,id=dbg,path=$qemu_debugcon"
		-device isa-debugcon,iobase=0x600,chardev=dbg
		-device isa-debug-exit,iobase=0x601,iosize=1
		"${qemu_extra_args[@]}"
	)
}

# QEMU does not exit on a KVM emulation failure: it stops the VM and waits.
qemu_watch() { # PID STDERR
	while kill -0 "$1" 2>/dev/null; do
		if grep -q 'KVM internal error' -- "$2"; then
			kill -- "$1" 2>/dev/null || true
			return
		fi
		sleep 1
	done
}

# Boots QEMU once with qemu_args; fails unless the guest init exits with
# EXIT_PORT_STATUS. Sets q_init_us, q_exit_us (wall clock from process start).
qemu_boot() {
	local out=$qemu_console err=$tmp/qemu.err dbg=$tmp/debugcon
	local fifo=$qemu_debugcon pid rpid wpid rc t0 t1 status fd r
	rm -f -- "$fifo" "$out" "$dbg"
	mkfifo -- "$fifo"
	debugcon_reader "$fifo" >"$dbg" &
	rpid=$!
	pids+=("$rpid")
	t0=$(now_us)
	timeout -k 5 "$limit" "$qemu" "${qemu_args[@]}" </dev/null >"$err" 2>&1 &
	pid=$!
	pids+=("$pid")
	qemu_watch "$pid" "$err" &
	wpid=$!
	pids+=("$wpid")
	rc=0
	wait "$pid" || rc=$?
	t1=$(now_us)
	forget "$pid"
	kill -- "$wpid" 2>/dev/null || true
	wait "$wpid" 2>/dev/null || true
	forget "$wpid"
	# Unblock a reader still waiting in open() (QEMU never opened the fifo):
	# an O_RDWR open counts as a writer and never blocks; closing it gives
	# the reader EOF.
	exec {fd}<>"$fifo"
	exec {fd}>&-
	wait "$rpid" || true
	forget "$rpid"
	touch -- "$out"
	if grep -q 'KVM internal error' -- "$err"; then
		fail_run "qemu: KVM could not emulate a guest instruction" "$out" "$err"
	fi
	check_console qemu "$out" "$err"
	[ "$rc" -ne 124 ] || fail_run "qemu: no poweroff within $limit s" "$out" "$err"
	r=$(awk '$2 == 82 { print $1; exit }' "$dbg") # 82 = 'R'
	[ -n "$r" ] || fail_run "qemu: guest init never wrote 'R' to port 0x600 (exit $rc)" "$out" "$err"
	# isa-debug-exit makes QEMU exit with (value << 1) | 1.
	if [ $((rc & 1)) -ne 1 ] || [ "$rc" -ge 124 ]; then
		fail_run "qemu: exit $rc, not through isa-debug-exit (a reset or a panic?)" "$out" "$err"
	fi
	status=$(((rc - 1) >> 1))
	[ "$status" -eq "$EXIT_PORT_STATUS" ] ||
		fail_run "qemu: guest exit status $status, wanted $EXIT_PORT_STATUS" "$out" "$err"
	q_init_us=$((r - t0))
	q_exit_us=$((t1 - t0))
	show_console qemu "$out"
}

median() { # values (ms) on stdin, one a line
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) printf "%.1f", v[(NR + 1) / 2]
		else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}


# --- virtio-fs: QEMU's vhost-user-fs-device served by virtiofsd -------------
# Used by virtiofs.sh. Besides the variables above: MEM_MIB (as for
# qemu_cmdline) and virtiofsd (the daemon's path).

# Appends to qemu_extra_args a vhost-user-fs device with tag TAG on the
# vhost-user socket SOCKET, and what it needs on microvm:
# - guest RAM that virtiofsd can map: a shared memfd backend of MEM_MIB
#   (as -m). A second -machine option merges into qemu_cmdline's -M.
# - virtio 1.0 transports: microvm's virtio-mmio is legacy (version 1) by
#   default, which libvhost-user refuses ("virtio legacy devices aren't
#   supported by libvhost-user"): virtiofsd then exits and the guest's
#   mount waits forever. The global applies to every virtio-mmio
#   transport, the console's too.
# shellcheck disable=SC2054 # the commas are QEMU option syntax
qemu_add_virtiofs() { # SOCKET TAG
	qemu_extra_args+=(
		-object "memory-backend-memfd,id=vfsmem,size=${MEM_MIB}M,share=on"
		-machine memory-backend=vfsmem
		-global virtio-mmio.force-legacy=false
		-chardev "socket,id=vfs,path=$1"
		-device "vhost-user-fs-device,chardev=vfs,tag=$2"
	)
}

# Starts $virtiofsd serving DIR on SOCKET (more virtiofsd options after
# LOG), its output to LOG, and waits until it listens. Sets vfsd_pid (also
# in pids). With its default sandbox (namespaces) virtiofsd forks; the
# child dies with the parent (PR_SET_PDEATHSIG), so vfsd_pid is enough.
virtiofsd_start() { # DIR SOCKET LOG [OPTIONS...]
	local dir=$1 sock=$2 log=$3 i
	shift 3
	rm -f -- "$sock"
	"$virtiofsd" --socket-path="$sock" -o source="$dir" "$@" </dev/null >"$log" 2>&1 &
	vfsd_pid=$!
	pids+=("$vfsd_pid")
	for ((i = 0; i < 200; i++)); do
		[ -S "$sock" ] && return 0
		kill -0 "$vfsd_pid" 2>/dev/null || break
		sleep 0.05
	done
	fail_run "virtiofsd did not start listening on $sock" /dev/null "$log"
}

# Stops the virtiofsd of virtiofsd_start (it also exits by itself when
# QEMU closes the socket).
virtiofsd_stop() {
	kill -- "$vfsd_pid" 2>/dev/null || true
	wait "$vfsd_pid" 2>/dev/null || true
	forget "$vfsd_pid"
}
