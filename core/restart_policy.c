// SPDX-License-Identifier: MIT
#include "core/restart_policy.h"

const struct restart_policy restart_policy_default = {
    .burst = 100,
    .window_ns = 10ull * 1000000000ull,
    .max_failed_starts = 5,
};

void restart_state_init(struct restart_state *state, bool restart, bool external)
{
	*state = (struct restart_state){.restart = restart, .external = external};
}

void restart_new_vm(struct restart_state *state)
{
	state->pending = state->given_up = state->replacing = false;
	state->failed_starts = state->deaths_in_window = 0;
}

bool restart_gives_up(enum restart_decision decision)
{
	return decision == RESTART_GIVE_UP_NEVER || decision == RESTART_GIVE_UP_BURST ||
	       decision == RESTART_GIVE_UP_STARTS;
}

enum restart_decision restart_on_loss(struct restart_state *state,
				      const struct restart_policy *policy, uint64_t now_ns)
{
	if (state->pending || state->given_up)
		return RESTART_IGNORE;
	if (!state->restart) {
		state->given_up = true;
		return RESTART_GIVE_UP_NEVER;
	}
	if (!state->deaths_in_window || now_ns - state->window_start_ns > policy->window_ns) {
		state->window_start_ns = now_ns;
		state->deaths_in_window = 0;
	}
	if (++state->deaths_in_window > policy->burst) {
		state->given_up = true;
		return RESTART_GIVE_UP_BURST;
	}
	state->pending = true;
	state->lost_ns = now_ns;
	return RESTART_TRY;
}

enum restart_decision restart_on_replace(struct restart_state *state, uint64_t now_ns)
{
	if (state->pending || state->given_up)
		return RESTART_IGNORE;
	state->pending = true;
	state->replacing = true;
	state->lost_ns = now_ns;
	return RESTART_TRY;
}

enum restart_decision restart_on_failed_try(struct restart_state *state,
					    const struct restart_policy *policy)
{
	if (!state->pending)
		return RESTART_IGNORE;
	if (state->external)
		return RESTART_WAIT; /* someone else's back-end: no deadline */
	if (++state->failed_starts >= policy->max_failed_starts) {
		state->pending = false;
		state->given_up = true;
		return RESTART_GIVE_UP_STARTS;
	}
	return RESTART_WAIT;
}

uint64_t restart_on_success(struct restart_state *state, uint64_t now_ns)
{
	uint64_t took = now_ns - state->lost_ns;

	state->pending = false;
	state->failed_starts = 0;
	if (state->replacing) {
		state->replacing = false;
		state->replacements++;
		return took;
	}
	state->restarts++;
	state->recovery_ns_total += took;
	if (took > state->recovery_ns_max)
		state->recovery_ns_max = took;
	return took;
}
