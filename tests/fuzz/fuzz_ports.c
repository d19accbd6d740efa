/* libFuzzer target for the command channel: the virtio-console device
 * with multiport (src/virtio/ports.c) over the mmio transport, its
 * control-message protocol with the guest driver, and behind it the
 * channel's backend of a spawned child (child_port_backend,
 * src/api/child_io.c): the host-side parser of the guest's control
 * messages (EXITED, EXEC_FAILED, anything else, in pieces of any size)
 * and the output streams (a capture with a limit; stderr to a callback
 * that gives up, /dev/null, a capture or nothing, by the header). The
 * host-to-guest path is virtio_ports_send and virtio_ports_set_host_open,
 * as the child's I/O thread calls them.
 *
 * The child is the minimal struct vmproc_child of
 * tests/unit/test_child_control.c: a VM that is never started (its
 * failure is what a guest error sets), a wake eventfd, the streams.
 * Besides the checks of tests/fuzz/fuzz_guest.h around every call:
 * every byte the device hands the backend lies in a readable buffer the
 * guest offered; control transmit chains come back with length 0; a
 * send takes no more than it was given, and nothing while the guest has
 * not opened the port; a ring the host finds broken while sending stops
 * the VM at the next notify; the parser's buffer never overflows, the VM
 * fails only as a guest error, a capture never passes its limit; no fd
 * leaks over an input.
 *
 * Input: u8 header (bits 0-1: stderr's mode; bit 2: stdin's host side
 * starts closed), then at most 64 records; the first byte % 8 selects:
 *
 *   0 CTRL   u8 nrx (% 4 ctrl receive buffers of 64 bytes first); u8
 *            event (% 8); u8 idsel (bit 7: id is u32 idraw, else idsel %
 *            6); u32 idraw; u16 value. One virtio_console_control on the
 *            control transmit queue.
 *   1 DATA   u8 port (% 4); u8 npieces (% 4 + 1); u16 piece[npieces - 1];
 *            u16 len, len bytes: what the guest writes on the port, in
 *            that many buffers of one chain.
 *   2 RXBUF  u8 which (% 5: control receive queue, or port which - 1);
 *            u8 n (% 4 + 1); u8 size[n]: n receive chains of one
 *            writable buffer each (size 0 allowed: a broken ring).
 *   3 HOST   u8 op: bit 0 set: set_host_open(port, bit 1), else send;
 *            bits 2-4 the port (4-7 do not exist); send: u16 len, len
 *            bytes.
 *   4-7      the shared records of fuzz_guest.h (RAW, MMIO, SETUP,
 *            NOTIFY).
 */
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define FUZZ_NAME "fuzz_ports"
#include "fuzz_guest.h"

#include "api/child.h"
#include "virtio/ports.h"
#include "vmm/vm.h"

#define MAX_RECORDS 64
#define NPORTS      VMPROC_ABI_CHANNEL_PORTS
#define CAP_LIMIT   3000u
#define CB_GIVES_UP 2000u
#define Q_CTRL_RX   2u
#define Q_CTRL_TX   3u

static struct vmproc_child *g_c;
static struct virtio_ports *g_p;
static struct fz_dev *g_d;
static size_t g_cb_bytes;

static unsigned q_rx(unsigned port)
{
	return port == 0 ? 0 : 2 + 2 * port;
}

static unsigned q_tx(unsigned port)
{
	return port == 0 ? 1 : 3 + 2 * port;
}

/* --- the backend: the child's, watched --------------------------------- */

static void be_data(void *userdata, unsigned port, const uint8_t *data, size_t len)
{
	if (userdata != g_c || port >= NPORTS)
		fail("backend called for port %u with userdata %p", port, userdata);
	fz_saw(data, len);
	child_port_backend.data(userdata, port, data, len);
}

static void be_event(void *userdata)
{
	if (userdata != g_c)
		fail("backend event with userdata %p", userdata);
	child_port_backend.event(userdata);
}

static const struct virtio_ports_backend g_be = {.data = be_data, .event = be_event};

static int cb_write(const void *data, size_t len, void *userdata)
{
	(void)data;
	(void)userdata;
	g_cb_bytes += len;
	return g_cb_bytes > CB_GIVES_UP ? -1 : 0;
}

