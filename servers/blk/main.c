// SPDX-License-Identifier: MIT
/*
 * isola-blk: a raw disk image served as a virtio-blk device (virtio 1.2
 * §5.2) over vhost-user, sandboxed.  Its options and the hooks
 * lib/server_main.c calls around the sandbox: open the image (before it),
 * set up io_uring (inside it, before the lock), keep the image and ring
 * fds, serve.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/server_main.h"
#include "servers/blk/blk.h"

#define BLK_STRINGIFY(x) #x
#define BLK_STRING(x) BLK_STRINGIFY(x)

/* The options, then the device blk_open() fills (it clears struct blk). */
struct blk_server {
	const char *image, *id;
	const char *rate; /* --rate SPEC, NULL none */
	unsigned queues, poll_us;
	bool readonly;
	struct blk blk;
};

static int parse_number(const struct server_option *option, const char *text, long min, long max,
			unsigned *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(text, &end, 10);
	if (errno || *end || !*text || n < min || n > max) {
		log_error("%s %s: want a number from %ld to %ld", option->name, text, min, max);
		return -EINVAL;
	}
	*out = (unsigned)n;
	return 0;
}

static int blk_parse_image(void *device, const struct server_option *option, const char *value)
{
	(void)option;
	((struct blk_server *)device)->image = value;
	return 0;
}

static int blk_parse_readonly(void *device, const struct server_option *option, const char *value)
{
	(void)option;
	(void)value;
	((struct blk_server *)device)->readonly = true;
	return 0;
}

static int blk_parse_id(void *device, const struct server_option *option, const char *value)
{
	if (!*value || strlen(value) > VIRTIO_BLK_ID_BYTES) {
		log_error("%s %s: an id is 1 to 20 bytes (virtio-blk GET_ID)", option->name, value);
		return -EINVAL;
	}
	((struct blk_server *)device)->id = value;
	return 0;
}

static int blk_parse_queues(void *device, const struct server_option *option, const char *value)
{
	return parse_number(option, value, 1, VHOST_USER_BACKEND_MAX_QUEUES,
			    &((struct blk_server *)device)->queues);
}

static int blk_parse_poll_us(void *device, const struct server_option *option, const char *value)
{
	return parse_number(option, value, 0, BLK_POLL_US_MAX,
			    &((struct blk_server *)device)->poll_us);
}

static int blk_parse_rate(void *device, const struct server_option *option, const char *value)
{
	struct rate_limiter rl;
	char err[256];

	if (rate_limiter_parse(value, &rl, err, sizeof(err)) < 0) {
		log_error("%s %s: %s", option->name, value, err);
		return -EINVAL;
	}
	((struct blk_server *)device)->rate = value;
	return 0;
}

static int blk_create(void *device, char *err, size_t errlen)
{
	struct blk_server *s = device;
	int ret = blk_open(&s->blk, s->image, s->readonly, s->id, s->queues, err, errlen);

	s->blk.poll_max_ns = s->poll_us * 1000u;
	if (!ret && s->rate)
		ret = blk_set_rate(&s->blk, s->rate, err, errlen);
	return ret;
}

static int blk_prepare(void *device, struct server_backend *backend, char *err, size_t errlen)
{
	struct blk_server *s = device;

	/* blk.c's ops take the struct blk */
	backend->ops = &s->blk.ops;
	backend->device = &s->blk;
	return blk_setup_rings(&s->blk, err, errlen);
}

static unsigned blk_keep_fds(void *device, int *fds, unsigned max)
{
	return blk_fds(&((struct blk_server *)device)->blk, fds, max);
}

static void blk_started(void *device)
{
	struct blk_server *s = device;

	log_info("serving %s (%llu sectors%s, %u queue%s%s%s)", s->image,
		 (unsigned long long)s->blk.capacity, s->readonly ? ", read-only" : "",
		 s->blk.num_queues, s->blk.num_queues == 1 ? "" : "s",
		 s->blk.limited ? ", rate " : "", s->blk.limited ? s->rate : "");
}

static void blk_destroy(void *device)
{
	blk_close(&((struct blk_server *)device)->blk);
}

static const struct server_option blk_options[] = {
    {"--image", "IMG", true, "the raw image file or block device", blk_parse_image},
    {"--readonly", NULL, false, "open it read-only; writes fail with IOERR", blk_parse_readonly},
    {"--id", "NAME", false,
     "the GET_ID serial, up to 20 bytes (default: the\n"
     "image's file name)",
     blk_parse_id},
    {"--queues", "N", false, "request queues, 1 to 16 (default 1)", blk_parse_queues},
    {"--poll-us", "N", false,
     "a queue's thread busy-polls its ring and its I/O\n"
     "for up to N us (adaptive) before it sleeps;\n"
     "0 never (default " BLK_STRING(BLK_POLL_US_DEFAULT) "; costs CPU for latency)",
     blk_parse_poll_us},
    {"--rate", "SPEC", false,
     "limit the disk: bytes=SIZE:REFILL_MS[:BURST],ops=...\n"
     "(Firecracker's token buckets; every request is 1 op,\n"
     "reads and writes their data bytes; a request\n"
     "over the limit waits in the ring; default none)",
     blk_parse_rate},
    {0},
};

static const struct server_def blk_server_def = {
    .name = "isola-blk",
    .description = "A raw disk image served as a virtio-blk device (virtio 1.2 5.2) by a\n"
		   "vhost-user back-end (QEMU's vhost-user-blk-pci, the isola core, ...).\n",
    .options = blk_options,
    .allowlist = &blk_sandbox_allowlist,
    .create = blk_create,
    .prepare = blk_prepare,
    .keep_fds = blk_keep_fds,
    .started = blk_started,
    .destroy = blk_destroy,
};

int main(int argc, char **argv)
{
	static struct blk_server server = {.queues = 1, .poll_us = BLK_POLL_US_DEFAULT};

	return server_main(argc, argv, &blk_server_def, &server);
}
