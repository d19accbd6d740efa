/* What makes each VM its own (vmproc_abi.h, TIME and SEED): the system
 * calls that set the guest's wall clock and seed its kernel CRNG. They are
 * in a file of their own so that the host tests of serve.c (tests/guest/serve_session.c)
 * link stubs in their place: run on the host, the real ones would set the
 * host's clock and credit its entropy pool. */
#ifndef VMPROC_INIT_FRESH_H
#define VMPROC_INIT_FRESH_H

#include <stddef.h>

/* Sets CLOCK_REALTIME. Returns 0, or the errno of the failed call, whose
 * name goes in *call. */
int init_set_clock(long long sec, unsigned nsec, const char **call);

/* Adds len bytes to the kernel's input pool, credited 8 bits a byte, and
 * reseeds the CRNG from it at once. Returns 0, or the errno of the failed
 * call, whose name goes in *call. */
int init_seed_random(const unsigned char *seed, size_t len, const char **call);

#endif
