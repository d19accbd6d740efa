/* The guest's wall clock and CRNG seed; see fresh.h. Not built into the
 * host tests. */
#define _GNU_SOURCE
#include "fresh.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vmproc_abi.h"

/* From <linux/random.h>, which the musl headers the guest is built with do
 * not include. RNDRESEEDCRNG: Linux 4.17. */
#ifndef RNDADDENTROPY
#define RNDADDENTROPY _IOW('R', 0x03, int[2])
#endif
#ifndef RNDRESEEDCRNG
#define RNDRESEEDCRNG _IO('R', 0x07)
#endif

int init_set_clock(long long sec, unsigned nsec, const char **call)
{
	struct timespec ts = {.tv_sec = (time_t)sec, .tv_nsec = (long)nsec};

	*call = "clock_settime";
	return clock_settime(CLOCK_REALTIME, &ts) < 0 ? errno : 0;
}

int init_seed_random(const unsigned char *seed, size_t len, const char **call)
{
	/* struct rand_pool_info with its buffer. */
	struct {
		int entropy_count; /* bits */
		int buf_size;      /* bytes */
		unsigned char buf[VMPROC_SEED_MAX];
	} pool;
	int err = 0;

	if (len > sizeof(pool.buf))
		len = sizeof(pool.buf);
	pool.entropy_count = (int)len * 8;
	pool.buf_size = (int)len;
	memcpy(pool.buf, seed, len);

	int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);

	*call = "open /dev/urandom";
	if (fd < 0)
		return errno;
	/* Crediting 256 bits or more makes the CRNG ready (and reseeds it)
	 * if it was not yet; if it was, only the explicit reseed takes the
	 * new bytes into it now rather than at its next periodic reseed
	 * (up to a minute later), which clones of one snapshot would reach
	 * with the same CRNG state. */
	if (ioctl(fd, RNDADDENTROPY, &pool) < 0) {
		err = errno;
		*call = "ioctl RNDADDENTROPY";
	} else if (ioctl(fd, RNDRESEEDCRNG) < 0) {
		err = errno;
		*call = "ioctl RNDRESEEDCRNG";
	}
	close(fd);
	return err;
}
