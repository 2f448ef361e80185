// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "devices/vhost_user_device.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/gmem.h"
#include "lib/log.h"
#include "lib/vhost_user.h"
#include "lib/virtq.h"

/* Transport features the core does not implement are never offered, even if
 * a back-end does: ACCESS_PLATFORM (33), RING_PACKED (34), NOTIFICATION_DATA
 * (38), RING_RESET (40). */
#define VHOST_DEVICE_TRANSPORT_UNSUPPORTED                                                         \
	((1ull << VIRTIO_F_ACCESS_PLATFORM) | (1ull << VIRTIO_F_RING_PACKED) |                     \
	 (1ull << VIRTIO_F_NOTIFICATION_DATA) | (1ull << VIRTIO_F_RING_RESET) |                    \
	 (1ull << VHOST_USER_F_PROTOCOL_FEATURES))
#define VHOST_DEVICE_WANTED_PROTOCOL                                                               \
	((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |          \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIG) | (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) | \
	 (1ull << VHOST_USER_PROTOCOL_F_STATUS) | (1ull << VHOST_USER_PROTOCOL_F_DEVICE_STATE))
#define VHOST_DEVICE_QUEUE_SIZE 256

static bool has_protocol(const struct vhost_device *dev, unsigned bit)
{
	return dev->protocol_features & (1ull << bit);
}

/* vhost_user_call(), remembering what was wrong with a failed reply for
 * the error text (vhost_device_error). */
static int vhost_device_rpc(struct vhost_device *dev, const struct vhost_user_msg *msg,
			    struct vhost_user_msg *reply)
{
	int ret;

	dev->bad_reply[0] = '\0';
	ret = vhost_user_call(dev->sock, msg, reply);
	if (ret == -EPROTO)
		vhost_user_describe_bad_reply(msg, reply, dev->bad_reply, sizeof(dev->bad_reply));
	else if (ret == -ETIMEDOUT)
		snprintf(dev->bad_reply, sizeof(dev->bad_reply), "no reply within %d ms",
			 VHOST_USER_TIMEOUT_MS);
	else if (ret == -ECONNRESET || ret == -EPIPE)
		snprintf(dev->bad_reply, sizeof(dev->bad_reply),
			 "the back-end hung up before a whole reply");
	return ret;
}

/* One request; with REPLY_ACK negotiated, every request without a reply of
 * its own asks for an ack so failures are seen where they happen. */
static int vhost_device_call(struct vhost_device *dev, struct vhost_user_msg *msg,
			     struct vhost_user_msg *reply)
{
	struct vhost_user_msg local;
	int ret;

	if (dev->sock < 0)
		return -ENOTCONN;
	if (!reply)
		reply = &local;
	if (has_protocol(dev, VHOST_USER_PROTOCOL_F_REPLY_ACK) && !vhost_user_expects_reply(msg))
		msg->hdr.flags |= VHOST_USER_NEED_REPLY_MASK;
	ret = vhost_device_rpc(dev, msg, reply);
	if (ret)
		return ret;
	if (vhost_user_needs_ack(msg) && reply->payload.u64 != 0)
		ret = -EIO;
	if (reply == &local)
		vhost_user_close_fds(&local);
	return ret;
}

/* Why the last call failed: what was wrong with the reply, or errno's text. */
static const char *vhost_device_error(const struct vhost_device *dev, int ret)
{
	bool described = ret == -EPROTO || ret == -ETIMEDOUT || ret == -ECONNRESET || ret == -EPIPE;

	return dev->bad_reply[0] && described ? dev->bad_reply : strerror(-ret);
}

static int vhost_device_get_u64(struct vhost_device *dev, uint32_t request, uint64_t *value)
{
	struct vhost_user_msg msg, reply;
	int ret;

	vhost_user_msg_init(&msg, request, 0);
	ret = vhost_device_call(dev, &msg, &reply);
	if (!ret)
		*value = reply.payload.u64;
	vhost_user_close_fds(&reply);
	return ret;
}

static int vhost_device_set_u64(struct vhost_device *dev, uint32_t request, uint64_t value)
{
	struct vhost_user_msg msg;

	vhost_user_msg_init(&msg, request, sizeof(uint64_t));
	msg.payload.u64 = value;
	return vhost_device_call(dev, &msg, NULL);
}

static int vhost_device_set_state(struct vhost_device *dev, uint32_t request, unsigned index,
				  unsigned num)
{
	struct vhost_user_msg msg;

	vhost_user_msg_init(&msg, request, sizeof(msg.payload.state));
	msg.payload.state.index = index;
	msg.payload.state.num = num;
	return vhost_device_call(dev, &msg, NULL);
}

static int vhost_device_set_fd(struct vhost_device *dev, uint32_t request, unsigned index, int fd)
{
	struct vhost_user_msg msg;

	vhost_user_msg_init(&msg, request, sizeof(uint64_t));
	msg.payload.u64 = index;
	msg.fds[0] = fd;
	msg.nfds = 1;
	return vhost_device_call(dev, &msg, NULL);
}

/* vhost-user: VHOST_USER_SET_STATUS, the guest's device status byte
 * (virtio 1.2 §2.1), for a back-end that negotiated
 * VHOST_USER_PROTOCOL_F_STATUS; nothing for one that did not (qsd, DPDK),
 * which keeps working as before.  Status 0 is how a back-end learns of a
 * reset (the driver's, or a reboot's): without it, a back-end that keeps
 * state the driver set (isola-net's receive filter) would hand it to the
 * next driver. */
static int vhost_device_send_status(struct vhost_device *dev, uint8_t status)
{
	if (!has_protocol(dev, VHOST_USER_PROTOCOL_F_STATUS) || dev->sock < 0)
		return 0;
	return vhost_device_set_u64(dev, VHOST_USER_SET_STATUS, status);
}

/* ---- negotiation at creation --------------------------------------------- */

/* The device config from the back-end (vhost-user: VHOST_USER_GET_CONFIG). */
static int vhost_device_get_config(struct vhost_device *dev, uint8_t *config, uint32_t size,
				   char *err, size_t errlen)
{
	struct vhost_user_msg msg, reply;
	int ret;

	if (!has_protocol(dev, VHOST_USER_PROTOCOL_F_CONFIG))
		return error_text(err, errlen, -EPROTO,
				  "the back-end does not offer VHOST_USER_PROTOCOL_F_CONFIG; a %s "
				  "device needs it",
				  dev->kind->name);
	vhost_user_msg_init(&msg, VHOST_USER_GET_CONFIG, VHOST_USER_CONFIG_HDR_SIZE + size);
	msg.payload.config.offset = 0;
	msg.payload.config.size = size;
	ret = vhost_device_rpc(dev, &msg, &reply);
	if (ret)
		return error_text(err, errlen, ret, "GET_CONFIG: %s", vhost_device_error(dev, ret));
	if (reply.payload.config.size != size)
		return error_text(err, errlen, -EPROTO, "GET_CONFIG returned %u bytes, asked %u",
				  reply.payload.config.size, size);
	memcpy(config, reply.payload.config.payload, size);
	return 0;
}

