/* The guest/host ABI between vmproc's VMM and its guest init.
 *
 * Shared by the VMM (src/) and the guest init (guest/init/). Both sides
 * include this file; it must stay free of anything but constants.
 *
 * The init talks to the VMM through two I/O ports that it may write from
 * user space after ioperm(). A port write is the cheapest possible signal
 * on hosts whose KVM emulates guest-kernel code: one VM exit, no guest
 * kernel work. The layout is compatible with QEMU's isa-debugcon (event
 * port) and isa-debug-exit (exit port), so the same guest runs unchanged
 * under QEMU for side-by-side benchmarks.
 */
#ifndef VMPROC_ABI_H
#define VMPROC_ABI_H

/* Event port: 8-bit writes of one of the VMPROC_EVENT_* codes. */
#define VMPROC_ABI_EVENT_PORT 0x600
/* Init has mounted its file systems and is ready for work. */
#define VMPROC_EVENT_READY 'R'

/* Exit port: an 8-bit write ends the VM. The value is the guest's exit
 * status in shell convention: 0-127 an exit code, 128+N death by signal N.
 * The init writes it after sync(), so nothing is left to flush. */
#define VMPROC_ABI_EXIT_PORT 0x601

/* Prewarming: the kernel command-line word
 *
 *   vmproc_prewarm=PATH[,PATH...]
 *
 * (which the kernel hands to init as an environment variable) makes init
 * read each PATH, following symlinks, to its end just before it reports
 * VMPROC_EVENT_READY, so that the guest's page cache and dentry cache
 * hold those files. A snapshot taken at READY then has them, and a VM
 * restored from it runs the program without reading it from the disk
 * (which costs seconds when guest-kernel code is emulated). At most
 * VMPROC_PREWARM_MAX paths, each shorter than VMPROC_PREWARM_PATH_MAX
 * bytes; entries beyond those limits, and paths that are missing,
 * unreadable or not regular files, are skipped with a console line. Empty
 * entries are ignored. Init always becomes ready. (No dot in the name:
 * the kernel drops unknown words whose name has one.) */
#define VMPROC_ABI_PREWARM_ENV  "vmproc_prewarm"
#define VMPROC_PREWARM_MAX      16
#define VMPROC_PREWARM_PATH_MAX 256

/* --- The command channel --------------------------------------------
 *
 * When the VMM runs a command (vmproc_spawn), it attaches a virtio-console
 * device with VIRTIO_CONSOLE_F_MULTIPORT as virtio1, right after the
 * console, and puts VMPROC_ABI_CHANNEL_WORD on the kernel command line,
 * which the kernel hands to init as an environment variable. The device's
 * four ports appear in the guest as /dev/vport1p0..3 (virtio index 1, port
 * id), named in sysfs as below:
 *
 *   port 0  vmproc.ctl     messages, both directions (below)
 *   port 1  vmproc.stdin   host to guest: the program's standard input
 *   port 2  vmproc.stdout  guest to host: its standard output
 *   port 3  vmproc.stderr  guest to host: its standard error
 *
 * Standard input reaches EOF when the host closes its side of the port
 * (the guest then reads 0). The host keeps stdout and stderr open for the
 * VM's whole life: a guest write to a port the host has closed would
 * block. vmproc's VMM takes a port's data inside the guest's notify
 * (the write's VM exit), so by the time a guest write returns the bytes
 * are with the host, and what the program wrote before it exited is
 * there before init reports the exit. (A VMM that handles notifies
 * asynchronously must drain the channel before acting on the exit port.)
 * The host opens its side of a port when the guest reports the port
 * ready, during boot; a port read before that would see end of file.
 *
 * After VMPROC_EVENT_READY, init opens the ports and reads messages from
 * the control port: the command's description (with the VM's own wall
 * clock and random seed, TIME and SEED below), then VMPROC_MSG_RUN. It
 * starts the program, and from then on takes signal and window-size
 * messages until the program exits; it then sends VMPROC_MSG_EXITED (or
 * VMPROC_MSG_EXEC_FAILED), and writes the exit port.
 *
 * Every message is a header and len bytes of payload, integers little
 * endian. Strings are not NUL-terminated and must not contain NUL. */
#define VMPROC_ABI_CHANNEL_WORD  "vmproc_channel=1"
#define VMPROC_ABI_CHANNEL_ENV   "vmproc_channel"
#define VMPROC_ABI_CHANNEL_PORTS 4
#define VMPROC_ABI_PORT_CTL      0
#define VMPROC_ABI_PORT_STDIN    1
#define VMPROC_ABI_PORT_STDOUT   2
#define VMPROC_ABI_PORT_STDERR   3
/* clang-format off */
#define VMPROC_ABI_PORT_NAMES {"vmproc.ctl", "vmproc.stdin", "vmproc.stdout", "vmproc.stderr"}
/* clang-format on */
#define VMPROC_ABI_DEV_CTL    "/dev/vport1p0"
#define VMPROC_ABI_DEV_STDIN  "/dev/vport1p1"
#define VMPROC_ABI_DEV_STDOUT "/dev/vport1p2"
#define VMPROC_ABI_DEV_STDERR "/dev/vport1p3"

