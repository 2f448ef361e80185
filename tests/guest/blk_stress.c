/* SPDX-License-Identifier: MIT */
/*
 * blk_stress: continuous verifiable writes to the first virtio-blk device
 * (virtio 1.2 §5.2), for fault injection (tests/system/fault_injection.sh).
 *
 * The disk holds `slots=` 4 KiB blocks from sector 0.  Up to `depth=`
 * requests are in flight at once, each on a different slot.  Every block
 * written carries a header (magic, slot, sequence number, checksum over the
 * whole block) and a payload derived from slot and sequence; a FLUSH follows
 * every `flush_every=` writes and an idle slot is read back and checked
 * every `verify_every=` writes.  Every completion must be VIRTIO_BLK_S_OK
 * within `timeout_ms=` of its submission (default 5000); the guest keeps,
 * per slot, the last acknowledged sequence number.  It stops after
 * `seconds=` (default 10), after `writes=`, or, with `until_key`, when a
 * byte arrives on COM1; then it drains the queue, reads every slot back and
 * checks each holds exactly its last acknowledged write (`fresh`: the
 * image was zero, so a slot never written must still read zero).
 *
 * `idle_every_ms=M idle_ms=I`: every M ms, drain the queue, print
 * `blk_stress: idle`, submit nothing for I ms, print `blk_stress: busy`
 * (a back-end without VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD can only be
 * replaced exactly when nothing is in flight).
 * `reset_after_ms=M`: when the oldest request has waited M ms (a back-end
 * that is away), reset the device once and initialize it again (§3.1.1);
 * the abandoned writes' slots may then hold either version until rewritten.
 * Payloads are made and checked in ring 3 (PVM emulates ring 0 slowly).
 * `poll`: no MSI-X.  Prints `blk_stress: writes=... flushes=... reads=...
 * max_wait_us=...` and PASS/FAIL.  PASS = status 1.
 */
#include "virtio.h"

#define BLK_FEATURES (VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX))
#define BLOCK_BYTES 4096u
#define BLOCK_SECTORS (BLOCK_BYTES / VIRTIO_BLK_SECTOR)
#define BLOCK_WORDS (BLOCK_BYTES / 8)
#define MAX_DEPTH 16
#define MAX_SLOTS 4096
#define QUEUE_SIZE 128
#define BLOCK_MAGIC 0x31535345525453ull /* "STRESS1" */
#define PAYLOAD_MUL 0x9e3779b97f4a7c15ull
#define COM1_LSR 0x3fd
#define UART_LSR_DR 0x01

enum req_kind { REQ_FREE, REQ_WRITE, REQ_FLUSH, REQ_READ };

/* One request slot of the pipeline; hdr, status and data are DMA memory. */
struct req {
	enum req_kind kind;
	unsigned slot;
	uint64_t seq; /* written, or expected when reading */
	uint64_t submitted_us;
	int head;
	struct virtio_blk_req_hdr *hdr;
	uint8_t *status;
	uint64_t *data;
};

struct slot_state {
	uint64_t acked;     /* last acknowledged seq, 0: never written */
	uint64_t uncertain; /* a seq abandoned by a device reset, or 0 */
	int busy;
};

struct stats {
	uint64_t writes, flushes, reads, resets, max_wait_us, total_wait_us, completions;
};

static struct virtio_dev disk;
static struct req reqs[MAX_DEPTH];
static struct slot_state slots[MAX_SLOTS];
static int head_req[VIRTQ_MAX_SIZE];
static struct stats st;
static struct stopwatch clock;
static unsigned nr_slots, depth, in_flight;
static uint64_t next_seq = 1, rng_state = 0x2545f4914f6cdd1dull;
static int fresh_image;

/* ---- block contents, ring 3 ---------------------------------------------- */

static uint64_t block_checksum(const uint64_t *w)
{
	uint64_t c = 0xcbf29ce484222325ull;

	for (unsigned i = 0; i < BLOCK_WORDS; i++)
		if (i != 3)
			c = (c ^ w[i]) * 0x100000001b3ull;
	return c;
}

static uint64_t payload_word(unsigned slot, uint64_t seq, unsigned i)
{
	return ((seq << 24) ^ ((uint64_t)slot << 12) ^ i) * PAYLOAD_MUL;
}

