/* SPDX-License-Identifier: MIT */
/*
 * virtio_fs: a guest that breaks the virtio-fs rules (virtio 1.2 §5.11) on
 * purpose against Debian's virtiofsd behind isola (tests/system/fs_guests.sh
 * makes the share: inside.txt holding FS_INSIDE, the symlinks escape ->
 * the absolute path of ../outside.txt and escape_rel -> ../outside.txt,
 * and outside.txt next to the share, which nothing here may read or
 * change).  `attack=`:
 *
 *   fuse    FUSE requests virtiofsd must answer with an error: before
 *           FUSE_INIT, unknown opcodes, fuse_in_header.len 0 / 16 / past the
 *           chain / 0xffffffff, FUSE_INIT twice, reply buffers too small for
 *           the reply (nothing may be written past them), a LOOKUP on the
 *           high-priority queue, names with "..", '/', an absolute path, a
 *           NUL inside and none at the end, the symlinks out of the share,
 *           forged node ids and file handles, a WRITE whose size is more
 *           than it carries, CREATE of "../name".  Then created.txt is
 *           written (the script checks it on the host).
 *   chain   descriptor chains libvhost-user or virtiofsd refuse by ending
 *           virtiofsd (isola restarts it): a request outside guest RAM, a
 *           0xffffffff-byte request, the request device-writable and the
 *           reply device-readable, a zero-length request, a chain shorter
 *           than fuse_in_header, one longer than virtiofsd's buffer, a
 *           FORGET of more lookups than the node has.
 *   config  the front-end's rules (devices/virtio_pci.c, as for every
 *           device): writes to tag and num_request_queues, a queue size past
 *           the maximum, queue 2 (there is none) enabled and notified,
 *           FEATURES_OK with bits not offered or without VERSION_1, DRIVER_OK
 *           with a 100-entry queue, without FEATURES_OK, and with a ring in
 *           MMIO.
 *
 * After every attack the device must work (design.md "Processes and
 * trust"): a LOOKUP, OPEN, READ of inside.txt that returns FS_INSIDE and a
 * RELEASE; where the attack left no reply within FS_JUDGE_US or NEEDS_RESET,
 * the guest first resets the device, sets it up again and sends FUSE_INIT
 * (a restarted virtiofsd knows no session: docs/fs.md).  A READ that ever
 * returns FS_OUTSIDE fails.  PASS = status 1.
 */
#include "hostile.h"
#include "virtio.h"

#define FS_QSIZE 64
#define FS_HIPRIO 0
#define FS_REQUESTS 1
#define FS_JUDGE_US 600000ull  /* a request virtiofsd answers takes < 10 ms */
#define FS_BACK_US 10000000ull /* a restarted virtiofsd: 5-300 ms (docs/fs.md) */
/* A chain that ends virtiofsd is given to every new one again (no
 * inflight region: the replay starts at used->idx) and ends it too, until
 * the guest resets the device (a restart takes 5-30 ms here; 100 deaths in
 * 10 s give the device up, docs/devices.md).  So the guest waits until
 * virtiofsd has taken the chain (avail_event, VIRTIO_F_EVENT_IDX: §2.7.10,
 * libvhost-user writes it as it pops), then FS_CHAIN_JUDGE_US for a reply,
 * then resets: a few deaths per attack, however loaded the host is. */
#define FS_POP_US 5000000ull
#define FS_CHAIN_JUDGE_US 20000ull
#define FS_INSIDE "isola-fs-inside\n"
#define FS_OUTSIDE "OUTSIDE"
#define FS_CREATED "written after the attacks\n"
#define FS_REQ_BYTES 16384
#define FS_REP_BYTES 16384
#define FS_GUARD 64
#define FS_BIG (2u << 20) /* more than virtiofsd's 1 MiB + page buffer */

/* FUSE (include/uapi/linux/fuse.h, 7.31): only what this guest sends. */
enum {
	FUSE_LOOKUP = 1,
	FUSE_FORGET = 2,
	FUSE_GETATTR = 3,
	FUSE_OPEN = 14,
	FUSE_READ = 15,
	FUSE_WRITE = 16,
	FUSE_RELEASE = 18,
	FUSE_INIT = 26,
	FUSE_CREATE = 35,
};
#define FUSE_ROOT_ID 1
#define FUSE_EIO 5
#define FUSE_ENOSYS 38
#define O_RDONLY 0
#define O_RDWR 2

struct fuse_in_header {
	uint32_t len;
	uint32_t opcode;
	uint64_t unique;
	uint64_t nodeid;
	uint32_t uid, gid, pid;
	uint16_t total_extlen, padding;
};

struct fuse_out_header {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};

struct fuse_attr {
	uint64_t ino, size, blocks, atime, mtime, ctime;
	uint32_t atimensec, mtimensec, ctimensec, mode, nlink, uid, gid, rdev, blksize, flags;
};

struct fuse_entry_out {
	uint64_t nodeid, generation, entry_valid, attr_valid;
	uint32_t entry_valid_nsec, attr_valid_nsec;
	struct fuse_attr attr;
};

struct fuse_init_in {
	uint32_t major, minor, max_readahead, flags;
};

struct fuse_init_out {
	uint32_t major, minor, max_readahead, flags;
};

struct fuse_open_in {
	uint32_t flags, open_flags;
};

struct fuse_open_out {
	uint64_t fh;
	uint32_t open_flags, padding;
};

struct fuse_rw_in { /* fuse_read_in and fuse_write_in */
	uint64_t fh, offset;
	uint32_t size, rw_flags;
	uint64_t lock_owner;
	uint32_t flags, padding;
};

