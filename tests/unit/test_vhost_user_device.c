// SPDX-License-Identifier: MIT
/*
 * Unit tests for devices/vhost_user_device.c, the vhost-user front-end,
 * built against a fake devices/device_host.h (it records each ioeventfd,
 * irqfd, MSI route, MSI and MMIO move instead of calling KVM) and a
 * scripted back-end in a thread on the other end of a socketpair.  This
 * file plays the core (it places the device and plugs it into a PCI host)
 * and the guest driver (it writes the common config and MSI-X registers
 * through virtio_pci_bar_access and PCI config space).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "devices/device_host.h"
#include "devices/device_kind.h"
#include "devices/pci.h"
#include "devices/vhost_user_device.h"
#include "lib/gmem.h"
#include "lib/vhost_user.h"

#define BAR 0xc0008000ull /* placement: device number 1 */
#define SLOT 2
#define GSI_BASE 41
#define MEM_SIZE LAYOUT_MIN_MEMORY
#define MSI_ADDRESS 0xfee00000ull
#define MSI_DATA(vector) (0x4040u + (vector))
#define RING_GPA(q) (0x10000ull + (uint64_t)(q)*0x4000) /* desc; avail +0x1000, used +0x2000 */
#define RING_SIZE 64

/* PCI config space and the virtio common config (virtio 1.2 §4.1.4.3). */
#define PCI_COMMAND 0x04
#define PCI_BAR0 0x10
#define CAP_MSIX 0x40 /* devices/virtio_pci.c's layout */
#define MSIX_CONTROL_ENABLE 0x8000
#define COMMON_GFSELECT 0x08
#define COMMON_GF 0x0c
#define COMMON_MSIX 0x10
#define COMMON_STATUS 0x14
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_SIZE 0x18
#define COMMON_Q_MSIX 0x1a
#define COMMON_Q_ENABLE 0x1c
#define COMMON_Q_DESCLO 0x20
#define COMMON_Q_AVAILLO 0x28
#define COMMON_Q_USEDLO 0x30

#define UNSUPPORTED_OFFERED ((1ull << VIRTIO_F_RING_PACKED) | (1ull << VIRTIO_F_ACCESS_PLATFORM))
#define PROTOCOL_ALL                                                                               \
	((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |          \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIG))
#define MAX_CALLS 128

/* ---- the fake host ----------------------------------------------------------- */

enum host_op { IOEVENTFD, IRQFD, MSI_ROUTE, SIGNAL_MSI, MMIO_MOVE };

struct host_call {
	enum host_op op;
	uint64_t addr; /* ioeventfd address, MSI address, MMIO base */
	uint64_t len;  /* ioeventfd length, MMIO size */
	unsigned gsi;
	uint32_t data;
	int fd;
	bool assign;
	const void *owner;
};

struct fake_host {
	struct host_call calls[MAX_CALLS];
	unsigned nr_calls;
	int mmio_move_ret; /* what a move to a non-zero base returns */
};

static struct host_call *record(void *opaque, enum host_op op)
{
	struct fake_host *h = opaque;
	struct host_call *c;

	assert_true(h->nr_calls < MAX_CALLS);
	c = &h->calls[h->nr_calls++];
	memset(c, 0, sizeof(*c));
	c->op = op;
	return c;
}

static int fake_ioeventfd(void *opaque, uint64_t addr, uint32_t len, int fd, bool assign)
{
	struct host_call *c = record(opaque, IOEVENTFD);

	c->addr = addr;
	c->len = len;
	c->fd = fd;
	c->assign = assign;
	return 0;
}

static int fake_irqfd(void *opaque, unsigned gsi, int fd, bool assign)
{
	struct host_call *c = record(opaque, IRQFD);

	c->gsi = gsi;
	c->fd = fd;
	c->assign = assign;
	return 0;
}

static int fake_set_msi_route(void *opaque, unsigned gsi, uint64_t address, uint32_t data)
{
	struct host_call *c = record(opaque, MSI_ROUTE);

	c->gsi = gsi;
	c->addr = address;
	c->data = data;
	return 0;
}

static int fake_signal_msi(void *opaque, uint64_t address, uint32_t data)
{
	struct host_call *c = record(opaque, SIGNAL_MSI);

	c->addr = address;
	c->data = data;
	return 0;
}

static int fake_mmio_move(void *opaque, const void *owner, uint64_t new_base, uint64_t new_size)
{
	struct fake_host *h = opaque;
	struct host_call *c = record(opaque, MMIO_MOVE);

	c->owner = owner;
	c->addr = new_base;
	c->len = new_size;
	return new_base ? h->mmio_move_ret : 0;
}

static const struct device_host_ops fake_host_ops = {
    .ioeventfd = fake_ioeventfd,
    .irqfd = fake_irqfd,
    .set_msi_route = fake_set_msi_route,
    .signal_msi = fake_signal_msi,
    .mmio_move = fake_mmio_move,
};

static unsigned count_calls(const struct fake_host *h, enum host_op op)
{
	unsigned n = 0;

	for (unsigned i = 0; i < h->nr_calls; i++)
		n += h->calls[i].op == op;
	return n;
}

/* ---- the scripted back-end ----------------------------------------------------- */

struct backend {
	int sock;
	pthread_t thread;
	uint64_t features, protocol, queue_num;
	uint8_t config[VHOST_USER_MAX_CONFIG_SIZE];
	/* every request received, its fds closed (nfds kept) */
	struct vhost_user_msg requests[MAX_CALLS];
	unsigned seq[MAX_CALLS]; /* order among every back-end's requests */
	unsigned nr_requests;
	uint16_t vring_base; /* GET_VRING_BASE's answer */
	uint32_t nack_request;	 /* acked with a failure (0: none) */
	uint32_t silent_request; /* never answered (0: none) */
	bool inflight;		 /* answers GET_INFLIGHT_FD with a region of its own */
	ino_t inflight_ino;	 /* that region's memfd */
	ino_t set_inflight_ino;	 /* the region SET_INFLIGHT_FD gave it */
};

static atomic_uint request_seq;

