// SPDX-License-Identifier: MIT
/* The restart policy against a fake clock: budget windows, failed starts,
 * give-up, restart=never and external back-ends (core/restart_policy.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/restart_policy.h"

#define MS 1000000ull
#define S (1000 * MS)

static const struct restart_policy small = {
    .burst = 3, .window_ns = 10 * S, .max_failed_starts = 2};

/* A loss, then a try that works at now + 1 ms. */
static enum restart_decision die_and_recover(struct restart_state *st, uint64_t now)
{
	enum restart_decision d = restart_on_loss(st, &small, now);

	if (d == RESTART_TRY)
		assert_int_equal(restart_on_success(st, now + MS), MS);
	return d;
}

static void test_restarts_within_budget(void **state)
{
	struct restart_state st;

	(void)state;
	restart_state_init(&st, true, false);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(die_and_recover(&st, 1 * S + i * S), RESTART_TRY);
	assert_int_equal(st.restarts, 3);
	assert_int_equal(st.recovery_ns_max, MS);
	assert_false(st.given_up);
}

static void test_burst_gives_up(void **state)
{
	struct restart_state st;

	(void)state;
	restart_state_init(&st, true, false);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(die_and_recover(&st, 100 * S + i * MS), RESTART_TRY);
	/* the fourth death within 10 s of the first is one too many */
	assert_int_equal(restart_on_loss(&st, &small, 100 * S + 9 * S), RESTART_GIVE_UP_BURST);
	assert_true(st.given_up);
	assert_true(restart_gives_up(RESTART_GIVE_UP_BURST));
	/* given up stays given up */
	assert_int_equal(restart_on_loss(&st, &small, 200 * S), RESTART_IGNORE);
}

static void test_window_slides(void **state)
{
	struct restart_state st;

	(void)state;
	restart_state_init(&st, true, false);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(die_and_recover(&st, 5 * S + i * MS), RESTART_TRY);
	/* just past the window: a new window begins, the budget is whole again */
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(die_and_recover(&st, 15 * S + MS + i * MS), RESTART_TRY);
	assert_int_equal(restart_on_loss(&st, &small, 16 * S), RESTART_GIVE_UP_BURST);
}

static void test_window_starts_at_zero_clock(void **state)
{
	struct restart_state st;

	(void)state;
	/* a clock that starts at 0 (a fresh boot's CLOCK_MONOTONIC is not 0,
	 * but the policy must not care) */
	restart_state_init(&st, true, false);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(die_and_recover(&st, i * MS), RESTART_TRY);
	assert_int_equal(restart_on_loss(&st, &small, 4 * MS), RESTART_GIVE_UP_BURST);
}

static void test_failed_starts_give_up(void **state)
{
	struct restart_state st;

	(void)state;
	restart_state_init(&st, true, false);
	assert_int_equal(restart_on_loss(&st, &small, 1 * S), RESTART_TRY);
	assert_int_equal(restart_on_failed_try(&st, &small), RESTART_WAIT);
	assert_true(st.pending);
	assert_int_equal(restart_on_failed_try(&st, &small), RESTART_GIVE_UP_STARTS);
	assert_false(st.pending);
	assert_true(st.given_up);
}

static void test_success_resets_failed_starts(void **state)
{
	struct restart_state st;

	(void)state;
	restart_state_init(&st, true, false);
	assert_int_equal(restart_on_loss(&st, &small, 1 * S), RESTART_TRY);
	assert_int_equal(restart_on_failed_try(&st, &small), RESTART_WAIT);
	assert_int_equal(restart_on_success(&st, 1 * S + 250 * MS), 250 * MS);
	assert_int_equal(st.failed_starts, 0);
	assert_int_equal(restart_on_loss(&st, &small, 2 * S), RESTART_TRY);
	assert_int_equal(restart_on_failed_try(&st, &small), RESTART_WAIT);
	assert_false(st.given_up);
	assert_int_equal(st.recovery_ns_max, 250 * MS);
}