/* Features, protocol features, queue count and config of the back-end at
 * dev->sock, adjusted to what dev->kind allows.  config (zeroed by the
 * caller) gets *config_size bytes. */
static int vhost_device_negotiate(struct vhost_device *dev, uint8_t *config, uint32_t *config_size,
				  char *err, size_t errlen)
{
	const struct device_kind *kind = dev->kind;
	uint16_t num_queues;
	struct vhost_user_msg msg, reply;
	uint64_t offered, queues = 1;
	int ret;

	/* A returning back-end negotiates from nothing: what the last one
	 * agreed to (REPLY_ACK, ...) does not carry over. */
	dev->protocol_features = 0;
	ret = vhost_device_get_u64(dev, VHOST_USER_GET_FEATURES, &dev->backend_features);
	if (ret)
		return error_text(err, errlen, ret, "GET_FEATURES: %s",
				  vhost_device_error(dev, ret));
	if (!(dev->backend_features & (1ull << VIRTIO_F_VERSION_1)))
		return error_text(err, errlen, -EPROTO,
				  "the back-end does not offer VIRTIO_F_VERSION_1; isola drives "
				  "modern devices only");
	if (dev->backend_features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) {
		ret = vhost_device_get_u64(dev, VHOST_USER_GET_PROTOCOL_FEATURES, &offered);
		if (ret)
			return error_text(err, errlen, ret, "GET_PROTOCOL_FEATURES: %s",
					  vhost_device_error(dev, ret));
		dev->protocol_features = offered & VHOST_DEVICE_WANTED_PROTOCOL;
		/* Set before REPLY_ACK may be used: this one is never acked. */
		vhost_user_msg_init(&msg, VHOST_USER_SET_PROTOCOL_FEATURES, sizeof(uint64_t));
		msg.payload.u64 = dev->protocol_features;
		ret = vhost_device_rpc(dev, &msg, &reply);
		if (ret)
			return error_text(err, errlen, ret, "SET_PROTOCOL_FEATURES: %s",
					  vhost_device_error(dev, ret));
	}
	vhost_user_msg_init(&msg, VHOST_USER_SET_OWNER, 0);
	ret = vhost_device_call(dev, &msg, NULL);
	if (ret)
		return error_text(err, errlen, ret, "SET_OWNER: %s", vhost_device_error(dev, ret));
	if (has_protocol(dev, VHOST_USER_PROTOCOL_F_MQ)) {
		ret = vhost_device_get_u64(dev, VHOST_USER_GET_QUEUE_NUM, &queues);
		if (ret)
			return error_text(err, errlen, ret, "GET_QUEUE_NUM: %s",
					  vhost_device_error(dev, ret));
	}
	/* A back-end is untrusted: a queue count we cannot serve is refused
	 * (after the kind's fix-up, which may read it its own way: net's as
	 * queue pairs from an external back-end). */
	if (queues == 0 || queues > UINT16_MAX)
		return error_text(err, errlen, -EPROTO,
				  "the back-end asks for %llu queues (1..%d allowed)",
				  (unsigned long long)queues, VIRTIO_PCI_MAX_QUEUES);
	num_queues = (uint16_t)queues;

	*config_size = kind->config_owner == DEVICE_CONFIG_NONE ? 0 : kind->config_size;
	if (*config_size > VIRTIO_PCI_CONFIG_MAX || *config_size > VHOST_USER_MAX_CONFIG_SIZE)
		return error_text(err, errlen, -EINVAL,
				  "the %s device's config (%u bytes) is too big", kind->name,
				  *config_size);
	if (kind->config_owner == DEVICE_CONFIG_BACKEND && *config_size) {
		ret = vhost_device_get_config(dev, config, *config_size, err, errlen);
		if (ret)
			return ret;
	}
	if (kind->config_owner == DEVICE_CONFIG_FRONTEND && *config_size)
		memcpy(config, dev->frontend_config, *config_size);
	dev->device_features = dev->backend_features & ~VHOST_DEVICE_TRANSPORT_UNSUPPORTED;
	/* The type's rules (e.g. virtio 1.2 §5.2.6.2: blk without
	 * VIRTIO_BLK_F_MQ has one queue), and a front-end-owned config. */
	if (kind->fixup) {
		struct device_fixup fixup = {
		    .backend_features = dev->backend_features,
		    .device_features = dev->device_features,
		    .num_queues = num_queues,
		    .config = config,
		    .config_size = *config_size,
		    .external_backend = dev->external_backend,
		};

		ret = kind->fixup(kind, &fixup, err, errlen);
		if (ret)
			return ret;
		if (fixup.num_queues == 0)
			return error_text(err, errlen, -EINVAL, "the %s fix-up left no queue",
					  kind->name);
		num_queues = fixup.num_queues;
		dev->device_features = fixup.device_features & ~VHOST_DEVICE_TRANSPORT_UNSUPPORTED;
	}
	if (num_queues > VIRTIO_PCI_MAX_QUEUES)
		return error_text(err, errlen, -EPROTO,
				  "the back-end asks for %u queues (1..%d allowed)", num_queues,
				  VIRTIO_PCI_MAX_QUEUES);
	dev->num_queues = num_queues;
	return 0;
}

/* ---- guest-facing plumbing: the virtio-pci platform ops, on the host ------ */

static int vhost_device_ioeventfd(struct vhost_device *dev, unsigned q, uint64_t base, bool assign)
{
	uint64_t addr = base + VIRTIO_PCI_NOTIFY_OFFSET + q * VIRTIO_PCI_NOTIFY_MULTIPLIER;

	/* virtio 1.2 §4.1.5.2: the driver writes a 16-bit queue index */
	return dev->host.ops->ioeventfd(dev->host.opaque, addr, 2, dev->kick_fds[q], assign);
}

static void vhost_device_bar_moved(struct virtio_pci_dev *pci, uint64_t old_base, uint64_t new_base)
{
	struct vhost_device *dev = (struct vhost_device *)pci;
	const struct device_host *host = &dev->host;

	for (unsigned q = 0; q < dev->num_queues && old_base; q++)
		vhost_device_ioeventfd(dev, q, old_base, false);
	if (host->ops->mmio_move(host->opaque, dev, new_base, new_base ? VIRTIO_PCI_BAR_SIZE : 0) <
	    0) {
		/* The guest put the BAR over something else: decode nothing. */
		log_warn("%s: BAR 0 at 0x%llx overlaps another device; not decoded", dev->name,
			 (unsigned long long)new_base);
		host->ops->mmio_move(host->opaque, dev, 0, 0);
		new_base = 0;
	}
	for (unsigned q = 0; q < dev->num_queues && new_base; q++)
		vhost_device_ioeventfd(dev, q, new_base, true);
	dev->notify_base = new_base;
}

void vhost_device_queue_work(struct vhost_device *dev, unsigned work)
{
	uint64_t one = 1;

	atomic_fetch_or(&dev->work, work);
	if (write(dev->work_fd, &one, sizeof(one)) < 0) {
		/* eventfd: cannot overflow in practice */
	}
}