struct fuse_release_in {
	uint64_t fh;
	uint32_t flags, release_flags;
	uint64_t lock_owner;
};

struct fuse_create_in {
	uint32_t flags, mode, umask, open_flags;
};

struct fuse_forget_in {
	uint64_t nlookup;
};

enum outcome { O_REPLY, O_NEEDS_RESET, O_NOTHING };
static const char *const outcome_names[] = {"reply", "NEEDS_RESET", "no reply"};

struct result {
	enum outcome o;
	uint32_t used_len;
	int32_t error; /* the reply's, if one came */
};

static struct virtio_dev fs;
static uint8_t *req, *rep, *big;
static uint64_t next_unique = 1;
static unsigned recoveries, outside_reads;

/* ---- the device and the FUSE session ----------------------------------- */

static void fs_setup(void)
{
	if (virtio_init(&fs, VIRTIO_BIT(VIRTIO_F_EVENT_IDX), 2, FS_QSIZE, 0))
		test_abort("virtio-fs init", "see above");
}

/* The request header at req, its body (if any) after it. */
static struct fuse_in_header *fs_hdr(uint32_t opcode, uint64_t nodeid, uint32_t body)
{
	struct fuse_in_header *h = (struct fuse_in_header *)req;

	dma_zero(h, sizeof(*h));
	h->len = (uint32_t)sizeof(*h) + body;
	h->opcode = opcode;
	h->unique = next_unique++;
	h->nodeid = nodeid;
	h->pid = 1;
	return h;
}

static void *fs_body(void)
{
	return req + sizeof(struct fuse_in_header);
}

/* Publish a chain on queue q and judge it within us. */
static struct result fs_send(unsigned q, const struct virtq_buf *bufs, unsigned n, uint64_t us)
{
	struct virtq *vq = &fs.vq[q];
	struct result r = {O_NOTHING, 0, 0};
	struct stopwatch sw;

	if (virtio_needs_reset(&fs)) {
		r.o = O_NEEDS_RESET;
		return r;
	}
	if (virtq_submit(vq, bufs, n, 0) < 0)
		test_abort("virtio-fs", "queue %u full", q);
	virtq_notify(vq);
	if (us == FS_CHAIN_JUDGE_US && (fs.features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX))) {
		/* §2.7.10: avail_event, after the used ring, is where the device
		 * has read the avail ring to */
		volatile uint16_t *avail_event = (volatile uint16_t *)&vq->used->ring[vq->size];

		stopwatch_start(&sw);
		while (*avail_event != vq->avail_idx && !virtq_pending_used(vq) &&
		       !virtio_needs_reset(&fs) && stopwatch_us(&sw) < FS_POP_US)
			;
	}
	stopwatch_start(&sw);
	while (stopwatch_us(&sw) < us) {
		if (virtq_pending_used(vq)) {
			virtq_wait_used(vq, &r.used_len, 0);
			r.o = O_REPLY;
			return r;
		}
		if (virtio_needs_reset(&fs)) {
			r.o = O_NEEDS_RESET;
			return r;
		}
	}
	return r;
}

/* Request (header and body) then a reply buffer of rep_len bytes with a
 * guard after it; the reply header checked against the request. */
static struct result fs_call_q(unsigned q, uint32_t req_len, uint32_t rep_len, uint64_t us)
{
	const struct fuse_in_header *h = (const struct fuse_in_header *)req;
	const struct fuse_out_header *out = (const struct fuse_out_header *)rep;
	struct virtq_buf bufs[2] = {{(uint64_t)req, req_len, 0}, {(uint64_t)rep, rep_len, 1}};
	uint64_t unique = h->unique;
	struct result r;
	unsigned bad = 0;

	for (unsigned i = 0; i < rep_len + FS_GUARD; i++)
		rep[i] = 0xa5;
	r = fs_send(q, bufs, rep_len ? 2 : 1, us);
	for (unsigned i = rep_len; i < rep_len + FS_GUARD; i++)
		bad += rep[i] != 0xa5;
	/* (checked on every request: only a failure is printed) */
	if (bad)
		test_fail("nothing written past the reply buffer",
			  "%u of the %u bytes after a %u-byte reply buffer changed", bad, FS_GUARD,
			  rep_len);
	if (r.o != O_REPLY)
		return r;
	if (r.used_len > rep_len)
		test_fail("used length within the reply buffer", "used length %u, buffer %u",
			  r.used_len, rep_len);
	if (r.used_len >= sizeof(*out)) {
		r.error = out->error;
		if (out->unique != unique || out->len != r.used_len)
			test_fail("reply header", "unique %lu (sent %lu), len %u (used %u)",
				  out->unique, unique, out->len, r.used_len);
	} else {
		r.error = 1; /* an empty completion: refused without a FUSE reply */
	}
	return r;
}

static struct result fs_call(uint32_t rep_len)
{
	return fs_call_q(FS_REQUESTS, ((struct fuse_in_header *)req)->len, rep_len, FS_JUDGE_US);
}

static int fs_init_session(uint64_t us)
{
	struct fuse_init_in *in = fs_body();
	const struct fuse_init_out *out = (const void *)(rep + sizeof(struct fuse_out_header));
	struct result r;

	fs_hdr(FUSE_INIT, 0, 64);
	dma_zero(in, 64);
	in->major = 7;
	in->minor = 31;
	in->max_readahead = 65536;
	r = fs_call_q(FS_REQUESTS, sizeof(struct fuse_in_header) + 64, 256, us);
	if (r.o != O_REPLY || r.error || out->major != 7) {
		test_fail("FUSE_INIT", "%s, error %d, major %u", outcome_names[r.o], r.error,
			  r.o == O_REPLY ? out->major : 0);
		return -1;
	}
	return 0;
}

