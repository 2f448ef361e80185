// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "lib/evloop.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>

/* An id is (generation << EVLOOP_ID_SLOT_BITS) | slot, with a generation
 * of 1..EVLOOP_GEN_MAX: positive, and new each time a slot is reused. */
#define EVLOOP_ID_SLOT_BITS 8
#define EVLOOP_GEN_MAX ((uint32_t)INT_MAX >> EVLOOP_ID_SLOT_BITS)
#define EVLOOP_NS_PER_MS 1000000ull

_Static_assert(EVLOOP_MAX_FDS <= 1 << EVLOOP_ID_SLOT_BITS, "fd slots fit an id's slot bits");
_Static_assert(EVLOOP_MAX_TIMERS <= 1 << EVLOOP_ID_SLOT_BITS, "timer slots fit an id's slot bits");

static uint32_t next_gen(uint32_t gen)
{
	return gen % EVLOOP_GEN_MAX + 1;
}

static int make_id(unsigned slot, uint32_t gen)
{
	return (int)(gen << EVLOOP_ID_SLOT_BITS | slot);
}

/* The slot an id points at (its generation is checked by the caller), or -1. */
static int id_slot(int id, unsigned capacity)
{
	unsigned slot = (unsigned)id & ((1u << EVLOOP_ID_SLOT_BITS) - 1);

	if (id <= 0 || slot >= capacity)
		return -1;
	return (int)slot;
}

static struct evloop_fd *find_fd(struct evloop *loop, int id)
{
	int slot = id_slot(id, EVLOOP_MAX_FDS);
	struct evloop_fd *reg;

	if (slot < 0)
		return NULL;
	reg = &loop->fds[slot];
	if (!reg->in_use || reg->gen != (uint32_t)id >> EVLOOP_ID_SLOT_BITS)
		return NULL;
	return reg;
}

static struct evloop_timer *find_timer(struct evloop *loop, int id)
{
	int slot = id_slot(id, EVLOOP_MAX_TIMERS);
	struct evloop_timer *t;

	if (slot < 0)
		return NULL;
	t = &loop->timers[slot];
	if (!t->in_use || t->gen != (uint32_t)id >> EVLOOP_ID_SLOT_BITS)
		return NULL;
	return t;
}

void evloop_init(struct evloop *loop)
{
	memset(loop, 0, sizeof(*loop));
}

int evloop_add_fd(struct evloop *loop, int fd, short events, int order, evloop_fd_fn fn,
		  void *opaque)
{
	if (!fn)
		return -EINVAL;
	for (unsigned slot = 0; slot < EVLOOP_MAX_FDS; slot++) {
		struct evloop_fd *reg = &loop->fds[slot];

		if (reg->in_use)
			continue;
		*reg = (struct evloop_fd){
		    .in_use = true,
		    .fd = fd,
		    .events = events,
		    .order = order,
		    .seq = ++loop->next_seq,
		    .stamp = ++loop->next_stamp,
		    .gen = next_gen(reg->gen),
		    .fn = fn,
		    .opaque = opaque,
		};
		return make_id(slot, reg->gen);
	}
	return -ENOSPC;
}

int evloop_modify_fd(struct evloop *loop, int id, int fd, short events)
{
	struct evloop_fd *reg = find_fd(loop, id);

	if (!reg)
		return -ENOENT;
	if (reg->fd != fd)
		reg->stamp = ++loop->next_stamp; /* what was polled was another file */
	reg->fd = fd;
	reg->events = events;
	return 0;
}

int evloop_remove_fd(struct evloop *loop, int id)
{
	struct evloop_fd *reg = find_fd(loop, id);

	if (!reg)
		return -ENOENT;
	reg->in_use = false; /* gen stays: the next user of the slot bumps it */
	return 0;
}

uint64_t evloop_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int evloop_add_timer_at(struct evloop *loop, uint64_t deadline_ns, uint64_t period_ns,
			evloop_timer_fn fn, void *opaque)
{
	if (!fn)
		return -EINVAL;
	for (unsigned slot = 0; slot < EVLOOP_MAX_TIMERS; slot++) {
		struct evloop_timer *t = &loop->timers[slot];

		if (t->in_use)
			continue;
		*t = (struct evloop_timer){
		    .in_use = true,
		    .deadline_ns = deadline_ns,
		    .period_ns = period_ns,
		    .seq = ++loop->next_seq,
		    .gen = next_gen(t->gen),
		    .fn = fn,
		    .opaque = opaque,
		};
		return make_id(slot, t->gen);
	}
	return -ENOSPC;
}

int evloop_add_timer(struct evloop *loop, uint64_t delay_ns, uint64_t period_ns, evloop_timer_fn fn,
		     void *opaque)
{
	uint64_t now = evloop_now_ns();

	return evloop_add_timer_at(loop, delay_ns > UINT64_MAX - now ? UINT64_MAX : now + delay_ns,
				   period_ns, fn, opaque);
}

int evloop_cancel_timer(struct evloop *loop, int id)
{
	struct evloop_timer *t = find_timer(loop, id);

	if (!t)
		return -ENOENT;
	t->in_use = false;
	t->due = false; /* cancelled in a callback: not called later in the round */
	return 0;
}

void evloop_stop(struct evloop *loop)
{
	loop->stop_requested = true;
}