static void vhost_device_vector_changed(struct virtio_pci_dev *pci, unsigned vector)
{
	(void)vector;
	vhost_device_queue_work((struct vhost_device *)pci, VHOST_DEVICE_WORK_INTERRUPTS);
}

static void vhost_device_config_interrupt(struct virtio_pci_dev *pci)
{
	struct vhost_device *dev = (struct vhost_device *)pci;
	uint64_t address;
	uint32_t data;
	bool ok;

	pthread_mutex_lock(&pci->lock);
	ok = virtio_pci_vector_route(pci, pci->config_msix_vector, &address, &data);
	pthread_mutex_unlock(&pci->lock);
	if (ok)
		dev->host.ops->signal_msi(dev->host.opaque, address, data);
}

/* The transport's platform ops are the front-end's: it knows the kick and
 * call fds, and turns them into device_host requests. */
static const struct virtio_pci_platform_ops vhost_device_platform_ops = {
    .bar_moved = vhost_device_bar_moved,
    .vector_changed = vhost_device_vector_changed,
    .config_interrupt = vhost_device_config_interrupt,
};

static bool vhost_device_status_changed(struct virtio_pci_dev *pci, uint8_t old_status,
					uint8_t new_status)
{
	struct vhost_device *dev = (struct vhost_device *)pci;

	if (new_status == 0 && old_status != 0) {
		/* Rings may be running: the reset completes once the back-end
		 * has stopped them (GET_VRING_BASE), so no completion lands in
		 * memory the driver is already reusing. */
		vhost_device_queue_work(dev, VHOST_DEVICE_WORK_STOP | VHOST_DEVICE_WORK_INTERRUPTS);
		return true;
	}
	if ((new_status & VIRTIO_STATUS_DRIVER_OK) && !(old_status & VIRTIO_STATUS_DRIVER_OK))
		vhost_device_queue_work(dev,
					VHOST_DEVICE_WORK_START | VHOST_DEVICE_WORK_INTERRUPTS);
	return false;
}

static const struct virtio_pci_backend_ops vhost_device_backend_ops = {
    .status_changed = vhost_device_status_changed,
};

/* Bind each queue's call fd to the GSI of its MSI-X vector, or unbind it
 * while the vector cannot fire (masked, disabled): the eventfd then keeps
 * the interrupt pending, and KVM delivers it when the irqfd is re-assigned
 * (api.rst KVM_IRQFD), which is the PBA's meaning. */
static void vhost_device_bind_interrupts(struct vhost_device *dev)
{
	struct virtio_pci_dev *pci = &dev->pci;
	const struct device_host *host = &dev->host;

	for (unsigned q = 0; q < dev->num_queues; q++) {
		uint64_t address = 0;
		uint32_t data = 0;
		bool live;
		unsigned vector;
		int gsi;

		pthread_mutex_lock(&pci->lock);
		vector = pci->queues[q].msix_vector;
		live = virtio_pci_vector_route(pci, vector, &address, &data);
		pthread_mutex_unlock(&pci->lock);
		gsi = live ? (int)(dev->placement.gsi_base + vector) : -1;
		if (dev->irqfd_gsi[q] >= 0) {
			host->ops->irqfd(host->opaque, (unsigned)dev->irqfd_gsi[q],
					 dev->call_fds[q], false);
			dev->irqfd_gsi[q] = -1;
		}
		if (gsi < 0)
			continue;
		if (host->ops->set_msi_route(host->opaque, (unsigned)gsi, address, data) == 0) {
			int ret =
			    host->ops->irqfd(host->opaque, (unsigned)gsi, dev->call_fds[q], true);

			if (ret == 0)
				dev->irqfd_gsi[q] = gsi;
			else
				log_warn("%s: irqfd for queue %u: %s", dev->name, q,
					 strerror(-ret));
		}
	}
}

/* ---- starting and stopping the back-end's rings --------------------------- */

static int vhost_device_send_mem_table(struct vhost_device *dev)
{
	const struct gmem *mem = dev->host.mem;
	struct vhost_user_msg msg;

	vhost_user_msg_init(&msg, VHOST_USER_SET_MEM_TABLE,
			    8 + mem->nr_regions * (uint32_t)sizeof(struct vhost_user_mem_region));
	msg.payload.memory.nregions = mem->nr_regions;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct gmem_region *r = &mem->regions[i];

		msg.payload.memory.regions[i] = (struct vhost_user_mem_region){
		    .guest_address = r->gpa,
		    .size = r->size,
		    .user_address = (uint64_t)(uintptr_t)r->host,
		    .mmap_offset = r->fd_offset,
		};
		msg.fds[i] = mem->fd;
	}
	msg.nfds = mem->nr_regions;
	return vhost_device_call(dev, &msg, NULL);
}

static int vhost_device_setup_inflight(struct vhost_device *dev)
{
	struct vhost_user_msg msg, reply;
	int ret;

	if (!has_protocol(dev, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))
		return 0;
	if (dev->inflight_fd < 0) {
		vhost_user_msg_init(&msg, VHOST_USER_GET_INFLIGHT_FD, sizeof(msg.payload.inflight));
		msg.payload.inflight.num_queues = dev->num_queues;
		msg.payload.inflight.queue_size = dev->queue_size;
		ret = vhost_device_rpc(dev, &msg, &reply);
		if (ret)
			return ret;
		if (reply.nfds != 1) {
			vhost_user_close_fds(&reply);
			return -EPROTO;
		}
		dev->inflight_fd = reply.fds[0];
		dev->inflight_size = reply.payload.inflight.mmap_size;
	}
	vhost_user_msg_init(&msg, VHOST_USER_SET_INFLIGHT_FD, sizeof(msg.payload.inflight));
	msg.payload.inflight.mmap_size = dev->inflight_size;
	msg.payload.inflight.mmap_offset = 0;
	msg.payload.inflight.num_queues = dev->num_queues;
	msg.payload.inflight.queue_size = dev->queue_size;
	msg.fds[0] = dev->inflight_fd;
	msg.nfds = 1;
	return vhost_device_call(dev, &msg, NULL);
}

