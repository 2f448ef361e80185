// SPDX-License-Identifier: MIT
/*
 * isola-blk device: virtio-blk requests (virtio 1.2 §5.2.6) on io_uring.
 *
 * A queue's thread pops every available chain, turns each into one or more
 * SQEs whose iovecs point straight into guest memory, submits them all,
 * and pushes used entries in completion order, one interrupt per batch.
 * Everything in a request (header, ranges) is copied out of guest memory
 * once and checked before use: sector ranges against the capacity without
 * overflow, lengths against the chain.
 */
#define _GNU_SOURCE
#include "servers/blk/blk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"

struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct virtio_blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* io_uring user_data: the head, which range of the request, and whether it
 * was a FALLOC_FL_ZERO_RANGE (retried as a hole punch where refused). */
#define BLK_USER_DATA(head, range, zero_range)                                                     \
	((uint64_t)(head) | ((uint64_t)(range) << 16) | ((uint64_t)(zero_range) << 32))
#define BLK_USER_DATA_HEAD(ud) ((uint16_t)(ud))
#define BLK_USER_DATA_RANGE(ud) ((unsigned)((ud) >> 16) & 0xffu)
#define BLK_USER_DATA_ZERO_RANGE(ud) (((ud) >> 32) & 1u)

/* [sector, sector + bytes/512) lies inside the disk; no overflow. */
static bool blk_range_ok(const struct blk *blk, uint64_t sector, uint64_t bytes)
{
	uint64_t sectors = bytes / VIRTIO_BLK_SECTOR;

	return sector <= blk->capacity && sectors <= blk->capacity - sector;
}

/* ---- completion ---------------------------------------------------------- */

static void blk_complete(struct blk_queue *bq, uint16_t head)
{
	struct blk_request *req = &bq->requests[head];

	if (req->status_byte)
		__atomic_store_n(req->status_byte, req->status, __ATOMIC_RELAXED);
	bq->done[bq->nr_done++] =
	    (struct virtq_used_elem){.id = head, .len = req->status_byte ? req->used_len : 0};
	req->busy = false;
	bq->in_flight--;
}

static void blk_fail(struct blk_request *req, uint8_t status)
{
	if (req->status == VIRTIO_BLK_S_OK)
		req->status = status;
}

struct io_uring_sqe *blk_sqe(struct blk_queue *bq)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&bq->ring);

	if (!sqe) {
		io_uring_submit(&bq->ring);
		sqe = io_uring_get_sqe(&bq->ring);
	}
	return sqe;
}

/* Address the image through its registered slot where the ring has one:
 * the kernel then skips looking the fd up and taking a reference on the
 * file for every request (IOSQE_FIXED_FILE; io_uring_register(2)
 * IORING_REGISTER_FILES, Linux 5.1).  Other fds are left as they are. */
void blk_sqe_fixed_file(const struct blk_queue *bq, struct io_uring_sqe *sqe)
{
	for (unsigned i = 0; i < bq->nr_fixed; i++) {
		if (sqe->fd == bq->fixed_fds[i] && !(sqe->flags & IOSQE_FIXED_FILE)) {
			sqe->fd = (int)i;
			sqe->flags |= IOSQE_FIXED_FILE;
			return;
		}
	}
}

static bool blk_submit_rw(struct blk_queue *bq, struct blk_request *req, uint16_t head)
{
	struct io_uring_sqe *sqe = blk_sqe(bq);

	if (!sqe)
		return false;
	if (req->type == VIRTIO_BLK_T_IN)
		io_uring_prep_readv(sqe, req->fd, req->iov, req->nr_iov, req->offset);
	else
		io_uring_prep_writev(sqe, req->fd, req->iov, req->nr_iov, req->offset);
	blk_sqe_fixed_file(bq, sqe);
	io_uring_sqe_set_data64(sqe, BLK_USER_DATA(head, 0, 0));
	req->pending++;
	return true;
}

/* A short read or write: go on with the rest (io_uring may return short
 * counts; the range was checked, so 0 bytes means the image shrank). */
