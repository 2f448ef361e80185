/* SPDX-License-Identifier: MIT */
/*
 * A small event loop on poll(2): file descriptors and CLOCK_MONOTONIC timers
 * with callbacks, in a fixed-capacity table the caller owns.
 *
 * poll, not epoll: the core's threads run under seccomp allowlists
 * (core/seccomp.c) that already allow poll, and nothing here allocates, so
 * a sandboxed thread can register and dispatch without malloc or new calls
 * (timers read the clock through the vDSO).
 *
 * One round (evloop_run_once): poll every registered fd with the wait the
 * nearest timer allows, then call the fd callbacks whose fds are ready, in
 * ascending `order` (equal orders: registration order), then the timers that
 * are due, earliest deadline first.  Callbacks may add, change and remove
 * registrations, their own included: an fd removed or given a different fd
 * during the round is not reported for what was polled before; one added
 * during the round is polled from the next round on; a timer is never
 * called before its deadline.
 *
 * Registrations are named by an id (> 0) that a removal or a one-shot
 * timer's firing retires: a stale id gets -ENOENT, never someone else's slot.
 * Not thread-safe: one thread owns the loop.
 */
#ifndef ISOLA_LIB_EVLOOP_H
#define ISOLA_LIB_EVLOOP_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#define EVLOOP_MAX_FDS 96
#define EVLOOP_MAX_TIMERS 16

/* revents as poll(2) reported them (masked by the registration's events,
 * plus POLLERR/POLLHUP/POLLNVAL). */
typedef void (*evloop_fd_fn)(void *opaque, int fd, short revents);
typedef void (*evloop_timer_fn)(void *opaque);

struct evloop_fd {
	bool in_use;
	int fd;	      /* < 0: kept but not polled */
	short events; /* 0: kept but not polled (poll would still report hang-ups) */
	int order;
	uint32_t seq;	/* registration order, for equal orders */
	uint32_t stamp; /* changes with the fd: what a round's poll result belongs to */
	uint32_t gen;	/* the id's generation */
	evloop_fd_fn fn;
	void *opaque;
};

struct evloop_timer {
	bool in_use;
	bool due; /* in this round's batch */
	uint64_t deadline_ns, period_ns;
	uint32_t seq; /* equal deadlines: the older timer first */
	uint32_t gen;
	evloop_timer_fn fn;
	void *opaque;
};

struct evloop {
	struct evloop_fd fds[EVLOOP_MAX_FDS];
	struct evloop_timer timers[EVLOOP_MAX_TIMERS];
	uint32_t next_seq, next_stamp;
	bool dispatching, stop_requested;
	/* one round's poll set, and which registration each entry was */
	struct pollfd polled[EVLOOP_MAX_FDS];
	uint8_t polled_slot[EVLOOP_MAX_FDS];
	uint32_t polled_stamp[EVLOOP_MAX_FDS];
};

void evloop_init(struct evloop *loop);

/* Watch fd for events (POLLIN, ...); order: lower is called first within a
 * round.  fd < 0 or events 0 register without polling (evloop_modify_fd
 * later).  Returns the id (> 0), -EINVAL (no fn) or -ENOSPC. */
int evloop_add_fd(struct evloop *loop, int fd, short events, int order, evloop_fd_fn fn,
		  void *opaque);
/* Point registration id at another fd (a reconnected socket) and/or events.
 * An event already polled on the old fd is not reported.  0 or -ENOENT. */
int evloop_modify_fd(struct evloop *loop, int id, int fd, short events);
/* 0 or -ENOENT.  The fd is not closed. */
int evloop_remove_fd(struct evloop *loop, int id);

/* CLOCK_MONOTONIC now, in ns: the timers' clock. */
uint64_t evloop_now_ns(void);
/* Call fn after delay_ns, then every period_ns (0: once; a periodic timer
 * that falls behind skips the ticks it missed rather than bursting).
 * Returns the id (> 0), -EINVAL or -ENOSPC. */
int evloop_add_timer(struct evloop *loop, uint64_t delay_ns, uint64_t period_ns, evloop_timer_fn fn,
		     void *opaque);
/* The same with an absolute deadline on evloop_now_ns()'s clock. */
int evloop_add_timer_at(struct evloop *loop, uint64_t deadline_ns, uint64_t period_ns,
			evloop_timer_fn fn, void *opaque);
/* 0, or -ENOENT if the timer already fired (one-shot) or was cancelled. */
int evloop_cancel_timer(struct evloop *loop, int id);

/* One round: wait up to max_wait_ms (-1: until something happens; 0: do not
 * block), then dispatch.  Returns the number of callbacks called, or -errno:
 * -EBUSY from inside a callback, -EDEADLK if nothing could ever wake it
 * (no fd polled, no timer, no limit), poll's error (EINTR is a round with
 * no fd ready). */
int evloop_run_once(struct evloop *loop, int max_wait_ms);
/* Rounds until evloop_stop(); 0 or -errno from a round. */
int evloop_run(struct evloop *loop);
/* Rounds while keep_going(opaque) (checked before each) and not stopped. */
int evloop_run_while(struct evloop *loop, bool (*keep_going)(void *opaque), void *opaque);
/* From a callback: no further callback runs in this round, and evloop_run
 * returns after it.  Each evloop_run and evloop_run_once starts unstopped. */
void evloop_stop(struct evloop *loop);

#endif