static int vhost_device_start_queue(struct vhost_device *dev, unsigned q,
				    const struct virtio_pci_queue *queue, bool resume,
				    const uint16_t *bases)
{
	uint16_t base = 0;
	struct vhost_user_msg msg;
	void *desc, *avail, *used;
	int ret;

	/* Guest-chosen addresses: all three rings must be guest RAM. */
	desc = gmem_ptr(dev->host.mem, queue->desc, virtq_desc_bytes(queue->size));
	avail = gmem_ptr(dev->host.mem, queue->driver, virtq_avail_bytes(queue->size));
	used = gmem_ptr(dev->host.mem, queue->device, virtq_used_bytes(queue->size));
	if (!desc || !avail || !used)
		return -EFAULT;
	/* Resuming after a back-end restart: everything up to used->idx was
	 * completed; what the old server took beyond that is in the inflight
	 * region, which the back-end resubmits (and which overrides this base). */
	if (resume)
		base = __atomic_load_n((uint16_t *)((uint8_t *)used + 2), __ATOMIC_ACQUIRE);
	/* A handover: where the old back-end stopped (GET_VRING_BASE). */
	if (bases)
		base = bases[q];
	ret = vhost_device_set_state(dev, VHOST_USER_SET_VRING_NUM, q, queue->size);
	if (ret)
		return ret;
	vhost_user_msg_init(&msg, VHOST_USER_SET_VRING_ADDR, sizeof(msg.payload.addr));
	msg.payload.addr.index = q;
	msg.payload.addr.desc_user_addr = (uint64_t)(uintptr_t)desc;
	msg.payload.addr.avail_user_addr = (uint64_t)(uintptr_t)avail;
	msg.payload.addr.used_user_addr = (uint64_t)(uintptr_t)used;
	ret = vhost_device_call(dev, &msg, NULL);
	if (!ret)
		ret = vhost_device_set_state(dev, VHOST_USER_SET_VRING_BASE, q, base);
	/* The call fd first: a back-end starts the ring on a kick (vhost-user
	 * "Starting and stopping rings"), and after a reconnection the guest's
	 * kicks are already waiting in the kick eventfd; libvhost-user (qsd)
	 * completes at once and panics on a missing call fd. */
	if (!ret)
		ret = vhost_device_set_fd(dev, VHOST_USER_SET_VRING_CALL, q, dev->call_fds[q]);
	/* vhost-user: VHOST_USER_SET_VRING_ERR, "to signal an error occurred
	 * on the vring" (a back-end that stops a ring the guest broke). */
	if (!ret)
		ret = vhost_device_set_fd(dev, VHOST_USER_SET_VRING_ERR, q, dev->err_fd);
	/* vhost-user "Starting and stopping rings": a back-end may start the
	 * ring once it has the kick fd (without PROTOCOL_FEATURES at once; a
	 * sloppy one may not wait for SET_VRING_ENABLE), and the guest's
	 * kicks may already wait in it: from here it may serve requests. */
	if (!ret) {
		dev->rings_given = true;
		ret = vhost_device_set_fd(dev, VHOST_USER_SET_VRING_KICK, q, dev->kick_fds[q]);
	}
	/* vhost-user: with PROTOCOL_FEATURES negotiated, rings start disabled. */
	if (!ret && (dev->backend_features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) &&
	    !dev->rings_paused)
		ret = vhost_device_set_state(dev, VHOST_USER_SET_VRING_ENABLE, q, 1);
	return ret;
}

static void vhost_device_fail(struct vhost_device *dev, const char *what, int ret)
{
	log_error("%s: %s: %s; the device needs a reset", dev->name, what,
		  vhost_device_error(dev, ret));
	virtio_pci_set_needs_reset(&dev->pci);
}

/* ---- device state (vhost-user "Migrating back-end state") --------------- */

/*
 * VHOST_USER_SET_DEVICE_STATE_FD over a pipe, then CHECK_DEVICE_STATE.
 * Save (load false): the back-end writes its state, buf[*len] gets it (*len
 * in: the room).  Load: buf[*len] goes to the back-end; it is written whole
 * into the pipe before the request (at most VHOST_DEVICE_STATE_MAX, well
 * under a pipe's 64 KiB), since the back-end reads it before it replies.
 * Every ring must be stopped (the only phase is "stopped").
 */
static int vhost_device_state_transfer(struct vhost_device *dev, bool load, uint8_t *buf,
				       size_t *len)
{
	struct vhost_user_msg msg, reply;
	int pipefd[2], ret;
	ssize_t n = 0;

	if (!has_protocol(dev, VHOST_USER_PROTOCOL_F_DEVICE_STATE))
		return -EOPNOTSUPP;
	if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	if (load) {
		n = *len ? write(pipefd[1], buf, *len) : 0;
		close(pipefd[1]);
		pipefd[1] = -1;
		if (n < 0 || (size_t)n != *len) {
			close(pipefd[0]);
			return n < 0 ? -errno : -EIO;
		}
	}
	vhost_user_msg_init(&msg, VHOST_USER_SET_DEVICE_STATE_FD, sizeof(msg.payload.device_state));
	msg.payload.device_state.transfer_direction = load ? 1 : 0;
	msg.payload.device_state.migration_phase = 0;
	msg.fds[0] = load ? pipefd[0] : pipefd[1];
	msg.nfds = 1;
	ret = vhost_device_rpc(dev, &msg, &reply);
	/* our copy of the back-end's end goes: its close is the EOF we read */
	close(msg.fds[0]);
	if (!ret) {
		/* bits 0-7: failure; without bit 8 a channel of its own, which
		 * isola does not take (the reply's fd is closed) */
		if ((reply.payload.u64 & 0xff) || !(reply.payload.u64 & VHOST_USER_VRING_NOFD_MASK))
			ret = -EIO;
		vhost_user_close_fds(&reply);
	}
	if (!ret && !load) {
		n = vhost_user_state_read(pipefd[0], buf, *len);
		if (n < 0)
			ret = (int)n;
		else
			*len = (size_t)n;
	}
	if (!load)
		close(pipefd[0]);
	if (!ret) {
		uint64_t check = 1;

		ret = vhost_device_get_u64(dev, VHOST_USER_CHECK_DEVICE_STATE, &check);
		if (!ret && check != 0) {
			snprintf(dev->bad_reply, sizeof(dev->bad_reply),
				 "the back-end %s (CHECK_DEVICE_STATE answered %llu; its log says "
				 "why)",
				 load ? "refused the saved state" : "could not give its state",
				 (unsigned long long)check);
			ret = -EPROTO;
		}
	}
	return ret;
}

/* 0 or -errno, *what names the step that failed. */
static int vhost_device_start(struct vhost_device *dev, bool resume, const uint16_t *bases,
			      const char **what)
{
	struct virtio_pci_queue queues[VIRTIO_PCI_MAX_QUEUES];
	uint64_t features;
	uint8_t status;
	int ret;

	pthread_mutex_lock(&dev->pci.lock);
	memcpy(queues, dev->pci.queues, sizeof(queues));
	features = dev->pci.driver_features;
	pthread_mutex_unlock(&dev->pci.lock);
	/* What the front-end added (net's MAC, STATUS) is its own business. */
	features &= dev->backend_features;
	if (dev->backend_features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES))
		features |= 1ull << VHOST_USER_F_PROTOCOL_FEATURES;

	*what = "SET_FEATURES";
	ret = vhost_device_set_u64(dev, VHOST_USER_SET_FEATURES, features);
	if (ret)
		return ret;
	*what = "SET_MEM_TABLE";
	ret = vhost_device_send_mem_table(dev);
	if (ret)
		return ret;
	*what = "inflight region";
	ret = vhost_device_setup_inflight(dev);
	if (ret)
		return ret;
	if (dev->restore_state) {
		*what = "SET_DEVICE_STATE_FD (loading the device's state)";
		ret = vhost_device_state_transfer(dev, true, (uint8_t *)dev->restore_state,
						  &dev->restore_state_len);
		if (ret)
			return ret;
	}
	*what = "starting a queue";
	dev->started_queues = 0;
	dev->rings_given = false;
	for (unsigned q = 0; q < dev->num_queues; q++) {
		if (!queues[q].enabled)
			continue;
		ret = vhost_device_start_queue(dev, q, &queues[q], resume, bases);
		if (ret)
			return ret;
		dev->started_queues |= 1u << q;
	}
	dev->started = true;
	/* The driver's status, DRIVER_OK among it (after a back-end restart
	 * too): a back-end with F_STATUS may wait for it before it serves
	 * (DPDK's vhost library does). */
	*what = "SET_STATUS";
	pthread_mutex_lock(&dev->pci.lock);
	status = dev->pci.status;
	pthread_mutex_unlock(&dev->pci.lock);
	return vhost_device_send_status(dev, status);
}