struct block_job {
	int check; /* 0: fill */
	uint64_t *data;
	unsigned slot;
	uint64_t seq, seen_seq;
};

/* CPL 3: fill the block, or check it: 0 fine, else what is wrong. */
enum { BLOCK_OK, BLOCK_MAGIC_BAD, BLOCK_SLOT_BAD, BLOCK_SEQ_BAD, BLOCK_SUM_BAD, BLOCK_DATA_BAD };
static uint64_t block_job_run(uint64_t arg)
{
	struct block_job *job = (struct block_job *)arg;
	uint64_t *w = job->data;

	if (!job->check) {
		w[0] = BLOCK_MAGIC;
		w[1] = job->slot;
		w[2] = job->seq;
		for (unsigned i = 4; i < BLOCK_WORDS; i++)
			w[i] = payload_word(job->slot, job->seq, i);
		w[3] = block_checksum(w);
		return BLOCK_OK;
	}
	job->seen_seq = w[2];
	if (w[0] != BLOCK_MAGIC)
		return BLOCK_MAGIC_BAD;
	if (w[1] != job->slot)
		return BLOCK_SLOT_BAD;
	if (w[3] != block_checksum(w))
		return BLOCK_SUM_BAD;
	for (unsigned i = 4; i < BLOCK_WORDS; i++)
		if (w[i] != payload_word(job->slot, w[2], i))
			return BLOCK_DATA_BAD;
	return w[2] == job->seq ? BLOCK_OK : BLOCK_SEQ_BAD;
}

/* A valid-looking block no slot ever holds: a read that does nothing fails. */
static void poison(uint64_t *data)
{
	struct block_job job = {0, data, MAX_SLOTS, 0, 0};

	if (run_in_ring3(block_job_run, (uint64_t)&job) == RING3_FAULTED)
		test_abort("block fill", "ring 3 fault");
}

static const char *const block_errors[] = {"ok", "bad magic", "wrong slot", "wrong sequence",
					   "bad checksum", "payload does not match"};

/* Check a block read from slot against the slot's state; 0 if fine. */
static int block_check(const uint64_t *data, unsigned slot, const char *when)
{
	const struct slot_state *s = &slots[slot];
	struct block_job job = {1, (uint64_t *)data, slot, s->acked, 0};
	uint64_t r = run_in_ring3(block_job_run, (uint64_t)&job);

	if (r == RING3_FAULTED)
		test_abort("block check", "ring 3 fault");
	if (!s->acked && !s->uncertain && !fresh_image)
		return 0; /* not written by this run: anything */
	if (!s->acked && !s->uncertain && r == BLOCK_MAGIC_BAD && data[0] == 0 && data[3] == 0)
		return 0; /* not written: still zero */
	if (r == BLOCK_SEQ_BAD && s->uncertain && job.seen_seq == s->uncertain)
		return 0;
	if (r == BLOCK_OK)
		return 0;
	test_fail("acknowledged write intact",
		  "%s: slot %u: %s (holds seq %lu, last acknowledged %lu, abandoned %lu)", when, slot,
		  block_errors[r < 6 ? r : 0], job.seen_seq, s->acked, s->uncertain);
	return -1;
}

/* ---- the pipeline ---------------------------------------------------------- */

static uint64_t now_us(void)
{
	return stopwatch_us(&clock);
}

static uint64_t rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* An idle slot, starting from a random one; -1 if all are busy. */
static int pick_slot(void)
{
	unsigned start = (unsigned)(rng_next() % nr_slots);

	for (unsigned i = 0; i < nr_slots; i++) {
		unsigned s = (start + i) % nr_slots;

		if (!slots[s].busy)
			return (int)s;
	}
	return -1;
}

static struct req *free_req(void)
{
	for (unsigned i = 0; i < depth; i++)
		if (reqs[i].kind == REQ_FREE)
			return &reqs[i];
	return NULL;
}

