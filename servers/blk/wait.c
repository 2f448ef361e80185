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
 *
 * Before sleeping, the thread may spin for a short, adaptive window
 * (blk->poll_max_ns, --poll-us) on the CQ and the avail ring, with the
 * driver's kicks suppressed meanwhile: a request that arrives or completes
 * within the window costs neither a context switch here nor a kick in the
 * driver.  The window follows how long waits really are (QEMU's
 * aio_poll heuristic): it grows while events come within the maximum and
 * halves, down to nothing, while they do not; an idle queue stops
 * spinning after a few wake-ups.  Waiting for the I/O in flight and
 * waiting for the driver's next request are two windows that adapt
 * apart: the disk may answer within the maximum while the driver, woken
 * by its interrupt, does not (bench/blk/README.md measured 0.8-0.9 kicks
 * per request with one window: the spin for the driver mostly missed).
 * A spin that loses its CPU (the clock jumps between two looks: another
 * task or the hypervisor took it) stops, and the thread does not spin for
 * blk->poll_backoff_ns (BLK_POLL_BACKOFF_NS): on a busy host the CPU is
 * worth more to others.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "servers/blk/blk.h"

#define BLK_POLL_START_NS 4000u /* the first window once waits look short */
/* Spin only with at most this many requests in flight: at depth 1 every
 * request pays two wake-ups, which spinning saves; deeper, completions
 * come often, a wake-up serves several, and the spinning CPU is the one
 * the driver and the kernel's I/O need (measured: depth 32 lost ~10%). */
#define BLK_POLL_MAX_IN_FLIGHT 1u

void blk_wait_init(struct blk_queue *bq)
{
	bq->kick_armed = bq->stop_armed = bq->stop_seen = bq->notify_suppressed = false;
	bq->poll_io_ns = bq->poll_driver_ns = 0;
	bq->poll_resume_ns = 0;
	memset(bq->spins, 0, sizeof(bq->spins));
	memset(bq->spins_caught, 0, sizeof(bq->spins_caught));
	bq->poll_backoffs = 0;
}

/* What the busy-poll did while the ring ran (for tuning --poll-us). */
void blk_wait_report(const struct blk_queue *bq, unsigned index)
{
	if (!bq->spins[0] && !bq->spins[1] && !bq->poll_backoffs)
		return;
	log_debug("queue %u: busy-polled for I/O %llu times (%llu caught), for the driver %llu "
		  "(%llu caught); stopped polling on a busy CPU %llu times",
		  index, (unsigned long long)bq->spins[1], (unsigned long long)bq->spins_caught[1],
		  (unsigned long long)bq->spins[0], (unsigned long long)bq->spins_caught[0],
		  (unsigned long long)bq->poll_backoffs);
}

uint64_t blk_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO, else lib/vdso_fallback.h */
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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

enum blk_spin { BLK_SPIN_CAUGHT, BLK_SPIN_EXPIRED, BLK_SPIN_PREEMPTED };

/* Spin up to window_ns for a completion (or one of the thread's own
 * events) or a new buffer.  Kicks are suppressed while spinning and
 * wanted again before returning anything but CAUGHT. */
