// SPDX-License-Identifier: MIT
/* Unit tests for lib/evloop.c: fd dispatch, changes made by callbacks while
 * the loop dispatches, timers, capacity and stopping. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "lib/evloop.h"

#define MS 1000000ull

/* A pipe whose read end is registered; the test makes it ready by writing. */
struct watched {
	int pipe[2];
	int id;
	unsigned calls;
	int last_fd;
	short last_revents;
	/* what the callback does to the loop besides recording */
	struct evloop *loop;
	int remove_id;	/* > 0: remove this registration */
	int repoint_id; /* > 0: point this registration at repoint_fd */
	int repoint_fd;
	struct watched *add; /* add this one's read end */
	bool stop;
	unsigned *sequence; /* appends `mark` here: the order of calls */
	unsigned *sequence_len;
	unsigned mark;
};

static void watched_open(struct watched *w)
{
	memset(w, 0, sizeof(*w));
	assert_int_equal(pipe2(w->pipe, O_CLOEXEC | O_NONBLOCK), 0);
	w->last_fd = -1;
}

static void watched_close(struct watched *w)
{
	close(w->pipe[0]);
	if (w->pipe[1] >= 0)
		close(w->pipe[1]);
}

static void make_ready(struct watched *w)
{
	assert_int_equal(write(w->pipe[1], "x", 1), 1);
}

static void on_fd(void *opaque, int fd, short revents)
{
	struct watched *w = opaque;

	w->calls++;
	w->last_fd = fd;
	w->last_revents = revents;
	if (w->sequence)
		w->sequence[(*w->sequence_len)++] = w->mark;
	if (w->remove_id > 0)
		assert_int_equal(evloop_remove_fd(w->loop, w->remove_id), 0);
	if (w->repoint_id > 0)
		assert_int_equal(evloop_modify_fd(w->loop, w->repoint_id, w->repoint_fd, POLLIN),
				 0);
	if (w->add)
		w->add->id = evloop_add_fd(w->loop, w->add->pipe[0], POLLIN, 0, on_fd, w->add);
	if (w->stop)
		evloop_stop(w->loop);
}

static int add_watched(struct evloop *loop, struct watched *w, int order)
{
	w->loop = loop;
	w->id = evloop_add_fd(loop, w->pipe[0], POLLIN, order, on_fd, w);
	assert_true(w->id > 0);
	return w->id;
}

static void test_fd_readiness(void **state)
{
	struct evloop loop;
	struct watched a, b;

	(void)state;
	evloop_init(&loop);
	watched_open(&a);
	watched_open(&b);
	add_watched(&loop, &a, 0);
	add_watched(&loop, &b, 0);

	assert_int_equal(evloop_run_once(&loop, 0), 0); /* nothing ready */
	make_ready(&b);
	assert_int_equal(evloop_run_once(&loop, 1000), 1);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.last_fd, b.pipe[0]);
	assert_int_equal(b.last_revents, POLLIN);

	/* the writer hangs up: POLLHUP is reported though only POLLIN was asked */
	close(a.pipe[1]);
	a.pipe[1] = -1;
	assert_int_equal(evloop_run_once(&loop, 0), 2); /* b is still readable */
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.last_revents, POLLHUP);

	/* events 0 keeps the registration but polls nothing */
	assert_int_equal(evloop_modify_fd(&loop, a.id, a.pipe[0], 0), 0);
	assert_int_equal(evloop_modify_fd(&loop, b.id, b.pipe[0], 0), 0);
	assert_int_equal(evloop_run_once(&loop, 0), 0);
	assert_int_equal(evloop_modify_fd(&loop, b.id, b.pipe[0], POLLIN), 0);
	assert_int_equal(evloop_run_once(&loop, 0), 1);
	assert_int_equal(b.calls, 3);
	watched_close(&a);
	watched_close(&b);
}

static void test_dispatch_order(void **state)
{
	struct evloop loop;
	struct watched w[3];
	unsigned sequence[8], len = 0;
	const int orders[3] = {2, 0, 1};

	(void)state;
	evloop_init(&loop);
	for (unsigned i = 0; i < 3; i++) {
		watched_open(&w[i]);
		add_watched(&loop, &w[i], orders[i]);
		w[i].sequence = sequence;
		w[i].sequence_len = &len;
		w[i].mark = i;
		make_ready(&w[i]);
	}
	assert_int_equal(evloop_run_once(&loop, 0), 3);
	assert_int_equal(len, 3);
	assert_int_equal(sequence[0], 1); /* order 0 */
	assert_int_equal(sequence[1], 2); /* order 1 */
	assert_int_equal(sequence[2], 0); /* order 2 */
	for (unsigned i = 0; i < 3; i++)
		watched_close(&w[i]);
}