static bool blk_continue_rw(struct blk_queue *bq, struct blk_request *req, uint16_t head,
			    uint32_t done)
{
	if (done == 0 || done > req->remaining)
		return false;
	req->remaining -= done;
	req->offset += done;
	while (done) {
		if (done >= req->iov[0].iov_len) {
			done -= (uint32_t)req->iov[0].iov_len;
			req->iov++;
			req->nr_iov--;
		} else {
			req->iov[0].iov_base = (uint8_t *)req->iov[0].iov_base + done;
			req->iov[0].iov_len -= done;
			done = 0;
		}
	}
	return blk_submit_rw(bq, req, head);
}

/* The filesystem refused FALLOC_FL_ZERO_RANGE: punch a hole instead (it
 * reads back as zeroes too), and from now on directly. */
static bool blk_retry_as_punch(struct blk *blk, struct blk_queue *bq, struct blk_request *req,
			       uint16_t head, unsigned range)
{
	struct io_uring_sqe *sqe;

	if (!bq->zero_range_refused)
		log_info("the image's filesystem has no FALLOC_FL_ZERO_RANGE; write-zeroes "
			 "punches holes");
	bq->zero_range_refused = true;
	sqe = blk_sqe(bq);
	if (!sqe)
		return false;
	io_uring_prep_fallocate(sqe, blk->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				req->ranges[range].offset, req->ranges[range].len);
	blk_sqe_fixed_file(bq, sqe);
	io_uring_sqe_set_data64(sqe, BLK_USER_DATA(head, range, 0));
	req->pending++;
	return true;
}

/* Take every completion: finished requests go to bq->done, the queue
 * thread's own events (servers/blk/wait.c) to blk_wait_event.  What a
 * short transfer or a retry queued is submitted by the next wait. */
void blk_reap(struct blk *blk, struct blk_queue *bq)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&bq->ring, &cqe) == 0) {
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		uint16_t head = BLK_USER_DATA_HEAD(ud);
		unsigned flags = cqe->flags;
		int res = cqe->res;
		struct blk_request *req;

		io_uring_cqe_seen(&bq->ring, cqe);
		if (BLK_USER_DATA_IS_EVENT(ud)) {
			blk_wait_event(bq, ud, res, flags);
			continue;
		}
		if (head >= bq->nr_requests || !bq->requests[head].busy)
			continue;
		req = &bq->requests[head];
		req->pending--;
		if (req->type == VIRTIO_BLK_T_IN || req->type == VIRTIO_BLK_T_OUT) {
			if (res < 0)
				blk_fail(req, VIRTIO_BLK_S_IOERR);
			else if ((uint64_t)res < req->remaining &&
				 !blk_continue_rw(bq, req, head, (uint32_t)res))
				blk_fail(req, VIRTIO_BLK_S_IOERR);
		} else if (res == -EOPNOTSUPP && BLK_USER_DATA_ZERO_RANGE(ud) &&
			   BLK_USER_DATA_RANGE(ud) < BLK_MAX_RANGE_SEGS) {
			if (!blk_retry_as_punch(blk, bq, req, head, BLK_USER_DATA_RANGE(ud)))
				blk_fail(req, VIRTIO_BLK_S_IOERR);
		} else if (res < 0) {
			blk_fail(req, VIRTIO_BLK_S_IOERR);
		}
		if (req->pending == 0)
			blk_complete(bq, head);
	}
}

static void blk_flush_done(struct blk_queue *bq, struct vhost_user_backend_queue *q)
{
	if (!bq->nr_done)
		return;
	virtq_push_batch(&q->vq, bq->done, bq->nr_done);
	bq->nr_done = 0;
	vhost_user_backend_notify(q);
}

/* ---- requests ------------------------------------------------------------ */

/* iovecs for len bytes of the chain's readable (or writable) segments,
 * starting skip bytes in; the count, or -1 if they do not fit cap. */