/* Fill loop->polled in dispatch order: ascending order, then registration. */
static unsigned build_poll_set(struct evloop *loop)
{
	unsigned n = 0;

	for (unsigned slot = 0; slot < EVLOOP_MAX_FDS; slot++) {
		const struct evloop_fd *reg = &loop->fds[slot];
		unsigned at;

		if (!reg->in_use || reg->fd < 0 || !reg->events)
			continue;
		/* insertion sort: at most EVLOOP_MAX_FDS entries */
		for (at = n; at > 0; at--) {
			const struct evloop_fd *prev = &loop->fds[loop->polled_slot[at - 1]];

			if (prev->order < reg->order ||
			    (prev->order == reg->order && prev->seq < reg->seq))
				break;
			loop->polled[at] = loop->polled[at - 1];
			loop->polled_slot[at] = loop->polled_slot[at - 1];
			loop->polled_stamp[at] = loop->polled_stamp[at - 1];
		}
		loop->polled[at] = (struct pollfd){.fd = reg->fd, .events = reg->events};
		loop->polled_slot[at] = (uint8_t)slot;
		loop->polled_stamp[at] = reg->stamp;
		n++;
	}
	return n;
}

/* How long poll may sleep: until the nearest timer (rounded up to whole
 * ms, so it never wakes early), no longer than max_wait_ms (-1: no limit). */
static int poll_timeout_ms(const struct evloop *loop, int max_wait_ms)
{
	uint64_t nearest = UINT64_MAX, now, wait_ms;
	bool any = false;

	for (unsigned slot = 0; slot < EVLOOP_MAX_TIMERS; slot++) {
		const struct evloop_timer *t = &loop->timers[slot];

		if (t->in_use && t->deadline_ns <= nearest) {
			nearest = t->deadline_ns;
			any = true;
		}
	}
	if (!any)
		return max_wait_ms;
	now = evloop_now_ns();
	if (nearest <= now)
		return 0;
	wait_ms = (nearest - now + EVLOOP_NS_PER_MS - 1) / EVLOOP_NS_PER_MS;
	if (max_wait_ms >= 0 && wait_ms > (uint64_t)max_wait_ms)
		return max_wait_ms;
	return wait_ms > INT_MAX ? INT_MAX : (int)wait_ms;
}

static int dispatch_fds(struct evloop *loop, unsigned n)
{
	int called = 0;

	for (unsigned i = 0; i < n && !loop->stop_requested; i++) {
		const struct evloop_fd *reg = &loop->fds[loop->polled_slot[i]];
		short revents = loop->polled[i].revents;

		/* removed, or re-pointed at another fd, by an earlier callback */
		if (!revents || !reg->in_use || reg->stamp != loop->polled_stamp[i])
			continue;
		/* events narrowed by an earlier callback: report only what it
		 * still asks for (errors and hang-ups always) */
		revents &= reg->events | POLLERR | POLLHUP | POLLNVAL;
		if (!reg->events || !revents)
			continue;
		reg->fn(reg->opaque, reg->fd, revents);
		called++;
	}
	return called;
}

/* The due timers, earliest deadline first.  A timer armed by a callback
 * waits for the next round even if already due: a zero-delay timer that
 * re-arms itself cannot starve the fds. */
static int dispatch_timers(struct evloop *loop)
{
	uint64_t now = evloop_now_ns();
	int called = 0;

	for (unsigned slot = 0; slot < EVLOOP_MAX_TIMERS; slot++) {
		struct evloop_timer *t = &loop->timers[slot];

		t->due = t->in_use && t->deadline_ns <= now;
	}
	while (!loop->stop_requested) {
		struct evloop_timer *next = NULL;

		for (unsigned slot = 0; slot < EVLOOP_MAX_TIMERS; slot++) {
			struct evloop_timer *t = &loop->timers[slot];

			if (t->due && (!next || t->deadline_ns < next->deadline_ns ||
				       (t->deadline_ns == next->deadline_ns && t->seq < next->seq)))
				next = t;
		}
		if (!next)
			break;
		next->due = false;
		if (next->period_ns) {
			next->deadline_ns += next->period_ns;
			if (next->deadline_ns <= now)
				next->deadline_ns = now + next->period_ns; /* skip missed ticks */
		} else {
			next->in_use = false; /* before the call: it may re-arm */
		}
		next->fn(next->opaque);
		called++;
	}
	return called;
}

int evloop_run_once(struct evloop *loop, int max_wait_ms)
{
	unsigned n;
	int timeout, ready, called;

	if (loop->dispatching)
		return -EBUSY;
	loop->stop_requested = false;
	n = build_poll_set(loop);
	timeout = poll_timeout_ms(loop, max_wait_ms);
	if (!n && timeout < 0)
		return -EDEADLK;
	ready = poll(loop->polled, n, timeout);
	if (ready < 0) {
		if (errno != EINTR)
			return -errno;
		ready = 0;
	}
	loop->dispatching = true;
	called = ready ? dispatch_fds(loop, n) : 0;
	called += dispatch_timers(loop);
	loop->dispatching = false;
	return called;
}

int evloop_run_while(struct evloop *loop, bool (*keep_going)(void *opaque), void *opaque)
{
	int ret = 0;

	while (!keep_going || keep_going(opaque)) {
		ret = evloop_run_once(loop, -1);
		if (ret < 0 || loop->stop_requested)
			break;
	}
	loop->stop_requested = false;
	return ret < 0 ? ret : 0;
}

int evloop_run(struct evloop *loop)
{
	return evloop_run_while(loop, NULL, NULL);
}