static void child_new(uint8_t header)
{
	struct vmproc_child *c = calloc(1, sizeof(*c));
	must(c != NULL, "calloc");
	pthread_mutex_init(&c->lock, NULL);
	struct vm_config cfg;
	vm_config_init(&cfg);
	must(vm_new(&c->vm, &cfg) == 0, "vm_new");
	vm_config_release(&cfg);
	c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	must(c->wake_fd >= 0, "eventfd");
	c->out[0] = (struct out_stream){.mode = STDIO_CAPTURE, .fd = -1, .cap_limit = CAP_LIMIT};
	struct out_stream *e = &c->out[1];
	*e = (struct out_stream){.fd = -1, .cap_limit = CAP_LIMIT / 2};
	switch (header & 3) {
	case 0:
		e->mode = STDIO_CALLBACK;
		e->fn = cb_write;
		break;
	case 1:
		e->mode = STDIO_FD;
		e->fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		e->fd_blocking = true;
		must(e->fd >= 0, "/dev/null");
		break;
	case 2: e->mode = STDIO_NULL; break;
	default: e->mode = STDIO_CAPTURE; break;
	}
	g_cb_bytes = 0;
	g_c = c;
}

static void child_free(void)
{
	struct vmproc_child *c = g_c;
	vm_free(c->vm);
	close(c->wake_fd);
	if (c->out[1].mode == STDIO_FD)
		close(c->out[1].fd);
	for (int i = 0; i < 2; i++)
		free(c->out[i].cap);
	free(c->ctl_out);
	pthread_mutex_destroy(&c->lock);
	free(c);
	g_c = NULL;
}

static void check_child(void)
{
	struct vmproc_child *c = g_c;
	if (c->ctl_in_len > sizeof(c->ctl_in))
		fail("control message buffer holds %zu of %zu bytes", c->ctl_in_len,
		     sizeof(c->ctl_in));
	if (c->exec_errno < 0 || c->exec_errno >= 4096)
		fail("exec errno %d", c->exec_errno);
	vmproc_failure f = vm_failure(c->vm);
	if (f != VMPROC_FAILURE_NONE && f != VMPROC_FAILURE_GUEST_ERROR)
		fail("the VM failed with %d: %s", (int)f, vm_error(c->vm));
	for (int i = 0; i < 2; i++) {
		const struct out_stream *o = &c->out[i];
		if (o->mode != STDIO_CAPTURE)
			continue;
		if (o->cap_len > o->cap_limit || (o->cap && o->cap[o->cap_len]))
			fail("capture %d holds %zu bytes (limit %zu)", i, o->cap_len, o->cap_limit);
		if (o->cut != o->dead)
			fail("capture %d cut %d but dead %d", i, o->cut, o->dead);
	}
	if (c->sigpipe_queued != (c->out[0].dead || c->out[1].dead))
		fail("SIGPIPE queued %d, streams dead %d %d", c->sigpipe_queued, c->out[0].dead,
		     c->out[1].dead);
}

/* --- records -------------------------------------------------------- */

static void rx_chain(unsigned q, uint32_t size)
{
	struct fz_buf b = {.len = size, .writable = true};
	int64_t used = fz_submit(g_d, q, &b, 1);
	if (used >= 0 && (uint64_t)used > size)
		fail("receive buffer of %u bytes came back with %lld", size, (long long)used);
}

static void rec_ctrl(struct input *in)
{
	unsigned nrx = get8(in) % 4;
	uint16_t event = get8(in) % 8;
	uint8_t idsel = get8(in);
	uint32_t idraw = get32(in);
	uint16_t value = get16(in);
	uint32_t id = (idsel & 0x80) ? idraw : idsel % 6u;
	for (unsigned i = 0; i < nrx; i++)
		rx_chain(Q_CTRL_RX, 64);
	uint8_t msg[8];
	memcpy(msg, &id, 4);
	memcpy(msg + 4, &event, 2);
	memcpy(msg + 6, &value, 2);
	struct fz_buf b = {.len = sizeof(msg), .data = msg};
	int64_t used = fz_submit(g_d, Q_CTRL_TX, &b, 1);
	if (used > 0)
		fail("control transmit chain used with length %lld", (long long)used);
}