static int blk_chain_iov(const struct virtq_chain *chain, bool writable, uint32_t skip,
			 uint64_t len, struct iovec *iov, unsigned cap)
{
	uint32_t first = writable ? chain->nr_readable : 0;
	uint32_t last = writable ? chain->nr_segments : chain->nr_readable;
	unsigned n = 0;

	for (uint32_t i = first; i < last && len; i++) {
		const struct virtq_segment *seg = &chain->segments[i];
		uint32_t take;

		if (skip >= seg->len) {
			skip -= seg->len;
			continue;
		}
		take = seg->len - skip;
		if (take > len)
			take = (uint32_t)len;
		if (n >= cap)
			return -1;
		iov[n].iov_base = (uint8_t *)seg->host + skip;
		iov[n++].iov_len = take;
		len -= take;
		skip = 0;
	}
	return len ? -1 : (int)n;
}

static bool blk_dio_ok(const struct blk *blk, const struct blk_request *req)
{
	if (blk->fd_direct < 0 || req->offset % blk->dio_offset_align ||
	    req->remaining % blk->dio_offset_align)
		return false;
	for (unsigned i = 0; i < req->nr_iov; i++)
		if ((uintptr_t)req->iov[i].iov_base % blk->dio_mem_align ||
		    req->iov[i].iov_len % blk->dio_offset_align)
			return false;
	return true;
}

static void blk_rw(struct blk *blk, struct blk_queue *bq, struct blk_request *req,
		   const struct virtq_chain *chain, uint64_t sector)
{
	bool in = req->type == VIRTIO_BLK_T_IN;
	uint64_t len = in ? chain->writable_bytes - 1 : chain->readable_bytes - 16;
	int n;

	/* §5.2.6: a write's data is device-readable (only the status byte is
	 * writable); a read's only readable part is the 16-byte header.  A
	 * chain laid out otherwise is malformed: refuse, never guess. */
	if (in ? chain->readable_bytes != 16 : chain->writable_bytes != 1)
		return blk_fail(req, VIRTIO_BLK_S_IOERR);
	if (!in && blk->readonly)
		return blk_fail(req, VIRTIO_BLK_S_IOERR);
	if (len % VIRTIO_BLK_SECTOR || !blk_range_ok(blk, sector, len))
		return blk_fail(req, VIRTIO_BLK_S_IOERR);
	if (in)
		req->used_len = (uint32_t)len + 1;
	if (len == 0)
		return;
	if (req->iov_cap < chain->nr_segments) {
		struct iovec *iov = realloc(req->iov, chain->nr_segments * sizeof(*iov));

		if (!iov)
			return blk_fail(req, VIRTIO_BLK_S_IOERR);
		req->iov = iov;
		req->iov_cap = chain->nr_segments;
	}
	n = blk_chain_iov(chain, in, in ? 0 : 16, len, req->iov, req->iov_cap);
	if (n < 0)
		return blk_fail(req, VIRTIO_BLK_S_IOERR);
	req->nr_iov = (unsigned)n;
	req->offset = sector * VIRTIO_BLK_SECTOR;
	req->remaining = len;
	/* O_DIRECT only when the buffers and range meet its alignment. */
	req->fd = blk_dio_ok(blk, req) ? blk->fd_direct : blk->fd;
	if (!blk_submit_rw(bq, req, chain->head))
		blk_fail(req, VIRTIO_BLK_S_IOERR);
}

/* How a FLUSH syncs the image by default (blk->prep_sync): fdatasync. */
static void blk_prep_fdatasync(struct blk *blk, struct io_uring_sqe *sqe)
{
	io_uring_prep_fsync(sqe, blk->fd, IORING_FSYNC_DATASYNC);
}

