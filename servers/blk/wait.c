// SPDX-License-Identifier: MIT
/*
 * isola-blk's queue thread sleeps inside io_uring_enter(2)
 * (vhost_user_backend_ops.queue_wait).
 *
 * The back-end's generic ring thread sleeps in poll(2) on the kick eventfd,
 * the stop eventfd and a device fd: per request that is a poll, a read of
 * the kick and an io_uring_enter to submit, and each I/O completion wakes
 * the poll only for the thread to go back into the kernel.  Here the kick
 * and the stop are operations of the queue's own ring (POLL_ADD on each
 * eventfd), so one io_uring_enter submits what handle_queue queued and
 * sleeps until a kick, a completion or the stop.  At queue depth 1 that is
 * three syscalls per request: the enter that wakes on the kick, the enter
 * that submits the I/O and wakes on its completion, and the write of the
 * call eventfd.
 *
 * The kick fd is watched with a multishot poll and not read: each driver
 * write wakes its wait queue, which posts one CQE, so draining the counter
 * would only cost a syscall.  It is drained once when the ring stops.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "servers/blk/blk.h"

void blk_wait_init(struct blk_queue *bq)
{
	bq->kick_armed = bq->stop_armed = bq->stop_seen = false;
}

bool blk_wait_armed(const struct blk_queue *bq)
{
	return bq->kick_armed || bq->stop_armed;
}

/* Queue the polls that are not pending; the next enter submits them. */
static int blk_wait_arm(struct blk_queue *bq, struct vhost_user_backend_queue *q)
{
	struct io_uring_sqe *sqe;

	if (!bq->stop_armed) {
		sqe = blk_sqe(bq);
		if (!sqe)
			return -EBUSY;
		io_uring_prep_poll_add(sqe, q->stop_fd, POLLIN);
		io_uring_sqe_set_data64(sqe, BLK_USER_DATA_STOP);
		bq->stop_armed = true;
	}
	if (!bq->kick_armed && q->kick_fd >= 0) {
		sqe = blk_sqe(bq);
		if (!sqe)
			return -EBUSY;
		io_uring_prep_poll_multishot(sqe, q->kick_fd, POLLIN);
		io_uring_sqe_set_data64(sqe, BLK_USER_DATA_KICK);
		bq->kick_armed = true;
	}
	return 0;
}

/* One of the thread's own CQEs (from blk_reap). */
void blk_wait_event(struct blk_queue *bq, uint64_t user_data, int res, unsigned flags)
{
	switch (user_data) {
	case BLK_USER_DATA_KICK:
		/* Multishot ends without F_MORE (cancelled, CQ overflow, error):
		 * arm it again at the next wait.  A kick needs no other action:
		 * handle_queue runs after every wake-up. */
		if (!(flags & IORING_CQE_F_MORE))
			bq->kick_armed = false;
		if (res < 0 && res != -ECANCELED)
			log_warn("queue: polling the kick eventfd: %s", strerror(-res));
		break;
	case BLK_USER_DATA_STOP:
		bq->stop_armed = false;
		if (res > 0)
			bq->stop_seen = true;
		else if (res != -ECANCELED)
			log_warn("queue: polling the stop eventfd: %s", strerror(-res));
		break;
	default: /* BLK_USER_DATA_CANCEL: the target's own CQE says enough */
		break;
	}
}

int blk_queue_wait(void *device, struct vhost_user_backend_queue *q, int timeout_ms)
{
	struct blk *blk = device;
	struct blk_queue *bq = &blk->queues[q->index];
	struct io_uring_cqe *cqe;
	int ret;

	ret = blk_wait_arm(bq, q);
	if (ret)
		return ret;
	if (timeout_ms >= 0) {
		struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
					       .tv_nsec = (timeout_ms % 1000) * 1000000L};

		ret = io_uring_submit_and_wait_timeout(&bq->ring, &cqe, 1, &ts, NULL);
	} else {
		ret = io_uring_submit_and_wait(&bq->ring, 1);
	}
	/* ETIME: the timeout; EINTR: a signal; EBUSY/EAGAIN: the CQ is full
	 * or memory is short: reaping below makes room. */
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN)
		return ret;
	blk_reap(blk, bq);
	return bq->stop_seen ? 1 : 0;
}

/* The ring stops: cancel the polls (their CQEs still come; blk_queue_stop
 * reaps until none is armed) and leave the kick eventfd drained. */
void blk_wait_cancel(struct blk_queue *bq, struct vhost_user_backend_queue *q)
{
	static const uint64_t targets[] = {BLK_USER_DATA_KICK, BLK_USER_DATA_STOP};
	uint64_t value;

	for (unsigned i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		struct io_uring_sqe *sqe;

		if (targets[i] == BLK_USER_DATA_KICK ? !bq->kick_armed : !bq->stop_armed)
			continue;
		sqe = blk_sqe(bq);
		if (!sqe)
			continue;
		io_uring_prep_cancel64(sqe, targets[i], 0);
		io_uring_sqe_set_data64(sqe, BLK_USER_DATA_CANCEL);
	}
	if (q->kick_fd >= 0 && read(q->kick_fd, &value, sizeof(value)) < 0) {
		/* EAGAIN: no kick pending */
	}
}