struct vmproc_msg_hdr {
	unsigned int type; /* VMPROC_MSG_* */
	unsigned int len;  /* payload bytes that follow, at most VMPROC_MSG_MAX */
};
#define VMPROC_MSG_MAX (1u << 20)

/* Host to guest, before RUN: the command. Any order, except that ARGs
 * are argv in order. */
#define VMPROC_MSG_ARG 1 /* one argv word (ARG 0 is argv[0]) */
#define VMPROC_MSG_ENV 2 /* one "KEY=VALUE"; the program gets exactly these */
#define VMPROC_MSG_CWD 3 /* working directory (default "/") */
#define VMPROC_MSG_UID 4 /* u32 user id (default 0) */
#define VMPROC_MSG_GID 5 /* u32 group id, also the only group (default 0) */
#define VMPROC_MSG_TTY 6 /* u16 rows, u16 cols: run on a pty of this size */
#define VMPROC_MSG_PROGRAM                                                                         \
	7                /* the file to execute (default ARG 0); without a                         \
	                  * slash it is searched in the PATH of ENV */
#define VMPROC_MSG_RUN 8 /* empty: start the program */
/* Host to guest, any time after RUN (before RUN they are kept until the
 * program starts). */
#define VMPROC_MSG_SIGNAL  9  /* u32 signal number, sent to the program */
#define VMPROC_MSG_WINSIZE 10 /* u16 rows, u16 cols (pty mode) */

/* Host to guest, before RUN: what makes each VM its own. Many VMs may be
 * clones restored from one snapshot: without these they would all start
 * with the snapshot's wall clock (a restored kvmclock goes on from where
 * it was) and with the same kernel CRNG state, so their "random" numbers
 * would be the same. The host sends both for every command, with fresh
 * values; init applies them before the program starts. A failure to apply
 * them is reported on the console and the program runs anyway; a
 * malformed payload is a malformed command.
 *
 * TIME: s64 seconds, u32 nanoseconds (below 1e9) of the host's
 * CLOCK_REALTIME, taken as late as the host can (every moment between
 * taking it and init setting it is lost from the guest's clock); init
 * sets CLOCK_REALTIME to it.
 * SEED: VMPROC_SEED_MIN to VMPROC_SEED_MAX bytes from the host's
 * getrandom(); init adds them to the kernel's input pool, credited as
 * full entropy (RNDADDENTROPY), then has the CRNG reseeded at once
 * (RNDRESEEDCRNG) rather than at its next periodic reseed.
 * Either may be left out (nothing is then done); sent twice, the last one
 * counts. */
#define VMPROC_MSG_TIME     11
#define VMPROC_MSG_SEED     12
#define VMPROC_MSG_TIME_LEN 12
#define VMPROC_SEED_MIN     32
#define VMPROC_SEED_MAX     256

/* --- Host files: the virtio-fs device --------------------------------
 *
 * With the command channel, the VMM also attaches a virtio-fs device as
 * virtio2, right after the channel, with the tag VMPROC_ABI_FS_TAG. Its
 * root is a virtual directory with one entry per share, virtual directory
 * or root tree of the command, named by the host (one path component).
 * The guest never mounts it before READY, so a snapshot holds no FUSE
 * session; init mounts it at VMPROC_ABI_FS_MOUNT when the command has a
 * MOUNT or ROOT message, after TIME and SEED are applied, before the
 * program starts.
 *
 * ROOT: u32 flags (VMPROC_ROOT_F_*), then the entry name: the program
 * runs chrooted into that tree (read-only, or under an overlayfs whose
 * upper layer is a tmpfs). Init mounts its /dev, /proc, /sys, /tmp and
 * /run inside where the tree has those directories.
 * MOUNT: u32 flags (VMPROC_MOUNT_F_*), u32 n, n bytes of the entry name,
 * then the guest path (absolute; inside the new root if there is one),
 * created if missing. Mounts are made in the order sent.
 * A mount that fails ends the command with EXEC_FAILED and its errno. */
#define VMPROC_ABI_FS_TAG      "vmproc"
#define VMPROC_ABI_FS_MOUNT    "/run/vmproc/fs"
#define VMPROC_ABI_FS_NEWROOT  "/run/vmproc/root"
#define VMPROC_ABI_FS_OVERLAY  "/run/vmproc/overlay"
#define VMPROC_MSG_ROOT        13
#define VMPROC_MSG_MOUNT       14
#define VMPROC_ROOT_F_READONLY 1u
#define VMPROC_ROOT_F_OVERLAY  2u
#define VMPROC_MOUNT_F_READONLY 1u
/* At most this many MOUNT messages per command. */
#define VMPROC_MOUNT_MAX 32

/* Guest to host. */
#define VMPROC_MSG_EXEC_FAILED 32 /* u32 errno: the program could not start */
#define VMPROC_MSG_EXITED      33 /* u32 wait status (Linux encoding) */

#endif
