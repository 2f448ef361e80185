// SPDX-License-Identifier: MIT
/* Firecracker's command line for `isola --api-sock ...` (core/vmm_args.c):
 * the flags orchestrators pass are taken, the ones for what isola lacks are
 * refused with a sentence, and the rules between flags are Firecracker's. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/version.h"
#include "core/vmm_args.h"
#include "lib/log.h"

#define ARGS(...) ((char *[]){"isola", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"isola", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(args, err, ...)                                                                      \
	vmm_args_parse(args, ARGC(__VA_ARGS__), ARGS(__VA_ARGS__), err, sizeof(err))

static void expect_refused(int ret, const char *err, const char *needle)
{
	assert_int_equal(ret, -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not mention '%s'", err, needle);
}

/* firecracker-go-sdk's and Kata's command lines (their sources build
 * these): --api-sock, --id, and the logger/metrics flags. */
static void test_orchestrator_lines(void **state)
{
	struct vmm_args a;
	char err[256] = "";

	(void)state;
	assert_int_equal(PARSE(&a, err, "--api-sock", "/run/fc.sock", "--id", "vm-0f3a"), 0);
	assert_string_equal(a.api_sock, "/run/fc.sock");
	assert_string_equal(a.instance_id, "vm-0f3a");
	assert_false(a.no_api);
	assert_int_equal(PARSE(&a, err, "--id=abc", "--api-sock=/s", "--seccomp-level", "2",
			       "--start-time-us", "123", "--start-time-cpu-us", "4",
			       "--parent-cpu-time-us", "5", "--boot-timer", "--enable-pci"),
			 0);
	assert_string_equal(a.api_sock, "/s");
	assert_false(a.no_seccomp);
	assert_true(a.boot_timer);
	assert_int_equal(PARSE(&a, err, "--api-sock", "/s", "--seccomp-level", "0"), 0);
	assert_true(a.no_seccomp);
	assert_int_equal(PARSE(&a, err, "--api-sock", "/s", "--log-path", "/l", "--level", "debug",
			       "--show-level", "--show-log-origin", "--module", "core",
			       "--metrics-path", "/m"),
			 0);
	assert_true(a.logger);
	assert_string_equal(a.log_path, "/l");
	assert_int_equal(a.log_level, LOG_LEVEL_DEBUG);
	assert_true(a.show_level && a.show_log_origin);
	assert_string_equal(a.log_module, "core");
	assert_string_equal(a.metrics_path, "/m");
	assert_int_equal(a.max_payload, VMM_ARGS_DEFAULT_MAX_PAYLOAD);
	assert_int_equal(PARSE(&a, err, "--http-api-max-payload-size", "1000000"), 0);
	assert_int_equal(a.max_payload, 1000000);
}

/* Firecracker's defaults and rules between flags. */
static void test_defaults_and_rules(void **state)
{
	struct vmm_args a;
	char err[256] = "";

	(void)state;
	assert_int_equal(PARSE(&a, err, "--id", "x"), 0);
	assert_string_equal(a.api_sock, VMM_ARGS_DEFAULT_API_SOCK);
	assert_null(a.config_file);
	assert_false(a.logger);
	assert_int_equal(PARSE(&a, err, "--no-api", "--config-file", "vm.json"), 0);
	assert_true(a.no_api);
	assert_null(a.api_sock);
	expect_refused(PARSE(&a, err, "--no-api"), err, "--no-api needs --config-file");
	expect_refused(PARSE(&a, err, "--no-api", "--config-file", "f", "--api-sock", "s"), err,
		       "contradict");
	expect_refused(PARSE(&a, err, "--id", "a", "--id", "b"), err, "--id is given twice");
	expect_refused(PARSE(&a, err, "--api-sock"), err, "missing value for --api-sock");
	expect_refused(PARSE(&a, err, "--frobnicate"), err, "unknown option '--frobnicate'");
	expect_refused(PARSE(&a, err, "--no-api=1"), err, "unknown option");
	assert_int_equal(PARSE(&a, err, "--help"), 0);
	assert_true(a.help);
	assert_int_equal(PARSE(&a, err, "--api-sock", "--help"), 0);
	assert_true(a.help);
	assert_int_equal(PARSE(&a, err, "--id", "x", "-h"), 0);
	assert_true(a.help);
	expect_refused(PARSE(&a, err, "--api-sock", "--id", "x"), err, "missing value for --api-sock");
	assert_int_equal(PARSE(&a, err, "--api-sock", "s", "--version"), 0);
	assert_true(a.version);
}

static void test_bad_values(void **state)
{
	struct vmm_args a;
	char err[256] = "";

	(void)state;
	expect_refused(PARSE(&a, err, "--id", ""), err, "1 to 64 letters");
	expect_refused(PARSE(&a, err, "--id", "a_b"), err, "1 to 64 letters");
	expect_refused(PARSE(&a, err, "--id", "a/b"), err, "1 to 64 letters");
	char long_id[66];

	memset(long_id, 'a', 65);
	long_id[65] = '\0';
	expect_refused(PARSE(&a, err, "--id", long_id), err, "1 to 64");
	long_id[64] = '\0';
	assert_int_equal(PARSE(&a, err, "--id", long_id), 0);
	expect_refused(PARSE(&a, err, "--level", "loud"), err, "use Error, Warning");
	expect_refused(PARSE(&a, err, "--seccomp-level", "3"), err, "use 0, 1 or 2");
	expect_refused(PARSE(&a, err, "--http-api-max-payload-size", "0"), err, "from 1 to");
	expect_refused(PARSE(&a, err, "--http-api-max-payload-size", "99999999999"), err,
		       "from 1 to");
	expect_refused(PARSE(&a, err, "--http-api-max-payload-size", "12k"), err, "from 1 to");
	expect_refused(PARSE(&a, err, "--start-time-us", "-1"), err, "whole number");
	/* what isola does not have is refused, never silently dropped */
	expect_refused(PARSE(&a, err, "--seccomp-filter", "f.bpf"), err, "built in");
	expect_refused(PARSE(&a, err, "--metadata", "m.json"), err, "does not implement MMDS");
	expect_refused(PARSE(&a, err, "--describe-snapshot", "s"), err, "snapshots");
	expect_refused(PARSE(&a, err, "--snapshot-version"), err, "snapshots");
}

/* Kata Containers' Go runtime (virtcontainers/fc.go parseVersion): the
 * first line's second word, "v" trimmed, is a semantic version it compares
 * with its minimum (0.21.1 at least). */
static void test_version_line(void **state)
{
	char line[] = ISOLA_VERSION_LINE;
	char *first = strtok(line, " "), *second = strtok(NULL, " ");
	unsigned major, minor, patch;

	(void)state;
	assert_non_null(first);
	assert_non_null(second);
	assert_int_equal(sscanf(second, "v%u.%u.%u", &major, &minor, &patch), 3);
	assert_true(major >= 1);
	assert_non_null(strstr(ISOLA_VERSION_LINE, "(isola " ISOLA_VERSION ")"));
	assert_true(vmm_args_is_vmm_flag("--id"));
	assert_true(vmm_args_is_vmm_flag("--no-api"));
	assert_false(vmm_args_is_vmm_flag("--version"));
	assert_false(vmm_args_is_vmm_flag("run"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_orchestrator_lines),
	    cmocka_unit_test(test_defaults_and_rules),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_version_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