static void blk_flush(struct blk *blk, struct blk_queue *bq, struct blk_request *req, uint16_t head)
{
	struct io_uring_sqe *sqe;

	if (blk->readonly)
		return; /* nothing was written: already durable */
	sqe = blk_sqe(bq);
	if (!sqe)
		return blk_fail(req, VIRTIO_BLK_S_IOERR);
	/* A flush covers the writes the driver saw completed before it sent
	 * the flush (Linux's blk-flush waits for those before it issues
	 * one); their data is in the file by then, so fdatasync covers them
	 * without ordering against the writes still in flight.  (No
	 * IOSQE_IO_DRAIN: it would also wait for the queue thread's kick
	 * poll, which never completes; servers/blk/wait.c.)  The FLUSH
	 * completes with the sync's CQE, never before. */
	blk->prep_sync(blk, sqe);
	blk_sqe_fixed_file(bq, sqe);
	io_uring_sqe_set_data64(sqe, BLK_USER_DATA(head, 0, 0));
	req->pending++;
}

static void blk_ranges(struct blk *blk, struct blk_queue *bq, struct blk_request *req,
		       const struct virtq_chain *chain)
{
	struct virtio_blk_range ranges[BLK_MAX_RANGE_SEGS];
	uint32_t bytes = chain->readable_bytes - 16, n = bytes / sizeof(ranges[0]);
	bool discard = req->type == VIRTIO_BLK_T_DISCARD;

	if (blk->readonly || n == 0 || n > BLK_MAX_RANGE_SEGS || bytes % sizeof(ranges[0]) ||
	    virtq_chain_read(chain, 16, ranges, bytes))
		return blk_fail(req, VIRTIO_BLK_S_IOERR);
	for (uint32_t i = 0; i < n; i++) {
		const struct virtio_blk_range *r = &ranges[i];

		/* §5.2.6.2: reserved flags, or unmap on a discard: unsupported. */
		if ((r->flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) || (discard && r->flags))
			return blk_fail(req, VIRTIO_BLK_S_UNSUPP);
		if (r->num_sectors > BLK_MAX_RANGE_SECTORS ||
		    !blk_range_ok(blk, r->sector, (uint64_t)r->num_sectors * VIRTIO_BLK_SECTOR))
			return blk_fail(req, VIRTIO_BLK_S_IOERR);
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct virtio_blk_range *r = &ranges[i];
		struct io_uring_sqe *sqe;
		int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

		if (!r->num_sectors)
			continue;
		if (!discard && !(r->flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) &&
		    !bq->zero_range_refused)
			mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
		sqe = blk_sqe(bq);
		if (!sqe)
			return blk_fail(req, VIRTIO_BLK_S_IOERR);
		req->ranges[i].offset = r->sector * VIRTIO_BLK_SECTOR;
		req->ranges[i].len = (uint64_t)r->num_sectors * VIRTIO_BLK_SECTOR;
		io_uring_prep_fallocate(sqe, blk->fd, mode, req->ranges[i].offset,
					req->ranges[i].len);
		blk_sqe_fixed_file(bq, sqe);
		io_uring_sqe_set_data64(
		    sqe, BLK_USER_DATA(chain->head, i, !!(mode & FALLOC_FL_ZERO_RANGE)));
		req->pending++;
	}
}

static void blk_get_id(struct blk *blk, struct blk_request *req, const struct virtq_chain *chain)
{
	uint32_t len = chain->writable_bytes - 1;

	if (len > VIRTIO_BLK_ID_BYTES)
		len = VIRTIO_BLK_ID_BYTES;
	virtq_chain_write(chain, 0, blk->id, len);
	req->used_len = len + 1;
}