static void test_remove_own_in_callback(void **state)
{
	struct evloop loop;
	struct watched a;

	(void)state;
	evloop_init(&loop);
	watched_open(&a);
	add_watched(&loop, &a, 0);
	a.remove_id = a.id;
	make_ready(&a);
	assert_int_equal(evloop_run_once(&loop, 0), 1);
	a.remove_id = 0;
	assert_int_equal(evloop_run_once(&loop, 0), 0); /* still readable, not watched */
	assert_int_equal(a.calls, 1);
	assert_int_equal(evloop_remove_fd(&loop, a.id), -ENOENT);
	assert_int_equal(evloop_modify_fd(&loop, a.id, a.pipe[0], POLLIN), -ENOENT);
	watched_close(&a);
}

static void test_remove_other_in_callback(void **state)
{
	struct evloop loop;
	struct watched a, b;

	(void)state;
	evloop_init(&loop);
	watched_open(&a);
	watched_open(&b);
	add_watched(&loop, &a, 0);
	add_watched(&loop, &b, 1);
	a.remove_id = b.id;
	make_ready(&a);
	make_ready(&b);
	/* b was polled ready in the same round: its event must be dropped */
	assert_int_equal(evloop_run_once(&loop, 0), 1);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 0);

	/* a new registration in b's old slot is not b's event either */
	a.remove_id = 0;
	watched_close(&b);
	watched_open(&b);
	add_watched(&loop, &b, 1);
	assert_int_equal(evloop_run_once(&loop, 0), 1); /* a only: b's new pipe is empty */
	assert_int_equal(b.calls, 0);
	watched_close(&a);
	watched_close(&b);
}

/* A reconnected socket: the event polled on the old fd is not reported. */
static void test_repoint_other_in_callback(void **state)
{
	struct evloop loop;
	struct watched a, b, fresh;

	(void)state;
	evloop_init(&loop);
	watched_open(&a);
	watched_open(&b);
	watched_open(&fresh);
	add_watched(&loop, &a, 0);
	add_watched(&loop, &b, 1);
	a.repoint_id = b.id;
	a.repoint_fd = fresh.pipe[0];
	make_ready(&a);
	make_ready(&b);
	assert_int_equal(evloop_run_once(&loop, 0), 1);
	assert_int_equal(b.calls, 0);
	a.repoint_id = 0;
	make_ready(&fresh);
	assert_int_equal(evloop_run_once(&loop, 0), 2);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.last_fd, fresh.pipe[0]);
	watched_close(&a);
	watched_close(&b);
	watched_close(&fresh);
}

static void test_add_in_callback(void **state)
{
	struct evloop loop;
	struct watched a, c;

	(void)state;
	evloop_init(&loop);
	watched_open(&a);
	watched_open(&c);
	add_watched(&loop, &a, 0);
	c.loop = &loop;
	a.add = &c;
	make_ready(&a);
	make_ready(&c);
	/* added during the round: polled from the next round on */
	assert_int_equal(evloop_run_once(&loop, 0), 1);
	assert_true(c.id > 0);
	assert_int_equal(c.calls, 0);
	a.add = NULL;
	assert_int_equal(evloop_run_once(&loop, 0), 2);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.last_fd, c.pipe[0]);
	watched_close(&a);
	watched_close(&c);
}

struct ticker {
	struct evloop *loop;
	uint64_t deadline_ns; /* one-shot: when it was due */
	uint64_t fired_ns[8];
	unsigned fired;
	unsigned stop_after; /* periodic: cancel itself (or stop the loop) after this many */
	int id, cancel_id;
	bool stop_loop;
	unsigned *sequence, *sequence_len, mark;
};

static void on_tick(void *opaque)
{
	struct ticker *t = opaque;

	assert_true(t->fired < 8);
	t->fired_ns[t->fired++] = evloop_now_ns();
	if (t->sequence)
		t->sequence[(*t->sequence_len)++] = t->mark;
	if (t->cancel_id > 0)
		assert_int_equal(evloop_cancel_timer(t->loop, t->cancel_id), 0);
	if (t->stop_after && t->fired == t->stop_after) {
		if (t->stop_loop)
			evloop_stop(t->loop);
		else
			assert_int_equal(evloop_cancel_timer(t->loop, t->id), 0);
	}
}

