#!/usr/bin/env bash
# End-to-end tests of `vmproc run`, the way a user calls it: exit codes,
# environment, working directory, user, standard streams and -t.
#
# Usage: tests/e2e/test_cli_run.sh [VMPROC]   (default: build/vmproc)
#
# Every case boots a VM (about 20 s where guest-kernel code is emulated),
# so the cases are few, each checks several things, and all of them boot
# at once. Prints "PASS name" / "FAIL name: why" per check, as the C tests
# do, then a summary; exits non-zero if a check failed.
set -u
vmproc=${1:-build/vmproc}
[ -x "$vmproc" ] || {
	echo "FAIL test_cli_run: $vmproc is not an executable"
	exit 1
}
testdata=$(cd "$(dirname "$0")/../../guest/catsay/testdata" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Far beyond one boot, so a hung guest fails its case instead of the suite.
LIMIT=900

passed=0
failed=0
pass() {
	echo "PASS $1"
	passed=$((passed + 1))
}
fail() {
	echo "FAIL $1: $2"
	failed=$((failed + 1))
}
# check NAME WHY COMMAND...: passes if COMMAND succeeds, else fails with WHY.
check() {
	local name=$1 why=$2
	shift 2
	if "$@"; then pass "$name"; else fail "$name" "$why"; fi
}
# Output of case NAME: $tmp/NAME.out, .err, .rc.
out() { tr -d '\r' <"$tmp/$1.out"; }
rc() { cat "$tmp/$1.rc"; }

# --- the cases, all started at once ----------------------------------------
run_case() { # NAME STDIN-FILE COMMAND...
	local name=$1 input=$2
	shift 2
	"$@" <"$input" >"$tmp/$name.out" 2>"$tmp/$name.err"
	echo $? >"$tmp/$name.rc"
}

# Exit code, -e, -w, -u, stderr, and stdin empty with -n, in one VM.
echo 'not for the program' >"$tmp/input"
# shellcheck disable=SC2016 # expanded by the guest's shell
run_case program "$tmp/input" "$vmproc" run -n --timeout "$LIMIT" -e 'GREETING=hello world' \
	-e EMPTY= -w /tmp -u 5:6 -- /bin/sh -c \
	'cat; echo "$GREETING|${EMPTY-unset}|$(pwd)|$(id -u):$(id -g)"; echo to-stderr >&2; exit 3' &
# 127: no such program; and a cold boot (every other case starts from
# the snapshot cache, which the first of them builds).
run_case missing /dev/null "$vmproc" run --no-snapshot --timeout "$LIMIT" /nonexistent/program &
# The README's demo as written: a pipe on stdin is streamed without -i.
# shellcheck disable=SC2016 # expanded by the inner shell
run_case catsay "$testdata/hello.in" sh -c 'cat | "$0" run --timeout "$1" /bin/catsay' \
	"$vmproc" "$LIMIT" &
# -t -i on a terminal (script(1) gives vmproc one): the guest's terminal
# has the host's size, input arrives, and the host terminal is restored.
# The program then dies of SIGTERM: vmproc exits 128+15.
printf 'typed\n' >"$tmp/typed"
# shellcheck disable=SC2016 # expanded by the shells inside
tty_cmd='stty rows 33 cols 101; '"$vmproc"' run --timeout '"$LIMIT"' -t -i /bin/sh -c '\''busybox tty; busybox stty size; read x; echo "got $x"; kill -TERM $$'\''; echo "rc=$?"; stty -a'
run_case tty "$tmp/typed" script -qec "$tty_cmd" /dev/null &
# -t -i, and a raw terminal restored on every way out: while vmproc is
# stopped (SIGTSTP; raw again once continued) and after SIGQUIT, which
# goes to the program (128+3). In script(1)'s terminal, vmproc runs in
# the foreground while a helper signals it and says how the terminal is
# set at each step.
cat >"$tmp/quit.sh" <<'EOF'
vmproc=$1 out=$2 limit=$3 shell=$$
ulimit -c 0
icanon() { stty -a </dev/tty | grep -o -- '-\?icanon'; }
state() { cut -d' ' -f3 "/proc/$1/stat"; }
(
	i=0
	while ! grep -q started "$out" && [ $i -lt "$limit" ]; do sleep 1; i=$((i + 1)); done
	pid=$(pgrep -P "$shell" -x vmproc)
	echo "running: $(icanon)"
	kill -TSTP "$pid"
	i=0
	while [ "$(state "$pid")" != T ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	echo "stopped: $(state "$pid") $(icanon)"
	kill -CONT "$pid"
	i=0
	while [ "$(icanon)" != -icanon ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	echo "continued: $(icanon)"
	kill -QUIT "$pid"
) &
# As from an interactive shell: the test runs in the background, where
# SIGINT and SIGQUIT are inherited ignored (and vmproc leaves them so).
env --default-signal=INT,QUIT "$vmproc" run --timeout "$limit" -t -i /bin/sh -c \
	'echo started; exec sleep 600'
echo "rc=$?"
wait
echo "after: $(icanon)"
EOF
run_case quit /dev/null script -qec "sh $tmp/quit.sh $vmproc $tmp/quit.out $LIMIT" /dev/null &
# --timeout ends a guest that is not done in time (here: still booting).
run_case timeout /dev/null "$vmproc" run --timeout 2 /bin/sleep 100 &
# -v: a read-write and a read-only share; --root: a host tree as /.
mkdir -p "$tmp/rw" "$tmp/ro:colon" "$tmp/root/bin" "$tmp/root/etc"
echo 'from the host' >"$tmp/ro:colon/f"
cp /bin/busybox "$tmp/root/bin/busybox" && ln -s busybox "$tmp/root/bin/sh" &&
	ln -s busybox "$tmp/root/bin/cat"
echo 'root tree' >"$tmp/root/etc/hostname"
# shellcheck disable=SC2016 # expanded by the guest's shell
run_case volumes /dev/null "$vmproc" run --timeout "$LIMIT" -v "$tmp/rw:/mnt/rw" \
	-v "$tmp/ro:colon:/mnt/ro:ro" /bin/sh -c \
	'cat /mnt/ro/f; echo guest > /mnt/rw/g; echo no > /mnt/ro/h || echo refused' &
run_case root /dev/null "$vmproc" run --timeout "$LIMIT" --root "$tmp/root:ro" \
	/bin/sh -c 'cat /etc/hostname; echo x > /etc/hostname || echo refused' &
# The lock-down: while the guest's program runs, vmproc is under its
# seccomp filter with no_new_privs (/proc/PID/status), unless
# --no-lockdown; signals still reach the program (SIGTERM: 128+15), but
# not SIGINT, which this background job inherited ignored.
lockdown_case() { # NAME VMPROC-RUN-OPTIONS...
	local name=$1 pid i
	shift
	"$vmproc" run --timeout "$LIMIT" "$@" /bin/sh -c 'echo started; exec sleep 600' \
		</dev/null >"$tmp/$name.out" 2>"$tmp/$name.err" &
	pid=$!
	for ((i = 0; i < LIMIT; i++)); do
		grep -q started "$tmp/$name.out" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	grep -E '^(Seccomp|NoNewPrivs):' "/proc/$pid/status" | tr -d '\t' | tr '\n' ' ' \
		>"$tmp/$name.status"
	kill -INT "$pid"
	sleep 1
	kill -TERM "$pid"
	wait "$pid"
	echo $? >"$tmp/$name.rc"
}
lockdown_case locked &
lockdown_case unlocked --no-lockdown &
wait

# --- checks -----------------------------------------------------------------
check run_exit_code "exit status $(rc program), wanted 3" \
	[ "$(rc program)" = 3 ]
check run_env_workdir_user "stdout '$(out program)', wanted 'hello world||/tmp|5:6'" \
	[ "$(out program | tail -n 1)" = "hello world||/tmp|5:6" ]
check run_stderr "stderr '$(head -c 300 "$tmp/program.err")'" \
	grep -qx to-stderr "$tmp/program.err"

check run_not_found_127 "exit status $(rc missing), wanted 127; stderr: $(head -c 300 "$tmp/missing.err")" \
	[ "$(rc missing)" = 127 ]
check run_not_found_message "no message on stderr" \
	grep -q '^vmproc: ' "$tmp/missing.err"

check run_stdin_pipe_streamed "exit status $(rc catsay), stdout: $(head -c 300 "$tmp/catsay.out")" \
	cmp -s "$tmp/catsay.out" "$testdata/hello.out"

check run_stdin_null_with_n "stdout '$(out program)': the program read its input despite -n" \
	[ "$(grep -c 'not for the program' "$tmp/program.out")" = 0 ]

tty_out=$(out tty)
check run_tty_is_terminal "output: $tty_out" \
	grep -q '^/dev/pts/' <<<"$tty_out"
check run_tty_size "no '33 101' in the output: $tty_out" \
	grep -qx '33 101' <<<"$tty_out"
check run_tty_input "no 'got typed' in the output: $tty_out" \
	grep -qx 'got typed' <<<"$tty_out"
check run_signal_128_plus_n "no 'rc=143' (SIGTERM) in the output: $tty_out" \
	grep -qx 'rc=143' <<<"$tty_out"
check run_tty_terminal_restored "host terminal left raw: $tty_out" \
	grep -qx -- 'icanon' <<<"$(grep -o -- '-\?icanon' <<<"$tty_out")"

check run_lockdown_seccomp "vmproc's status while the guest ran: '$(cat "$tmp/locked.status")', exit $(rc locked); stderr: $(head -c 300 "$tmp/locked.err")" \
	[ "$(cat "$tmp/locked.status")|$(rc locked)" = "NoNewPrivs:1 Seccomp:2 |143" ]
check run_no_lockdown "vmproc --no-lockdown's status: '$(cat "$tmp/unlocked.status")', exit $(rc unlocked); stderr: $(head -c 300 "$tmp/unlocked.err")" \
	[ "$(cat "$tmp/unlocked.status")|$(rc unlocked)" = "NoNewPrivs:0 Seccomp:0 |143" ]

quit_out=$(out quit | grep -E '^(running|stopped|continued|rc|after)' | tr '\n' '|')
check run_tty_stop_restores "$quit_out" \
	grep -q '^running: -icanon|stopped: T icanon|continued: -icanon|' <<<"$quit_out"
check run_tty_sigquit_restores "$quit_out" \
	grep -q '|rc=131|after: icanon|$' <<<"$quit_out"

check run_timeout_124 "exit status $(rc timeout), wanted 124; stderr: $(head -c 300 "$tmp/timeout.err")" \
	[ "$(rc timeout)" = 124 ]

# --- no VM needed -----------------------------------------------------------
"$vmproc" run -e NOEQUALS /bin/true >/dev/null 2>&1
usage_rc=$?
check run_usage_error_125 "a malformed -e exited $usage_rc, wanted 125" \
	[ "$usage_rc" = 125 ]
help=$("$vmproc" run --help)
help_rc=$?
check run_help "vmproc run --help exited $help_rc" \
	[ "$help_rc" = 0 ]
check run_help_exit_codes "exit codes missing from vmproc run --help" \
	grep -q '127 *the program was not found' <<<"$help"
version=$("$vmproc" --version 2>&1)
check version "vmproc --version: $version" \
	grep -qE '^vmproc [0-9]+\.[0-9]+\.[0-9]+$' <<<"$version"

check run_volumes "exit $(rc volumes), stdout '$(out volumes)', stderr $(head -c 300 "$tmp/volumes.err")" \
	[ "$(rc volumes):$(out volumes | tr '\n' '|')" = "0:from the host|refused|" ]
check run_volume_written "the guest's file is not on the host" \
	grep -qx guest "$tmp/rw/g"
check run_volume_read_only "the read-only share took a file" \
	[ ! -e "$tmp/ro:colon/h" ]
check run_root_read_only "exit $(rc root), stdout '$(out root)', stderr $(head -c 300 "$tmp/root.err")" \
	[ "$(rc root):$(out root | tr '\n' '|')" = "0:root tree|refused|" ]
"$vmproc" run -v nonsense /bin/true >/dev/null 2>"$tmp/badvol.err"
badvol_rc=$?
check run_volume_usage_125 "-v nonsense exited $badvol_rc: $(cat "$tmp/badvol.err")" \
	[ "$badvol_rc" = 125 ]
"$vmproc" run -v "$tmp/no-such-dir:/x" /bin/true >/dev/null 2>"$tmp/novol.err"
novol_rc=$?
check run_volume_missing_125 "a missing share exited $novol_rc: $(cat "$tmp/novol.err")" \
	[ "$novol_rc:$(grep -c 'no-such-dir' "$tmp/novol.err")" = "125:1" ]

# A VM option the library refuses is a usage error (125) with the
# library's message, before anything boots: the kernel named first does
# not exist, so a boot would fail with another message. One limit, the
# library's, for every subcommand (snapshot build took up to 1024 once).
bad_option() { # NAME WANTED-STDERR VMPROC-ARGS...
	local name=$1 want=$2
	shift 2
	VMPROC_CACHE_DIR=$tmp/bad-option-cache "$vmproc" "$@" </dev/null >/dev/null 2>"$tmp/$name.err"
	local rc=$?
	check "$name" "exit $rc, stderr '$(cat "$tmp/$name.err")', wanted 125, '$want'" \
		[ "$rc:$(cat "$tmp/$name.err")" = "125:$want" ]
}
bad_option snapshot_build_cpus_1024 "vmproc: --cpus: vCPUs must be 1..64, not 1024" \
	snapshot build --kernel /nonexistent/vmlinux --cpus 1024
bad_option run_cpus_65 "vmproc: --cpus: vCPUs must be 1..64, not 65" \
	run --kernel /nonexistent/vmlinux --cpus 65 /bin/true
bad_option boot_memory_8 "vmproc: --memory: memory must be 16..65536 MiB, not 8" \
	boot --kernel /nonexistent/vmlinux --memory 8
check bad_option_no_snapshot "a snapshot cache appeared: $(ls -A "$tmp/bad-option-cache" 2>&1)" \
	[ ! -e "$tmp/bad-option-cache" ]

# vmproc snapshot, on an empty cache of our own.
snapdir=$tmp/snapshots
VMPROC_CACHE_DIR=$snapdir "$vmproc" snapshot list >"$tmp/list.out" 2>&1
list_rc=$?
check snapshot_list_empty "exit $list_rc: $(cat "$tmp/list.out")" \
	grep -q 'no snapshots' "$tmp/list.out"
mkdir -p "$snapdir" && echo junk >"$snapdir/0123.snap"
VMPROC_CACHE_DIR=$snapdir "$vmproc" snapshot clear >"$tmp/clear.out" 2>&1
clear_rc=$?
left=$(ls "$snapdir")
check snapshot_clear "exit $clear_rc, $(cat "$tmp/clear.out"), left: $left" \
	[ "$clear_rc:$left" = "0:" ]
"$vmproc" snapshot frobnicate >/dev/null 2>&1
bad_rc=$?
check snapshot_unknown_125 "vmproc snapshot frobnicate exited $bad_rc" [ "$bad_rc" = 125 ]
"$vmproc" snapshot --help >"$tmp/shelp.out" 2>&1
help_rc=$?
check snapshot_help "vmproc snapshot --help exited $help_rc" [ "$help_rc" = 0 ]

echo "test_cli_run.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