static void submit(struct req *r, enum req_kind kind, int slot)
{
	struct virtq *vq = &disk.vq[0];
	struct virtq_buf bufs[3];
	unsigned n = 0;
	int head;

	r->kind = kind;
	r->slot = slot < 0 ? 0 : (unsigned)slot;
	r->hdr->type = kind == REQ_WRITE  ? VIRTIO_BLK_T_OUT
		       : kind == REQ_READ ? VIRTIO_BLK_T_IN
					  : VIRTIO_BLK_T_FLUSH;
	r->hdr->reserved = 0;
	r->hdr->sector = kind == REQ_FLUSH ? 0 : (uint64_t)r->slot * BLOCK_SECTORS;
	*r->status = 0xee;
	bufs[n++] = (struct virtq_buf){(uint64_t)r->hdr, sizeof(*r->hdr), 0};
	if (kind != REQ_FLUSH) {
		slots[r->slot].busy = 1;
		bufs[n++] = (struct virtq_buf){(uint64_t)r->data, BLOCK_BYTES, kind == REQ_READ};
	}
	bufs[n++] = (struct virtq_buf){(uint64_t)r->status, 1, 1};
	head = virtq_submit(vq, bufs, n, 0);
	if (head < 0)
		test_abort("submit", "ring full with %u in flight", in_flight);
	head_req[head] = (int)(r - reqs);
	r->head = head;
	r->submitted_us = now_us();
	in_flight++;
}

static void complete(struct req *r)
{
	uint64_t waited = now_us() - r->submitted_us;
	struct slot_state *s = &slots[r->slot];
	const char *what = r->kind == REQ_WRITE ? "write" : r->kind == REQ_READ ? "read" : "flush";

	st.completions++;
	st.total_wait_us += waited;
	if (waited > st.max_wait_us)
		st.max_wait_us = waited;
	if (*r->status != VIRTIO_BLK_S_OK)
		test_abort("request completes OK", "%s of slot %u (seq %lu): %s (status 0x%x)", what,
			   r->slot, r->seq, virtio_blk_status_name(*r->status), *r->status);
	if (r->kind == REQ_WRITE) {
		s->acked = r->seq;
		s->uncertain = 0;
	} else if (r->kind == REQ_READ) {
		block_check(r->data, r->slot, "read during the run");
	}
	if (r->kind != REQ_FLUSH)
		s->busy = 0;
	r->kind = REQ_FREE;
	in_flight--;
}

/* A completion for a head not in flight: show the ring and what is in flight. */
static void used_ring_abort(int head)
{
	struct virtq *vq = &disk.vq[0];

	console_printf("blk_stress: used idx %u, consumed %u, avail idx %u; last used entries:",
		       vq->used->idx, vq->last_used, vq->avail_idx);
	for (uint16_t i = (uint16_t)(vq->last_used - 12); i != (uint16_t)(vq->last_used + 4); i++)
		console_printf(" [%u]=%u", i, vq->used->ring[i % vq->size].id);
	console_printf("\nblk_stress: in flight:");
	for (unsigned i = 0; i < depth; i++)
		if (reqs[i].kind != REQ_FREE)
			console_printf(" head %d (kind %d slot %u seq %lu)", reqs[i].head, reqs[i].kind,
				       reqs[i].slot, reqs[i].seq);
	console_printf("\n");
	test_abort("used ring", "head %d completed twice or never submitted", head);
}

/* Consume every used element; returns how many. */
static unsigned reap(void)
{
	struct virtq *vq = &disk.vq[0];
	unsigned n = 0;
	int head;

	while (virtq_pending_used(vq)) {
		head = virtq_wait_used(vq, NULL, 0);
		if (head < 0)
			test_abort("used ring", "see above");
		if (head_req[head] < 0 || reqs[head_req[head]].kind == REQ_FREE)
			used_ring_abort(head);
		complete(&reqs[head_req[head]]);
		head_req[head] = -1;
		n++;
	}
	return n;
}

static uint64_t oldest_wait_us(void)
{
	uint64_t now = now_us(), oldest = 0;

	for (unsigned i = 0; i < depth; i++)
		if (reqs[i].kind != REQ_FREE && now - reqs[i].submitted_us > oldest)
			oldest = now - reqs[i].submitted_us;
	return oldest;
}

static void device_init(int use_msix)
{
	if (virtio_init(&disk, BLK_FEATURES, 1, QUEUE_SIZE, use_msix))
		test_abort("virtio-blk init", "see above");
	for (unsigned i = 0; i < VIRTQ_MAX_SIZE; i++)
		head_req[i] = -1;
}