static void test_timers_in_deadline_order(void **state)
{
	struct evloop loop;
	struct ticker t[3] = {0};
	const uint64_t delay_ms[3] = {30, 10, 20};
	unsigned sequence[8], len = 0;
	uint64_t start;

	(void)state;
	evloop_init(&loop);
	start = evloop_now_ns();
	for (unsigned i = 0; i < 3; i++) {
		t[i] = (struct ticker){
		    .loop = &loop, .sequence = sequence, .sequence_len = &len, .mark = i};
		t[i].id = evloop_add_timer_at(&loop, start + delay_ms[i] * MS, 0, on_tick, &t[i]);
		t[i].deadline_ns = start + delay_ms[i] * MS;
		assert_true(t[i].id > 0);
	}
	/* no fd at all: the timers alone bound the wait */
	for (int round = 0; round < 100 && len < 3; round++)
		assert_true(evloop_run_once(&loop, -1) >= 0);
	assert_int_equal(len, 3);
	assert_int_equal(sequence[0], 1);
	assert_int_equal(sequence[1], 2);
	assert_int_equal(sequence[2], 0);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(t[i].fired, 1);
		assert_true(t[i].fired_ns[0] >= t[i].deadline_ns); /* never early */
		/* one-shot: retired after firing */
		assert_int_equal(evloop_cancel_timer(&loop, t[i].id), -ENOENT);
	}
	/* nothing left to wake the loop */
	assert_int_equal(evloop_run_once(&loop, -1), -EDEADLK);
}

/* Woken before the deadline (here: by not blocking at all), a timer waits. */
static void test_timer_not_early(void **state)
{
	struct evloop loop;
	struct ticker t = {0};
	uint64_t deadline;

	(void)state;
	evloop_init(&loop);
	t.loop = &loop;
	deadline = evloop_now_ns() + 5 * MS;
	assert_true(evloop_add_timer_at(&loop, deadline, 0, on_tick, &t) > 0);
	while (!t.fired) {
		assert_true(evloop_run_once(&loop, 0) >= 0);
		if (!t.fired)
			assert_true(evloop_now_ns() < deadline + 100 * MS); /* no hang */
	}
	assert_true(t.fired_ns[0] >= deadline);
}

static void test_periodic_timer(void **state)
{
	struct evloop loop;
	struct ticker t = {0};
	uint64_t start;

	(void)state;
	evloop_init(&loop);
	t.loop = &loop;
	t.stop_after = 3; /* then it cancels itself */
	start = evloop_now_ns();
	t.id = evloop_add_timer(&loop, 5 * MS, 5 * MS, on_tick, &t);
	assert_true(t.id > 0);
	for (int round = 0; round < 100 && t.fired < 3; round++)
		assert_true(evloop_run_once(&loop, 1000) >= 0);
	assert_int_equal(t.fired, 3);
	for (unsigned k = 0; k < 3; k++)
		assert_true(t.fired_ns[k] >= start + (k + 1) * 5 * MS);
	assert_int_equal(evloop_cancel_timer(&loop, t.id), -ENOENT);
	assert_int_equal(evloop_run_once(&loop, 20), 0);
	assert_int_equal(t.fired, 3);
}

static void test_cancel(void **state)
{
	struct evloop loop;
	struct ticker first = {0}, second = {0};
	uint64_t now;
	int id;

	(void)state;
	evloop_init(&loop);
	first.loop = second.loop = &loop;
	id = evloop_add_timer(&loop, 1 * MS, 0, on_tick, &first);
	assert_int_equal(evloop_cancel_timer(&loop, id), 0);
	assert_int_equal(evloop_cancel_timer(&loop, id), -ENOENT);
	assert_int_equal(evloop_run_once(&loop, 20), 0);
	assert_int_equal(first.fired, 0);

	/* both due in the same round: the first cancels the second */
	now = evloop_now_ns();
	first.id = evloop_add_timer_at(&loop, now - 2, 0, on_tick, &first);
	second.id = evloop_add_timer_at(&loop, now - 1, 0, on_tick, &second);
	first.cancel_id = second.id;
	assert_int_equal(evloop_run_once(&loop, 0), 1);
	assert_int_equal(first.fired, 1);
	assert_int_equal(second.fired, 0);
}