static void test_restart_never(void **state)
{
	struct restart_state st;

	(void)state;
	restart_state_init(&st, false, false);
	assert_int_equal(restart_on_loss(&st, &small, 1 * S), RESTART_GIVE_UP_NEVER);
	assert_true(st.given_up);
	assert_false(st.pending);
}

static void test_external_waits_forever(void **state)
{
	struct restart_state st;

	(void)state;
	restart_state_init(&st, true, true);
	assert_int_equal(restart_on_loss(&st, &small, 1 * S), RESTART_TRY);
	for (unsigned i = 0; i < 1000; i++)
		assert_int_equal(restart_on_failed_try(&st, &small), RESTART_WAIT);
	assert_false(st.given_up);
	assert_int_equal(restart_on_success(&st, 101 * S), 100 * S);
}

static void test_loss_while_pending_is_ignored(void **state)
{
	struct restart_state st;

	(void)state;
	restart_state_init(&st, true, false);
	assert_int_equal(restart_on_loss(&st, &small, 1 * S), RESTART_TRY);
	assert_int_equal(restart_on_loss(&st, &small, 1 * S + MS), RESTART_IGNORE);
	assert_int_equal(st.deaths_in_window, 1);
	assert_int_equal(st.lost_ns, 1 * S);
}

/* A replacement on purpose (PATCH /network-interfaces) is tried at once,
 * charges no death to the window, ignores restart=never, and counts as a
 * replacement, not a restart. */
static void test_replace_is_not_a_death(void **state)
{
	const struct restart_policy policy = {
	    .burst = 1, .window_ns = 10 * S, .max_failed_starts = 5};
	struct restart_state st;

	(void)state;
	restart_state_init(&st, false, false);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(restart_on_replace(&st, 1 * S + i * MS), RESTART_TRY);
		assert_true(st.pending);
		assert_int_equal(restart_on_replace(&st, 1 * S + i * MS), RESTART_IGNORE);
		assert_int_equal(restart_on_success(&st, 1 * S + i * MS + 5 * MS), 5 * MS);
	}
	assert_int_equal(st.replacements, 3);
	assert_int_equal(st.restarts, 0);
	assert_int_equal(st.deaths_in_window, 0);
	assert_false(st.given_up);
	/* restart=never still gives the next real death up */
	assert_int_equal(restart_on_loss(&st, &policy, 2 * S), RESTART_GIVE_UP_NEVER);
	assert_int_equal(restart_on_replace(&st, 3 * S), RESTART_IGNORE);
}

static void test_default_policy(void **state)
{
	struct restart_state st;
	unsigned tries = 0;

	(void)state;
	/* docs/devices.md: more than 100 deaths in 10 s, or 5 failed starts */
	restart_state_init(&st, true, false);
	while (restart_on_loss(&st, &restart_policy_default, 1 * S + tries * MS) == RESTART_TRY) {
		restart_on_success(&st, 1 * S + tries * MS);
		tries++;
	}
	assert_int_equal(tries, 100);
	restart_state_init(&st, true, false);
	restart_on_loss(&st, &restart_policy_default, 1 * S);
	tries = 1;
	while (restart_on_failed_try(&st, &restart_policy_default) == RESTART_WAIT)
		tries++;
	assert_int_equal(tries, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_restarts_within_budget),
	    cmocka_unit_test(test_burst_gives_up),
	    cmocka_unit_test(test_window_slides),
	    cmocka_unit_test(test_window_starts_at_zero_clock),
	    cmocka_unit_test(test_failed_starts_give_up),
	    cmocka_unit_test(test_success_resets_failed_starts),
	    cmocka_unit_test(test_restart_never),
	    cmocka_unit_test(test_external_waits_forever),
	    cmocka_unit_test(test_loss_while_pending_is_ignored),
	    cmocka_unit_test(test_replace_is_not_a_death),
	    cmocka_unit_test(test_default_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