/* Start one request; it completes now (bq->done) or when its SQEs do. */
static void blk_request(struct blk *blk, struct blk_queue *bq, const struct virtq_chain *chain)
{
	struct blk_request *req = &bq->requests[chain->head];
	const struct virtq_segment *last = &chain->segments[chain->nr_segments - 1];
	struct virtio_blk_outhdr hdr;

	if (req->busy) {
		/* The driver made available a head that is still in flight:
		 * its buffers belong to that request.  Drop this one. */
		log_warn("queue: head %u made available twice; ignored", chain->head);
		return;
	}
	*req = (struct blk_request){.busy = true,
				    .iov = req->iov,
				    .iov_cap = req->iov_cap,
				    .used_len = 1,
				    .status = VIRTIO_BLK_S_OK};
	bq->in_flight++;
	/* §5.2.6: the status byte is the last device-writable byte. */
	if (chain->nr_segments && last->device_writable)
		req->status_byte = (uint8_t *)last->host + last->len - 1;
	if (!req->status_byte || virtq_chain_read(chain, 0, &hdr, sizeof(hdr))) {
		blk_fail(req, VIRTIO_BLK_S_IOERR);
		return blk_complete(bq, chain->head);
	}
	req->type = (uint8_t)hdr.type;
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		blk_rw(blk, bq, req, chain, hdr.sector);
		break;
	case VIRTIO_BLK_T_FLUSH:
		blk_flush(blk, bq, req, chain->head);
		break;
	case VIRTIO_BLK_T_GET_ID:
		blk_get_id(blk, req, chain);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		blk_ranges(blk, bq, req, chain);
		break;
	default:
		blk_fail(req, VIRTIO_BLK_S_UNSUPP);
		break;
	}
	if (req->pending == 0)
		blk_complete(bq, chain->head);
}

/* ---- vhost-user back-end callbacks --------------------------------------- */

static int blk_queue_start(void *device, struct vhost_user_backend_queue *q)
{
	struct blk *blk = device;
	struct blk_queue *bq = &blk->queues[q->index];

	if (!bq->ring_ready)
		return -ENODEV;
	blk_wait_init(bq);
	bq->requests = calloc(q->vq.size, sizeof(*bq->requests));
	bq->done = calloc(q->vq.size, sizeof(*bq->done));
	if (!bq->requests || !bq->done)
		return -ENOMEM;
	bq->nr_requests = q->vq.size;
	bq->in_flight = bq->nr_done = 0;
	q->device_data = bq;
	return 0;
}

static void blk_queue_stop(void *device, struct vhost_user_backend_queue *q)
{
	struct blk *blk = device;
	struct blk_queue *bq = &blk->queues[q->index];

	/* Every request in flight completes and is pushed before the ring
	 * stops (GET_VRING_BASE reports a base with nothing outstanding),
	 * and the thread's own waits are cancelled: the next start may come
	 * with another kick fd. */
	blk_wait_cancel(bq, q);
	while (bq->in_flight || blk_wait_armed(bq)) {
		int ret = io_uring_submit_and_wait(&bq->ring, 1);

		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			break;
		blk_reap(blk, bq);
	}
	blk_flush_done(bq, q);
	blk_wait_report(bq, q->index);
	for (unsigned i = 0; bq->requests && i < bq->nr_requests; i++)
		free(bq->requests[i].iov);
	free(bq->requests);
	free(bq->done);
	bq->requests = NULL;
	bq->done = NULL;
	bq->nr_requests = 0;
}

/* ---- rate limiter ------------------------------------------------------- */

int blk_set_rate(struct blk *blk, const char *spec, char *err, size_t errlen)
{
	struct rate_limiter rl;
	char why[256];

	if (rate_limiter_parse(spec, &rl, why, sizeof(why)))
		return error_text(err, errlen, -EINVAL, "--rate %s: %s", spec, why);
	blk->limiter = rl;
	blk->limited = !rate_limiter_is_unlimited(&rl);
	if (blk->limited)
		rate_limiter_start(&blk->limiter, blk_now_ns());
	return 0;
}

bool blk_request_cost(const struct virtq_chain *chain, uint64_t *bytes)
{
	struct virtio_blk_outhdr hdr;

	if (virtq_chain_read(chain, 0, &hdr, sizeof(hdr)))
		return false;
	/* Firecracker's Request::rate_limit: one op for every request (flush
	 * and GET_ID too), bytes only for the data of IN and OUT.  A chain
	 * laid out wrongly pays for what it claims and then fails. */
	*bytes = 0;
	if (hdr.type == VIRTIO_BLK_T_IN && chain->writable_bytes > 0)
		*bytes = chain->writable_bytes - 1;
	else if (hdr.type == VIRTIO_BLK_T_OUT && chain->readable_bytes > 16)
		*bytes = chain->readable_bytes - 16;
	return true;
}