static enum blk_spin blk_wait_poll(struct blk_queue *bq, struct vhost_user_backend_queue *q,
				   uint64_t start, uint32_t window_ns)
{
	struct io_uring_cqe *cqe;
	enum blk_spin why = BLK_SPIN_EXPIRED;
	uint64_t now, last;

	/* Submit what handle_queue queued (and the polls): the I/O must be
	 * under way while the thread spins.  (The submission itself may take
	 * long: it notifies the host's disk.  Gaps count from after it.) */
	io_uring_submit(&bq->ring);
	virtq_suppress_notify(&q->vq);
	now = blk_now_ns();
	do {
		if (io_uring_peek_cqe(&bq->ring, &cqe) == 0 || virtq_avail_pending(&q->vq))
			return BLK_SPIN_CAUGHT;
		__builtin_ia32_pause();
		last = now;
		now = blk_now_ns();
		if (now - last > BLK_POLL_PREEMPTED_NS) {
			/* The gap may have been the event's own interrupt
			 * (the disk's completion on this CPU): look once
			 * more before calling it a lost CPU. */
			if (io_uring_peek_cqe(&bq->ring, &cqe) == 0 || virtq_avail_pending(&q->vq))
				return BLK_SPIN_CAUGHT;
			why = BLK_SPIN_PREEMPTED;
			break;
		}
	} while (now - start < window_ns);
	/* Re-check after enabling: a buffer added before the driver could see
	 * avail_event move did not kick. */
	return virtq_enable_notify(&q->vq) ? BLK_SPIN_CAUGHT : why;
}

/* Will the next wait spin for the driver's next request?  Then
 * handle_queue suppresses its kicks before it signals the completions
 * (blk_queue_wait wants them again if it does not spin after all): the
 * driver, woken by the call eventfd, may publish its next request before
 * the signalling write(2) has returned here (measured: two thirds of the
 * spins for the driver caught a kick it need not have sent). */
bool blk_wait_will_spin(const struct blk *blk, const struct blk_queue *bq)
{
	return blk->poll_max_ns && bq->poll_driver_ns && !bq->throttled && bq->in_flight == 0 &&
	       blk_now_ns() >= bq->poll_resume_ns;
}

/* Grow a window while waits end within the maximum, halve it while they
 * do not (to 0 below the start value). */
static void blk_wait_adapt(const struct blk *blk, uint32_t *window, uint64_t waited_ns)
{
	if (waited_ns <= *window)
		return; /* the spin caught it */
	if (waited_ns > blk->poll_max_ns) {
		*window /= 2;
		if (*window < BLK_POLL_START_NS)
			*window = 0;
	} else {
		*window = *window ? *window * 2 : BLK_POLL_START_NS;
		if (*window > blk->poll_max_ns)
			*window = blk->poll_max_ns;
	}
}

int blk_queue_wait(void *device, struct vhost_user_backend_queue *q, int timeout_ms)
{
	struct blk *blk = device;
	struct blk_queue *bq = &blk->queues[q->index];
	unsigned io = bq->in_flight ? 1 : 0;
	uint32_t *window = io ? &bq->poll_io_ns : &bq->poll_driver_ns;
	bool suppressed = bq->notify_suppressed;
	struct io_uring_cqe *cqe;
	uint64_t start = 0;
	int ret;

	bq->notify_suppressed = false;
	ret = blk_wait_arm(bq, q);
	if (ret)
		return ret;
	if (blk->poll_max_ns) {
		start = blk_now_ns();
		/* Not while the rate limiter holds a request back: it is still
		 * in the avail ring, so the spin would see it at once and loop
		 * until the tokens are back; sleep for them instead. */
		if (*window && !bq->throttled && bq->in_flight <= BLK_POLL_MAX_IN_FLIGHT &&
		    start >= bq->poll_resume_ns) {
			bq->spins[io]++;
			switch (blk_wait_poll(bq, q, start, *window)) {
			case BLK_SPIN_CAUGHT:
				bq->spins_caught[io]++;
				goto reap;
			case BLK_SPIN_PREEMPTED:
				bq->poll_backoffs++;
				bq->poll_resume_ns = blk_now_ns() + blk->poll_backoff_ns;
				break;
			case BLK_SPIN_EXPIRED:
				break;
			}
			suppressed = false; /* the spin wanted kicks again */
		}
	}
	/* handle_queue suppressed kicks for a spin that did not happen: want
	 * them again before sleeping, and take what came meanwhile. */
	if (suppressed && virtq_enable_notify(&q->vq))
		goto reap;
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
	if (blk->poll_max_ns)
		blk_wait_adapt(blk, window, blk_now_ns() - start);
reap:
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
