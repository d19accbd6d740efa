/* A guest init that misbehaves on purpose, for tests/e2e/test_hostile.c:
 * a stand-in for a guest whose kernel and user space are the attacker's.
 * It runs as /init of an initramfs of its own (no system image needed)
 * and says "hostile:MODE" on the stdout port, does what its first
 * argument (after "--" on the kernel command line) names, then waits
 * forever: the host must end the VM at its
 * timeout whatever the guest did.
 *
 *   zero-len-control  a control message with len 0, then more bytes
 *   flood-stdout      writes to the stdout port without end
 *   wait              nothing (the control case)
 */
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "vmproc_abi.h"

static void write_all(int fd, const void *p, size_t len)
{
	const char *c = p;
	while (len) {
		ssize_t n = write(fd, c, len);
		if (n <= 0)
			return;
		c += n;
		len -= (size_t)n;
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "wait";
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	/* First, so the test knows this init ran. */
	int out = open(VMPROC_ABI_DEV_STDOUT, O_RDWR);
	char hello[64] = "hostile:";
	strncat(hello, mode, sizeof(hello) - 10);
	strcat(hello, "\n");
	write_all(out, hello, strlen(hello));
	if (!strcmp(mode, "zero-len-control")) {
		int fd = open(VMPROC_ABI_DEV_CTL, O_RDWR);
		struct vmproc_msg_hdr h = {.type = 99, .len = 0};
		unsigned char more[sizeof(h) + 1];
		memcpy(more, &h, sizeof(h));
		more[sizeof(h)] = 0x42;
		write_all(fd, more, sizeof(more));
	} else if (!strcmp(mode, "flood-stdout")) {
		static char buf[65536];
		memset(buf, 'x', sizeof(buf));
		for (;;)
			write_all(out, buf, sizeof(buf));
	}
	for (;;)
		pause();
}