static int32_t fs_lookup(uint64_t parent, const char *name, uint32_t name_len,
			 struct fuse_entry_out *e)
{
	struct result r;

	fs_hdr(FUSE_LOOKUP, parent, name_len);
	memcpy(fs_body(), name, name_len);
	r = fs_call(sizeof(struct fuse_out_header) + sizeof(*e));
	if (r.o != O_REPLY)
		return -1000 - (int32_t)r.o;
	if (!r.error && e)
		memcpy(e, rep + sizeof(struct fuse_out_header), sizeof(*e));
	return r.error;
}

static int32_t fs_open(uint64_t node, uint32_t flags, uint64_t *fh)
{
	struct fuse_open_in *in = fs_body();
	struct result r;

	fs_hdr(FUSE_OPEN, node, sizeof(*in));
	in->flags = flags;
	in->open_flags = 0;
	r = fs_call(sizeof(struct fuse_out_header) + sizeof(struct fuse_open_out));
	if (r.o != O_REPLY)
		return -1000 - (int32_t)r.o;
	if (!r.error)
		*fh = ((const struct fuse_open_out *)(rep + sizeof(struct fuse_out_header)))->fh;
	return r.error;
}

/* READ of up to size bytes at 0: the error, *got the bytes (at rep + 16). */
static int32_t fs_read(uint64_t node, uint64_t fh, uint32_t size, uint32_t *got)
{
	struct fuse_rw_in *in = fs_body();
	struct result r;

	fs_hdr(FUSE_READ, node, sizeof(*in));
	dma_zero(in, sizeof(*in));
	in->fh = fh;
	in->size = size;
	r = fs_call(sizeof(struct fuse_out_header) + size);
	if (r.o != O_REPLY)
		return -1000 - (int32_t)r.o;
	*got = r.used_len > sizeof(struct fuse_out_header)
		   ? r.used_len - (uint32_t)sizeof(struct fuse_out_header)
		   : 0;
	if (mem_find(rep, r.used_len, FS_OUTSIDE, sizeof(FS_OUTSIDE) - 1) >= 0) {
		outside_reads++;
		test_fail("read outside the share", "a READ returned the outside file's bytes");
	}
	return r.error;
}

static void fs_release(uint64_t node, uint64_t fh)
{
	struct fuse_release_in *in = fs_body();

	fs_hdr(FUSE_RELEASE, node, sizeof(*in));
	dma_zero(in, sizeof(*in));
	in->fh = fh;
	fs_call(sizeof(struct fuse_out_header));
}

/* FORGET on the high-priority queue (§5.11.6.2): virtiofsd sends no reply,
 * the chain comes back empty. */
static struct result fs_forget(uint64_t node, uint64_t nlookup)
{
	struct fuse_forget_in *in = fs_body();
	struct virtq_buf b = {(uint64_t)req, sizeof(struct fuse_in_header) + sizeof(*in), 0};

	fs_hdr(FUSE_FORGET, node, sizeof(*in));
	in->nlookup = nlookup;
	return fs_send(FS_HIPRIO, &b, 1, FS_JUDGE_US);
}

/* The device works: inside.txt looked up, opened, read, released. */
static void fs_probe(const char *after)
{
	struct fuse_entry_out e;
	uint64_t fh = 0;
	uint32_t got = 0;
	int32_t err;
	int same = 0;

	err = fs_lookup(FUSE_ROOT_ID, "inside.txt", sizeof("inside.txt"), &e);
	if (!err)
		err = fs_open(e.nodeid, O_RDONLY, &fh);
	if (!err) {
		err = fs_read(e.nodeid, fh, 4096, &got);
		same = got == sizeof(FS_INSIDE) - 1 &&
		       !memcmp(rep + sizeof(struct fuse_out_header), FS_INSIDE, got);
		fs_release(e.nodeid, fh);
	}
	test_check(!err && same, "the share works", "after %s: error %d, %u bytes read", after, err,
		   got);
	if (!err)
		fs_forget(e.nodeid, 1);
}

/* Reset, set up again, a new FUSE session (a restarted virtiofsd has none). */
static void fs_recover(const char *after)
{
	recoveries++;
	if (!test_check(virtio_reset(&fs) == 0, "reset completes", "after %s: status %x", after,
			virtio_status(&fs)))
		test_abort("device", "stuck after %s", after);
	fs_setup();
	if (fs_init_session(FS_BACK_US))
		test_abort("device", "no FUSE session after %s", after);
}

/* Judge a request that broke the rules: a reply with an error, no reply or
 * NEEDS_RESET (then a new session); never a success.  Then the probe. */
static void fs_judge(const char *what, struct result r, int want_error)
{
	console_printf("%s: %s (error %d, used %u, status %x)\n", what, outcome_names[r.o], r.error,
		       r.used_len, virtio_status(&fs));
	if (r.o == O_REPLY && want_error)
		test_check(r.error == -want_error, what, "error %d, want %d", r.error, -want_error);
	else if (r.o == O_REPLY)
		test_check(r.error != 0, what, "served: error 0");
	if (r.o != O_REPLY)
		fs_recover(what);
	fs_probe(what);
}

/* ---- attack=fuse -------------------------------------------------------- */