/* §3.1.1 again after a reset: whatever was in flight is abandoned, and its
 * slot may hold the old or the new version until written again. */
static void device_reset(int use_msix)
{
	console_printf("blk_stress: resetting the device with %u requests in flight\n", in_flight);
	if (virtio_reset(&disk))
		test_abort("device reset", "see above");
	for (unsigned i = 0; i < depth; i++) {
		struct req *r = &reqs[i];

		if (r->kind == REQ_WRITE)
			slots[r->slot].uncertain = r->seq;
		if (r->kind != REQ_FREE && r->kind != REQ_FLUSH)
			slots[r->slot].busy = 0;
		r->kind = REQ_FREE;
	}
	in_flight = 0;
	device_init(use_msix);
	st.resets++;
}

/* Wait for at least one completion; aborts after timeout_us. */
static void wait_some(uint64_t timeout_us, uint64_t reset_after_us, int use_msix)
{
	struct virtq *vq = &disk.vq[0];

	for (unsigned polls = 0; !reap(); polls++) {
		if (!(polls % 256)) {
			uint64_t oldest = oldest_wait_us();

			if (virtio_needs_reset(&disk))
				test_abort("device", "NEEDS_RESET with %u requests in flight",
					   in_flight);
			if (reset_after_us && !st.resets && oldest > reset_after_us) {
				device_reset(use_msix);
				return;
			}
			if (oldest > timeout_us)
				test_abort("request completes in time",
					   "%u in flight, oldest waited %lu ms (limit %lu ms); used idx "
					   "%u, consumed %u, avail idx %u",
					   in_flight, oldest / 1000, timeout_us / 1000, vq->used->idx,
					   vq->last_used, vq->avail_idx);
		}
		if (vq->irq_vector) {
			cpu_sti();
			(void)pmtimer_read(); /* a VM exit inside the interrupt window */
			cpu_cli();
		} else {
			(void)now_us();
		}
	}
}

/* Top the pipeline up: writes (a FLUSH every flush_every, a read of an idle
 * slot every verify_every); one notification for the lot. */
static void fill_pipeline(uint64_t flush_every, uint64_t verify_every)
{
	static uint64_t since_flush, since_verify;
	unsigned added = 0;
	struct req *r;
	int slot;

	while ((r = free_req())) {
		if (flush_every && since_flush >= flush_every) {
			submit(r, REQ_FLUSH, -1);
			since_flush = 0;
			st.flushes++;
		} else if ((slot = pick_slot()) < 0) {
			break;
		} else if (verify_every && since_verify >= verify_every) {
			r->seq = slots[slot].acked;
			poison(r->data);
			submit(r, REQ_READ, slot);
			since_verify = 0;
			st.reads++;
		} else {
			struct block_job job = {0, r->data, (unsigned)slot, next_seq++, 0};

			if (run_in_ring3(block_job_run, (uint64_t)&job) == RING3_FAULTED)
				test_abort("block fill", "ring 3 fault");
			r->seq = job.seq;
			submit(r, REQ_WRITE, slot);
			since_flush++;
			since_verify++;
			st.writes++;
		}
		added++;
	}
	if (added)
		virtq_notify(&disk.vq[0]);
}

static int stop_key(void)
{
	return io_in8(COM1_LSR) & UART_LSR_DR;
}

static void read_back_all(void)
{
	uint64_t *buf = reqs[0].data;
	unsigned bad = 0, written = 0;

	for (unsigned s = 0; s < nr_slots; s++) {
		int status;

		poison(buf);
		status = virtio_blk_rw(&disk.vq[0], 0, (uint64_t)s * BLOCK_SECTORS, buf,
				       BLOCK_SECTORS, 1, 0);
		if (status != VIRTIO_BLK_S_OK)
			test_abort("read back", "slot %u: %s", s, virtio_blk_status_name(status));
		if (block_check(buf, s, "final read-back") && ++bad >= 10)
			break;
		written += slots[s].acked != 0;
	}
	if (!bad)
		test_pass("every acknowledged write reads back intact (%u slots, %u written)",
			  nr_slots, written);
}

