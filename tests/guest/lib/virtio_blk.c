/* SPDX-License-Identifier: MIT */
/* virtio-blk requests (virtio 1.2 §5.2.6) for the test guests: see virtio.h. */
#include "virtio.h"

/* ---- virtio-blk ---------------------------------------------------------- */

struct blk_scratch {
	struct virtio_blk_req_hdr hdr;
	struct virtio_blk_discard range;
	uint8_t status;
	char id[VIRTIO_BLK_ID_BYTES + 4];
};

static struct blk_scratch *blk_scratch(struct virtq *vq)
{
	static struct blk_scratch *scratch[VIRTIO_MAX_DEVICES * VIRTIO_MAX_QUEUES];
	static struct virtq *owner[VIRTIO_MAX_DEVICES * VIRTIO_MAX_QUEUES];

	for (unsigned i = 0; i < ARRAY_SIZE(owner); i++) {
		if (owner[i] == vq)
			return scratch[i];
		if (!owner[i]) {
			owner[i] = vq;
			scratch[i] = dma_alloc(sizeof(struct blk_scratch), 64);
			return scratch[i];
		}
	}
	test_abort("virtio-blk", "too many queues");
}

/* Header, data buffers, status: one chain on the avail ring, notified. */
static int blk_start(struct virtq *vq, uint32_t type, uint64_t sector, const struct virtq_buf *data,
		     unsigned ndata, int indirect)
{
	struct blk_scratch *s = blk_scratch(vq);
	struct virtq_buf bufs[VIRTQ_INDIRECT_MAX];

	if (ndata + 2 > ARRAY_SIZE(bufs))
		return -2;
	s->hdr.type = type;
	s->hdr.reserved = 0;
	s->hdr.sector = sector;
	s->status = 0xee;
	bufs[0] = (struct virtq_buf){(uint64_t)&s->hdr, sizeof(s->hdr), 0};
	for (unsigned i = 0; i < ndata; i++)
		bufs[1 + i] = data[i];
	bufs[1 + ndata] = (struct virtq_buf){(uint64_t)&s->status, 1, 1};
	if (virtq_submit(vq, bufs, ndata + 2, indirect) < 0)
		return -2;
	virtq_notify(vq);
	return 0;
}

int virtio_blk_finish(struct virtq *vq)
{
	if (virtq_wait_used(vq, NULL, VIRTIO_BLK_TIMEOUT_US) < 0)
		return -1;
	return blk_scratch(vq)->status;
}

/* Returns the status byte, -1 on timeout, -2 if it did not fit. */
static int blk_request(struct virtq *vq, uint32_t type, uint64_t sector, const struct virtq_buf *data,
		       unsigned ndata, int indirect)
{
	int st = blk_start(vq, type, sector, data, ndata, indirect);

	return st < 0 ? st : virtio_blk_finish(vq);
}

int virtio_blk_start(struct virtq *vq, int write, uint64_t sector, void *buf, uint32_t count,
		     unsigned segs, int indirect)
{
	struct virtq_buf data[VIRTQ_INDIRECT_MAX - 2];
	uint64_t total = (uint64_t)count * VIRTIO_BLK_SECTOR, done = 0;

	if (segs < 1)
		segs = 1;
	if (segs > count)
		segs = count;
	if (segs > ARRAY_SIZE(data))
		segs = ARRAY_SIZE(data);
	for (unsigned i = 0; i < segs; i++) {
		uint64_t len = i + 1 < segs ? (count / segs) * (uint64_t)VIRTIO_BLK_SECTOR : total - done;

		data[i] = (struct virtq_buf){(uint64_t)buf + done, (uint32_t)len, !write};
		done += len;
	}
	return blk_start(vq, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, sector, data, segs,
			 indirect);
}

int virtio_blk_rw(struct virtq *vq, int write, uint64_t sector, void *buf, uint32_t count,
		  unsigned segs, int indirect)
{
	int st = virtio_blk_start(vq, write, sector, buf, count, segs, indirect);

	return st < 0 ? st : virtio_blk_finish(vq);
}

int virtio_blk_flush(struct virtq *vq)
{
	return blk_request(vq, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 0);
}

int virtio_blk_get_id(struct virtq *vq, char *id)
{
	struct blk_scratch *s = blk_scratch(vq);
	struct virtq_buf data = {(uint64_t)s->id, VIRTIO_BLK_ID_BYTES, 1};
	int st;

	dma_zero(s->id, sizeof(s->id));
	st = blk_request(vq, VIRTIO_BLK_T_GET_ID, 0, &data, 1, 0);
	memcpy(id, s->id, VIRTIO_BLK_ID_BYTES);
	id[VIRTIO_BLK_ID_BYTES] = 0;
	return st;
}

int virtio_blk_range(struct virtq *vq, uint32_t type, uint64_t sector, uint32_t count,
		     uint32_t flags)
{
	struct blk_scratch *s = blk_scratch(vq);
	struct virtq_buf data = {(uint64_t)&s->range, sizeof(s->range), 0};

	s->range.sector = sector;
	s->range.num_sectors = count;
	s->range.flags = flags;
	return blk_request(vq, type, 0, &data, 1, 0);
}

const char *virtio_blk_status_name(int status)
{
	switch (status) {
	case VIRTIO_BLK_S_OK:
		return "OK";
	case VIRTIO_BLK_S_IOERR:
		return "IOERR";
	case VIRTIO_BLK_S_UNSUPP:
		return "UNSUPP";
	case -1:
		return "no completion";
	case -2:
		return "ring full";
	default:
		return "bad status byte";
	}
}