static void lookup_attack(const char *what, const char *name, uint32_t name_len, int want_error)
{
	struct result r;

	fs_hdr(FUSE_LOOKUP, FUSE_ROOT_ID, name_len);
	memcpy(fs_body(), name, name_len);
	r = fs_call(sizeof(struct fuse_out_header) + sizeof(struct fuse_entry_out));
	if (r.o == O_REPLY && !r.error) {
		/* found: what would a READ of it give? (fs_read fails on the
		 * outside file's bytes) */
		uint64_t node = ((const struct fuse_entry_out *)(rep + 16))->nodeid, fh = 0;
		uint32_t got = 0;

		if (!fs_open(node, O_RDONLY, &fh)) {
			fs_read(node, fh, 4096, &got);
			fs_release(node, fh);
		}
		fs_hdr(FUSE_LOOKUP, FUSE_ROOT_ID, name_len); /* for the judge's lines */
	}
	fs_judge(what, r, want_error);
}

/* A LOOKUP of inside.txt whose header says len bytes. */
static void len_attack(const char *what, uint32_t len, uint32_t extra)
{
	struct fuse_in_header *h = fs_hdr(FUSE_LOOKUP, FUSE_ROOT_ID, sizeof("inside.txt"));
	struct result r;

	memcpy(fs_body(), "inside.txt", sizeof("inside.txt"));
	h->len = len;
	r = fs_call_q(FS_REQUESTS, (uint32_t)sizeof(*h) + sizeof("inside.txt") + extra,
		      sizeof(struct fuse_out_header) + sizeof(struct fuse_entry_out), FS_JUDGE_US);
	/* virtiofsd reads the chain, not len: a lie about len may be served
	 * (the LOOKUP is whole); what matters is that nothing broke */
	console_printf("%s: %s (error %d, used %u)\n", what, outcome_names[r.o], r.error,
		       r.used_len);
	if (r.o != O_REPLY)
		fs_recover(what);
	fs_probe(what);
}

/* A LOOKUP of inside.txt with a reply buffer of rep_len bytes. */
static void small_reply(const char *what, uint32_t rep_len)
{
	struct result r;

	fs_hdr(FUSE_LOOKUP, FUSE_ROOT_ID, sizeof("inside.txt"));
	memcpy(fs_body(), "inside.txt", sizeof("inside.txt"));
	r = fs_call(rep_len);
	/* no room for the reply: given back empty, or not at all */
	console_printf("%s: %s (used %u)\n", what, outcome_names[r.o], r.used_len);
	test_check(r.o != O_REPLY || r.used_len == 0 || r.error, what, "served in %u bytes",
		   r.used_len);
	if (r.o != O_REPLY)
		fs_recover(what);
	fs_probe(what);
}