int guest_main(const struct boot_info *info)
{
	const char *cmd = info->cmdline;
	int use_msix = !cmdline_has(cmd, "poll"), until_key = cmdline_has(cmd, "until_key");
	uint64_t seconds = cmdline_get_u64_default(cmd, "seconds", 10);
	uint64_t max_writes = cmdline_get_u64_default(cmd, "writes", 0);
	uint64_t flush_every = cmdline_get_u64_default(cmd, "flush_every", 16);
	uint64_t verify_every = cmdline_get_u64_default(cmd, "verify_every", 32);
	uint64_t timeout_us = cmdline_get_u64_default(cmd, "timeout_ms", 5000) * 1000;
	uint64_t reset_after_us = cmdline_get_u64_default(cmd, "reset_after_ms", 0) * 1000;
	uint64_t idle_every_us = cmdline_get_u64_default(cmd, "idle_every_ms", 0) * 1000;
	uint64_t idle_us = cmdline_get_u64_default(cmd, "idle_ms", 1000) * 1000;
	uint64_t capacity, next_report = 1000000, next_idle = idle_every_us, elapsed;

	console_printf("isola blk_stress guest\n");
	fresh_image = cmdline_has(cmd, "fresh");
	nr_slots = (unsigned)cmdline_get_u64_default(cmd, "slots", 64);
	depth = (unsigned)cmdline_get_u64_default(cmd, "depth", 8);
	if (!nr_slots || nr_slots > MAX_SLOTS || !depth || depth > MAX_DEPTH || depth > nr_slots)
		test_abort("options", "slots=%u (1..%u), depth=%u (1..%u, <= slots)", nr_slots,
			   MAX_SLOTS, depth, MAX_DEPTH);
	dma_init(info);
	if (virtio_find(VIRTIO_ID_BLOCK, &disk, 1) != 1)
		test_abort("virtio-blk device", "none on bus 0");
	device_init(use_msix);
	if (!(disk.features & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH)))
		flush_every = 0;
	capacity = virtio_config_read64(&disk, VIRTIO_BLK_CFG_CAPACITY);
	if (capacity < (uint64_t)nr_slots * BLOCK_SECTORS)
		test_abort("capacity", "%lu sectors: %u slots need %u", capacity, nr_slots,
			   nr_slots * BLOCK_SECTORS);
	for (unsigned i = 0; i < depth; i++) {
		reqs[i].hdr = dma_alloc(sizeof(*reqs[i].hdr), 16);
		reqs[i].status = dma_alloc(1, 1);
		reqs[i].data = dma_alloc(BLOCK_BYTES, 4096);
	}
	rng_state ^= cmdline_get_u64_default(cmd, "seed", 0) * PAYLOAD_MUL;
	console_printf("blk_stress: %u slots, depth %u, flush every %lu, verify every %lu, %s, "
		       "%s, timeout %lu ms\n",
		       nr_slots, depth, flush_every, verify_every, use_msix ? "MSI-X" : "polling",
		       until_key ? "until a key" : "timed", timeout_us / 1000);
	console_printf("blk_stress: READY\n");

	stopwatch_start(&clock);
	for (;;) {
		elapsed = now_us();
		if (elapsed >= seconds * 1000000 || (max_writes && st.writes >= max_writes) ||
		    (until_key && stop_key()))
			break;
		if (idle_every_us && elapsed >= next_idle) {
			while (in_flight)
				wait_some(timeout_us, 0, use_msix);
			console_printf("blk_stress: idle\n");
			virtio_delay_us(idle_us);
			console_printf("blk_stress: busy\n");
			next_idle = now_us() + idle_every_us;
		}
		fill_pipeline(flush_every, verify_every);
		wait_some(timeout_us, reset_after_us, use_msix);
		if (elapsed >= next_report) {
			console_printf("blk_stress: %lu s: %lu writes\n", elapsed / 1000000, st.writes);
			next_report += 1000000;
		}
	}
	while (in_flight)
		wait_some(timeout_us, 0, use_msix); /* drain */
	console_printf("blk_stress: writes=%lu flushes=%lu reads=%lu resets=%lu max_wait_us=%lu "
		       "mean_wait_us=%lu seconds=%lu\n",
		       st.writes, st.flushes, st.reads, st.resets, st.max_wait_us,
		       st.completions ? st.total_wait_us / st.completions : 0, elapsed / 1000000);
	test_check(st.writes > 0, "writes were made", "none");
	read_back_all();
	return 0;
}