bool blk_rate_pay(struct blk *blk, uint64_t bytes, uint64_t now_ns, int *wait_ms)
{
	uint64_t ms = 0;
	bool paid;

	pthread_mutex_lock(&blk->limiter_lock);
	paid = rate_limiter_consume(&blk->limiter, bytes, now_ns);
	if (!paid)
		ms = rate_limiter_wait_ms(&blk->limiter, bytes, now_ns);
	pthread_mutex_unlock(&blk->limiter_lock);
	/* at most 1 s a round: a PATCH-less limiter never changes, but the
	 * thread still looks at its stop fd and kicks in between */
	if (!paid)
		*wait_ms = ms > 1000 ? 1000 : ms < 1 ? 1 : (int)ms;
	return paid;
}

/* May the chain just popped start now?  Else it goes back to the avail
 * ring (the guest just waits: nothing is dropped or failed) and *wait_ms
 * says when to try again. */
static bool blk_admit(struct blk *blk, struct blk_queue *bq, struct vhost_user_backend_queue *q,
		      const struct virtq_chain *chain, int *wait_ms)
{
	uint64_t bytes;

	if (!blk_request_cost(chain, &bytes) || blk_rate_pay(blk, bytes, blk_now_ns(), wait_ms))
		return true;
	bq->rate_waits++;
	/* No push since this pop (completions are pushed after the loop). */
	if (virtq_unpop(&q->vq, chain->head))
		return true; /* cannot hold it back: serve it rather than lose it */
	return false;
}

static void blk_handle_chain(void *device, struct vhost_user_backend_queue *q,
			     struct virtq_chain *chain)
{
	struct blk *blk = device;
	struct blk_queue *bq = &blk->queues[q->index];
	uint64_t bytes;
	int wait_ms;

	/* A request a previous instance left in flight is served at once (the
	 * guest has waited for it already) but still paid for where the
	 * buckets allow, so the rate holds across a restart. */
	if (blk->limited && blk_request_cost(chain, &bytes))
		blk_rate_pay(blk, bytes, blk_now_ns(), &wait_ms);
	blk_request(blk, bq, chain);
	io_uring_submit(&bq->ring);
}

static int blk_handle_queue(void *device, struct vhost_user_backend_queue *q)
{
	struct blk *blk = device;
	struct blk_queue *bq = &blk->queues[q->index];
	struct virtq_chain chain;
	int r, wait_ms = -1;

	blk_reap(blk, bq);
	virtq_chain_init(&chain, bq->segs, VIRTQ_MAX_SEGMENTS);
	virtq_disable_notify(&q->vq);
	bq->throttled = false;
	for (;;) {
		while ((r = virtq_pop(&q->vq, &chain)) == 1) {
			/* blk->limited only: an unlimited disk reads no clock */
			if (blk->limited && !blk_admit(blk, bq, q, &chain, &wait_ms)) {
				bq->throttled = true;
				break;
			}
			blk_request(blk, bq, &chain);
			/* Deep queues: hand the disk every BLK_SUBMIT_BATCH
			 * requests as they are popped, not the whole batch at
			 * the end (blk.h says why). */
			if (io_uring_sq_ready(&bq->ring) >= BLK_SUBMIT_BATCH)
				io_uring_submit(&bq->ring);
		}
		/* Throttled: the ring stays as it is and notifications off;
		 * the wait's timeout brings the thread back for the tokens. */
		if (bq->throttled || r < 0 || !virtq_enable_notify(&q->vq))
			break;
		virtq_disable_notify(&q->vq);
	}
	/* The SQEs still queued go in with the wait (blk_queue_wait): one
	 * io_uring_enter submits them and sleeps.  A wait that will spin for
	 * the driver wants no kick for the request the completions below
	 * make it send. */
	if (bq->nr_done && blk_wait_will_spin(blk, bq)) {
		virtq_suppress_notify(&q->vq);
		bq->notify_suppressed = true;
	}
	blk_flush_done(bq, q);
	return bq->throttled ? wait_ms : -1;
}