static void attack_fuse(void)
{
	struct fuse_entry_out e, root, dotdot;
	struct fuse_in_header *h;
	uint64_t fh = 0;
	uint32_t got = 0;
	int32_t err;
	struct result r;

	/* libfuse's rule: nothing but FUSE_INIT before FUSE_INIT (EIO). */
	fs_hdr(FUSE_LOOKUP, FUSE_ROOT_ID, sizeof("inside.txt"));
	memcpy(fs_body(), "inside.txt", sizeof("inside.txt"));
	r = fs_call(sizeof(struct fuse_out_header) + sizeof(e));
	console_printf("LOOKUP before FUSE_INIT: %s (error %d)\n", outcome_names[r.o], r.error);
	test_check(r.o == O_REPLY && r.error == -FUSE_EIO, "LOOKUP before FUSE_INIT",
		   "%s, error %d (want -EIO)", outcome_names[r.o], r.error);
	if (fs_init_session(FS_JUDGE_US))
		test_abort("FUSE_INIT", "see above");
	fs_probe("the first FUSE_INIT");
	/* §5.11.6.1: the next FUSE_INIT ends the session and starts a new one */
	if (!fs_init_session(FS_JUDGE_US))
		console_printf("FUSE_INIT twice: a new session\n");
	fs_probe("FUSE_INIT twice");

	fs_hdr(0x7777, FUSE_ROOT_ID, 0);
	fs_judge("unknown opcode 0x7777", fs_call(256), FUSE_ENOSYS);
	fs_hdr(0, FUSE_ROOT_ID, 0);
	fs_judge("opcode 0", fs_call(256), FUSE_ENOSYS);
	fs_hdr(0xffffffffu, FUSE_ROOT_ID, 0);
	fs_judge("opcode 0xffffffff", fs_call(256), FUSE_ENOSYS);

	len_attack("in.len 0", 0, 0);
	len_attack("in.len 16 (less than the header)", 16, 0);
	len_attack("in.len past the chain", 40 + 11 + 4096, 0);
	len_attack("in.len 0xffffffff", 0xffffffffu, 0);
	len_attack("in.len shorter than the chain", 40 + 11, 4000);

	small_reply("reply buffer of 8 bytes (less than fuse_out_header)", 8);
	small_reply("reply buffer of 16 bytes (no room for fuse_entry_out)", 16);
	small_reply("reply buffer of 100 bytes", 100);
	small_reply("no reply buffer", 0);

	/* §5.11.6.2: the driver MUST NOT submit normal requests on hiprio; a
	 * device may serve it (virtiofsd does) or not, nothing may break */
	fs_hdr(FUSE_LOOKUP, FUSE_ROOT_ID, sizeof("inside.txt"));
	memcpy(fs_body(), "inside.txt", sizeof("inside.txt"));
	r = fs_call_q(FS_HIPRIO, sizeof(struct fuse_in_header) + sizeof("inside.txt"),
		      sizeof(struct fuse_out_header) + sizeof(e), FS_JUDGE_US);
	console_printf("LOOKUP on the high-priority queue: %s (error %d)\n", outcome_names[r.o],
		       r.error);
	if (r.o != O_REPLY)
		fs_recover("LOOKUP on hiprio");
	fs_probe("LOOKUP on hiprio");

	/* Names: nothing outside the share is reachable. */
	lookup_attack("LOOKUP outside.txt (not in the share)", "outside.txt", sizeof("outside.txt"),
		      0);
	lookup_attack("LOOKUP ../outside.txt", "../outside.txt", sizeof("../outside.txt"), 0);
	lookup_attack("LOOKUP /etc/passwd", "/etc/passwd", sizeof("/etc/passwd"), 0);
	lookup_attack("LOOKUP a name without NUL", "inside.txt", sizeof("inside.txt") - 1, 0);
	lookup_attack("LOOKUP an empty name", "", 1, 0);
	err = fs_lookup(FUSE_ROOT_ID, "inside.txt\0/../../outside.txt",
			sizeof("inside.txt\0/../../outside.txt"), &e);
	console_printf("LOOKUP inside.txt\\0/../../outside.txt: error %d, size %lu\n", err,
		       err ? 0 : e.attr.size);
	test_check(err || e.attr.size == sizeof(FS_INSIDE) - 1, "a name ends at its NUL",
		   "found a file of %lu bytes", e.attr.size);
	/* ".." of the root is the root (virtiofsd's root is the share) */
	err = fs_lookup(FUSE_ROOT_ID, ".", sizeof("."), &root);
	console_printf("LOOKUP .: error %d, ino %lu\n", err, err ? 0 : root.attr.ino);
	err = fs_lookup(FUSE_ROOT_ID, "..", sizeof(".."), &dotdot);
	console_printf("LOOKUP ..: error %d, ino %lu\n", err, err ? 0 : dotdot.attr.ino);
	if (!err) {
		int32_t e2 = fs_lookup(dotdot.nodeid, "outside.txt", sizeof("outside.txt"), &e);

		console_printf("LOOKUP outside.txt in ..: error %d\n", e2);
		test_check(e2 != 0, "LOOKUP outside.txt in ..", "found (node %lu)", e.nodeid);
		e2 = fs_lookup(dotdot.nodeid, "inside.txt", sizeof("inside.txt"), &e);
		test_check(e2 == 0, ".. of the root is the root", "inside.txt not in it: %d", e2);
	}
	/* symlinks out of the share: looked up as links, never opened through */
	for (unsigned i = 0; i < 2; i++) {
		const char *name = i ? "escape_rel" : "escape";

		err = fs_lookup(FUSE_ROOT_ID, name, (uint32_t)strlen(name) + 1, &e);
		console_printf("LOOKUP %s: error %d, mode %x\n", name, err, err ? 0 : e.attr.mode);
		if (err)
			continue;
		fh = 0;
		err = fs_open(e.nodeid, O_RDONLY, &fh);
		console_printf("OPEN %s: error %d\n", name, err);
		test_check(err != 0, "OPEN of a symlink out of the share", "%s opened", name);
		if (!err) {
			fs_read(e.nodeid, fh, 4096, &got);
			fs_release(e.nodeid, fh);
		}
	}
	fs_probe("symlinks");
	/* forged node ids and file handles */
	fs_hdr(FUSE_GETATTR, 0xdeadbeefull, 16);
	dma_zero(fs_body(), 16);
	fs_judge("GETATTR of node 0xdeadbeef", fs_call(256), 0);
	fs_hdr(FUSE_GETATTR, ~0ull, 16);
	dma_zero(fs_body(), 16);
	fs_judge("GETATTR of node 2^64-1", fs_call(256), 0);
	err = fs_lookup(FUSE_ROOT_ID, "inside.txt", sizeof("inside.txt"), &e);
	if (!err) {
		err = fs_read(e.nodeid, 0xdead, 4096, &got);
		console_printf("READ with fh 0xdead: error %d\n", err);
		test_check(err != 0, "READ with a forged fh", "served %u bytes", got);
		err = fs_read(e.nodeid, ~0ull, 4096, &got);
		console_printf("READ with fh 2^64-1: error %d\n", err);
		test_check(err != 0, "READ with fh 2^64-1", "served %u bytes", got);
	}
	fs_probe("forged ids");
	/* CREATE "../name": never outside (the script checks the host) */
	{
		struct fuse_create_in *c = fs_body();
		static const char name[] = "../created_outside.txt";

		fs_hdr(FUSE_CREATE, FUSE_ROOT_ID, sizeof(*c) + sizeof(name));
		dma_zero(c, sizeof(*c));
		c->flags = O_RDWR | 0100; /* O_CREAT */
		c->mode = 0100644;
		memcpy((uint8_t *)c + sizeof(*c), name, sizeof(name));
		fs_judge("CREATE ../created_outside.txt", fs_call(512), 0);
	}
	/* created.txt: a good CREATE and WRITE, then a WRITE that claims more
	 * than it carries */
	{
		struct fuse_create_in *c = fs_body();
		struct fuse_rw_in *w;
		static const char name[] = "created.txt";
		uint64_t node;

		fs_hdr(FUSE_CREATE, FUSE_ROOT_ID, sizeof(*c) + sizeof(name));
		dma_zero(c, sizeof(*c));
		c->flags = O_RDWR | 0100 | 01000; /* O_CREAT | O_TRUNC */
		c->mode = 0100644;
		memcpy((uint8_t *)c + sizeof(*c), name, sizeof(name));
		r = fs_call(512);
		if (!test_check(r.o == O_REPLY && !r.error, "CREATE created.txt", "%s, error %d",
				outcome_names[r.o], r.error))
			return;
		node = ((const struct fuse_entry_out *)(rep + 16))->nodeid;
		fh = ((const struct fuse_open_out *)(rep + 16 + sizeof(struct fuse_entry_out)))->fh;
		w = fs_body();
		h = fs_hdr(FUSE_WRITE, node, sizeof(*w) + 10);
		dma_zero(w, sizeof(*w));
		w->fh = fh;
		w->size = 1u << 20;
		memcpy((uint8_t *)w + sizeof(*w), "0123456789", 10);
		r = fs_call(256);
		console_printf("WRITE claiming 1 MiB with 10 bytes: %s (error %d)\n",
			       outcome_names[r.o], r.error);
		test_check(r.o != O_REPLY || r.error, "WRITE claiming 1 MiB with 10 bytes",
			   "served");
		if (r.o != O_REPLY)
			test_abort("device", "no reply to the WRITE");
		h = fs_hdr(FUSE_WRITE, node, sizeof(*w) + sizeof(FS_CREATED) - 1);
		dma_zero(w, sizeof(*w));
		w->fh = fh;
		w->size = sizeof(FS_CREATED) - 1;
		memcpy((uint8_t *)w + sizeof(*w), FS_CREATED, sizeof(FS_CREATED) - 1);
		r = fs_call(256);
		test_check(r.o == O_REPLY && !r.error, "WRITE created.txt", "%s, error %d",
			   outcome_names[r.o], r.error);
		(void)h;
		fs_release(node, fh);
	}
	fs_probe("the writes");
}