/* A call that left the socket out of step (no reply, a spoiled one, a
 * hang-up): a late reply would answer the next request, and each further
 * request may wait VHOST_USER_TIMEOUT_MS on the event loop. */
static bool vhost_device_out_of_step(int ret)
{
	return ret == -ETIMEDOUT || ret == -EPROTO || ret == -ECONNRESET || ret == -EPIPE ||
	       ret == -ENOTCONN;
}

/* Stop every started ring on the back-end, noting in bases (if not NULL)
 * where each stopped; 0, or the first failure.  The inflight region stays.
 * A back-end that stops answering is not asked further (the caller
 * replaces it; its rings are gone with it).  started_queues, not started:
 * a start that failed part-way (a later ring outside guest RAM) left the
 * earlier rings running on the back-end, and a reset must stop them too,
 * or the back-end goes on using rings the driver reuses (and virtiofsd
 * dies at the next start's SET_VRING_KICK on a ring it still runs). */
static int vhost_device_stop_rings(struct vhost_device *dev, uint16_t *bases)
{
	struct vhost_user_msg msg, reply;
	int ret = 0, r;

	for (unsigned q = 0; q < dev->num_queues && dev->started_queues && dev->sock >= 0; q++) {
		if (!(dev->started_queues & (1u << q)))
			continue;
		if (dev->backend_features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) {
			r = vhost_device_set_state(dev, VHOST_USER_SET_VRING_ENABLE, q, 0);
			ret = ret ? ret : r;
			if (vhost_device_out_of_step(r))
				break;
		}
		/* GET_VRING_BASE stops the ring (vhost-user "Starting and
		 * stopping rings"). */
		vhost_user_msg_init(&msg, VHOST_USER_GET_VRING_BASE, sizeof(msg.payload.state));
		msg.payload.state.index = q;
		r = vhost_device_rpc(dev, &msg, &reply);
		if (r == 0) {
			vhost_user_close_fds(&reply);
			if (bases)
				bases[q] = (uint16_t)reply.payload.state.num;
		}
		ret = ret ? ret : r;
		if (vhost_device_out_of_step(r))
			break;
	}
	dev->started = false;
	dev->started_queues = 0;
	return ret;
}

/* Stop every started ring on the back-end; 0, or the first failure. */
static int vhost_device_stop(struct vhost_device *dev)
{
	int ret = vhost_device_stop_rings(dev, NULL);

	/* A reset device starts from scratch: nothing is in flight. */
	if (dev->inflight_fd >= 0)
		close(dev->inflight_fd);
	dev->inflight_fd = -1;
	return ret;
}

/* VM pause: a disabled ring is not processed (vhost-user "Rings ... can be
 * enabled or disabled"), so the server stops touching guest memory; the
 * ring state is kept and enabling resumes where it stopped. */