static void rec_data(struct input *in)
{
	unsigned port = get8(in) % NPORTS;
	unsigned n = get8(in) % 4 + 1;
	uint16_t piece[4];
	for (unsigned i = 0; i + 1 < n; i++)
		piece[i] = get16(in);
	size_t len = get16(in);
	const uint8_t *p = take(in, &len);
	struct fz_buf b[4];
	size_t left = len;
	for (unsigned i = 0; i < n; i++) {
		uint32_t l = i + 1 < n && piece[i] < left ? piece[i] : (uint32_t)left;
		b[i] = (struct fz_buf){.len = l, .data = p + (len - left)};
		left -= l;
	}
	int64_t used = fz_submit(g_d, q_tx(port), b, n);
	if (used > 0)
		fail("transmit chain of port %u used with length %lld", port, (long long)used);
}

static void rec_rxbuf(struct input *in)
{
	unsigned which = get8(in) % 5;
	unsigned n = get8(in) % 4 + 1;
	unsigned q = which == 0 ? Q_CTRL_RX : q_rx(which - 1);
	for (unsigned i = 0; i < n; i++) {
		uint8_t size = get8(in);
		if (!size && which)
			g_d->sticky = true; /* a send may find the ring broken */
		rx_chain(q, size);
	}
}

static void rec_host(struct input *in)
{
	uint8_t op = get8(in);
	unsigned port = (op >> 2) & 7;
	if (op & 1) {
		fz_begin_host(g_d);
		int rc = virtio_ports_set_host_open(g_p, port, op & 2);
		fz_end(g_d, 0, false);
		if (port >= NPORTS ? rc != -EINVAL : rc > 0)
			fail("set_host_open(%u) returned %d", port, rc);
		if (rc < 0 && port < NPORTS) {
			/* A broken control ring: the next notify must stop the VM. */
			for (uint32_t q = 0; q < g_d->t.ops->num_queues; q++)
				if (g_d->t.vq[q].ready) {
					if (fz_write(g_d, R_QUEUE_NOTIFY, q) >= 0)
						fail("set_host_open found a broken ring (%d), "
						     "the next notify did not stop the VM",
						     rc);
					break;
				}
			fz_setup(g_d);
		}
		return;
	}
	size_t len = get16(in);
	const uint8_t *p = take(in, &len);
	bool open = port < NPORTS && virtio_ports_guest_open(g_p, port);
	fz_begin_host(g_d);
	long n = virtio_ports_send(g_p, port, p, len);
	fz_end(g_d, 0, false);
	if (port >= NPORTS ? n != -EINVAL : n < 0 || (size_t)n > len || (!open && n))
		fail("send of %zu bytes on port %u (guest side open %d) returned %ld", len, port,
		     open, n);
}

/* --- libFuzzer entry points ----------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	int fds = fd_count();
	uint8_t header = get8(&in);
	child_new(header);
	static const char *const names[] = VMPROC_ABI_PORT_NAMES;
	const bool open[NPORTS] = {true, !(header & 4), true, true};
	must(virtio_ports_new(&g_p, NPORTS, names, open, &g_be, g_c) == 0, "virtio_ports_new");
	g_c->ports = g_p;
	fz_start();
	g_d = fz_add(virtio_ports_ops(g_p), g_p);
	virtio_ports_attach(g_p, &g_d->t);
	fz_setup(g_d);
	for (unsigned r = 0; r < MAX_RECORDS && in.n; r++) {
		unsigned k = get8(&in) % 8;
		switch (k) {
		case 0: rec_ctrl(&in); break;
		case 1: rec_data(&in); break;
		case 2: rec_rxbuf(&in); break;
		case 3: rec_host(&in); break;
		default: fz_record(k - 4, &in); break;
		}
		fz_check_transports();
		check_child();
	}
	virtio_ports_detach(g_p);
	if (virtio_ports_send(g_p, 0, "x", 1) != -EPIPE)
		fail("send after detach did not return -EPIPE");
	fz_finish();
	virtio_ports_free(g_p);
	child_free();
	if (fd_count() != fds)
		fail("%d fds open after the input, %d before", fd_count(), fds);
	return 0;
}