/* ---- attack=chain ------------------------------------------------------- */

static void chain_attack(const char *what, const struct virtq_buf *bufs, unsigned n)
{
	fs_hdr(FUSE_LOOKUP, FUSE_ROOT_ID, sizeof("inside.txt"));
	memcpy(fs_body(), "inside.txt", sizeof("inside.txt"));
	fs_judge(what, fs_send(FS_REQUESTS, bufs, n, FS_CHAIN_JUDGE_US), 0);
}

static void attack_chain(void)
{
	const uint32_t hl = sizeof(struct fuse_in_header) + sizeof("inside.txt");
	const uint32_t rl = sizeof(struct fuse_out_header) + sizeof(struct fuse_entry_out);
	const uint64_t r0 = (uint64_t)req, p0 = (uint64_t)rep;
	struct fuse_entry_out e;
	int32_t err;

	if (fs_init_session(FS_JUDGE_US))
		test_abort("FUSE_INIT", "see above");
	fs_probe("FUSE_INIT");
	{
		struct virtq_buf b[] = {{0x4000000000ull, hl, 0}, {p0, rl, 1}};
		chain_attack("request at 256 GiB (outside RAM)", b, 2);
	}
	{
		struct virtq_buf b[] = {{r0, 0xffffffffu, 0}, {p0, rl, 1}};
		chain_attack("0xffffffff-byte request", b, 2);
	}
	{
		struct virtq_buf b[] = {{r0, hl, 1}, {p0, rl, 0}};
		chain_attack("request device-writable, reply device-readable", b, 2);
	}
	{
		struct virtq_buf b[] = {{r0, 0, 0}, {p0, rl, 1}};
		chain_attack("zero-length request", b, 2);
	}
	{
		struct virtq_buf b[] = {{r0, 20, 0}, {p0, rl, 1}};
		chain_attack("20-byte request (less than fuse_in_header)", b, 2);
	}
	{
		struct virtq_buf b[] = {{(uint64_t)big, FS_BIG, 0}, {p0, rl, 1}};

		memcpy(big, req, hl);
		chain_attack("2 MiB request (more than virtiofsd's buffer)", b, 2);
	}
	{
		struct virtq_buf b[] = {{r0, hl, 0}, {p0, 0, 1}, {p0, rl, 1}};
		chain_attack("zero-length reply descriptor first", b, 3);
	}
	/* a FORGET of more lookups than the node has */
	err = fs_lookup(FUSE_ROOT_ID, "inside.txt", sizeof("inside.txt"), &e);
	if (!err) {
		struct fuse_forget_in *in = fs_body();
		struct virtq_buf b = {(uint64_t)req, sizeof(struct fuse_in_header) + sizeof(*in),
				      0};
		struct result r;

		fs_hdr(FUSE_FORGET, e.nodeid, sizeof(*in));
		in->nlookup = 1000000;
		r = fs_send(FS_HIPRIO, &b, 1, FS_CHAIN_JUDGE_US);

		/* no reply is due (the chain comes back empty); virtiofsd 7.2
		 * asserts nlookup >= n and dies after it: a new session */
		console_printf("FORGET of 10^6 lookups: %s\n", outcome_names[r.o]);
		fs_recover("FORGET of 10^6 lookups");
		fs_probe("FORGET of 10^6 lookups");
	}
}

/* ---- attack=config ------------------------------------------------------ */

/* The tag as printable text (a broken front-end may have let bytes in). */
static void cfg_tag_text(char *shown, const uint8_t *cfg)
{
	for (unsigned i = 0; i < VIRTIO_FS_TAG_SIZE; i++)
		shown[i] = cfg[i] && (cfg[i] < 0x20 || cfg[i] > 0x7e) ? '?' : (char)cfg[i];
	shown[VIRTIO_FS_TAG_SIZE] = 0;
}