static void vhost_device_enable_rings(struct vhost_device *dev, bool enable)
{
	dev->rings_paused = !enable;
	if (!dev->started || !(dev->backend_features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
		return;
	for (unsigned q = 0; q < dev->num_queues; q++)
		if (dev->started_queues & (1u << q))
			vhost_device_set_state(dev, VHOST_USER_SET_VRING_ENABLE, q, enable);
}

/* An error signalled before now belongs to rings that are gone. */
static void vhost_device_drain_errors(struct vhost_device *dev)
{
	uint64_t count;

	if (read(dev->err_fd, &count, sizeof(count)) < 0) {
		/* non-blocking: nothing signalled */
	}
}

void vhost_device_ring_error(struct vhost_device *dev)
{
	vhost_device_drain_errors(dev);
	/* A reset the driver asked for is still pending: the error belongs
	 * to the rings it ends. */
	if (atomic_load(&dev->work) & VHOST_DEVICE_WORK_STOP)
		return;
	if (!dev->wanted || (dev->pci.status & VIRTIO_STATUS_NEEDS_RESET))
		return;
	log_error("%s: the back-end stopped a ring the guest broke; the device needs a reset",
		  dev->name);
	/* virtio 1.2 §2.1.2: set DEVICE_NEEDS_RESET and, if DRIVER_OK is set,
	 * send a configuration change notification (virtio_pci does both). */
	virtio_pci_set_needs_reset(&dev->pci);
}

void vhost_device_process(struct vhost_device *dev)
{
	unsigned work = atomic_exchange(&dev->work, 0);

	if (work & VHOST_DEVICE_WORK_STOP) {
		int ret;

		dev->wanted = false;
		vhost_device_stop(dev);
		/* virtio 1.2 §2.1.2: the driver wrote 0, a reset; the back-end
		 * forgets what the last driver set (its rings are stopped). */
		ret = vhost_device_send_status(dev, 0);
		if (ret)
			log_warn("%s: SET_STATUS 0 (device reset): %s", dev->name,
				 vhost_device_error(dev, ret));
		vhost_device_drain_errors(dev);
		virtio_pci_reset_complete(&dev->pci);
	}
	if (work & VHOST_DEVICE_WORK_START) {
		const char *what = "start";
		int ret = 0;

		dev->wanted = true;
		vhost_device_stop(dev);
		/* With the back-end away, the start happens on reconnection;
		 * the guest's kicks wait in the kick eventfds meanwhile. */
		if (dev->sock >= 0)
			ret = vhost_device_start(dev, false, NULL, &what);
		if (ret)
			vhost_device_fail(dev, what, ret);
	}
	if (work & VHOST_DEVICE_WORK_INTERRUPTS)
		vhost_device_bind_interrupts(dev);
	if (work & (VHOST_DEVICE_WORK_PAUSE | VHOST_DEVICE_WORK_RESUME))
		vhost_device_enable_rings(dev, !(work & VHOST_DEVICE_WORK_PAUSE));
}

/* One kick per started ring, for requests a back-end has not looked at. */
static void vhost_device_kick_rings(struct vhost_device *dev)
{
	for (unsigned q = 0; q < dev->num_queues; q++) {
		uint64_t one = 1;

		if ((dev->started_queues & (1u << q)) &&
		    write(dev->kick_fds[q], &one, sizeof(one)) != sizeof(one))
			log_warn("%s: kicking queue %u: %s", dev->name, q, strerror(errno));
	}
}

void vhost_device_disconnect(struct vhost_device *dev)
{
	if (dev->sock >= 0)
		close(dev->sock);
	dev->sock = -1;
	dev->started = false; /* the rings died with the back-end */
	dev->started_queues = 0;
}

int vhost_device_reconnect(struct vhost_device *dev, int sock, char *err, size_t errlen)
{
	uint8_t config[VIRTIO_PCI_CONFIG_MAX] = {0};
	uint32_t config_size = 0;
	uint64_t features = dev->device_features;
	uint16_t num_queues = dev->num_queues;
	int ret;

	vhost_device_disconnect(dev);
	dev->sock = sock;
	ret = vhost_device_negotiate(dev, config, &config_size, err, errlen);
	if (!ret && (dev->device_features & features) != features)
		ret =
		    error_text(err, errlen, -EPROTO,
			       "the back-end now offers fewer features than the driver negotiated");
	/* The PCI function, its kick and call fds were made for num_queues:
	 * an untrusted back-end may not change the count under the driver. */
	if (!ret && dev->num_queues != num_queues)
		ret = error_text(err, errlen, -EPROTO,
				 "the back-end now serves %u queues, not the device's %u",
				 dev->num_queues, num_queues);
	if (ret)
		dev->num_queues = num_queues;
	/* A failure here is one failed attempt (the caller retries), not a
	 * broken device: no NEEDS_RESET. */
	if (!ret && dev->wanted) {
		const char *what;

		ret = vhost_device_start(dev, true, NULL, &what);
		if (ret)
			ret = error_text(err, errlen, ret, "replaying the ring state: %s: %s", what,
					 vhost_device_error(dev, ret));
	}
	if (ret) {
		vhost_device_disconnect(dev);
		return ret;
	}
	vhost_device_bind_interrupts(dev);
	/* Without an inflight region (e.g. qemu-storage-daemon) the replay
	 * starts from used->idx: exact only if nothing was in flight. */
	if (dev->wanted && !has_protocol(dev, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)) {
		for (unsigned q = 0; q < dev->num_queues; q++) {
			const struct virtio_pci_queue *queue = &dev->pci.queues[q];
			uint16_t *avail = gmem_ptr(dev->host.mem, queue->driver + 2, 2);
			uint16_t *used = gmem_ptr(dev->host.mem, queue->device + 2, 2);

			if ((dev->started_queues & (1u << q)) && avail && used &&
			    __atomic_load_n(avail, __ATOMIC_ACQUIRE) !=
				__atomic_load_n(used, __ATOMIC_ACQUIRE))
				log_warn(
				    "%s: queue %u had requests in flight and the back-end keeps no "
				    "inflight region (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD): they "
				    "may "
				    "be repeated or lost",
				    dev->name, q);
		}
	}
	/* The old back-end may have read the guest's last kick and died before
	 * completing what it announced; the guest, waiting for completions,
	 * will not kick again.  A back-end without an inflight region would
	 * never look at those requests: one kick per ring makes it (a spurious
	 * kick only costs a look at an empty ring). */
	vhost_device_kick_rings(dev);
	return 0;
}

/* ---- handover to another back-end (PATCH /drives) ------------------------ */

/* What a negotiation leaves in dev: saved while the other back-end's
 * terms are in use. */
struct vhost_device_terms {
	int sock;
	uint64_t backend_features, device_features, protocol_features;
	uint16_t num_queues;
};

static void vhost_device_terms_swap(struct vhost_device *dev, struct vhost_device_terms *terms)
{
	struct vhost_device_terms now = {dev->sock, dev->backend_features, dev->device_features,
					 dev->protocol_features, dev->num_queues};

	dev->sock = terms->sock;
	dev->backend_features = terms->backend_features;
	dev->device_features = terms->device_features;
	dev->protocol_features = terms->protocol_features;
	dev->num_queues = terms->num_queues;
	*terms = now;
}

/* Step 3 failed.  Before the new back-end had a ring it served nothing:
 * the old one comes back (its rings stopped with nothing in flight, so
 * used->idx is where it resumes, with a fresh inflight region).  After,
 * it may have served requests from the new image (used->idx counts them)
 * and have some half done in its inflight region: only the new image may
 * finish them, so the device rolls forward onto it. */
static enum vhost_device_handover_outcome
vhost_device_handover_failed(struct vhost_device *dev, const uint8_t *config, uint32_t config_size)
{
	bool forward = dev->rings_given;

	vhost_device_disconnect(dev);
	if (!forward) {
		if (dev->inflight_fd >= 0)
			close(dev->inflight_fd);
		dev->inflight_fd = -1;
		return VHOST_DEVICE_HANDOVER_ROLL_BACK;
	}
	/* The new image is the device's now: its capacity too. */
	if (config_size)
		virtio_pci_config_changed(&dev->pci, config, config_size);
	return VHOST_DEVICE_HANDOVER_ROLL_FORWARD;
}

int vhost_device_handover(struct vhost_device *dev, int sock,
			  enum vhost_device_handover_outcome *outcome, char *err, size_t errlen)
{
	uint8_t config[VIRTIO_PCI_CONFIG_MAX] = {0};
	uint16_t bases[VIRTIO_PCI_MAX_QUEUES] = {0};
	struct vhost_device_terms other = {.sock = sock};
	uint32_t config_size = 0;
	uint64_t features = dev->device_features;
	uint16_t num_queues = dev->num_queues;
	unsigned queues;
	const char *what = "start";
	int ret;

	*outcome = VHOST_DEVICE_HANDOVER_REFUSED;
	if (dev->sock < 0 || (dev->pci.status & VIRTIO_STATUS_NEEDS_RESET)) {
		close(sock);
		return error_text(err, errlen, -EBUSY,
				  dev->sock < 0 ? "its back-end is away (being restarted)"
						: "the device needs a reset");
	}
	/* 1. The new back-end first, while the old one serves: it must offer
	 * what the driver took and the same queues (as on a restart). */
	vhost_device_terms_swap(dev, &other);
	ret = vhost_device_negotiate(dev, config, &config_size, err, errlen);
	if (!ret && (dev->device_features & features) != features)
		ret =
		    error_text(err, errlen, -EPROTO,
			       "the new back-end offers fewer features than the driver negotiated");
	if (!ret && dev->num_queues != num_queues)
		ret = error_text(err, errlen, -EPROTO,
				 "the new back-end serves %u queues, not the device's %u",
				 dev->num_queues, num_queues);
	vhost_device_terms_swap(dev, &other); /* back to the old one */
	if (ret) {
		close(sock);
		return ret;
	}
	/* 2. Quiesce the old one: GET_VRING_BASE stops each ring, and the
	 * back-end answers once every request it took is completed and in the
	 * used ring (vhost-user "Starting and stopping rings"; isola-blk's
	 * blk_queue_stop).  Then nothing it took is in flight: its base is
	 * the used index.  A ring that did not stop so may still have a
	 * request half done: the old image must finish it (the caller
	 * restarts the old server, which resubmits it from the inflight
	 * region, kept for that). */
	queues = dev->started_queues;
	ret = vhost_device_stop_rings(dev, bases);
	if (ret)
		error_text(err, errlen, ret, "the old back-end did not stop its rings: %s",
			   vhost_device_error(dev, ret));
	for (unsigned q = 0; !ret && q < dev->num_queues; q++) {
		const uint16_t *used;

		if (!(queues & (1u << q)))
			continue;
		used = gmem_ptr(dev->host.mem, dev->pci.queues[q].device + 2, 2);
		if (!used || __atomic_load_n(used, __ATOMIC_ACQUIRE) != bases[q])
			ret = error_text(err, errlen, -EPROTO,
					 "the old back-end stopped queue %u at %u with requests "
					 "not completed",
					 q, bases[q]);
	}
	if (ret) {
		*outcome = VHOST_DEVICE_HANDOVER_ROLL_BACK;
		vhost_device_disconnect(dev);
		close(sock);
		return ret;
	}
	/* 3. The new one takes the rings where the old one stopped, with an
	 * inflight region of its own (nothing is in flight). */
	close(dev->sock);
	vhost_device_terms_swap(dev, &other);
	if (dev->inflight_fd >= 0)
		close(dev->inflight_fd);
	dev->inflight_fd = -1;
	dev->rings_given = false;
	if (dev->wanted)
		ret = vhost_device_start(dev, false, bases, &what);
	if (ret) {
		error_text(err, errlen, ret, "the new back-end did not take the rings: %s: %s",
			   what, vhost_device_error(dev, ret));
		*outcome = vhost_device_handover_failed(dev, config, config_size);
		return ret;
	}
	*outcome = VHOST_DEVICE_HANDOVER_DONE;
	vhost_device_bind_interrupts(dev);
	/* The old back-end may have drained a kick for requests it then left
	 * in the ring; the new one looks once. */
	vhost_device_kick_rings(dev);
	/* 4. The new back-end's config (virtio-blk: the new image's capacity)
	 * reaches the driver with a configuration change interrupt. */
	if (config_size)
		virtio_pci_config_changed(&dev->pci, config, config_size);
	return 0;
}

/* ---- snapshot and restore ------------------------------------------------ */

int vhost_device_save(struct vhost_device *dev, struct vhost_device_saved *out, uint8_t *state,
		      size_t *state_len, char *err, size_t errlen)
{
	unsigned queues;
	size_t room = *state_len;
	int ret;

	memset(out, 0, sizeof(*out));
	*state_len = 0;
	if (dev->sock < 0)
		return error_text(err, errlen, -EBUSY,
				  "its back-end is away (being restarted); try again");
	virtio_pci_save(&dev->pci, &out->pci);
	/* a device the guest broke (NEEDS_RESET) is restored broken, rings
	 * not started: its driver resets it, as it would have here */
	if (dev->wanted && !(out->pci.status & VIRTIO_STATUS_NEEDS_RESET))
		out->flags |= VHOST_DEVICE_SAVED_WANTED;
	/* vhost-user "Starting and stopping rings": GET_VRING_BASE stops a
	 * ring, and isola's back-ends answer once every request they took is
	 * completed and in the used ring (in-flight block I/O is drained). */
	queues = dev->started_queues;
	ret = vhost_device_stop_rings(dev, out->bases);
	dev->saved_stopped = true;
	memcpy(dev->saved_bases, out->bases, sizeof(dev->saved_bases));
	if (ret)
		return error_text(err, errlen, ret, "the back-end did not stop its rings: %s",
				  vhost_device_error(dev, ret));
	for (unsigned q = 0; q < dev->num_queues; q++) {
		const uint16_t *used;

		if (!(queues & (1u << q)))
			continue;
		used = gmem_ptr(dev->host.mem, dev->pci.queues[q].device + 2, 2);
		if (!used || __atomic_load_n(used, __ATOMIC_ACQUIRE) != out->bases[q])
			return error_text(err, errlen, -EPROTO,
					  "the back-end stopped queue %u at %u with requests not "
					  "completed",
					  q, out->bases[q]);
	}
	out->started_queues = queues;
	/* What the snapshot holds in flight, for the log (the guest sees these
	 * complete after a restore): requests posted and not taken yet */
	for (unsigned q = 0; q < dev->num_queues; q++) {
		const uint16_t *avail;
		uint16_t waiting;

		if (!(queues & (1u << q)))
			continue;
		avail = gmem_ptr(dev->host.mem, dev->pci.queues[q].driver + 2, 2);
		waiting = avail
			      ? (uint16_t)(__atomic_load_n(avail, __ATOMIC_ACQUIRE) - out->bases[q])
			      : 0;
		log_info("%s: snapshot: queue %u stopped at %u, %u request(s) posted and not yet "
			 "taken",
			 dev->name, q, out->bases[q], waiting);
	}
	/* A call raised while its vector was masked waits in the eventfd (the
	 * PBA): note it and put it back for this VM. */
	for (unsigned q = 0; q < dev->num_queues; q++) {
		uint64_t count;

		if (read(dev->call_fds[q], &count, sizeof(count)) == sizeof(count) && count) {
			out->call_pending |= 1u << q;
			if (write(dev->call_fds[q], &count, sizeof(count)) != sizeof(count))
				log_warn("%s: queue %u: a pending call could not be put back",
					 dev->name, q);
		}
	}
	*state_len = room;
	ret = vhost_device_state_transfer(dev, false, state, state_len);
	if (ret == -EOPNOTSUPP) {
		/* an external back-end without DEVICE_STATE: its rings are
		 * saved, what it holds beyond them is not */
		log_warn("%s: the back-end does not offer VHOST_USER_PROTOCOL_F_DEVICE_STATE: its "
			 "own state is not in the snapshot",
			 dev->name);
		*state_len = 0;
		return 0;
	}
	if (ret) {
		*state_len = 0;
		return error_text(err, errlen, ret,
				  "fetching the back-end's state (SET_DEVICE_STATE_FD, "
				  "CHECK_DEVICE_STATE): %s",
				  vhost_device_error(dev, ret));
	}
	out->flags |= VHOST_DEVICE_SAVED_HAS_STATE;
	return 0;
}

void vhost_device_save_done(struct vhost_device *dev)
{
	const char *what = "start";
	int ret = 0;

	if (!dev->saved_stopped)
		return;
	dev->saved_stopped = false;
	if (!dev->wanted || dev->sock < 0 || (dev->pci.status & VIRTIO_STATUS_NEEDS_RESET))
		return;
	ret = vhost_device_start(dev, false, dev->saved_bases, &what);
	if (ret) {
		vhost_device_fail(dev, what, ret);
		return;
	}
	vhost_device_bind_interrupts(dev);
	vhost_device_kick_rings(dev);
}

int vhost_device_restore(struct vhost_device *dev, const struct vhost_device_saved *in,
			 const void *state, size_t state_len, char *err, size_t errlen)
{
	unsigned all = (1u << dev->num_queues) - 1;
	const char *what = "start";
	char why[256];
	bool wanted = in->flags & VHOST_DEVICE_SAVED_WANTED;
	int ret;

	if ((in->flags & ~(VHOST_DEVICE_SAVED_WANTED | VHOST_DEVICE_SAVED_HAS_STATE)) ||
	    in->reserved || (in->started_queues & ~all) || (in->call_pending & ~all) ||
	    !(in->flags & VHOST_DEVICE_SAVED_HAS_STATE) != !state_len ||
	    state_len > VHOST_DEVICE_STATE_MAX)
		return error_text(err, errlen, -EINVAL,
				  "its ring record is invalid (flags 0x%x, queues 0x%x, pending "
				  "0x%x, %zu state bytes)",
				  in->flags, in->started_queues, in->call_pending, state_len);
	ret = virtio_pci_load(&dev->pci, &in->pci, why, sizeof(why));
	if (ret)
		return error_text(err, errlen, ret, "virtio-pci state: %s", why);
	/* running: DRIVER_OK, not broken, and exactly the enabled rings */
	if (wanted) {
		unsigned enabled = 0;

		for (unsigned q = 0; q < dev->num_queues; q++)
			if (dev->pci.queues[q].enabled)
				enabled |= 1u << q;
		if (!(dev->pci.status & VIRTIO_STATUS_DRIVER_OK) ||
		    (dev->pci.status & VIRTIO_STATUS_NEEDS_RESET) || enabled != in->started_queues)
			return error_text(err, errlen, -EINVAL,
					  "it was running with status 0x%x, rings 0x%x and enabled "
					  "queues 0x%x, which do not agree",
					  dev->pci.status, in->started_queues, enabled);
	}
	dev->wanted = wanted;
	if (wanted) {
		dev->restore_state = state_len ? state : NULL;
		dev->restore_state_len = state_len;
		ret = vhost_device_start(dev, false, in->bases, &what);
		dev->restore_state = NULL;
		if (ret)
			return error_text(err, errlen, ret, "starting the back-end: %s: %s", what,
					  vhost_device_error(dev, ret));
	}
	vhost_device_bind_interrupts(dev);
	/* the calls that waited in an eventfd wait again (delivered when
	 * their vector is unmasked, or now if it is not) */
	for (unsigned q = 0; q < dev->num_queues; q++) {
		uint64_t one = 1;

		if ((in->call_pending & (1u << q)) &&
		    write(dev->call_fds[q], &one, sizeof(one)) != sizeof(one))
			log_warn("%s: queue %u: the pending call: %s", dev->name, q,
				 strerror(errno));
	}
	/* a request the guest posted and kicked before the snapshot, which
	 * the old back-end did not take, waits at the base: look once */
	vhost_device_kick_rings(dev);
	return 0;
}

/* ---- creation ------------------------------------------------------------ */

int vhost_device_create(struct vhost_device *dev, const struct device_host *host,
			const struct device_placement *placement, const struct device_kind *kind,
			const char *name, const struct vhost_device_options *options, int sock,
			int work_fd, char *err, size_t errlen)
{
	const uint8_t *frontend_config = options ? options->frontend_config : NULL;
	uint8_t config[VIRTIO_PCI_CONFIG_MAX] = {0};
	uint32_t config_size = 0;
	uint64_t bar = placement->bar;
	int ret;

	memset(dev, 0, sizeof(*dev));
	dev->host = *host;
	dev->placement = *placement;
	dev->kind = kind;
	dev->external_backend = options && options->external_backend;
	snprintf(dev->name, sizeof(dev->name), "%s", name);
	dev->sock = sock;
	dev->work_fd = work_fd;
	dev->inflight_fd = -1;
	dev->err_fd = -1;
	dev->queue_size = VHOST_DEVICE_QUEUE_SIZE;
	atomic_init(&dev->work, 0);
	for (unsigned q = 0; q < VIRTIO_PCI_MAX_QUEUES; q++) {
		dev->kick_fds[q] = dev->call_fds[q] = -1;
		dev->irqfd_gsi[q] = -1;
	}

	if (kind->config_owner == DEVICE_CONFIG_FRONTEND) {
		if (!frontend_config || kind->config_size > sizeof(dev->frontend_config))
			return error_text(err, errlen, -EINVAL,
					  "the %s device needs its config from the core", kind->name);
		memcpy(dev->frontend_config, frontend_config, kind->config_size);
	}
	dev->err_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dev->err_fd < 0)
		return error_text(err, errlen, -errno, "eventfd: %s", strerror(errno));
	ret = vhost_device_negotiate(dev, config, &config_size, err, errlen);
	if (ret)
		return ret;
	ret = virtio_pci_init(&dev->pci, dev->name, kind->virtio_id, kind->pci_class,
			      dev->device_features, dev->num_queues, dev->queue_size, config, config_size, bar,
			      &vhost_device_platform_ops, &vhost_device_backend_ops, dev);
	if (ret)
		return error_text(err, errlen, ret, "virtio-pci setup: %s", strerror(-ret));
	for (unsigned q = 0; q < dev->num_queues; q++) {
		dev->kick_fds[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		dev->call_fds[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (dev->kick_fds[q] < 0 || dev->call_fds[q] < 0) {
			ret = error_text(err, errlen, -errno, "eventfd: %s", strerror(errno));
		} else {
			ret = vhost_device_ioeventfd(dev, q, bar, true);
			if (ret)
				error_text(err, errlen, ret, "ioeventfd for queue %u: %s", q,
					   strerror(-ret));
		}
		if (ret) {
			/* the next device made at this address (a back-end
			 * replaced on a reboot) must find the notify area free */
			for (unsigned done = 0; done < q; done++)
				vhost_device_ioeventfd(dev, done, bar, false);
			return ret;
		}
		/* the transport reads a masked vector's pending bit from this
		 * eventfd (PBA; virtio_pci.c): calls wait in it while the
		 * vector's irqfd is detached */
		dev->pci.queues[q].call_fd = dev->call_fds[q];
	}
	dev->notify_base = bar;
	return 0;
}

void vhost_device_unplug(struct vhost_device *dev)
{
	for (unsigned q = 0; q < dev->num_queues && dev->notify_base; q++)
		vhost_device_ioeventfd(dev, q, dev->notify_base, false);
	dev->notify_base = 0;
}

int vhost_device_detach(struct vhost_device *dev)
{
	int sock;

	/* A ring that did not stop cleanly (a late or bad reply may still be
	 * on the socket) is not handed on: the back-end is replaced. */
	if (vhost_device_stop(dev) || (dev->pci.status & VIRTIO_STATUS_NEEDS_RESET))
		return -1;
	/* The next VM's driver starts from a reset device (a reboot is a
	 * reset); a back-end that cannot say it forgot is replaced too. */
	if (vhost_device_send_status(dev, 0))
		return -1;
	sock = dev->sock;
	dev->sock = -1;
	return sock;
}

void vhost_device_destroy(struct vhost_device *dev)
{
	for (unsigned q = 0; q < VIRTIO_PCI_MAX_QUEUES; q++) {
		if (dev->kick_fds[q] >= 0)
			close(dev->kick_fds[q]);
		if (dev->call_fds[q] >= 0)
			close(dev->call_fds[q]);
		dev->kick_fds[q] = dev->call_fds[q] = -1;
	}
	if (dev->inflight_fd >= 0)
		close(dev->inflight_fd);
	if (dev->err_fd >= 0)
		close(dev->err_fd);
	if (dev->sock >= 0)
		close(dev->sock);
	dev->inflight_fd = dev->err_fd = dev->sock = -1;
	virtio_pci_destroy(&dev->pci);
}
