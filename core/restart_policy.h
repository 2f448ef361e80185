/* SPDX-License-Identifier: MIT */
/*
 * When a device's back-end is lost, whether to bring it back or give the
 * device up: a pure function of events and the time they happened, so it is
 * unit-tested with a fake clock (tests/unit/test_restart_policy.c).  The
 * device set (core/device_set.c) feeds it events and carries out its answers.
 *
 *  - restart=never: the first loss gives the device up (NEEDS_RESET).
 *  - more than `burst` losses within `window_ns`: given up (a server that
 *    dies at once on every start would otherwise spin).
 *  - `max_failed_starts` restarts in a row that did not come up: given up.
 *  - an external back-end (someone else's process) is waited for, however
 *    long: isola cannot start it, only reconnect.
 */
#ifndef ISOLA_CORE_RESTART_POLICY_H
#define ISOLA_CORE_RESTART_POLICY_H

#include <stdbool.h>
#include <stdint.h>

struct restart_policy {
	unsigned burst;
	uint64_t window_ns;
	unsigned max_failed_starts;
};

/* isola's policy: 100 deaths in 10 s, 5 failed starts in a row. */
extern const struct restart_policy restart_policy_default;

struct restart_state {
	bool restart;  /* restart=always (false: restart=never) */
	bool external; /* a back-end isola does not start */
	bool pending;  /* lost; a try is due */
	bool given_up;
	uint64_t lost_ns; /* when the loss was noticed */
	uint64_t window_start_ns;
	unsigned deaths_in_window;
	unsigned failed_starts;
	bool replacing; /* pending because of restart_on_replace, not a loss */
	uint64_t restarts, recovery_ns_total, recovery_ns_max;
	uint64_t replacements; /* restart_on_replace's that came up */
};

enum restart_decision {
	RESTART_TRY,		/* try to bring it back now (and again later if that fails) */
	RESTART_WAIT,		/* a try failed: try again later */
	RESTART_IGNORE,		/* nothing to do (already pending or given up) */
	RESTART_GIVE_UP_NEVER,	/* restart=never */
	RESTART_GIVE_UP_BURST,	/* died too often within the window */
	RESTART_GIVE_UP_STARTS, /* too many failed starts in a row */
};

void restart_state_init(struct restart_state *state, bool restart, bool external);
/* The back-end was lost at now_ns. */
enum restart_decision restart_on_loss(struct restart_state *state,
				      const struct restart_policy *policy, uint64_t now_ns);
/* The back-end is replaced on purpose at now_ns (new arguments, an
 * upgrade): a try is due like after a loss, but nothing is charged to the
 * budget (no death in the window) and restart=never does not apply.
 * RESTART_TRY, or RESTART_IGNORE if the device is given up (a reset of the
 * guest's driver is due first) or a try is pending already (the pending
 * try takes the new arguments). */
enum restart_decision restart_on_replace(struct restart_state *state, uint64_t now_ns);
/* A try to bring it back failed: RESTART_WAIT or RESTART_GIVE_UP_STARTS. */
enum restart_decision restart_on_failed_try(struct restart_state *state,
					    const struct restart_policy *policy);
/* A try worked at now_ns: returns how long the device was without it
 * (a replacement counts in `replacements`, a restart in the rest). */
uint64_t restart_on_success(struct restart_state *state, uint64_t now_ns);
/* A new VM (a reboot): the budget starts afresh; the counters do not. */
void restart_new_vm(struct restart_state *state);
/* Whether a decision gives the device up. */
bool restart_gives_up(enum restart_decision decision);

#endif