static void cfg_snapshot(uint8_t *cfg)
{
	for (unsigned i = 0; i < VIRTIO_FS_CONFIG_SIZE; i++)
		cfg[i] = virtio_config_read8(&fs, i);
}

/* DRIVER_OK on a device set up by hand: NEEDS_RESET expected. */
static void driver_ok_refused(const char *what)
{
	virtio_set_status(&fs, virtio_status(&fs) | VIRTIO_STATUS_DRIVER_OK);
	console_printf("%s: status %x\n", what, virtio_status(&fs));
	test_check(virtio_needs_reset(&fs) && !(virtio_status(&fs) & VIRTIO_STATUS_DRIVER_OK), what,
		   "status %x: not NEEDS_RESET", virtio_status(&fs));
	fs_recover(what);
	fs_probe(what);
}

static void attack_config(const char *tag)
{
	uint8_t before[VIRTIO_FS_CONFIG_SIZE], after[VIRTIO_FS_CONFIG_SIZE];
	char shown[VIRTIO_FS_TAG_SIZE + 1] = "";
	uint64_t cfg = fs.device_cfg, offered;
	uint8_t gen;
	uint16_t size_max;

	fs_setup();
	if (fs_init_session(FS_JUDGE_US))
		test_abort("FUSE_INIT", "see above");
	cfg_snapshot(before);
	cfg_tag_text(shown, before);
	console_printf("tag '%s', num_request_queues %u, %u config bytes\n", shown,
		       virtio_config_read32(&fs, VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES),
		       fs.device_cfg_len);
	test_check(!strncmp((char *)before, tag, VIRTIO_FS_TAG_SIZE) &&
		       (strlen(tag) == VIRTIO_FS_TAG_SIZE || before[strlen(tag)] == 0),
		   "tag", "not '%s'", tag);
	test_check(virtio_config_read32(&fs, VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES) == 1,
		   "num_request_queues", "%u, want 1",
		   virtio_config_read32(&fs, VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES));
	/* §5.11.4.1: the driver MUST NOT write the config; every write is
	 * dropped (devices/virtio_pci.c) */
	gen = virtio_common_read8(&fs, VIRTIO_COMMON_CFGGEN);
	for (unsigned i = 0; i < VIRTIO_FS_CONFIG_SIZE; i++) {
		mmio_write8(cfg + i, 'X');
		if (!(i & 1))
			mmio_write16(cfg + i, 0x5858);
		if (!(i & 3))
			mmio_write32(cfg + i, 0xffffffffu);
	}
	mmio_write32(cfg + VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES, 0);
	mmio_write32(cfg + VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES, 16);
	cfg_snapshot(after);
	cfg_tag_text(shown, after);
	test_check(!memcmp(before, after, sizeof(before)) &&
		       gen == virtio_common_read8(&fs, VIRTIO_COMMON_CFGGEN),
		   "config writes ignored", "the config changed: tag '%s', %u queues", shown,
		   virtio_config_read32(&fs, VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES));
	console_printf("config after writes: tag '%s', num_request_queues %u\n", shown,
		       virtio_config_read32(&fs, VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES));
	fs_probe("config writes");

	/* queue 2 does not exist (set up below, before DRIVER_OK); notifying
	 * it and others past it does nothing */
	for (unsigned q = 2; q < 9; q++)
		mmio_write16(fs.notify + (uint64_t)q * fs.notify_multiplier, (uint16_t)q);
	mmio_write16(fs.notify, 0xffff);
	mmio_write16(fs.notify + 0xfff0, 2);
	fs_probe("notifications of queues 2..8 and 0xffff");

	/* features: FEATURES_OK only with a subset of the offer and VERSION_1 */
	virtio_reset(&fs);
	virtio_set_status(&fs, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* queue 2 does not exist: it reads as size 0 and cannot be set up */
	virtio_common_write16(&fs, VIRTIO_COMMON_Q_SELECT, 2);
	virtio_common_write16(&fs, VIRTIO_COMMON_Q_SIZE, 64);
	virtio_common_write32(&fs, VIRTIO_COMMON_Q_DESC, (uint32_t)(uint64_t)req);
	virtio_common_write16(&fs, VIRTIO_COMMON_Q_ENABLE, 1);
	console_printf("queue 2: size %u, enable %u, desc %x; device has %u queues\n",
		       virtio_common_read16(&fs, VIRTIO_COMMON_Q_SIZE),
		       virtio_common_read16(&fs, VIRTIO_COMMON_Q_ENABLE),
		       virtio_common_read32(&fs, VIRTIO_COMMON_Q_DESC),
		       virtio_common_read16(&fs, VIRTIO_COMMON_NUMQ));
	test_check(virtio_common_read16(&fs, VIRTIO_COMMON_Q_SIZE) == 0 &&
		       virtio_common_read16(&fs, VIRTIO_COMMON_Q_ENABLE) == 0 &&
		       virtio_common_read32(&fs, VIRTIO_COMMON_Q_DESC) == 0 &&
		       virtio_common_read16(&fs, VIRTIO_COMMON_NUMQ) == 2,
		   "queue 2 does not exist", "size %u enable %u num_queues %u",
		   virtio_common_read16(&fs, VIRTIO_COMMON_Q_SIZE),
		   virtio_common_read16(&fs, VIRTIO_COMMON_Q_ENABLE),
		   virtio_common_read16(&fs, VIRTIO_COMMON_NUMQ));
	offered = virtio_device_features(&fs);
	console_printf("features offered %lx\n", offered);
	test_check(!(offered & (VIRTIO_BIT(VIRTIO_FS_F_NOTIFICATION) | VIRTIO_BIT(26))),
		   "no notification queue nor LOG_ALL offered", "%lx", offered);
	{
		static const uint64_t wrong[] = {
		    VIRTIO_BIT(VIRTIO_FS_F_NOTIFICATION), /* not offered */
		    VIRTIO_BIT(26),			  /* LOG_ALL: virtiofsd's, masked */
		    VIRTIO_BIT(63), 0,			  /* without VERSION_1 */
		};

		for (unsigned i = 0; i < ARRAY_SIZE(wrong); i++) {
			uint64_t f = wrong[i] | (i < 3 ? VIRTIO_BIT(VIRTIO_F_VERSION_1) : 0);

			virtio_common_write32(&fs, VIRTIO_COMMON_GFSELECT, 0);
			virtio_common_write32(&fs, VIRTIO_COMMON_GF, (uint32_t)f);
			virtio_common_write32(&fs, VIRTIO_COMMON_GFSELECT, 1);
			virtio_common_write32(&fs, VIRTIO_COMMON_GF, (uint32_t)(f >> 32));
			virtio_set_status(&fs, virtio_status(&fs) | VIRTIO_STATUS_FEATURES_OK);
			console_printf("FEATURES_OK with %lx: status %x\n", f, virtio_status(&fs));
			test_check(!(virtio_status(&fs) & VIRTIO_STATUS_FEATURES_OK),
				   "FEATURES_OK refused", "with %lx", f);
		}
	}
	/* ... and DRIVER_OK without FEATURES_OK */
	virtio_setup_queue(&fs, 0, FS_QSIZE, 0, 0);
	virtio_setup_queue(&fs, 1, FS_QSIZE, 0, 0);
	driver_ok_refused("DRIVER_OK without FEATURES_OK");

	/* queue size past the maximum: ignored; 100: NEEDS_RESET at DRIVER_OK */
	virtio_reset(&fs);
	virtio_set_status(&fs, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_negotiate(&fs, 0);
	virtio_common_write16(&fs, VIRTIO_COMMON_Q_SELECT, 1);
	size_max = virtio_common_read16(&fs, VIRTIO_COMMON_Q_SIZE);
	virtio_common_write16(&fs, VIRTIO_COMMON_Q_SIZE, 0x8000);
	console_printf("queue size 0x8000: reads back %u (max %u)\n",
		       virtio_common_read16(&fs, VIRTIO_COMMON_Q_SIZE), size_max);
	test_check(virtio_common_read16(&fs, VIRTIO_COMMON_Q_SIZE) == size_max,
		   "queue size past the maximum ignored", "reads back %u",
		   virtio_common_read16(&fs, VIRTIO_COMMON_Q_SIZE));
	virtio_setup_queue(&fs, 0, FS_QSIZE, 0, 0);
	virtio_setup_queue(&fs, 1, 100, 1, 0);
	driver_ok_refused("DRIVER_OK with a 100-entry queue");

	/* a ring in MMIO (the IOAPIC page): the core refuses to map it */
	virtio_reset(&fs);
	virtio_set_status(&fs, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_negotiate(&fs, 0);
	virtio_setup_queue(&fs, 0, FS_QSIZE, 0, 0);
	virtio_setup_queue_rings(&fs, 1, FS_QSIZE, 0, 0);
	virtio_common_write32(&fs, VIRTIO_COMMON_Q_USED, 0xfec00000u);
	virtio_common_write32(&fs, VIRTIO_COMMON_Q_USED + 4, 0);
	virtio_common_write16(&fs, VIRTIO_COMMON_Q_ENABLE, 1);
	virtio_set_status(&fs, virtio_status(&fs) | VIRTIO_STATUS_DRIVER_OK);
	{
		struct stopwatch sw;

		stopwatch_start(&sw);
		while (!virtio_needs_reset(&fs) && stopwatch_us(&sw) < 2000000)
			;
	}
	console_printf("used ring in the IOAPIC page: status %x\n", virtio_status(&fs));
	test_check(virtio_needs_reset(&fs), "used ring in MMIO", "status %x: not NEEDS_RESET",
		   virtio_status(&fs));
	fs_recover("used ring in MMIO");
	fs_probe("used ring in MMIO");
}

int guest_main(const struct boot_info *info)
{
	char attack[16] = "", tag[VIRTIO_FS_TAG_SIZE + 1] = "";

	console_printf("isola hostile guest virtio_fs\n");
	dma_init(info);
	cmdline_get(info->cmdline, "attack", attack, sizeof(attack));
	cmdline_get(info->cmdline, "tag", tag, sizeof(tag));
	if (virtio_find(VIRTIO_ID_FS, &fs, 1) != 1)
		test_abort("virtio-fs device", "none on bus 0");
	req = dma_alloc(FS_REQ_BYTES, 4096);
	rep = dma_alloc(FS_REP_BYTES + FS_GUARD, 4096);
	if (!strcmp(attack, "chain"))
		big = dma_alloc(FS_BIG, 4096);
	if (!strcmp(attack, "config")) {
		attack_config(tag);
	} else {
		fs_setup();
		if (!strcmp(attack, "fuse"))
			attack_fuse();
		else if (!strcmp(attack, "chain"))
			attack_chain();
		else
			test_abort("attack=", "fuse, chain or config, not '%s'", attack);
	}
	console_printf("virtio_fs: %u recoveries, %u reads outside the share\n", recoveries,
		       outside_reads);
	test_pass("virtio_fs attack=%s", attack);
	return 0;
}
