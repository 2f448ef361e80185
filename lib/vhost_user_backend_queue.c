// SPDX-License-Identifier: MIT
/*
 * vhost-user back-end: starting, running and stopping rings (vhost-user:
 * "Starting and stopping rings"), one thread per started ring, and inflight
 * recovery (vhost-user: "Inflight I/O tracking").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/vhost_user_backend.h"
#include "lib/vhost_user_backend_internal.h"

/* Returns the eventfd's count (0: nothing pending). */
static uint64_t drain_eventfd(int fd)
{
	uint64_t value;

	if (read(fd, &value, sizeof(value)) < 0) {
		/* EAGAIN: nothing pending; anything else we cannot fix here */
		return 0;
	}
	return value;
}

static void signal_eventfd(int fd)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
		/* a full eventfd counter still wakes the reader */
	}
}

void vhost_user_backend_notify(struct vhost_user_backend_queue *q)
{
	if (!virtq_needs_interrupt(&q->vq)) {
		vhost_user_backend_count(&q->no_call, 1);
		return;
	}
	vhost_user_backend_count(&q->calls, 1);
	pthread_mutex_lock(&q->lock);
	signal_eventfd(q->call_fd);
	pthread_mutex_unlock(&q->lock);
}

/* Front-end user address -> guest-physical address, for [uva, uva+len) that
 * lies inside one region of the memory table. */
static int uva_to_gpa(const struct vhost_user_backend *be, uint64_t uva, uint64_t len,
		      uint64_t *gpa)
{
	for (unsigned i = 0; i < be->nr_regions; i++) {
		const struct vhost_user_backend_region *r = &be->regions[i];

		if (uva >= r->uva && uva - r->uva < r->size && len <= r->size - (uva - r->uva)) {
			*gpa = r->gpa + (uva - r->uva);
			return 0;
		}
	}
	return -EFAULT;
}

/* vhost-user: "Inflight I/O tracking": a started ring that left heads
 * inflight (a previous server instance died) gets each of them processed
 * once, in the order they were popped. */
static void queue_resubmit(struct vhost_user_backend *be, struct vhost_user_backend_queue *q)
{
	struct virtq_segment *segs = NULL;
	struct virtq_chain chain;
	uint16_t *heads = NULL;
	int n;

	n = virtq_inflight_recover(&q->vq);
	if (n <= 0)
		return;
	heads = calloc((size_t)n, sizeof(*heads));
	segs = calloc(VIRTQ_MAX_SEGMENTS, sizeof(*segs));
	if (!heads || !segs) {
		log_error("queue %u: out of memory resubmitting %d inflight requests", q->index, n);
		goto out;
	}
	n = virtq_inflight_resubmit_list(&q->vq, heads, (unsigned)n);
	if (n > 0)
		log_info("queue %u: resubmitting %d inflight request%s", q->index, n,
			 n == 1 ? "" : "s");
	for (int i = 0; i < n; i++) {
		virtq_chain_init(&chain, segs, VIRTQ_MAX_SEGMENTS);
		if (virtq_get_chain(&q->vq, heads[i], &chain))
			break;
		be->ops->handle_chain(be->device, q, &chain);
	}
out:
	free(heads);
	free(segs);
}

static void queue_report_broken(struct vhost_user_backend_queue *q)
{
	log_error("queue %u: the guest broke the virtqueue rules (%s); the queue is stopped "
		  "until the driver resets the device",
		  q->index, virtq_broken_reason(&q->vq));
	pthread_mutex_lock(&q->lock);
	signal_eventfd(q->err_fd);
	pthread_mutex_unlock(&q->lock);
}

