/* Interrupting a vCPU thread that sits in KVM_RUN takes a signal. The
 * vCPU thread keeps the signal blocked except inside KVM_RUN (see
 * KVM_SET_SIGNAL_MASK in vcpu.c), so a kick sent at any moment either
 * interrupts KVM_RUN or makes the next KVM_RUN return at once. The
 * handler does nothing; it only has to exist so the signal does not
 * terminate the process. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "vmm/internal.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int install_error;

int kick_signal(void)
{
	return SIGRTMAX - 1;
}

static void noop_handler(int sig)
{
	(void)sig;
}

static void install(void)
{
	struct sigaction old;
	if (sigaction(kick_signal(), NULL, &old) < 0) {
		install_error = -errno;
		return;
	}
	if (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO))
		return; /* somebody installed a handler: leave it */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = noop_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(kick_signal(), &sa, NULL) < 0)
		install_error = -errno;
}

int kick_install_handler(void)
{
	pthread_once(&once, install);
	return install_error;
}