/* ---- setup --------------------------------------------------------------- */

static uint32_t blk_get_config(void *device, uint8_t *config)
{
	struct blk *blk = device;
	struct virtio_blk_config c = {
	    .capacity = blk->capacity,
	    .seg_max = BLK_SEG_MAX,
	    .blk_size = VIRTIO_BLK_SECTOR,
	    .num_queues = (uint16_t)blk->num_queues,
	    .max_discard_sectors = BLK_MAX_RANGE_SECTORS,
	    .max_discard_seg = BLK_MAX_RANGE_SEGS,
	    .discard_sector_alignment = blk->discard_alignment,
	    .max_write_zeroes_sectors = BLK_MAX_RANGE_SECTORS,
	    .max_write_zeroes_seg = BLK_MAX_RANGE_SEGS,
	    .write_zeroes_may_unmap = 1,
	};

	memcpy(config, &c, sizeof(c));
	return sizeof(c);
}

/* O_DIRECT alignment: statx STATX_DIOALIGN where the kernel and filesystem
 * say; else a conservative 4096. */
static void blk_dio_align(struct blk *blk)
{
#ifdef STATX_DIOALIGN
	struct statx stx;

	if (statx(blk->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN)) {
		if (!stx.stx_dio_offset_align) {
			close(blk->fd_direct); /* the filesystem has no O_DIRECT */
			blk->fd_direct = -1;
			return;
		}
		blk->dio_mem_align = stx.stx_dio_mem_align;
		blk->dio_offset_align = stx.stx_dio_offset_align;
		return;
	}
#endif
	blk->dio_mem_align = blk->dio_offset_align = 4096;
}

int blk_open(struct blk *blk, const char *image, bool readonly, const char *id, unsigned num_queues,
	     char *err, size_t errlen)
{
	int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	const char *base = strrchr(image, '/') ? strrchr(image, '/') + 1 : image;
	struct stat st;
	uint64_t bytes;

	memset(blk, 0, sizeof(*blk));
	blk->fd = blk->fd_direct = -1;
	if (num_queues < 1 || num_queues > VHOST_USER_BACKEND_MAX_QUEUES)
		return error_text(err, errlen, -EINVAL, "--queues %u: want 1 to %d", num_queues,
				  VHOST_USER_BACKEND_MAX_QUEUES);
	blk->fd = open(image, flags);
	if (blk->fd < 0)
		return error_text(err, errlen, -errno, "image %s: open: %s", image,
				  strerror(errno));
	if (fstat(blk->fd, &st) < 0)
		return error_text(err, errlen, -errno, "image %s: stat: %s", image,
				  strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(blk->fd, BLKGETSIZE64, &bytes) < 0)
			return error_text(err, errlen, -errno, "image %s: size: %s", image,
					  strerror(errno));
	} else if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
	} else {
		return error_text(err, errlen, -EINVAL,
				  "image %s: not a regular file or block device", image);
	}
	if (bytes % VIRTIO_BLK_SECTOR)
		log_warn("image %s: %llu trailing bytes past the last whole sector are not "
			 "visible to the guest",
			 image, (unsigned long long)(bytes % VIRTIO_BLK_SECTOR));
	blk->capacity = bytes / VIRTIO_BLK_SECTOR;
	blk->discard_alignment = st.st_blksize >= VIRTIO_BLK_SECTOR ? st.st_blksize / 512 : 1;
	blk->fd_direct = open(image, flags | O_DIRECT);
	if (blk->fd_direct < 0)
		log_info("image %s: no O_DIRECT (%s); using buffered I/O", image, strerror(errno));
	else
		blk_dio_align(blk);
	blk->readonly = readonly;
	blk->num_queues = num_queues;
	blk->poll_max_ns = BLK_POLL_US_DEFAULT * 1000u;
	blk->poll_backoff_ns = BLK_POLL_BACKOFF_NS;
	blk->prep_sync = blk_prep_fdatasync;
	pthread_mutex_init(&blk->limiter_lock, NULL);
	/* 20 bytes, NUL-padded only if shorter (§5.2.6: GET_ID) */
	memcpy(blk->id, id ? id : base, strnlen(id ? id : base, sizeof(blk->id)));
	blk->ops = (struct vhost_user_backend_ops){
	    .name = "isola-blk",
	    .features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
			(1ull << VIRTIO_F_EVENT_IDX) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
			(1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH) |
			(1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES) |
			(1ull << VIRTIO_BLK_F_MQ) | (readonly ? 1ull << VIRTIO_BLK_F_RO : 0),
	    .num_queues = num_queues,
	    .get_config = blk_get_config,
	    .queue_start = blk_queue_start,
	    .handle_queue = blk_handle_queue,
	    .queue_wait = blk_queue_wait,
	    .handle_chain = blk_handle_chain,
	    .queue_stop = blk_queue_stop,
	};
	return 0;
}