static void *queue_thread(void *arg)
{
	struct vhost_user_backend_queue *q = arg;
	struct vhost_user_backend *be = q->backend;
	int device_fd = be->ops->queue_fd ? be->ops->queue_fd(be->device, q->index) : -1;
	bool broken = false, work = true;
	int timeout = -1;

	if (be->ops->queue_start && be->ops->queue_start(be->device, q) < 0) {
		log_error("queue %u: the device could not start it", q->index);
		broken = true;
	}
	if (!broken && be->ops->handle_chain)
		queue_resubmit(be, q);
	for (;;) {
		struct pollfd pfd[3] = {
		    {.fd = q->stop_fd, .events = POLLIN},
		    {.fd = broken ? -1 : q->kick_fd, .events = POLLIN},
		    {.fd = broken ? -1 : device_fd, .events = POLLIN},
		};
		int wait;

		if (!broken && work) {
			vhost_user_backend_count(&q->turns, 1);
			timeout = be->ops->handle_queue(be->device, q);
			if (virtq_is_broken(&q->vq)) {
				queue_report_broken(q);
				broken = true;
			}
		}
		wait = broken ? -1 : timeout;
		/* NOFD: no kick fd, the ring is polled (vhost-user: SET_VRING_KICK). */
		if (!broken && q->kick_fd < 0 && (wait < 0 || wait > 1))
			wait = 1;
		if (!broken && be->ops->queue_wait) {
			int ret = be->ops->queue_wait(be->device, q, wait);

			if (ret > 0)
				break;
			if (ret < 0) {
				log_error("queue %u: waiting for events: %s; the queue is stopped",
					  q->index, strerror(-ret));
				broken = true;
			}
			work = true;
			continue;
		}
		if (poll(pfd, 3, wait) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		if (pfd[1].revents & POLLIN)
			vhost_user_backend_count(&q->kicks, drain_eventfd(q->kick_fd));
		work = true;
	}
	if (be->ops->queue_stop)
		be->ops->queue_stop(be->device, q);
	return NULL;
}

/* Start q if everything it needs has arrived (vhost-user: "Starting and
 * stopping rings": a kick fd, and enabled when PROTOCOL_FEATURES is
 * negotiated).  A ring the front-end placed outside guest memory is refused
 * with a log line; 0 or -errno. */
int backend_queue_maybe_start(struct vhost_user_backend *be, struct vhost_user_backend_queue *q)
{
	bool need_enable = be->acked_features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES);
	uint64_t desc, avail, used;
	sigset_t usr1, old;
	int ret;

	if (q->running || !q->num || !q->addr_set || !q->kick_set || !be->nr_regions)
		return 0;
	if (need_enable && !q->enabled)
		return 0;
	if (uva_to_gpa(be, q->desc_uva, virtq_desc_bytes(q->num), &desc) ||
	    uva_to_gpa(be, q->avail_uva, virtq_avail_bytes(q->num), &avail) ||
	    uva_to_gpa(be, q->used_uva, virtq_used_bytes(q->num), &used)) {
		log_error("queue %u: ring addresses are not inside the memory table", q->index);
		return -EFAULT;
	}
	ret = virtq_init(&q->vq, &be->mem, q->num, desc, avail, used, be->acked_features);
	if (ret) {
		log_error("queue %u: %s", q->index, virtq_broken_reason(&q->vq));
		return ret;
	}
	virtq_set_base(&q->vq, q->base);
	q->vq_valid = true;
	if (be->inflight && q->index < be->inflight_queues) {
		uint8_t *region =
		    (uint8_t *)be->inflight + be->inflight_offset + q->index * be->inflight_stride;

		if (virtq_set_inflight(&q->vq, region, be->inflight_stride)) {
			log_error(
			    "queue %u: %u entries do not fit its inflight region of %llu bytes",
			    q->index, q->num, (unsigned long long)be->inflight_stride);
			return -EINVAL;
		}
	}
	drain_eventfd(q->stop_fd);
	q->kicks = q->calls = q->no_call = q->turns = 0;
	/* The ring thread inherits SIGUSR1 blocked: the ring dump's signal
	 * goes to the socket thread and never cuts a ring's wait short. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old);
	ret = pthread_create(&q->thread, NULL, queue_thread, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		log_error("queue %u: cannot start a thread: %s", q->index, strerror(ret));
		return -ret;
	}
	q->running = true;
	return 0;
}

/* Stop q's thread (it finishes the requests in flight first) and keep the
 * next avail index as the ring's base. */
void backend_queue_stop(struct vhost_user_backend *be, struct vhost_user_backend_queue *q)
{
	(void)be;
	if (q->running) {
		signal_eventfd(q->stop_fd);
		pthread_join(q->thread, NULL);
		q->running = false;
	}
	if (q->vq_valid) {
		q->base = virtq_get_base(&q->vq);
		virtq_set_inflight(&q->vq, NULL, 0);
	}
}

unsigned backend_stop_all(struct vhost_user_backend *be)
{
	unsigned mask = 0;

	for (unsigned i = 0; i < be->ops->num_queues; i++) {
		if (be->queues[i].running)
			mask |= 1u << i;
		backend_queue_stop(be, &be->queues[i]);
	}
	return mask;
}

void backend_restart(struct vhost_user_backend *be, unsigned mask)
{
	for (unsigned i = 0; i < be->ops->num_queues; i++)
		if (mask & (1u << i))
			backend_queue_maybe_start(be, &be->queues[i]);
}

void backend_queue_close_fds(struct vhost_user_backend_queue *q)
{
	if (q->kick_fd >= 0)
		close(q->kick_fd);
	q->kick_fd = -1;
	q->kick_set = false;
	pthread_mutex_lock(&q->lock);
	if (q->call_fd >= 0)
		close(q->call_fd);
	if (q->err_fd >= 0)
		close(q->err_fd);
	q->call_fd = q->err_fd = -1;
	pthread_mutex_unlock(&q->lock);
}