static void test_capacity(void **state)
{
	struct evloop loop;
	struct ticker t = {0};
	int fd_ids[EVLOOP_MAX_FDS], timer_ids[EVLOOP_MAX_TIMERS], id;

	(void)state;
	evloop_init(&loop);
	for (unsigned i = 0; i < EVLOOP_MAX_FDS; i++) {
		fd_ids[i] = evloop_add_fd(&loop, -1, POLLIN, 0, on_fd, NULL);
		assert_true(fd_ids[i] > 0);
	}
	assert_int_equal(evloop_add_fd(&loop, 0, POLLIN, 0, on_fd, NULL), -ENOSPC);
	for (unsigned i = 0; i < EVLOOP_MAX_TIMERS; i++) {
		timer_ids[i] = evloop_add_timer(&loop, 1000 * MS, 0, on_tick, &t);
		assert_true(timer_ids[i] > 0);
	}
	assert_int_equal(evloop_add_timer(&loop, 1, 0, on_tick, &t), -ENOSPC);
	assert_int_equal(evloop_add_fd(&loop, 0, POLLIN, 0, NULL, NULL), -EINVAL);

	/* a freed slot is reused under a new id; the old id stays dead */
	assert_int_equal(evloop_remove_fd(&loop, fd_ids[7]), 0);
	id = evloop_add_fd(&loop, -1, POLLIN, 0, on_fd, NULL);
	assert_true(id > 0);
	assert_int_not_equal(id, fd_ids[7]);
	assert_int_equal(evloop_remove_fd(&loop, fd_ids[7]), -ENOENT);
	assert_int_equal(evloop_cancel_timer(&loop, timer_ids[3]), 0);
	id = evloop_add_timer(&loop, 1000 * MS, 0, on_tick, &t);
	assert_true(id > 0);
	assert_int_not_equal(id, timer_ids[3]);
	assert_int_equal(evloop_cancel_timer(&loop, timer_ids[3]), -ENOENT);
	/* ids that never were */
	assert_int_equal(evloop_remove_fd(&loop, 0), -ENOENT);
	assert_int_equal(evloop_remove_fd(&loop, -5), -ENOENT);
	assert_int_equal(evloop_cancel_timer(&loop, 0), -ENOENT);
}

static void test_stop(void **state)
{
	struct evloop loop;
	struct watched a, b;
	struct ticker t = {0};

	(void)state;
	evloop_init(&loop);
	/* a periodic timer stops evloop_run on its third tick */
	t.loop = &loop;
	t.stop_after = 3;
	t.stop_loop = true;
	t.id = evloop_add_timer(&loop, 1 * MS, 1 * MS, on_tick, &t);
	assert_int_equal(evloop_run(&loop), 0);
	assert_int_equal(t.fired, 3);
	assert_int_equal(evloop_cancel_timer(&loop, t.id), 0);

	/* stop from an fd callback: the rest of the round is not dispatched */
	watched_open(&a);
	watched_open(&b);
	add_watched(&loop, &a, 0);
	add_watched(&loop, &b, 1);
	a.stop = true;
	make_ready(&a);
	make_ready(&b);
	assert_int_equal(evloop_run(&loop), 0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 0);
	/* the next run starts unstopped */
	a.stop = false;
	b.stop = true;
	assert_int_equal(evloop_run(&loop), 0);
	assert_int_equal(a.calls, 2);
	assert_int_equal(b.calls, 1);
	watched_close(&a);
	watched_close(&b);
}

static bool fewer_than_two_calls(void *opaque)
{
	const struct watched *w = opaque;

	return w->calls < 2;
}

static void nested_run(void *opaque, int fd, short revents)
{
	struct evloop *loop = opaque;

	(void)fd;
	(void)revents;
	assert_int_equal(evloop_run_once(loop, 0), -EBUSY);
	evloop_stop(loop);
}

static void test_run_while_and_nesting(void **state)
{
	struct evloop loop;
	struct watched a;
	int pipe_fds[2];

	(void)state;
	evloop_init(&loop);
	watched_open(&a);
	add_watched(&loop, &a, 0);
	make_ready(&a); /* stays readable: one call per round */
	assert_int_equal(evloop_run_while(&loop, fewer_than_two_calls, &a), 0);
	assert_int_equal(a.calls, 2);
	assert_int_equal(evloop_remove_fd(&loop, a.id), 0);
	watched_close(&a);

	/* a callback cannot run the loop it is called from */
	assert_int_equal(pipe2(pipe_fds, O_CLOEXEC), 0);
	assert_int_equal(write(pipe_fds[1], "x", 1), 1);
	assert_true(evloop_add_fd(&loop, pipe_fds[0], POLLIN, 0, nested_run, &loop) > 0);
	assert_int_equal(evloop_run(&loop), 0);
	close(pipe_fds[0]);
	close(pipe_fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fd_readiness),
	    cmocka_unit_test(test_dispatch_order),
	    cmocka_unit_test(test_remove_own_in_callback),
	    cmocka_unit_test(test_remove_other_in_callback),
	    cmocka_unit_test(test_repoint_other_in_callback),
	    cmocka_unit_test(test_add_in_callback),
	    cmocka_unit_test(test_timers_in_deadline_order),
	    cmocka_unit_test(test_timer_not_early),
	    cmocka_unit_test(test_periodic_timer),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_capacity),
	    cmocka_unit_test(test_stop),
	    cmocka_unit_test(test_run_while_and_nesting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