/* Register the image fds with the ring, here where io_uring_register(2)
 * is still allowed (before the sandbox's seccomp filter, which does not
 * list it).  Where the kernel refuses (no memory, an old kernel), requests
 * name the fds themselves: slower by a file lookup, nothing else. */
static void blk_register_files(const struct blk *blk, struct blk_queue *bq)
{
	int fds[2] = {blk->fd, blk->fd_direct};
	unsigned n = blk->fd_direct >= 0 ? 2 : 1;
	int ret = io_uring_register_files(&bq->ring, fds, n);

	bq->nr_fixed = 0;
	if (ret < 0) {
		log_info("io_uring: registering the image files: %s; going without",
			 strerror(-ret));
		return;
	}
	memcpy(bq->fixed_fds, fds, sizeof(fds));
	bq->nr_fixed = n;
}

int blk_setup_rings(struct blk *blk, char *err, size_t errlen)
{
	for (unsigned i = 0; i < blk->num_queues; i++) {
		struct blk_queue *bq = &blk->queues[i];
		/* COOP_TASKRUN: completions wait for the queue thread's next
		 * enter instead of interrupting it (an IPI while it runs or
		 * spins); TASKRUN_FLAG lets liburing's peek see them pending.
		 * Linux 5.19; older kernels refuse the flags: go without. */
		struct io_uring_params p = {.flags = IORING_SETUP_CQSIZE |
						     IORING_SETUP_COOP_TASKRUN |
						     IORING_SETUP_TASKRUN_FLAG,
					    .cq_entries = 4096};
		int ret = io_uring_queue_init_params(BLK_RING_ENTRIES, &bq->ring, &p);

		if (ret == -EINVAL) {
			p = (struct io_uring_params){.flags = IORING_SETUP_CQSIZE,
						     .cq_entries = 4096};
			ret = io_uring_queue_init_params(BLK_RING_ENTRIES, &bq->ring, &p);
		}

		if (ret < 0)
			return error_text(err, errlen, ret, "io_uring for queue %u: %s", i,
					  strerror(-ret));
		bq->ring_ready = true;
		blk_register_files(blk, bq);
	}
	return 0;
}

unsigned blk_fds(const struct blk *blk, int *fds, unsigned max)
{
	unsigned n = 0;

	if (n < max)
		fds[n++] = blk->fd;
	if (blk->fd_direct >= 0 && n < max)
		fds[n++] = blk->fd_direct;
	for (unsigned i = 0; i < blk->num_queues; i++) {
		if (blk->queues[i].ring_ready && n < max)
			fds[n++] = blk->queues[i].ring.ring_fd;
	}
	return n;
}

void blk_close(struct blk *blk)
{
	for (unsigned i = 0; i < VHOST_USER_BACKEND_MAX_QUEUES; i++) {
		struct blk_queue *bq = &blk->queues[i];

		if (bq->ring_ready)
			io_uring_queue_exit(&bq->ring);
		bq->ring_ready = false;
	}
	if (blk->fd_direct >= 0)
		close(blk->fd_direct);
	if (blk->fd >= 0)
		close(blk->fd);
	blk->fd = blk->fd_direct = -1;
}