static int reply_config(int sock, const struct vhost_user_msg *msg, const uint8_t *config)
{
	struct vhost_user_msg reply;
	uint32_t size = msg->payload.config.size;

	vhost_user_msg_init(&reply, VHOST_USER_GET_CONFIG, VHOST_USER_CONFIG_HDR_SIZE + size);
	reply.hdr.flags |= VHOST_USER_REPLY_MASK;
	reply.payload.config.offset = msg->payload.config.offset;
	reply.payload.config.size = size;
	memcpy(reply.payload.config.payload, config + msg->payload.config.offset, size);
	return vhost_user_send(sock, &reply);
}

static int reply_vring_base(int sock, const struct vhost_user_msg *msg, uint16_t base)
{
	struct vhost_user_msg reply;

	vhost_user_msg_init(&reply, VHOST_USER_GET_VRING_BASE, sizeof(reply.payload.state));
	reply.hdr.flags |= VHOST_USER_REPLY_MASK;
	reply.payload.state.index = msg->payload.state.index;
	reply.payload.state.num = base;
	return vhost_user_send(sock, &reply);
}

static ino_t fd_inode(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

/* vhost-user: VHOST_USER_GET_INFLIGHT_FD, a shared region of its own. */
static int reply_inflight(struct backend *b, const struct vhost_user_msg *msg)
{
	struct vhost_user_msg reply;
	int fd = memfd_create("inflight", MFD_CLOEXEC), ret;

	if (fd < 0 || ftruncate(fd, 4096))
		return -1;
	b->inflight_ino = fd_inode(fd);
	vhost_user_msg_init(&reply, VHOST_USER_GET_INFLIGHT_FD, sizeof(reply.payload.inflight));
	reply.hdr.flags |= VHOST_USER_REPLY_MASK;
	reply.payload.inflight = msg->payload.inflight;
	reply.payload.inflight.mmap_size = 4096;
	reply.payload.inflight.mmap_offset = 0;
	reply.fds[0] = fd;
	reply.nfds = 1;
	ret = vhost_user_send(b->sock, &reply);
	close(fd);
	return ret;
}

/* Answer whatever comes until the front-end hangs up. */
static void *backend_thread(void *arg)
{
	struct backend *b = arg;
	struct vhost_user_msg msg;

	while (vhost_user_recv(b->sock, &msg) == 0 && b->nr_requests < MAX_CALLS) {
		unsigned nfds = msg.nfds;
		int ret = 0;

		if (msg.hdr.request == VHOST_USER_SET_INFLIGHT_FD && msg.nfds == 1)
			b->set_inflight_ino = fd_inode(msg.fds[0]);
		vhost_user_close_fds(&msg);
		b->requests[b->nr_requests] = msg;
		b->seq[b->nr_requests] = atomic_fetch_add(&request_seq, 1);
		b->requests[b->nr_requests++].nfds = nfds;
		if (msg.hdr.request == b->silent_request)
			continue;
		if (msg.hdr.request == b->nack_request) {
			ret = vhost_user_ack(b->sock, msg.hdr.request, 1);
			if (ret)
				break;
			continue;
		}
		switch (msg.hdr.request) {
		case VHOST_USER_GET_FEATURES:
			ret = vhost_user_reply_u64(b->sock, msg.hdr.request, b->features);
			break;
		case VHOST_USER_GET_PROTOCOL_FEATURES:
			ret = vhost_user_reply_u64(b->sock, msg.hdr.request, b->protocol);
			break;
		case VHOST_USER_GET_QUEUE_NUM:
			ret = vhost_user_reply_u64(b->sock, msg.hdr.request, b->queue_num);
			break;
		case VHOST_USER_GET_CONFIG:
			ret = reply_config(b->sock, &msg, b->config);
			break;
		case VHOST_USER_GET_VRING_BASE:
			ret = reply_vring_base(b->sock, &msg, b->vring_base);
			break;
		case VHOST_USER_GET_INFLIGHT_FD:
			ret = reply_inflight(b, &msg);
			break;
		default:
			if (vhost_user_needs_ack(&msg))
				ret = vhost_user_ack(b->sock, msg.hdr.request, 0);
			break;
		}
		if (ret)
			break;
	}
	return NULL;
}

static const struct vhost_user_msg *find_request(const struct backend *b, uint32_t request,
						 unsigned nth)
{
	for (unsigned i = 0; i < b->nr_requests; i++)
		if (b->requests[i].hdr.request == request && nth-- == 0)
			return &b->requests[i];
	return NULL;
}

static unsigned count_requests(const struct backend *b, uint32_t request)
{
	unsigned n = 0;

	for (unsigned i = 0; i < b->nr_requests; i++)
		n += b->requests[i].hdr.request == request;
	return n;
}

/* ---- fixture ------------------------------------------------------------------ */

struct fixture {
	struct fake_host fake;
	struct backend backend;
	struct gmem mem;
	struct pci_host pci;
	struct vhost_device dev;
	int sock, work_fd;
	bool thread_started; /* and the device created: destroy it */
	char err[256];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int sv[2];

	assert_non_null(f);
	assert_int_equal(gmem_create(&f->mem, MEM_SIZE, GMEM_BACKING_SHMEM), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->sock = sv[0];
	f->backend.sock = sv[1];
	f->work_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(f->work_fd >= 0);
	pci_host_init(&f->pci);
	/* a blk back-end in the style of isola-blk, plus transport bits the
	 * front-end must not pass on */
	f->backend.features = (1ull << VIRTIO_F_VERSION_1) |
			      (1ull << VHOST_USER_F_PROTOCOL_FEATURES) | (1ull << VIRTIO_BLK_F_MQ) |
			      UNSUPPORTED_OFFERED;
	f->backend.protocol = PROTOCOL_ALL;
	f->backend.queue_num = 2;
	for (unsigned i = 0; i < sizeof(f->backend.config); i++)
		f->backend.config[i] = (uint8_t)(0xa0 + i);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->thread_started) {
		vhost_device_destroy(&f->dev); /* closes f->sock: the back-end thread ends */
		pthread_join(f->backend.thread, NULL);
	} else if (f->sock >= 0) {
		close(f->sock);
	}
	close(f->backend.sock);
	close(f->work_fd);
	pci_host_destroy(&f->pci);
	gmem_destroy(&f->mem);
	free(f);
	return 0;
}

/* What core/vm.c does, with the fake host. */
static int create(struct fixture *f, const char *kind_name)
{
	struct device_host host = {.ops = &fake_host_ops, .opaque = &f->fake, .mem = &f->mem};
	struct device_placement placement = {.slot = SLOT, .bar = BAR, .gsi_base = GSI_BASE};

	assert_int_equal(pthread_create(&f->backend.thread, NULL, backend_thread, &f->backend), 0);
	f->thread_started = true;
	return vhost_device_create(&f->dev, &host, &placement, device_kind_by_name(kind_name),
				   "disk0", NULL, f->sock, f->work_fd, f->err, sizeof(f->err));
}

/* The back-end has answered everything so far (the socket is closed). */
static void stop_backend(struct fixture *f)
{
	vhost_device_destroy(&f->dev);
	pthread_join(f->backend.thread, NULL);
	f->thread_started = false;
	f->sock = -1;
}

/* ---- the driver ---------------------------------------------------------------- */

static void bar_write(struct fixture *f, uint32_t offset, uint32_t value, uint32_t len)
{
	virtio_pci_bar_access(&f->dev, offset, (uint8_t *)&value, len, true);
}

static void config_write(struct fixture *f, uint32_t offset, uint32_t value, uint32_t len)
{
	pci_host_config_access(&f->pci, SLOT << 3, offset, (uint8_t *)&value, len, true);
}

static void msix_entry(struct fixture *f, unsigned vector)
{
	uint32_t entry = VIRTIO_PCI_MSIX_TABLE_OFFSET + 16 * vector;

	bar_write(f, entry + 0, (uint32_t)MSI_ADDRESS, 4);
	bar_write(f, entry + 4, 0, 4);
	bar_write(f, entry + 8, MSI_DATA(vector), 4);
	bar_write(f, entry + 12, 0, 4); /* unmasked */
}

/* virtio 1.2 §3.1.1: the driver's initialization, queue q on vector q + 1,
 * config changes on vector 0, then DRIVER_OK. */
/* The driver's set-up; queue bad_queue (if any) gets its used ring in
 * the IOAPIC page, outside guest RAM. */
static void driver_init_bad(struct fixture *f, int bad_queue);

static void driver_init(struct fixture *f)
{
	driver_init_bad(f, -1);
	assert_int_equal(f->dev.pci.status & VIRTIO_STATUS_NEEDS_RESET, 0);
}

static void driver_init_bad(struct fixture *f, int bad_queue)
{
	uint64_t features = f->dev.pci.device_features & ~(1ull << VIRTIO_BLK_F_MQ);

	assert_int_equal(pci_host_plug(&f->pci, SLOT, &f->dev.pci.fn), 0);
	config_write(f, CAP_MSIX + 2, MSIX_CONTROL_ENABLE, 2);
	bar_write(f, COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	for (unsigned half = 0; half < 2; half++) {
		bar_write(f, COMMON_GFSELECT, half, 4);
		bar_write(f, COMMON_GF, (uint32_t)(features >> (32 * half)), 4);
	}
	bar_write(f, COMMON_STATUS, VIRTIO_STATUS_FEATURES_OK, 1);
	for (unsigned v = 0; v <= f->dev.num_queues; v++)
		msix_entry(f, v);
	bar_write(f, COMMON_MSIX, 0, 2);
	for (unsigned q = 0; q < f->dev.num_queues; q++) {
		bar_write(f, COMMON_Q_SELECT, q, 2);
		bar_write(f, COMMON_Q_SIZE, RING_SIZE, 2);
		bar_write(f, COMMON_Q_MSIX, q + 1, 2);
		bar_write(f, COMMON_Q_DESCLO, (uint32_t)RING_GPA(q), 4);
		bar_write(f, COMMON_Q_AVAILLO, (uint32_t)(RING_GPA(q) + 0x1000), 4);
		bar_write(f, COMMON_Q_USEDLO,
			  (int)q == bad_queue ? 0xfec00000u : (uint32_t)(RING_GPA(q) + 0x2000), 4);
		bar_write(f, COMMON_Q_ENABLE, 1, 2);
	}
	bar_write(f, COMMON_STATUS, VIRTIO_STATUS_DRIVER_OK, 1);
}

/* ---- tests --------------------------------------------------------------------- */

static void create_negotiates_blk(void **state)
{
	struct fixture *f = *state;
	const struct vhost_user_msg *msg;

	f->backend.queue_num = 4;
	assert_int_equal(create(f, "blk"), 0);
	assert_int_equal(f->dev.num_queues, 4);
	assert_int_equal(f->dev.pci.num_queues, 4);
	assert_int_equal(f->dev.pci.device_id, VIRTIO_ID_BLOCK);
	/* transport bits the core does not implement are never offered */
	assert_int_equal(f->dev.pci.device_features,
			 (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_MQ));
	/* a back-end-owned config is read with GET_CONFIG, kind->config_size */
	assert_int_equal(f->dev.pci.config_size, device_kind_by_name("blk")->config_size);
	assert_memory_equal(f->dev.pci.config, f->backend.config, f->dev.pci.config_size);
	/* nothing but the kick fds is bound yet */
	assert_int_equal(f->fake.nr_calls, 4);
	assert_int_equal(count_calls(&f->fake, IOEVENTFD), 4);

	stop_backend(f);
	msg = find_request(&f->backend, VHOST_USER_SET_PROTOCOL_FEATURES, 0);
	assert_non_null(msg);
	assert_int_equal(msg->payload.u64, PROTOCOL_ALL);
	msg = find_request(&f->backend, VHOST_USER_GET_CONFIG, 0);
	assert_non_null(msg);
	assert_int_equal(msg->payload.config.size, device_kind_by_name("blk")->config_size);
	assert_int_equal(count_requests(&f->backend, VHOST_USER_SET_OWNER), 1);
}

/* One ioeventfd per queue on the notify area of the placed BAR: queue q at
 * notify offset q * notify_off_multiplier, 16 bits (virtio 1.2 §4.1.4.4). */
static void kick_fds_on_the_notify_area(void **state)
{
	struct fixture *f = *state;

	f->backend.queue_num = 3;
	assert_int_equal(create(f, "blk"), 0);
	assert_int_equal(f->fake.nr_calls, 3);
	for (unsigned q = 0; q < 3; q++) {
		const struct host_call *c = &f->fake.calls[q];

		assert_int_equal(c->op, IOEVENTFD);
		assert_true(c->assign);
		assert_int_equal(c->addr, BAR + VIRTIO_PCI_NOTIFY_OFFSET + q * 4);
		assert_int_equal(c->len, 2);
		assert_int_equal(c->fd, f->dev.kick_fds[q]);
		assert_true(c->fd >= 0);
	}
	assert_int_equal(f->dev.notify_base, BAR);
	assert_int_equal(f->dev.pci.bar_base, BAR);
}

/* virtio 1.2 §5.2.6.2, through the kind's fix-up: without VIRTIO_BLK_F_MQ
 * a blk device has one queue whatever GET_QUEUE_NUM says. */
static void blk_without_mq_has_one_queue(void **state)
{
	struct fixture *f = *state;

	f->backend.features &= ~(1ull << VIRTIO_BLK_F_MQ);
	f->backend.queue_num = 4;
	assert_int_equal(create(f, "blk"), 0);
	assert_int_equal(f->dev.num_queues, 1);
	assert_int_equal(f->dev.pci.num_queues, 1);
	assert_int_equal(count_calls(&f->fake, IOEVENTFD), 1);
}

static void blk_refused_without_protocol_config(void **state)
{
	struct fixture *f = *state;

	f->backend.protocol &= ~(1ull << VHOST_USER_PROTOCOL_F_CONFIG);
	assert_int_equal(create(f, "blk"), -EPROTO);
	assert_non_null(strstr(f->err, "VHOST_USER_PROTOCOL_F_CONFIG"));
	assert_int_equal(f->fake.nr_calls, 0);
}

/* A kind without a config space (rng) neither needs nor asks for one. */
static void rng_has_no_config(void **state)
{
	struct fixture *f = *state;

	f->backend.features =
	    (1ull << VIRTIO_F_VERSION_1) | (1ull << VHOST_USER_F_PROTOCOL_FEATURES);
	f->backend.protocol &= ~(1ull << VHOST_USER_PROTOCOL_F_CONFIG);
	f->backend.queue_num = 1;
	assert_int_equal(create(f, "rng"), 0);
	assert_int_equal(f->dev.pci.device_id, VIRTIO_ID_RNG);
	assert_int_equal(f->dev.pci.config_size, 0);
	stop_backend(f);
	assert_int_equal(count_requests(&f->backend, VHOST_USER_GET_CONFIG), 0);
}

/* The back-end is untrusted: a queue count the transport cannot serve is
 * refused, not clamped. */
static void hostile_queue_count_refused(void **state)
{
	struct fixture *f = *state;

	f->backend.queue_num = 0;
	assert_int_equal(create(f, "blk"), -EPROTO);
	assert_non_null(strstr(f->err, "queues"));
	assert_int_equal(f->fake.nr_calls, 0);
}

static void too_many_queues_refused(void **state)
{
	struct fixture *f = *state;

	f->backend.queue_num = VIRTIO_PCI_MAX_QUEUES + 1;
	assert_int_equal(create(f, "blk"), -EPROTO);
	assert_non_null(strstr(f->err, "queues"));
	assert_int_equal(f->fake.nr_calls, 0);
}

/* A back-end coming back (restarted, or external and returning) that now
 * serves another number of queues is refused: the PCI function and its
 * kick and call fds were made for the old count.  The same count is fine. */
static void reconnect_with_other_queue_count_refused(void **state)
{
	struct fixture *f = *state;
	static struct backend again; /* large: off the stack */
	int sv[2];

	assert_int_equal(create(f, "blk"), 0);
	assert_int_equal(f->dev.num_queues, 2);
	for (unsigned queues = 4;; queues = 2) {
		again = f->backend;
		again.nr_requests = 0;
		again.queue_num = queues;
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		again.sock = sv[1];
		assert_int_equal(pthread_create(&again.thread, NULL, backend_thread, &again), 0);
		if (queues == 4) {
			assert_int_equal(vhost_device_reconnect(&f->dev, sv[0], f->err,
								sizeof(f->err)),
					 -EPROTO);
			assert_non_null(strstr(f->err, "queues"));
			assert_int_equal(f->dev.num_queues, 2);
			assert_int_equal(f->dev.sock, -1); /* closed: the caller retries */
			pthread_join(again.thread, NULL);
			close(sv[1]);
			continue;
		}
		assert_int_equal(vhost_device_reconnect(&f->dev, sv[0], f->err, sizeof(f->err)), 0);
		assert_int_equal(f->dev.num_queues, 2);
		vhost_device_disconnect(&f->dev);
		pthread_join(again.thread, NULL);
		close(sv[1]);
		break;
	}
}

/* The guest moves BAR 0: the kick fds follow it, and the host moves the
 * device's MMIO range (found by its owner, the device). */
static void bar_move_moves_kick_fds(void **state)
{
	struct fixture *f = *state;
	const uint64_t new_bar = 0xd0000000ull;

	assert_int_equal(create(f, "blk"), 0);
	assert_int_equal(pci_host_plug(&f->pci, SLOT, &f->dev.pci.fn), 0);
	f->fake.nr_calls = 0;
	config_write(f, PCI_BAR0, (uint32_t)new_bar, 4);

	assert_int_equal(f->fake.nr_calls, 2 + 1 + 2);
	for (unsigned q = 0; q < 2; q++) {
		const struct host_call *off = &f->fake.calls[q], *on = &f->fake.calls[3 + q];

		assert_int_equal(off->op, IOEVENTFD);
		assert_false(off->assign);
		assert_int_equal(off->addr, BAR + VIRTIO_PCI_NOTIFY_OFFSET + q * 4);
		assert_int_equal(off->fd, f->dev.kick_fds[q]);
		assert_int_equal(on->op, IOEVENTFD);
		assert_true(on->assign);
		assert_int_equal(on->addr, new_bar + VIRTIO_PCI_NOTIFY_OFFSET + q * 4);
		assert_int_equal(on->len, 2);
		assert_int_equal(on->fd, f->dev.kick_fds[q]);
	}
	assert_int_equal(f->fake.calls[2].op, MMIO_MOVE);
	assert_ptr_equal(f->fake.calls[2].owner, &f->dev);
	assert_int_equal(f->fake.calls[2].addr, new_bar);
	assert_int_equal(f->fake.calls[2].len, VIRTIO_PCI_BAR_SIZE);
	assert_int_equal(f->dev.notify_base, new_bar);

	/* memory decoding off: unmapped, nothing bound */
	f->fake.nr_calls = 0;
	config_write(f, PCI_COMMAND, 0, 2);
	assert_int_equal(count_calls(&f->fake, IOEVENTFD), 2);
	assert_false(f->fake.calls[0].assign);
	assert_int_equal(f->fake.calls[2].op, MMIO_MOVE);
	assert_int_equal(f->fake.calls[2].len, 0);
	assert_int_equal(f->dev.notify_base, 0);
}

/* A BAR put over another device's range decodes nothing. */
static void bar_move_over_another_range_unmaps(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(create(f, "blk"), 0);
	assert_int_equal(pci_host_plug(&f->pci, SLOT, &f->dev.pci.fn), 0);
	f->fake.nr_calls = 0;
	f->fake.mmio_move_ret = -EEXIST;
	config_write(f, PCI_BAR0, 0xfec00000u, 4);

	assert_int_equal(count_calls(&f->fake, IOEVENTFD), 2); /* the old ones, deassigned */
	for (unsigned i = 0; i < f->fake.nr_calls; i++)
		if (f->fake.calls[i].op == IOEVENTFD)
			assert_false(f->fake.calls[i].assign);
	assert_int_equal(count_calls(&f->fake, MMIO_MOVE), 2);
	assert_int_equal(f->fake.calls[f->fake.nr_calls - 1].op, MMIO_MOVE);
	assert_int_equal(f->fake.calls[f->fake.nr_calls - 1].addr, 0);
	assert_int_equal(f->fake.calls[f->fake.nr_calls - 1].len, 0);
	assert_int_equal(f->dev.notify_base, 0);
}

/* DRIVER_OK queues START; the event loop's vhost_device_process gives the
 * back-end the memory table and the rings, and binds each call fd to the
 * GSI of its queue's vector with that vector's MSI route. */
static void driver_ok_starts_rings_and_binds_irqfds(void **state)
{
	struct fixture *f = *state;
	const struct vhost_user_msg *msg;
	uint64_t count;

	assert_int_equal(create(f, "blk"), 0);
	driver_init(f);
	assert_true(atomic_load(&f->dev.work) & VHOST_DEVICE_WORK_START);
	assert_int_equal(read(f->work_fd, &count, sizeof(count)), sizeof(count));
	f->fake.nr_calls = 0;
	vhost_device_process(&f->dev);
	assert_true(f->dev.started);
	assert_int_equal(f->dev.started_queues, 3);

	assert_int_equal(count_calls(&f->fake, IRQFD), 2);
	assert_int_equal(count_calls(&f->fake, MSI_ROUTE), 2);
	for (unsigned q = 0; q < 2; q++) {
		unsigned gsi = GSI_BASE + q + 1;
		bool routed = false, bound = false;

		for (unsigned i = 0; i < f->fake.nr_calls; i++) {
			const struct host_call *c = &f->fake.calls[i];

			if (c->op == MSI_ROUTE && c->gsi == gsi) {
				assert_int_equal(c->addr, MSI_ADDRESS);
				assert_int_equal(c->data, MSI_DATA(q + 1));
				routed = true;
			}
			if (c->op == IRQFD && c->gsi == gsi) {
				assert_true(routed); /* the route is in place first */
				assert_true(c->assign);
				assert_int_equal(c->fd, f->dev.call_fds[q]);
				bound = true;
			}
		}
		assert_true(bound);
		assert_int_equal(f->dev.irqfd_gsi[q], (int)gsi);
	}

	stop_backend(f);
	msg = find_request(&f->backend, VHOST_USER_SET_MEM_TABLE, 0);
	assert_non_null(msg);
	assert_int_equal(msg->payload.memory.nregions, f->mem.nr_regions);
	assert_int_equal(msg->nfds, f->mem.nr_regions);
	assert_int_equal(msg->payload.memory.regions[0].guest_address, f->mem.regions[0].gpa);
	msg = find_request(&f->backend, VHOST_USER_SET_FEATURES, 0);
	assert_non_null(msg);
	assert_int_equal(msg->payload.u64,
			 (1ull << VIRTIO_F_VERSION_1) | (1ull << VHOST_USER_F_PROTOCOL_FEATURES));
	for (unsigned q = 0; q < 2; q++) {
		msg = find_request(&f->backend, VHOST_USER_SET_VRING_NUM, q);
		assert_non_null(msg);
		assert_int_equal(msg->payload.state.index, q);
		assert_int_equal(msg->payload.state.num, RING_SIZE);
		msg = find_request(&f->backend, VHOST_USER_SET_VRING_ADDR, q);
		assert_non_null(msg);
		assert_int_equal(msg->payload.addr.desc_user_addr,
				 (uint64_t)(uintptr_t)gmem_ptr(&f->mem, RING_GPA(q), 16));
		msg = find_request(&f->backend, VHOST_USER_SET_VRING_KICK, q);
		assert_non_null(msg);
		assert_int_equal(msg->nfds, 1);
		msg = find_request(&f->backend, VHOST_USER_SET_VRING_CALL, q);
		assert_non_null(msg);
		assert_int_equal(msg->nfds, 1);
	}
	assert_int_equal(count_requests(&f->backend, VHOST_USER_SET_VRING_BASE), 2);
	assert_int_equal(count_requests(&f->backend, VHOST_USER_SET_VRING_ERR), 2);
	assert_int_equal(count_requests(&f->backend, VHOST_USER_SET_VRING_ENABLE), 2);
}

/* The back-end stopped a ring the guest broke: NEEDS_RESET and the
 * configuration change interrupt on the config vector (virtio 1.2 §2.1.2). */
static void config_interrupt_signals_msi(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(create(f, "blk"), 0);
	driver_init(f);
	vhost_device_process(&f->dev);
	f->fake.nr_calls = 0;
	vhost_device_ring_error(&f->dev);
	assert_true(f->dev.pci.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(f->fake.nr_calls, 1);
	assert_int_equal(f->fake.calls[0].op, SIGNAL_MSI);
	assert_int_equal(f->fake.calls[0].addr, MSI_ADDRESS);
	assert_int_equal(f->fake.calls[0].data, MSI_DATA(0));
}

/* The driver's reset (status 0, virtio 1.2 §2.1.2): with
 * VHOST_USER_PROTOCOL_F_STATUS the back-end is told, after its rings are
 * stopped, so it forgets what the driver set (isola-net's filter). */
static void driver_reset(struct fixture *f)
{
	uint64_t count;

	driver_init(f);
	assert_int_equal(read(f->work_fd, &count, sizeof(count)), sizeof(count));
	vhost_device_process(&f->dev);
	assert_true(f->dev.started);
	bar_write(f, COMMON_STATUS, 0, 1);
	assert_true(atomic_load(&f->dev.work) & VHOST_DEVICE_WORK_STOP);
	vhost_device_process(&f->dev);
	assert_false(f->dev.started);
	stop_backend(f);
}

static void driver_reset_sends_status_0(void **state)
{
	struct fixture *f = *state;
	const struct vhost_user_msg *msg;
	unsigned last_base = 0, reset_at = 0;

	f->backend.protocol |= 1ull << VHOST_USER_PROTOCOL_F_STATUS;
	assert_int_equal(create(f, "blk"), 0);
	assert_true(f->dev.protocol_features & (1ull << VHOST_USER_PROTOCOL_F_STATUS));
	driver_reset(f);
	assert_int_equal(count_requests(&f->backend, VHOST_USER_SET_STATUS), 2);
	/* DRIVER_OK when the rings start (DPDK's vhost waits for it) ... */
	msg = find_request(&f->backend, VHOST_USER_SET_STATUS, 0);
	assert_true(msg->payload.u64 & VIRTIO_STATUS_DRIVER_OK);
	/* ... and 0 at the reset, once the rings are stopped. */
	msg = find_request(&f->backend, VHOST_USER_SET_STATUS, 1);
	assert_int_equal(msg->payload.u64, 0);
	for (unsigned i = 0; i < f->backend.nr_requests; i++) {
		if (f->backend.requests[i].hdr.request == VHOST_USER_GET_VRING_BASE)
			last_base = i;
		if (f->backend.requests[i].hdr.request == VHOST_USER_SET_STATUS)
			reset_at = i;
	}
	assert_true(last_base > 0 && reset_at > last_base);
}

/* A back-end without F_STATUS (qemu-storage-daemon, DPDK) sees nothing new. */
static void driver_reset_without_f_status_sends_nothing(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(create(f, "blk"), 0);
	driver_reset(f);
	assert_int_equal(count_requests(&f->backend, VHOST_USER_GET_VRING_BASE), 2);
	assert_int_equal(count_requests(&f->backend, VHOST_USER_SET_STATUS), 0);
}

/* A start that fails part-way (queue 1's used ring outside guest RAM:
 * NEEDS_RESET) left queue 0 running on the back-end; the driver's reset
 * must stop it (GET_VRING_BASE), or the back-end goes on using a ring the
 * driver reuses (tests/guest/hostile/virtio_fs.c attack=config: virtiofsd
 * died at the next start's second SET_VRING_KICK). */
static void failed_start_reset_stops_the_started_rings(void **state)
{
	struct fixture *f = *state;
	const struct vhost_user_msg *msg;
	uint64_t count;

	assert_int_equal(create(f, "blk"), 0);
	assert_int_equal(f->dev.num_queues, 2);
	driver_init_bad(f, 1);
	assert_int_equal(read(f->work_fd, &count, sizeof(count)), sizeof(count));
	vhost_device_process(&f->dev);
	assert_true(f->dev.pci.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_false(f->dev.started);
	bar_write(f, COMMON_STATUS, 0, 1);
	vhost_device_process(&f->dev);
	stop_backend(f);
	assert_int_equal(count_requests(&f->backend, VHOST_USER_SET_VRING_KICK), 1);
	assert_int_equal(count_requests(&f->backend, VHOST_USER_GET_VRING_BASE), 1);
	msg = find_request(&f->backend, VHOST_USER_GET_VRING_BASE, 0);
	assert_int_equal(msg->payload.state.index, 0);
}

/* A reboot keeps the server for the next VM: it is a reset too. */
static void detach_sends_status_0(void **state)
{
	struct fixture *f = *state;
	const struct vhost_user_msg *msg;
	uint64_t count;
	int sock;

	f->backend.protocol |= 1ull << VHOST_USER_PROTOCOL_F_STATUS;
	assert_int_equal(create(f, "blk"), 0);
	driver_init(f);
	assert_int_equal(read(f->work_fd, &count, sizeof(count)), sizeof(count));
	vhost_device_process(&f->dev);
	sock = vhost_device_detach(&f->dev);
	assert_int_equal(sock, f->sock);
	close(sock);
	stop_backend(f);
	assert_int_equal(count_requests(&f->backend, VHOST_USER_SET_STATUS), 2);
	msg = find_request(&f->backend, VHOST_USER_SET_STATUS, 1);
	assert_int_equal(msg->payload.u64, 0);
}

/* ---- handover to another back-end (PATCH /drives) ------------------------------- */

/* The seq of the nth request of that kind, or UINT_MAX. */
static unsigned request_seq_of(const struct backend *b, uint32_t request, unsigned nth)
{
	for (unsigned i = 0; i < b->nr_requests; i++)
		if (b->requests[i].hdr.request == request && nth-- == 0)
			return b->seq[i];
	return ~0u;
}

/* A running blk device whose used rings stand at used_idx, and a second
 * back-end (like the first, its config changed) on *next_sock. */
static void handover_setup(struct fixture *f, struct backend *next, int *next_sock,
			   uint16_t used_idx)
{
	uint64_t count;
	int sv[2];

	assert_int_equal(create(f, "blk"), 0);
	driver_init(f);
	assert_int_equal(read(f->work_fd, &count, sizeof(count)), sizeof(count));
	vhost_device_process(&f->dev);
	assert_true(f->dev.started);
	for (unsigned q = 0; q < f->dev.num_queues; q++) {
		uint16_t *used = gmem_ptr(&f->mem, RING_GPA(q) + 0x2000 + 2, 2);

		assert_non_null(used);
		*used = used_idx;
	}
	*next = f->backend;
	next->nr_requests = 0;
	next->config[0] ^= 0xff; /* virtio-blk: another capacity */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	*next_sock = sv[0];
	next->sock = sv[1];
	assert_int_equal(pthread_create(&next->thread, NULL, backend_thread, next), 0);
}

static void handover_teardown(struct fixture *f, struct backend *next)
{
	stop_backend(f); /* closes the device's socket: the new back-end's, if taken */
	pthread_join(next->thread, NULL);
	close(next->sock);
}

static void handover_stops_old_rings_before_new_takes_them(void **state)
{
	struct fixture *f = *state;
	struct backend next;
	unsigned msis_before, generation, stop_seq;
	const struct vhost_user_msg *msg;
	enum vhost_device_handover_outcome outcome;
	int sock;

	handover_setup(f, &next, &sock, 7);
	f->backend.vring_base = 7; /* stopped with nothing outstanding */
	msis_before = count_calls(&f->fake, SIGNAL_MSI);
	generation = f->dev.pci.config_generation;
	assert_int_equal(
	    vhost_device_handover(&f->dev, sock, &outcome, f->err, sizeof(f->err)), 0);
	assert_int_equal(outcome, VHOST_DEVICE_HANDOVER_DONE);
	assert_int_equal(f->dev.sock, sock);
	/* the new back-end's config, announced: generation and config vector */
	assert_memory_equal(f->dev.pci.config, next.config, f->dev.pci.config_size);
	assert_int_equal(f->dev.pci.config_generation, (uint8_t)(generation + 1));
	assert_int_equal(count_calls(&f->fake, SIGNAL_MSI), msis_before + 1);
	assert_int_equal(f->fake.calls[f->fake.nr_calls - 1].op, SIGNAL_MSI);
	assert_int_equal(f->fake.calls[f->fake.nr_calls - 1].data, MSI_DATA(0));
	handover_teardown(f, &next);

	/* the new one was asked first, then every old ring stopped, then the
	 * new one got the rings at the old one's bases */
	assert_int_equal(count_requests(&f->backend, VHOST_USER_GET_VRING_BASE), f->dev.num_queues);
	stop_seq = request_seq_of(&f->backend, VHOST_USER_GET_VRING_BASE, f->dev.num_queues - 1);
	assert_true(request_seq_of(&next, VHOST_USER_GET_CONFIG, 0) <
		    request_seq_of(&f->backend, VHOST_USER_GET_VRING_BASE, 0));
	assert_true(stop_seq < request_seq_of(&next, VHOST_USER_SET_MEM_TABLE, 0));
	assert_int_equal(count_requests(&next, VHOST_USER_SET_VRING_BASE), f->dev.num_queues);
	for (unsigned q = 0; q < f->dev.num_queues; q++) {
		msg = find_request(&next, VHOST_USER_SET_VRING_BASE, q);
		assert_int_equal(msg->payload.state.num, 7);
	}
	assert_int_equal(count_requests(&next, VHOST_USER_SET_VRING_KICK), f->dev.num_queues);
}

static void handover_refused_leaves_the_old_back_end(void **state)
{
	struct fixture *f = *state;
	struct backend next;
	enum vhost_device_handover_outcome outcome;
	uint8_t config[VIRTIO_PCI_CONFIG_MAX];
	unsigned msis_before;
	int sock, old_sock;

	handover_setup(f, &next, &sock, 3);
	next.queue_num = 1; /* not the device's 2 */
	old_sock = f->dev.sock;
	memcpy(config, f->dev.pci.config, sizeof(config));
	msis_before = count_calls(&f->fake, SIGNAL_MSI);
	assert_int_equal(
	    vhost_device_handover(&f->dev, sock, &outcome, f->err, sizeof(f->err)), -EPROTO);
	assert_int_equal(outcome, VHOST_DEVICE_HANDOVER_REFUSED);
	assert_non_null(strstr(f->err, "queues"));
	assert_int_equal(f->dev.sock, old_sock);
	assert_true(f->dev.started);
	assert_int_equal(f->dev.num_queues, 2);
	assert_memory_equal(f->dev.pci.config, config, sizeof(config));
	assert_int_equal(count_calls(&f->fake, SIGNAL_MSI), msis_before);
	handover_teardown(f, &next);
	assert_int_equal(count_requests(&f->backend, VHOST_USER_GET_VRING_BASE), 0);
}

static void handover_with_request_left_in_flight_gives_back(void **state)
{
	struct fixture *f = *state;
	struct backend next;
	enum vhost_device_handover_outcome outcome;
	int sock;

	handover_setup(f, &next, &sock, 3);
	f->backend.vring_base = 5; /* took two requests it did not complete */
	assert_int_equal(
	    vhost_device_handover(&f->dev, sock, &outcome, f->err, sizeof(f->err)), -EPROTO);
	assert_int_equal(outcome, VHOST_DEVICE_HANDOVER_ROLL_BACK);
	assert_non_null(strstr(f->err, "not completed"));
	assert_int_equal(f->dev.sock, -1); /* the caller restarts the old server */
	handover_teardown(f, &next);
	/* the new back-end never saw the rings */
	assert_int_equal(count_requests(&next, VHOST_USER_SET_VRING_BASE), 0);
	assert_int_equal(count_requests(&next, VHOST_USER_SET_MEM_TABLE), 0);
}

/* The new back-end failed after it had a ring (SET_VRING_KICK went out;
 * isola-blk starts it on SET_VRING_ENABLE 1, before its ack): it may have
 * served requests from the new image and left some half done.  The device
 * rolls forward: its inflight region is the new back-end's, its config
 * the new one, and the restarted new server resumes from used->idx (which
 * counts what the new one completed) with that region. */
static void handover_failing_after_the_new_had_rings_rolls_forward(void **state)
{
	struct fixture *f = *state;
	enum vhost_device_handover_outcome outcome;
	struct backend next, again;
	const struct vhost_user_msg *msg;
	uint8_t generation;
	int sock, sv[2];

	handover_setup(f, &next, &sock, 7);
	f->backend.vring_base = 7;
	next.protocol |= 1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD;
	next.inflight = true;
	next.nack_request = VHOST_USER_SET_VRING_ENABLE;
	generation = f->dev.pci.config_generation;
	assert_int_equal(vhost_device_handover(&f->dev, sock, &outcome, f->err, sizeof(f->err)),
			 -EIO);
	assert_int_equal(outcome, VHOST_DEVICE_HANDOVER_ROLL_FORWARD);
	assert_non_null(strstr(f->err, "did not take the rings"));
	assert_int_equal(f->dev.sock, -1);
	assert_true(f->dev.inflight_fd >= 0);
	assert_int_equal(fd_inode(f->dev.inflight_fd), next.inflight_ino);
	assert_memory_equal(f->dev.pci.config, next.config, f->dev.pci.config_size);
	assert_int_equal(f->dev.pci.config_generation, (uint8_t)(generation + 1));

	/* The new server, restarted (device_set's restart path): served two
	 * requests before it failed, so it resumes at 9, with its region. */
	for (unsigned q = 0; q < f->dev.num_queues; q++)
		*(uint16_t *)gmem_ptr(&f->mem, RING_GPA(q) + 0x2000 + 2, 2) = 9;
	again = next;
	again.nr_requests = 0;
	again.nack_request = 0;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	again.sock = sv[1];
	assert_int_equal(pthread_create(&again.thread, NULL, backend_thread, &again), 0);
	assert_int_equal(vhost_device_reconnect(&f->dev, sv[0], f->err, sizeof(f->err)), 0);
	handover_teardown(f, &next);
	pthread_join(again.thread, NULL);
	close(again.sock);
	assert_int_equal(again.set_inflight_ino, next.inflight_ino);
	assert_int_equal(count_requests(&again, VHOST_USER_GET_INFLIGHT_FD), 0);
	for (unsigned q = 0; q < 2; q++) {
		msg = find_request(&again, VHOST_USER_SET_VRING_BASE, q);
		assert_non_null(msg);
		assert_int_equal(msg->payload.state.num, 9);
	}
	/* the old back-end was not asked to serve again */
	assert_int_equal(count_requests(&f->backend, VHOST_USER_SET_MEM_TABLE), 1);
}

/* The new back-end failed before it had a ring: it served nothing, the old
 * image comes back (a fresh inflight region: the old one stopped with
 * nothing in flight), and the config stays the old one. */
static void handover_failing_before_the_new_had_rings_rolls_back(void **state)
{
	struct fixture *f = *state;
	enum vhost_device_handover_outcome outcome;
	uint8_t config[VIRTIO_PCI_CONFIG_MAX];
	struct backend next;
	int sock;

	handover_setup(f, &next, &sock, 7);
	f->backend.vring_base = 7;
	next.protocol |= 1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD;
	next.inflight = true;
	next.nack_request = VHOST_USER_SET_VRING_ADDR;
	memcpy(config, f->dev.pci.config, sizeof(config));
	assert_int_equal(vhost_device_handover(&f->dev, sock, &outcome, f->err, sizeof(f->err)),
			 -EIO);
	assert_int_equal(outcome, VHOST_DEVICE_HANDOVER_ROLL_BACK);
	assert_int_equal(f->dev.sock, -1);
	assert_int_equal(f->dev.inflight_fd, -1); /* not the new one's region */
	assert_memory_equal(f->dev.pci.config, config, sizeof(config));
	handover_teardown(f, &next);
	assert_int_equal(count_requests(&next, VHOST_USER_SET_VRING_KICK), 0);
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An old back-end that stops answering costs one VHOST_USER_TIMEOUT_MS on
 * the event loop, not one per request left (the socket is out of step
 * after the first): the handover gives up at once and rolls back. */
static void handover_stops_at_the_first_unanswered_request(void **state)
{
	struct fixture *f = *state;
	enum vhost_device_handover_outcome outcome;
	struct backend next;
	double start, took;
	int sock;

	handover_setup(f, &next, &sock, 7);
	f->backend.silent_request = VHOST_USER_GET_VRING_BASE;
	start = now_seconds();
	assert_int_equal(vhost_device_handover(&f->dev, sock, &outcome, f->err, sizeof(f->err)),
			 -ETIMEDOUT);
	took = now_seconds() - start;
	assert_int_equal(outcome, VHOST_DEVICE_HANDOVER_ROLL_BACK);
	assert_non_null(strstr(f->err, "no reply"));
	assert_true(took < 1.5 * VHOST_USER_TIMEOUT_MS / 1000.0);
	handover_teardown(f, &next);
	assert_int_equal(count_requests(&f->backend, VHOST_USER_GET_VRING_BASE), 1);
	assert_int_equal(count_requests(&f->backend, VHOST_USER_SET_VRING_ENABLE), 2 + 1);
	assert_int_equal(count_requests(&next, VHOST_USER_SET_MEM_TABLE), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(create_negotiates_blk, setup, teardown),
	    cmocka_unit_test_setup_teardown(kick_fds_on_the_notify_area, setup, teardown),
	    cmocka_unit_test_setup_teardown(blk_without_mq_has_one_queue, setup, teardown),
	    cmocka_unit_test_setup_teardown(blk_refused_without_protocol_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(rng_has_no_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(hostile_queue_count_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(too_many_queues_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(reconnect_with_other_queue_count_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(bar_move_moves_kick_fds, setup, teardown),
	    cmocka_unit_test_setup_teardown(bar_move_over_another_range_unmaps, setup, teardown),
	    cmocka_unit_test_setup_teardown(driver_ok_starts_rings_and_binds_irqfds, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(config_interrupt_signals_msi, setup, teardown),
	    cmocka_unit_test_setup_teardown(driver_reset_sends_status_0, setup, teardown),
	    cmocka_unit_test_setup_teardown(driver_reset_without_f_status_sends_nothing, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(failed_start_reset_stops_the_started_rings, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(detach_sends_status_0, setup, teardown),
	    cmocka_unit_test_setup_teardown(handover_stops_old_rings_before_new_takes_them, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(handover_refused_leaves_the_old_back_end, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(handover_failing_after_the_new_had_rings_rolls_forward,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(handover_failing_before_the_new_had_rings_rolls_back,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(handover_stops_at_the_first_unanswered_request, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(handover_with_request_left_in_flight_gives_back, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
