/* What the guest writes on the control port (api/child_io.c), fed to the
 * channel's backend as the device would, in pieces of any size. A guest
 * controls every byte: no sequence may hang the vCPU thread or write
 * past the message buffer. A hang fails the test through alarm(). */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "api/child.h"
#include "harness.h"
#include "vmm/vm.h"

static struct vmproc_child *child_new(void)
{
	struct vmproc_child *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	pthread_mutex_init(&c->lock, NULL);
	struct vm_config cfg;
	vm_config_init(&cfg);
	if (vm_new(&c->vm, &cfg)) /* never started: only its failure is used */
		abort();
	vm_config_release(&cfg);
	return c;
}

static void child_free(struct vmproc_child *c)
{
	vm_free(c->vm);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static size_t put(uint8_t *buf, size_t at, uint32_t type, uint32_t len, const void *payload)
{
	struct vmproc_msg_hdr h = {.type = type, .len = len};
	memcpy(buf + at, &h, sizeof(h));
	if (len)
		memcpy(buf + at + sizeof(h), payload, len);
	return at + sizeof(h) + len;
}

static void feed(struct vmproc_child *c, const uint8_t *p, size_t len, size_t piece)
{
	alarm(5);
	for (size_t off = 0; off < len; off += piece)
		child_port_backend.data(c, VMPROC_ABI_PORT_CTL, p + off,
		                        len - off < piece ? len - off : piece);
	alarm(0);
}

/* The hang of issue 12: a header announcing no payload, then any byte. */
static void empty_message_then_more(void)
{
	for (size_t piece = 1; piece <= 32; piece++) {
		struct vmproc_child *c = child_new();
		uint8_t buf[64];
		uint32_t status = 7 << 8;
		size_t n = put(buf, 0, 99, 0, NULL);
		n = put(buf, n, VMPROC_MSG_EXITED, sizeof(status), &status);
		feed(c, buf, n, piece);
		CHECK_MSG(c->exited && c->wstatus == status, "piece %zu", piece);
		CHECK(c->ctl_in_len == 0);
		CHECK(vm_failure(c->vm) == VMPROC_FAILURE_NONE);
		child_free(c);
	}
}

static void exec_failure_and_unknown_types(void)
{
	struct vmproc_child *c = child_new();
	uint8_t buf[128];
	uint32_t e = ENOENT, junk[4] = {1, 2, 3, 4};
	size_t n = put(buf, 0, 12345, sizeof(junk), junk);
	n = put(buf, n, VMPROC_MSG_EXEC_FAILED, sizeof(e), &e);
	n = put(buf, n, VMPROC_MSG_EXITED, 2, junk); /* wrong size: ignored */
	feed(c, buf, n, n);
	CHECK(c->exec_errno == ENOENT);
	CHECK(!c->exited);
	child_free(c);
}

static void oversized_message_stops_the_vm(void)
{
	for (size_t piece = 1; piece <= 9; piece += 4) {
		struct vmproc_child *c = child_new();
		uint8_t buf[4096] = {0};
		struct vmproc_msg_hdr h = {.type = VMPROC_MSG_EXITED, .len = 1u << 30};
		memcpy(buf, &h, sizeof(h));
		feed(c, buf, sizeof(buf), piece);
		feed(c, buf, sizeof(buf), piece); /* and more after it */
		CHECK(vm_failure(c->vm) == VMPROC_FAILURE_GUEST_ERROR);
		CHECK_MSG(strstr(vm_error(c->vm), "control message"), "%s", vm_error(c->vm));
		CHECK(c->ctl_in_len <= sizeof(c->ctl_in));
		CHECK(!c->exited);
		child_free(c);
	}
}

TEST_LIST(T(empty_message_then_more), T(exec_failure_and_unknown_types),
          T(oversized_message_stops_the_vm))
